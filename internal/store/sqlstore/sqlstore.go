// Package sqlstore is the store.Store of every SQL backend: the write protocol (lock,
// check preconditions, decide, prepare rows, write), the claim checks, secret rotation,
// cursors, migration bookkeeping and the notification fan-out, written once over a
// narrow Driver that each backend (store/postgres, store/sqlite) supplies.
//
// A backend keeps its SQL and the shape of its transactions and nothing else
// (docs/decisions/0011-one-write-protocol.md): a Tx whose Load reads, in one round trip
// where it can, what a batch of decisions needs, and whose Write writes the prepared
// rows; and thin one-statement methods for claims, lists and the rest.
package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// Key names one instance.
type Key struct{ Type, ID string }

// Claimed rows live in one of these tables.
const (
	TableEffects = "effects"
	TableTimers  = "timers"
)

// LoadRequest is what one protocol transaction reads before it decides.
type LoadRequest struct {
	// Instances are distinct and sorted: a backend that locks instances locks them in
	// this order (so concurrent batches never deadlock), before it reads anything else.
	// It reads each one, and the definitions a decision on each is made by: the pinned
	// version, or the latest of the type for an instance that does not exist yet.
	Instances []Key
	// IdempotencyKeys are the earlier inputs to look up, by instance.
	IdempotencyKeys map[Key]string
	// Table and Claimed name the claimed rows whose holders to read (and lock).
	Table   string
	Claimed []string
}

// Snapshot is what Load read.
type Snapshot struct {
	Instances   map[Key]*store.Instance              // absent: the instance does not exist
	Definitions map[string]map[int]*store.Definition // by type and version
	Earlier     map[Key]*store.InputRecord           // inputs recorded with the looked-up keys
	Holders     map[string]Holder                    // absent: the row does not exist
}

// Definition is the definition a decision on current (nil: a new instance of typ) is
// made by: the pinned version, or the latest; nil when there is none.
func (s *Snapshot) Definition(typ string, current *store.Instance) *store.Definition {
	versions := s.Definitions[typ]
	if current != nil {
		return versions[current.DefinitionVersion]
	}
	var latest *store.Definition
	for _, d := range versions {
		if latest == nil || d.Version > latest.Version {
			latest = d
		}
	}
	return latest
}

// AddDefinition records d in the snapshot.
func (s *Snapshot) AddDefinition(d store.Definition) {
	if s.Definitions == nil {
		s.Definitions = map[string]map[int]*store.Definition{}
	}
	if s.Definitions[d.Type] == nil {
		s.Definitions[d.Type] = map[int]*store.Definition{}
	}
	s.Definitions[d.Type][d.Version] = &d
}

// Holder is who holds a claimed row.
type Holder struct{ Status, LockedBy string }

// Rows are the prepared rows of one protocol transaction, written in this order.
type Rows struct {
	Created []*store.Instance // new instances
	Updated []*store.Instance // instances that existed when Load read them
	Events  []store.Event
	Inputs  []store.InputRecord
	// EffectCancels cancel pending effects of one instance each, before Effects are
	// inserted (an effect of the same write is never cancelled by it).
	EffectCancels []EffectCancel
	Effects       []store.Effect
	// Cancels cancel the pending timers with these keys of one instance each; a key
	// scheduled in Timers is among them, so a schedule replaces the pending timer.
	Cancels []TimerCancel
	Timers  []store.Timer // Status is pending, or cancelled for one replaced in the same write
	// Completions come last, so a firing whose input re-arms or cancels its own key
	// still ends fired.
	EffectCompletions []EffectCompletion
	TimerCompletions  []TimerCompletion
}

func (r *Rows) empty() bool {
	return len(r.Created)+len(r.Updated)+len(r.Inputs)+len(r.EffectCompletions)+len(r.TimerCompletions) == 0
}

// Instances returns Created and Updated.
func (r *Rows) Instances() []*store.Instance {
	return append(r.Created[:len(r.Created):len(r.Created)], r.Updated...)
}

// TimerCancel cancels the pending timers of one instance with Keys (every one when
// All), at At.
type TimerCancel struct {
	Type, ID string
	Keys     []string
	All      bool
	At       time.Time
}

// EffectCancel cancels pending effects of one instance at At: every one, or only the
// state-scoped ones when StateScoped (store.CancelAll, store.CancelState), and with
// ChildSends also the sends of children that end with their parent
// (store.CancelEnding). A cancelled effect keeps its locked_by, so that the completion
// of the worker holding it can still be recorded (and not routed).
type EffectCancel struct {
	Type, ID    string
	StateScoped bool
	ChildSends  bool
	At          time.Time
}

// EffectCompletion records one attempt of a claimed effect (its number follows the
// effect's earlier ones) and the effect's next state. It is written without a guard: the
// protocol has checked the claim.
type EffectCompletion struct {
	ID            string
	Status        string
	NextAttemptAt time.Time
	DeliveredAt   *time.Time
	Now           time.Time
	Attempt       store.Attempt // StartedAt set, Error clean, RoutedOutcome filled in
	// OnDeadOutcome is the outcome of the on_dead input a dying effect ran ("" for
	// none); an effect keeps the first it had.
	OnDeadOutcome string
}

// TimerCompletion records the completion of a claimed timer, without a guard: the
// protocol has checked the claim, and the timer's own input may just have cancelled it.
type TimerCompletion struct {
	ID            string
	Status        string
	NextAttemptAt time.Time
	FiredAt       *time.Time
	Error         string
	Outcome       string
	Now           time.Time
}

// ErrStale is what a Tx's Write returns when what Load read changed before the write
// (a backend that decides outside its write lock); the protocol then starts again.
var ErrStale = errors.New("snapshot is stale")

// Tx is one protocol transaction.
type Tx interface {
	// Load locks (where the backend locks) and reads what r names.
	Load(ctx context.Context, r LoadRequest) (*Snapshot, error)
	// Write writes rows: at once, or held for the commit. A backend that read outside
	// its write lock checks first that the instances and holders Load read are
	// unchanged, and returns ErrStale when they are not.
	Write(ctx context.Context, rows *Rows) error
}

// Topics are the kinds of work a commit added, and whether it appended events.
type Topics struct{ Effects, Timers, Events bool }

func (t Topics) list() []store.Topic {
	var ts []store.Topic
	if t.Effects {
		ts = append(ts, store.TopicEffects)
	}
	if t.Timers {
		ts = append(ts, store.TopicTimers)
	}
	if t.Events {
		ts = append(ts, store.TopicEvents)
	}
	return ts
}

// Listed is an item of a list with its row identity, the keyset cursor.
type Listed[T any] struct {
	RID  int64
	Item T
}

// ErrNoMatch is what a status-guarded update returns when it matched no row.
var ErrNoMatch = errors.New("no row in that status")

// Driver is what a backend supplies. Errors are the driver's own; Sentinel says which
// store sentinel they mean. Methods that read one row return an error Sentinel maps to
// store.ErrNotFound when it is absent.
type Driver interface {
	// Name prefixes errors ("postgres").
	Name() string
	// Sentinel returns the store sentinel a non-nil err of the driver means
	// (store.ErrNotFound, store.ErrUniqueKeyConflict, store.ErrUnavailable…), or nil.
	Sentinel(err error) error
	// Begin runs fn in one protocol transaction and commits when it returns nil.
	// serial asks a backend that decides outside its write lock (SQLite) to hold it from
	// Load to the commit instead: after repeated ErrStale, so one caller always wins.
	Begin(ctx context.Context, serial bool, fn func(Tx) error) error
	// BatchInputs tells whether concurrent inputs of distinct instances should share one
	// protocol transaction (Store.Execute): yes where a transaction costs round trips
	// and a commit of its own.
	BatchInputs() bool
	// Notify sends what a commit added to the other processes sharing the database
	// (the store has woken this process's listeners already).
	Notify(t Topics)
	// Listen starts delivering other processes' notifications to wake (once; later
	// calls return at once).
	Listen(ctx context.Context, wake func(...store.Topic)) error
	// Migrations are the embedded migrations (NNNNNN_name.up.sql…).
	Migrations() fs.FS
	// SchemaVersion reads the migration bookkeeping: the version applied and whether a
	// migration failed halfway; an error Sentinel maps to store.ErrNotFound when none is.
	SchemaVersion(ctx context.Context) (version int64, dirty bool, err error)
	Close() error

	// PutDefinition locks typ, reads its latest version (nil: none) and returns it,
	// unless next returns a definition: then it inserts that and returns it.
	PutDefinition(ctx context.Context, typ string, next func(latest *store.Definition) *store.Definition) (store.Definition, error)
	GetDefinition(ctx context.Context, typ string, version int) (store.Definition, error)
	// ListDefinitions returns the latest version of up to limit types named after
	// afterType, by type name.
	ListDefinitions(ctx context.Context, afterType string, limit int) ([]store.Definition, error)
	// ListDefinitionVersions returns up to limit versions of typ after afterVersion.
	ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]store.Definition, error)

	GetInstance(ctx context.Context, typ, id string) (store.Instance, error)
	// The lists return up to limit rows after the row identity after, oldest first.
	// ListInstances selects p.IDPrefix through IDRange (and LikePrefix where the range
	// alone would not be exact), created_at in [p.CreatedAfter, p.CreatedBefore).
	ListInstances(ctx context.Context, p store.ListInstancesParams, after int64, limit int) ([]Listed[store.Instance], error)
	// CountInstances counts up to p.Limit instances of each status matching p.
	CountInstances(ctx context.Context, p store.CountInstancesParams) (store.InstanceCounts, error)
	ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]store.Event, error)
	// ReadFeed and FeedHead read the global event feed (store.Feed); a cursor that
	// cannot be decoded is an error wrapping store.ErrInvalidCursor.
	ReadFeed(ctx context.Context, p store.FeedParams) (store.FeedPage, error)
	FeedHead(ctx context.Context) (string, error)
	ListInputs(ctx context.Context, typ, id string, after int64, limit int) ([]Listed[store.InputRecord], error)

	// PutWebhook inserts w active, or replaces the URL and secrets of the type's
	// endpoint (keeping its CreatedAt) and re-activates it.
	PutWebhook(ctx context.Context, w store.Webhook, secrets string) (store.Webhook, error)
	GetWebhook(ctx context.Context, typ string) (store.Webhook, error)
	// DeleteWebhook and SetWebhookStatus report whether the endpoint existed.
	DeleteWebhook(ctx context.Context, typ string) (bool, error)
	SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) (bool, error)
	// RotateWebhookSecret locks the endpoint, reads it and stores what rotate makes of
	// its secrets (encoded by EncodeSecrets).
	RotateWebhookSecret(ctx context.Context, typ string, now time.Time, rotate func(store.Webhook) (string, error)) (store.Webhook, error)

	// ClaimEffects and ClaimTimers lease due rows whose lease is free or ended at p.Now
	// (locked_until <= now), in any order; ClaimEffects reads the endpoints of the
	// webhook effects' types with the claim (store.EffectClaim).
	ClaimEffects(ctx context.Context, p store.ClaimParams, limit int) (store.EffectClaim, error)
	GetEffect(ctx context.Context, id string) (store.Effect, []store.Attempt, error)
	ListEffects(ctx context.Context, p store.ListEffectsParams, after int64, limit int) ([]Listed[store.Effect], error)
	// RetryEffect, CancelEffect, CancelTimer and RetryTimer return ErrNoMatch when the
	// row is not in a status they move it from; RowStatus then tells why.
	RetryEffect(ctx context.Context, id string, now time.Time) (store.Effect, error)
	// CancelEffect moves a pending or dead effect to cancelled and keeps its locked_by
	// (as EffectCancel does), so that the completion of a worker holding it is recorded.
	CancelEffect(ctx context.Context, id string, now time.Time) (store.Effect, error)
	RowStatus(ctx context.Context, table, id string) (string, error)

	// ScheduleTimer locks the instance like Load, cancels its pending timer with t's key
	// and inserts t.
	ScheduleTimer(ctx context.Context, t store.Timer) error
	ClaimTimers(ctx context.Context, p store.ClaimParams, limit int) ([]store.Timer, error)
	NextTimerAt(ctx context.Context) (*time.Time, error)
	GetTimer(ctx context.Context, id string) (store.Timer, error)
	ListTimers(ctx context.Context, p store.ListTimersParams, after int64, limit int) ([]Listed[store.Timer], error)
	// CancelTimer moves a pending or dead timer to cancelled and frees its lease.
	CancelTimer(ctx context.Context, id string, now time.Time) (store.Timer, error)
	// RetryTimer locks the timer's instance like Load first; store.ErrWrongStatus when
	// another pending timer of the instance has taken the key meanwhile.
	RetryTimer(ctx context.Context, id string, now time.Time) (store.Timer, error)

	// Prune deletes at most p.Batch rows of each kind retention allows to forget, the
	// inputs oldest first from after p.From, and returns how many it deleted and the
	// position of the last input it deleted (p.From when none).
	Prune(ctx context.Context, p PruneParams) (n int64, to PrunePosition, err error)
	Stats(ctx context.Context) (store.Stats, error)
}

// EncodeSecrets is the stored form of an endpoint's secrets: a JSON array, expiries in
// whole microseconds, the precision every store keeps.
func EncodeSecrets(secrets []store.WebhookSecret) (string, error) {
	out := make([]store.WebhookSecret, len(secrets))
	for i, s := range secrets {
		out[i] = store.WebhookSecret{Secret: s.Secret}
		if s.ExpiresAt != nil {
			t := s.ExpiresAt.UTC().Truncate(time.Microsecond)
			out[i].ExpiresAt = &t
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// DecodeSecrets reads what EncodeSecrets stored.
func DecodeSecrets(text []byte) ([]store.WebhookSecret, error) {
	secrets := []store.WebhookSecret{}
	if err := json.Unmarshal(text, &secrets); err != nil {
		return nil, err
	}
	for i := range secrets {
		if exp := secrets[i].ExpiresAt; exp != nil {
			t := exp.UTC()
			secrets[i].ExpiresAt = &t
		}
	}
	return secrets, nil
}
