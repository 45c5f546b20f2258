// Package engine ties a decision to a transaction: it validates an input against the
// instance's pinned definition, runs workflow.Decide inside the store's per-instance
// lock and commits events, effects, timers and the input record together. It also
// answers the queries the API serves.
package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// Errors callers branch on, besides the store and workflow sentinels that pass through
// (store.ErrNotFound, store.ErrVersionMismatch, store.ErrIdempotencyMismatch,
// store.ErrUniqueKeyConflict, workflow.ErrInvalidDefinition, workflow.ErrUnknownInput,
// workflow.ErrInvalidInput, workflow.ErrEvaluation).
var (
	// ErrTypeNotFound: the workflow type has no definition.
	ErrTypeNotFound = errors.New("workflow type not found")
	// ErrInstanceNotFound: the workflow instance does not exist.
	ErrInstanceNotFound = errors.New("workflow not found")
	// ErrInvalidID: an instance id is not 1–200 printable characters.
	ErrInvalidID = errors.New("invalid workflow id")
	// ErrInvalidArgument: a query parameter is out of range.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Config wires an Engine.
type Config struct {
	Store store.Store
	// NowFunc returns the current time; time.Now when nil.
	NowFunc func() time.Time
	// NewIDFunc returns a new unique id; UUIDv7 when nil.
	NewIDFunc func() string
	Logger    *slog.Logger
	// ObserveDecisionFunc, if set, is called after every decided input with its
	// outcome and the time the decision took (for metrics).
	ObserveDecisionFunc func(workflowType, inputType, outcome string, d time.Duration)
	// ObserveEndedFunc, if set, is called once for every instance that ends, after the
	// transaction that ended it committed, with its new status (completed, failed or
	// terminated), whichever path decided it (API, routed answer, timer, terminate).
	ObserveEndedFunc func(workflowType, status string)
	// Limits bound what one decision may produce (workflow.Limits; zero: defaults).
	Limits workflow.Limits
	// DecisionTimeout is the wall-clock budget of one decision's expressions;
	// DefaultDecisionTimeout when zero.
	DecisionTimeout time.Duration
	// CountCap is the most each count of CountWorkflows reports: it reads at most one
	// instance more per status. DefaultCountCap when zero.
	CountCap int64
}

// DefaultCountCap is the default CountCap.
const DefaultCountCap = 10000

// DefaultDecisionTimeout is the default wall-clock budget of one decision.
const DefaultDecisionTimeout = time.Second

// Engine executes inputs and answers queries. It is safe for concurrent use.
type Engine struct {
	store   store.Store
	now     func() time.Time
	newID   func() string
	log     *slog.Logger
	observe func(workflowType, inputType, outcome string, d time.Duration)
	ended   func(workflowType, status string)
	limits  workflow.Limits
	budget  time.Duration
	cap     int64 // Config.CountCap

	mu        sync.RWMutex
	defs      map[defKey]*workflow.Definition // immutable once stored, so cached forever
	compiling map[defKey]*compileCall         // first uses in progress
}

// compileCall is one definition being compiled; concurrent first uses of the same
// version wait for it instead of compiling it again.
type compileCall struct {
	done chan struct{}
	def  *workflow.Definition
	err  error
}

type defKey struct {
	typ     string
	version int
}

// New returns an Engine over cfg.Store.
func New(cfg Config) *Engine {
	e := &Engine{
		store:     cfg.Store,
		now:       cfg.NowFunc,
		newID:     cfg.NewIDFunc,
		log:       cfg.Logger,
		observe:   cfg.ObserveDecisionFunc,
		ended:     cfg.ObserveEndedFunc,
		limits:    cfg.Limits,
		budget:    cfg.DecisionTimeout,
		cap:       cfg.CountCap,
		defs:      make(map[defKey]*workflow.Definition),
		compiling: make(map[defKey]*compileCall),
	}
	if e.cap <= 0 {
		e.cap = DefaultCountCap
	}
	if e.budget <= 0 {
		e.budget = DefaultDecisionTimeout
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.newID == nil {
		e.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e
}

// Now returns the engine clock's current time, truncated to the microsecond every store
// keeps.
func (e *Engine) Now() time.Time { return e.now().UTC().Truncate(time.Microsecond) }

// NewID returns a new unique id.
func (e *Engine) NewID() string { return e.newID() }

// ValidateID checks an instance id: 1–200 printable characters (workflow.ValidID).
func ValidateID(id string) error {
	if !workflow.ValidID(id) {
		return fmt.Errorf("%w: must be 1 to %d printable characters", ErrInvalidID, workflow.MaxIDLength)
	}
	return nil
}

// definition returns the compiled definition of typ at version (0: latest).
// ErrTypeNotFound when the type (or that version) does not exist.
func (e *Engine) definition(ctx context.Context, typ string, version int) (*workflow.Definition, error) {
	if version > 0 {
		e.mu.RLock()
		d, ok := e.defs[defKey{typ, version}]
		e.mu.RUnlock()
		if ok {
			return d, nil
		}
	}
	stored, err := e.store.GetDefinition(ctx, typ, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrTypeNotFound, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("get definition: %w", err)
	}
	return e.compiled(stored)
}

// compiled returns the compiled form of a stored definition, parsing it on first use:
// versions are immutable, so each is compiled once per process, and concurrent first
// uses share that one compilation.
func (e *Engine) compiled(stored store.Definition) (*workflow.Definition, error) {
	key := defKey{stored.Type, stored.Version}
	e.mu.RLock()
	d, ok := e.defs[key]
	e.mu.RUnlock()
	if ok {
		return d, nil
	}
	e.mu.Lock()
	if d, ok := e.defs[key]; ok {
		e.mu.Unlock()
		return d, nil
	}
	if c, ok := e.compiling[key]; ok {
		e.mu.Unlock()
		<-c.done
		return c.def, c.err
	}
	c := &compileCall{done: make(chan struct{})}
	e.compiling[key] = c
	e.mu.Unlock()

	c.def, c.err = workflow.ParseWithLimits(stored.Type, stored.Body, e.limits)
	if c.err != nil {
		c.def, c.err = nil, fmt.Errorf("stored definition %s v%d: %w", stored.Type, stored.Version, c.err)
	}
	e.mu.Lock()
	if c.err == nil {
		e.defs[key] = c.def
	}
	delete(e.compiling, key)
	e.mu.Unlock()
	close(c.done)
	return c.def, c.err
}

// PutDefinition validates body and stores it as the next version of typ unless it is
// the same document as the latest: equal but for layout and the order of object keys
// (a client that encodes maps in any order, as generated clients do, can apply the
// same definition again). Errors: *workflow.ValidationError (ErrInvalidDefinition).
// The compiled definition is kept for the version, so its first input compiles
// nothing.
func (e *Engine) PutDefinition(ctx context.Context, typ string, body []byte) (DefinitionView, bool, error) {
	def, err := workflow.ParseWithLimits(typ, body, e.limits)
	if err != nil {
		return DefinitionView{}, false, err
	}
	compact, err := compactJSON(body)
	if err != nil {
		return DefinitionView{}, false, fmt.Errorf("%w: %v", workflow.ErrInvalidDefinition, err)
	}
	canonical, err := canonicalJSON(body)
	if err != nil {
		return DefinitionView{}, false, fmt.Errorf("%w: %v", workflow.ErrInvalidDefinition, err)
	}
	sum := sha256.Sum256(canonical)
	d, created, err := e.store.PutDefinition(ctx, typ, compact, hex.EncodeToString(sum[:]), e.Now())
	if err != nil {
		return DefinitionView{}, false, fmt.Errorf("put definition: %w", err)
	}
	e.mu.Lock()
	if _, ok := e.defs[defKey{d.Type, d.Version}]; !ok {
		e.defs[defKey{d.Type, d.Version}] = def
	}
	e.mu.Unlock()
	return definitionView(d), created, nil
}

// GetDefinition returns version of typ (0: latest). ErrTypeNotFound when absent.
func (e *Engine) GetDefinition(ctx context.Context, typ string, version int) (DefinitionView, error) {
	d, err := e.store.GetDefinition(ctx, typ, version)
	if errors.Is(err, store.ErrNotFound) {
		return DefinitionView{}, fmt.Errorf("%w: %q version %d", ErrTypeNotFound, typ, version)
	}
	if err != nil {
		return DefinitionView{}, fmt.Errorf("get definition: %w", err)
	}
	return definitionView(d), nil
}

// ListDefinitions pages the latest definition of every type, by name; the cursor is
// the last type name of the previous page. Errors: ErrInvalidArgument,
// store.ErrInvalidCursor.
func (e *Engine) ListDefinitions(ctx context.Context, cursor string, limit int) (Page[DefinitionView], error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page[DefinitionView]{}, err
	}
	if len(cursor) > 63 || strings.Trim(cursor, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return Page[DefinitionView]{}, fmt.Errorf("%w: not a cursor of this list", store.ErrInvalidCursor)
	}
	page, err := definitionPage(limit, cursor, func(after string, n int) ([]store.Definition, error) {
		return e.store.ListDefinitions(ctx, after, n)
	}, func(d store.Definition) string { return d.Type })
	if err != nil {
		return Page[DefinitionView]{}, fmt.Errorf("list definitions: %w", err)
	}
	return page, nil
}

// ListDefinitionVersions pages the versions of typ, oldest first; the cursor is the
// last version of the previous page. Errors: ErrTypeNotFound, ErrInvalidArgument,
// store.ErrInvalidCursor.
func (e *Engine) ListDefinitionVersions(ctx context.Context, typ, cursor string, limit int) (Page[DefinitionView], error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page[DefinitionView]{}, err
	}
	if cursor != "" {
		if after, err := strconv.Atoi(cursor); err != nil || after < 1 {
			return Page[DefinitionView]{}, fmt.Errorf("%w: not a cursor of this list", store.ErrInvalidCursor)
		}
	}
	page, err := definitionPage(limit, cursor, func(after string, n int) ([]store.Definition, error) {
		v, _ := strconv.Atoi(after) // "" (the first page) is 0
		return e.store.ListDefinitionVersions(ctx, typ, v, n)
	}, func(d store.Definition) string { return strconv.Itoa(d.Version) })
	if err != nil {
		return Page[DefinitionView]{}, fmt.Errorf("list definition versions: %w", err)
	}
	if len(page.Items) == 0 {
		// A cursor past the last version of an existing type is an empty page.
		if _, err := e.GetDefinition(ctx, typ, 0); err != nil {
			return Page[DefinitionView]{}, err
		}
	}
	return page, nil
}

// A definition may be as large as a request body (IRONFLOW_MAX_BODY_BYTES): 150
// versions with a megabyte of description each were one answer of 143 MiB. So a page
// of definitions also ends once it holds maxPageBytes of them (it always holds one),
// and they are read definitionChunk at a time, so that a page's rows are never all in
// memory before it is cut.
const (
	maxPageBytes    = 4 << 20
	definitionChunk = 8
)

// definitionPage reads the page of up to limit definitions after the cursor after:
// fetch(after, n) returns up to n definitions following after, and key gives a
// definition's cursor.
func definitionPage(limit int, after string, fetch func(after string, n int) ([]store.Definition, error), key func(store.Definition) string) (Page[DefinitionView], error) {
	out := Page[DefinitionView]{Items: []DefinitionView{}}
	size := 0
	for {
		want := min(limit-len(out.Items), definitionChunk)
		ds, err := fetch(after, want+1)
		if err != nil {
			return Page[DefinitionView]{}, err
		}
		for i, d := range ds[:min(len(ds), want)] {
			out.Items = append(out.Items, definitionView(d))
			size += len(d.Body)
			after = key(d)
			if size >= maxPageBytes && i < len(ds)-1 {
				out.NextCursor = after
				return out, nil
			}
		}
		if len(ds) <= want {
			return out, nil
		}
		if len(out.Items) == limit {
			out.NextCursor = after
			return out, nil
		}
	}
}

// Diagram renders version of typ (0: latest) as Mermaid ("mermaid") or Graphviz ("dot").
func (e *Engine) Diagram(ctx context.Context, typ string, version int, format string) (string, error) {
	d, err := e.definition(ctx, typ, version)
	if err != nil {
		return "", err
	}
	switch format {
	case "", "mermaid":
		return d.Mermaid(), nil
	case "dot":
		return d.DOT(), nil
	default:
		return "", fmt.Errorf("%w: format must be mermaid or dot", ErrInvalidArgument)
	}
}

// canonicalJSON is b with every object's keys sorted and no insignificant space;
// numbers keep their text.
func canonicalJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func compactJSON(b []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
