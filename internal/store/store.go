// Package store keeps ironflow's durable state: workflow definitions, instances with
// their cached snapshot, the event history, the input log (idempotency and audit), the
// effect outbox with its delivery attempts, timers and webhook endpoints.
//
// The Store interface uses standard-library types only and imports nothing else of this
// module. One implementation exists, store/sqlstore, which writes the protocol once
// over a driver per backend: store/sqlite (the embedded default) and store/postgres.
// Both must pass the conformance suite in store/storetest.
//
// A Store owns its transactions. Callers that need to decide inside a transaction pass
// a DecideFunc: the store locks the instance, loads it, calls the function and writes
// what it returns, all in one transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// Sentinel errors. Implementations translate driver errors into these at the edge so
// callers can branch with errors.Is.
var (
	// ErrNotFound: the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrVersionMismatch: ExecuteParams.ExpectedVersion did not match the instance.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrIdempotencyMismatch: an idempotency key was reused with a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrUniqueKeyConflict: another running instance of the type holds the unique key.
	ErrUniqueKeyConflict = errors.New("unique key conflict")
	// ErrInvalidCursor: a list cursor could not be decoded.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrLeaseLost: a completion came from a worker that no longer holds the claim, or
	// the claimed row is no longer pending (cancelled, replaced).
	ErrLeaseLost = errors.New("lease lost")
	// ErrWrongStatus: the row is not in a status that allows the operation (for
	// example retrying an effect that is not dead).
	ErrWrongStatus = errors.New("wrong status")
	// ErrCancelled: the claimed effect was cancelled while its worker held it (its
	// instance was terminated, or left the state the effect was scoped to). The attempt
	// was recorded; an input in its answer was not routed. The worker stops retrying it.
	ErrCancelled = errors.New("effect cancelled")
	// ErrUnavailable: the database could not be reached or the connection broke.
	ErrUnavailable = errors.New("store unavailable")
)

// Instance statuses.
const (
	StatusRunning    = "running"
	StatusCompleted  = "completed"  // entered a state with "terminal": true
	StatusFailed     = "failed"     // entered a state with "terminal": "failed"
	StatusTerminated = "terminated" // terminated from outside
)

// Ended reports whether an instance in status has ended (any status but running): its
// later inputs are already_completed and its unique key is free.
func Ended(status string) bool { return status != StatusRunning }

// Input outcomes.
const (
	OutcomeAccepted         = "accepted"
	OutcomeRejected         = "rejected"
	OutcomeAlreadyCompleted = "already_completed"
)

// Effect statuses.
const (
	EffectPending   = "pending"
	EffectDelivered = "delivered"
	EffectDead      = "dead"
	// EffectCancelled: never delivered (or never again): its instance was terminated,
	// it left the state the effect was scoped to, or an operator discarded it. Final.
	EffectCancelled = "cancelled"
)

// Timer statuses. A timer replaced by a newer one with the same key, or cancelled by a
// transition or an operator, ends as cancelled.
const (
	TimerPending   = "pending"
	TimerFired     = "fired"
	TimerCancelled = "cancelled"
	TimerDead      = "dead"
)

// Input sources.
const (
	SourceAPI    = "api"
	SourceEffect = "effect"
	SourceTimer  = "timer"
)

// Webhook endpoint statuses.
const (
	WebhookActive   = "active"
	WebhookDisabled = "disabled"
)

// Definition is one immutable version of a workflow type's definition.
type Definition struct {
	Type      string
	Version   int
	Body      json.RawMessage // the definition as the client sent it (compacted)
	Hash      string          // hex SHA-256 of Body; an identical PUT makes no new version
	CreatedAt time.Time
}

// Instance is one workflow instance with its cached snapshot: StateName, StateData and
// Version always equal the fold of its events.
type Instance struct {
	Type              string
	ID                string
	DefinitionVersion int
	StateName         string
	StateData         json.RawMessage
	Status            string // StatusRunning, StatusCompleted, StatusFailed or StatusTerminated
	Version           int64  // the seq of the last event
	UniqueKey         string // "" when the definition has no unique_key
	CreatedAt         time.Time
	UpdatedAt         time.Time
	CompletedAt       *time.Time
	// ParentType and ParentID name the instance whose send with child created this one
	// ("" for none), and Link is how it answers to that parent. Set at creation, never
	// changed.
	ParentType string
	ParentID   string
	Link       ChildLink
}

// ChildLink is how a child instance answers to its parent: the parent's input types
// sent when the child completes, and when it fails or is terminated ("" for none), and
// what the child does when the parent ends first (ParentEndTerminate or
// ParentEndAbandon).
type ChildLink struct {
	OnCompleted string
	OnFailed    string
	OnParentEnd string
}

// What a child does when its parent ends (ChildLink.OnParentEnd).
const (
	ParentEndTerminate = "terminate"
	ParentEndAbandon   = "abandon"
)

// Event is one entry of an instance's history. Seq is 1, 2, 3… per instance with no gaps.
type Event struct {
	WorkflowType string
	WorkflowID   string
	Seq          int64
	Type         string
	From         string
	To           string
	Data         json.RawMessage
	InputType    string
	InputID      string // the InputRecord that caused it
	RecordedAt   time.Time
}

// InputRecord is one input as it was decided: the idempotency and audit log.
type InputRecord struct {
	ID             string
	WorkflowType   string
	WorkflowID     string
	IdempotencyKey string // "" when the client sent none
	RequestHash    string // what an idempotent retry must match
	Type           string
	Data           json.RawMessage
	Source         string // SourceAPI, SourceEffect, SourceTimer
	Outcome        string // OutcomeAccepted, OutcomeRejected, OutcomeAlreadyCompleted
	Reason         string // rejection reason
	Version        int64  // the instance version after this input
	Response       json.RawMessage
	CreatedAt      time.Time
}

// Effect is one outbox row: a webhook delivery owed to the type's endpoint.
type Effect struct {
	ID            string
	WorkflowType  string
	WorkflowID    string
	Seq           int64 // the event that produced it
	Name          string
	Payload       json.RawMessage
	Status        string // EffectPending, EffectDelivered, EffectDead, EffectCancelled
	Attempts      int    // attempts made in the current budget
	NextAttemptAt time.Time
	LockedBy      string
	LockedUntil   *time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeliveredAt   *time.Time
	// ChainDepth is how many routed answers led to the input that emitted the effect:
	// 0 for an input from the API or a timer, the delivered effect's depth plus one for
	// an input routed from its webhook's answer.
	ChainDepth int
	// Key tells apart the effects one transition emits per item of a list ("" for a
	// single effect).
	Key string
	// MaxAttempts, InitialInterval, MaxInterval and Timeout are the effect's own
	// attempt budget, backoff bounds and attempt timeout; 0 means the server's setting.
	// Durations are kept in whole milliseconds.
	MaxAttempts     int
	InitialInterval time.Duration
	MaxInterval     time.Duration
	Timeout         time.Duration
	// StateScoped: the effect is cancelled, undelivered, when its instance leaves the
	// state it was emitted into (Write.CancelEffects CancelState).
	StateScoped bool
	// OnDead locates, in the definition the instance is pinned to, the effect
	// declaration whose on_dead input runs when the effect dies ("" when it has none).
	OnDead string
	// OnDeadOutcome is the outcome of that input once it ran ("" until then).
	OnDeadOutcome string
	// SendType and SendID, for a send effect, name the instance its Payload (an input
	// {"type", "data"}) is delivered to by the engine, with no webhook; SendType is ""
	// for a webhook effect. SendChild is the link an instance the input creates records
	// to this effect's instance as its parent (zero: none).
	SendType  string
	SendID    string
	SendChild ChildLink
	// Item, for an effect a for_each emitted, is the element it was emitted for, as
	// JSON (compacted when written), and ItemIndex its position in the list: what its
	// on_dead input sees as item and index. Item is nil when nothing was kept.
	Item      json.RawMessage
	ItemIndex int
}

// Attempt is one delivery attempt of an effect.
type Attempt struct {
	EffectID      string
	Number        int // 1, 2, 3… over the effect's whole life, across operator retries
	StartedAt     time.Time
	Duration      time.Duration
	StatusCode    int    // 0 when no response arrived
	Error         string // "" on success
	Response      string // the first 4 KiB of the response body
	RoutedOutcome string // outcome of the input routed from the response, "" if none
}

// Timer is an input scheduled for later on one instance.
type Timer struct {
	ID            string
	WorkflowType  string
	WorkflowID    string
	Key           string // unique among the instance's pending timers
	FireAt        time.Time
	InputType     string
	InputData     json.RawMessage
	Status        string // TimerPending, TimerFired, TimerCancelled, TimerDead
	Attempts      int
	NextAttemptAt time.Time // FireAt, or later after a failed attempt
	LockedBy      string
	LockedUntil   *time.Time
	LastError     string
	Outcome       string // outcome of the input it fired
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FiredAt       *time.Time
}

// WebhookSecret is one signing secret of an endpoint. ExpiresAt is set on a secret that
// was rotated out and still signs until then.
type WebhookSecret struct {
	Secret    string     `json:"secret"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ActiveAt reports whether the secret still signs at t: it has no expiry, or expires
// after t.
func (s WebhookSecret) ActiveAt(t time.Time) bool {
	return s.ExpiresAt == nil || s.ExpiresAt.After(t)
}

// Webhook is the endpoint every effect of a workflow type is delivered to.
type Webhook struct {
	WorkflowType string
	URL          string
	Secrets      []WebhookSecret // newest first
	Status       string          // WebhookActive or WebhookDisabled
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Page is one page of a list. Next is the opaque cursor of the following page, "" on the
// last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// Write is what a DecideFunc asks the store to commit together with the input record.
type Write struct {
	// Instance is the new instance row (created or updated); nil when the input changed
	// nothing (rejected, already completed). Its Version must equal the last event's seq.
	Instance *Instance
	// Events are appended in order; their seqs continue the instance's history.
	Events []Event
	// Effects are inserted as pending outbox rows.
	Effects []Effect
	// Timers are scheduled; a pending timer with the same key on the instance is
	// cancelled first (replaced).
	Timers []Timer
	// CancelTimerKeys cancels the instance's pending timers with these keys. Applied
	// before Timers, so a key both cancelled and scheduled ends scheduled.
	CancelTimerKeys []string
	// CancelEffects cancels the instance's pending effects (status EffectCancelled)
	// before Effects are inserted: every one with CancelAll, the state-scoped ones with
	// CancelState, those and the sends of children that end with it with CancelEnding.
	CancelEffects string
	// CancelAllTimers cancels every pending timer of the instance before Timers are
	// scheduled.
	CancelAllTimers bool
	// Input is always recorded (unless dry run).
	Input InputRecord
}

// Values of Write.CancelEffects.
const (
	CancelNone  = ""
	CancelAll   = "all"   // every pending effect of the instance
	CancelState = "state" // the pending effects of the instance that are StateScoped
	// CancelEnding: the StateScoped ones and the sends of children that are terminated
	// when their parent ends (SendChild.OnParentEnd ParentEndTerminate).
	CancelEnding = "ending"
)

// DecideFunc decides an input against the locked current instance (nil when it does not
// exist yet) and returns what to write. def is the definition the decision is made by,
// read in the same transaction: the version current is pinned to, or the latest version
// of the type when current is nil; nil when the type has no definition. An error aborts
// the transaction and is returned unchanged by the store. A store that decides outside
// its write lock (SQLite) calls it again, on the new state, when the instance changed
// before the write, so it must be pure.
type DecideFunc func(ctx context.Context, current *Instance, def *Definition) (*Write, error)

// ExecuteParams describes one input to decide and record.
type ExecuteParams struct {
	WorkflowType string
	WorkflowID   string
	// IdempotencyKey, if set, makes the store return the stored InputRecord of an earlier
	// input with the same key on the same instance instead of deciding again; when its
	// RequestHash differs the store returns ErrIdempotencyMismatch.
	IdempotencyKey string
	RequestHash    string
	// ExpectedVersion, if set, makes the store return ErrVersionMismatch unless the
	// instance is at exactly this version (0: it must not exist).
	ExpectedVersion *int64
	// DryRun decides and returns the record without committing anything.
	DryRun bool
	Decide DecideFunc
	// CommittedFunc, if set, is called once with the Write Decide returned after the
	// transaction that wrote it committed (never on a dry run, a replay or an error),
	// whichever path decided it: Execute, or the Route of a completion.
	CommittedFunc func(w *Write)
}

// ExecuteResult is the recorded input: new, or the earlier one when Replayed.
type ExecuteResult struct {
	Input    InputRecord
	Replayed bool
	// Write is what the DecideFunc returned (nil when Replayed).
	Write *Write
}

// ClaimParams describes a batch claim of due rows for one worker.
type ClaimParams struct {
	Worker string
	Limit  int
	Now    time.Time
	// LeaseExpiry is locked_until of the claimed rows; an effect with a Timeout of its
	// own is leased at least until Now plus LeaseTimeouts times that timeout, so its
	// lease covers its attempt.
	LeaseExpiry time.Time
	// DueBy, if later than Now, also claims rows that fall due by then (timers claimed
	// ahead of their time, ClaimTimers only). Leases are still judged at Now.
	DueBy time.Time
	// ExcludeTypes are workflow types whose rows are not claimed (the caller's share
	// for them is in use); ClaimEffects only.
	ExcludeTypes []string
}

// EffectClaim is what ClaimEffects leased: the effects, earliest due first, and the
// endpoint of each webhook effect's type as the claim found it, read in the claim's own
// statement (or transaction), so an effect goes to the endpoint its claim checked was
// active, with no read of its own.
type EffectClaim struct {
	Effects []Effect
	// Endpoints holds the endpoints by workflow type (never nil): one per type of a
	// claimed effect that is delivered by webhook (not a send, not a child's end).
	Endpoints map[string]Webhook
}

// LeaseTimeouts is how many of its own timeouts an effect's claim lasts at least.
const LeaseTimeouts = 3

// Due returns the time rows must be due by to be claimed: DueBy, or Now.
func (p ClaimParams) Due() time.Time {
	if p.DueBy.After(p.Now) {
		return p.DueBy
	}
	return p.Now
}

// CompleteEffectParams records one delivery attempt of a claimed effect and its result.
type CompleteEffectParams struct {
	EffectID string
	Worker   string // must still hold the claim, else ErrLeaseLost
	Attempt  Attempt
	// Status is the effect's next status: EffectDelivered, EffectPending (retry at
	// NextAttemptAt) or EffectDead.
	Status        string
	NextAttemptAt time.Time
	Now           time.Time
	// Route, if set, executes an input in the same transaction when Status is
	// EffectDelivered (the input routed from the response) or EffectDead (the effect's
	// on_dead input, keyed so that it runs once per effect); its outcome is stored on
	// the attempt, and on a dead effect as its OnDeadOutcome. An error from
	// Route.Decide aborts everything and is returned.
	Route *ExecuteParams
}

// CompleteTimerParams records the firing of a claimed timer.
type CompleteTimerParams struct {
	TimerID string
	Worker  string // must still hold the claim, else ErrLeaseLost
	// Status is TimerFired, TimerPending (retry at NextAttemptAt) or TimerDead.
	Status        string
	NextAttemptAt time.Time
	Error         string
	Now           time.Time
	// Route, if set and Status is TimerFired, executes the timer's input in the same
	// transaction; its outcome is stored on the timer.
	Route *ExecuteParams
}

// Routed returns the input p executes: its Route when the effect was delivered or
// died.
func (p CompleteEffectParams) Routed() *ExecuteParams {
	if p.Status != EffectDelivered && p.Status != EffectDead {
		return nil
	}
	return p.Route
}

// Routed returns the input p executes: its Route when the timer fired.
func (p CompleteTimerParams) Routed() *ExecuteParams {
	if p.Status != TimerFired {
		return nil
	}
	return p.Route
}

// SplitRouted splits completions for CompleteEffects and CompleteTimers: batch holds
// those that execute a routed input, of distinct instances, first come first served,
// which a store may record in one transaction; rest holds the others (no input, and
// later completions of an instance already in batch), to record after batch.
func SplitRouted[P interface{ Routed() *ExecuteParams }](ps []P) (batch, rest []int) {
	seen := make(map[[2]string]bool, len(ps))
	for i, p := range ps {
		r := p.Routed()
		if r == nil {
			rest = append(rest, i)
			continue
		}
		k := [2]string{r.WorkflowType, r.WorkflowID}
		if seen[k] {
			rest = append(rest, i)
			continue
		}
		seen[k] = true
		batch = append(batch, i)
	}
	return batch, rest
}

// CompleteRouted records ps as single would, as if one after another in some order,
// except that those that execute a routed input, of distinct instances (SplitRouted),
// go to batch together when there are at least two: batch returns each one's error
// (for a completion it refused, having written nothing of it), or an error of its own
// when it recorded nothing at all. Then each of them goes to single instead, as do the
// rest of ps; the singles run concurrently. The stores' CompleteEffects and
// CompleteTimers are this with their batch and single paths.
func CompleteRouted[P interface{ Routed() *ExecuteParams }](ps []P, batch func([]P) ([]error, error), single func(P) error) []error {
	errs := make([]error, len(ps))
	together, rest := SplitRouted(ps)
	if len(together) > 1 {
		sub := make([]P, len(together))
		for k, i := range together {
			sub[k] = ps[i]
		}
		if results, err := batch(sub); err == nil {
			for k, i := range together {
				errs[i] = results[k]
			}
			together = nil
		}
	}
	var wg sync.WaitGroup
	for _, i := range append(rest, together...) {
		wg.Go(func() { errs[i] = single(ps[i]) })
	}
	wg.Wait()
	return errs
}

// ListInstancesParams filters and pages instances, oldest first.
type ListInstancesParams struct {
	Type   string
	State  string
	Status string
	// IDPrefix selects the instances whose id starts with it, byte for byte (no
	// wildcards: % and _ are themselves).
	IDPrefix string
	// CreatedAfter and CreatedBefore select created_at >= CreatedAfter and
	// created_at < CreatedBefore; a zero time does not filter.
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// ParentType and ParentID, when set, select the children of that instance; with
	// OnParentEnd, only those whose link says so.
	ParentType  string
	ParentID    string
	OnParentEnd string
	Cursor      string
	Limit       int
}

// CountInstancesParams selects the instances CountInstances counts, as
// ListInstancesParams does.
type CountInstancesParams struct {
	Type          string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// Limit bounds each count: a status with more instances is counted as Limit, so
	// that a count costs at most Limit index entries. Required (> 0).
	Limit int
}

// InstanceCounts are the numbers of instances in each status.
type InstanceCounts struct {
	Running    int64
	Completed  int64
	Failed     int64
	Terminated int64
}

// ListEffectsParams filters and pages effects, oldest first.
type ListEffectsParams struct {
	Status       string
	WorkflowType string
	WorkflowID   string
	Cursor       string
	Limit        int
}

// ListTimersParams filters and pages timers, oldest first.
type ListTimersParams struct {
	Status       string
	WorkflowType string
	WorkflowID   string
	Cursor       string
	Limit        int
}

// Stats are the backlog figures exported as metrics.
type Stats struct {
	PendingEffects      int64
	OldestPendingEffect *time.Time
	DeadEffects         int64
	CancelledEffects    int64
	PendingTimers       int64
	DeadTimers          int64
}

// Topic names a kind of work a worker can be woken for.
type Topic string

// Topics.
const (
	TopicEffects Topic = "effects"
	TopicTimers  Topic = "timers"
)

// Store is ironflow's persistence. Every method is safe for concurrent use. Errors are
// the sentinels above (wrapped) or ErrUnavailable for connection failures.
type Store interface {
	// PutDefinition stores body as the next version of typ unless it equals the latest
	// version (same Hash); created reports whether a new version was made.
	PutDefinition(ctx context.Context, typ string, body json.RawMessage, hash string, now time.Time) (def Definition, created bool, err error)
	// GetDefinition returns version of typ, or the latest when version is 0.
	// ErrNotFound when absent.
	GetDefinition(ctx context.Context, typ string, version int) (Definition, error)
	// ListDefinitions returns the latest version of up to limit types named after
	// afterType ("" for the first), by type name.
	ListDefinitions(ctx context.Context, afterType string, limit int) ([]Definition, error)
	// ListDefinitionVersions returns up to limit versions of typ after afterVersion,
	// oldest first.
	ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]Definition, error)

	// Execute locks the instance (creating the lock when it does not exist), checks
	// idempotency and the expected version, calls p.Decide and commits its Write with the
	// input record in one transaction. Different instances never wait on each other.
	Execute(ctx context.Context, p ExecuteParams) (ExecuteResult, error)

	// GetInstance returns one instance; ErrNotFound when absent.
	GetInstance(ctx context.Context, typ, id string) (Instance, error)
	// ListInstances pages instances matching the filters.
	ListInstances(ctx context.Context, p ListInstancesParams) (Page[Instance], error)
	// CountInstances counts the instances matching the filters in each status, each
	// count at most p.Limit.
	CountInstances(ctx context.Context, p CountInstancesParams) (InstanceCounts, error)
	// ListEvents returns up to limit events of an instance with seq > afterSeq, in order.
	ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]Event, error)
	// ListInputs pages the input records of an instance, oldest first.
	ListInputs(ctx context.Context, typ, id, cursor string, limit int) (Page[InputRecord], error)
	// Feed reads every event of every instance in commit order (feed.go).
	Feed

	// PutWebhook creates or replaces the endpoint of a type and makes it active.
	PutWebhook(ctx context.Context, w Webhook) (Webhook, error)
	// GetWebhook returns the endpoint of a type; ErrNotFound when absent.
	GetWebhook(ctx context.Context, typ string) (Webhook, error)
	// DeleteWebhook removes the endpoint; ErrNotFound when absent.
	DeleteWebhook(ctx context.Context, typ string) error
	// SetWebhookStatus disables or re-enables an endpoint; ErrNotFound when absent.
	SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) error
	// RotateWebhookSecret makes secret the signing secret; the previous ones keep
	// signing until oldExpiresAt. ErrNotFound when absent.
	RotateWebhookSecret(ctx context.Context, typ, secret string, oldExpiresAt, now time.Time) (Webhook, error)

	// ClaimEffects leases up to p.Limit due pending effects whose lease is free or
	// expired and that can be delivered: a send effect always, a webhook effect when its
	// type has an active endpoint, which the claim returns with them.
	ClaimEffects(ctx context.Context, p ClaimParams) (EffectClaim, error)
	// CompleteEffect records an attempt of a claimed effect; ErrLeaseLost when p.Worker
	// no longer holds it.
	CompleteEffect(ctx context.Context, p CompleteEffectParams) error
	// CompleteEffects records several attempts at once: errs[i] is what
	// CompleteEffect(ps[i]) would have returned, as if they were recorded one after
	// another in some order. A store may record the deliveries of distinct instances,
	// with the inputs routed from them, in one transaction.
	CompleteEffects(ctx context.Context, ps []CompleteEffectParams) (errs []error)
	// GetEffect returns an effect with its attempts; ErrNotFound when absent.
	GetEffect(ctx context.Context, id string) (Effect, []Attempt, error)
	// ListEffects pages effects matching the filters.
	ListEffects(ctx context.Context, p ListEffectsParams) (Page[Effect], error)
	// RetryEffect puts a dead effect back to pending with a fresh budget;
	// ErrWrongStatus when it is not dead.
	RetryEffect(ctx context.Context, id string, now time.Time) (Effect, error)
	// CancelEffect discards a pending or dead effect: status EffectCancelled, never
	// delivered (a worker holding it still records its attempt, and routes nothing);
	// ErrWrongStatus when it is delivered or cancelled already.
	CancelEffect(ctx context.Context, id string, now time.Time) (Effect, error)

	// ScheduleTimer stores a timer outside any decision (a delayed input), replacing a
	// pending timer with the same key on the instance.
	ScheduleTimer(ctx context.Context, t Timer) (Timer, error)
	// ClaimTimers leases up to p.Limit pending timers due at p.Now.
	ClaimTimers(ctx context.Context, p ClaimParams) ([]Timer, error)
	// CompleteTimer records the firing of a claimed timer; ErrLeaseLost when p.Worker no
	// longer holds it or it is no longer pending.
	CompleteTimer(ctx context.Context, p CompleteTimerParams) error
	// CompleteTimers records several completions at once: errs[i] is what
	// CompleteTimer(ps[i]) would have returned, as if they were recorded one after
	// another in some order. A store may record firings of distinct instances in one
	// transaction, so a burst of due timers costs one commit rather than one each.
	CompleteTimers(ctx context.Context, ps []CompleteTimerParams) (errs []error)
	// NextTimerAt returns the earliest time a pending timer can be claimed: the later of
	// its NextAttemptAt and the end of its lease. ok is false when there is none.
	NextTimerAt(ctx context.Context) (at time.Time, ok bool, err error)
	// GetTimer returns one timer; ErrNotFound when absent.
	GetTimer(ctx context.Context, id string) (Timer, error)
	// ListTimers pages timers matching the filters.
	ListTimers(ctx context.Context, p ListTimersParams) (Page[Timer], error)
	// CancelTimer cancels a pending timer or discards a dead one; ErrWrongStatus when
	// it has fired or is cancelled already.
	CancelTimer(ctx context.Context, id string, now time.Time) (Timer, error)
	// RetryTimer puts a dead timer back to pending with a fresh budget;
	// ErrWrongStatus when it is not dead.
	RetryTimer(ctx context.Context, id string, now time.Time) (Timer, error)

	// Listen returns a channel that receives (coalesced) after a commit, in this or any
	// process sharing the database, that adds or re-enables work of topic (TopicEvents:
	// that appends events). It is closed when ctx ends.
	Listen(ctx context.Context, topic Topic) (<-chan struct{}, error)

	// Prune deletes, in one transaction and at most batch rows of each kind, what
	// retention allows to forget once it is older than before: delivered effects (with
	// their attempts), fired and cancelled timers, and the input records of instances
	// that completed before then (or that never came to exist: a rejected first input).
	// Instances, events, pending and dead rows are never pruned. n is the number of
	// effects, timers and inputs deleted; callers repeat until it is 0.
	Prune(ctx context.Context, before time.Time, batch int) (n int64, err error)

	// Stats returns backlog figures for metrics.
	Stats(ctx context.Context, now time.Time) (Stats, error)
	// Ping reports whether the database answers and its migrations are applied.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}
