package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

// Execute locks the instance, checks idempotency and the expected version, calls
// p.Decide and commits its Write with the input record in one transaction.
//
// It returns the earlier record with Replayed set when p.IdempotencyKey was used before
// with the same RequestHash, store.ErrIdempotencyMismatch when with another,
// store.ErrVersionMismatch when p.ExpectedVersion does not match,
// store.ErrUniqueKeyConflict when a new instance's unique key is held by another
// running instance, and an error of p.Decide unchanged. With p.DryRun nothing is
// committed.
func (s *Store) Execute(ctx context.Context, p store.ExecuteParams) (store.ExecuteResult, error) {
	if p.Decide == nil {
		return store.ExecuteResult{}, errors.New("postgres: execute: nil Decide")
	}
	var res store.ExecuteResult
	run := func(tx *batchTx) error {
		li, err := lockInstance(ctx, tx, p.WorkflowType, p.WorkflowID, p.IdempotencyKey)
		if err != nil {
			return err
		}
		res, err = executeLocked(ctx, tx, p, li)
		return err
	}
	var err error
	if p.DryRun {
		err = s.rollbackOnly(ctx, run)
	} else {
		err = s.withTx(ctx, run)
	}
	if err != nil {
		return store.ExecuteResult{}, mapErr("execute", err)
	}
	return res, nil
}

// lockedInstance is an instance locked by the current transaction.
type lockedInstance struct {
	typ, id string
	// current is the instance; nil when it does not exist yet (the decision's write then
	// inserts it).
	current *store.Instance
	// earlier is the input recorded before with the idempotency key, if any.
	earlier *store.InputRecord
	// def is the definition the decision is made by (the pinned version, or the latest
	// for a new instance), loaded in the lock's round trip; nil when the type has none.
	def *store.Definition
}

// lockInstance locks instance (typ, id) until the transaction ends, whether or not it
// exists yet: a transaction-scoped advisory lock on a hash of the instance key, which
// every writer of an instance takes first. Different instances only share a lock when
// their 64-bit hashes collide. An instance that does not exist yet therefore needs no
// placeholder row: its first decision inserts it once, instead of inserting a
// placeholder and updating it (two row versions and two sets of index entries).
// When idemKey is set it also loads the input recorded earlier with that key, after the
// lock, so a concurrent input with the same key has committed. Everything is one round
// trip, which also carries BEGIN when it is the transaction's first.
func lockInstance(ctx context.Context, tx *batchTx, typ, id, idemKey string) (lockedInstance, error) {
	b := &pgx.Batch{}
	li := queueLockInstance(b, typ, id, idemKey)
	if err := tx.Send(ctx, b); err != nil {
		return lockedInstance{}, err
	}
	return *li, nil
}

// queueLockInstance queues on b what lockInstance sends; the lockedInstance it returns
// is filled in once b has been sent. Batches that lock several instances (CompleteTimers)
// queue one after another in a single round trip.
func queueLockInstance(b *pgx.Batch, typ, id, idemKey string) *lockedInstance {
	li := &lockedInstance{typ: typ, id: id}
	// A type name never contains '/', so type/id is unambiguous.
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))`, typ, id)
	// After the lock (a new statement, so a new snapshot in READ COMMITTED): what the
	// transaction we may have waited for committed is visible.
	b.Queue(`SELECT `+instanceColumns+` FROM instances WHERE type = $1 AND id = $2 FOR UPDATE`, typ, id).
		QueryRow(func(row pgx.Row) error {
			inst, err := scanInstance(row, nil)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err == nil {
				li.current = &inst
			}
			return err
		})
	// The version the instance is pinned to, or the latest for one that does not exist.
	b.Queue(`SELECT `+definitionColumns+` FROM definitions
WHERE type = $1 AND version = coalesce(
    (SELECT definition_version FROM instances WHERE type = $1 AND id = $2),
    (SELECT max(version) FROM definitions WHERE type = $1))`, typ, id).
		QueryRow(func(row pgx.Row) error {
			d, err := scanDefinition(row)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err == nil {
				li.def = &d
			}
			return err
		})
	if idemKey != "" {
		b.Queue(`SELECT `+inputColumns+` FROM inputs
WHERE workflow_type = $1 AND workflow_id = $2 AND idempotency_key = $3`, typ, id, idemKey).
			QueryRow(func(row pgx.Row) error {
				in, err := scanInput(row, nil)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				if err == nil {
					li.earlier = &in
				}
				return err
			})
	}
	return li
}

// notifications are the NOTIFYs a transaction queued.
type notifications struct{ effects, timers bool }

// executeLocked decides one input against the instance li locked and writes the result,
// in the caller's transaction: the helper shared by Execute and the routes of
// CompleteEffect and CompleteTimer. The writes are held in tx, to be sent with its
// COMMIT (or with whatever the caller sends next). With p.DryRun it decides and writes
// nothing.
func executeLocked(ctx context.Context, tx *batchTx, p store.ExecuteParams, li lockedInstance) (store.ExecuteResult, error) {
	res, err := decideLocked(ctx, p, li)
	if err != nil || res.Write == nil || p.DryRun {
		return res, err
	}
	if err := writeDecision(tx, li, res.Write); err != nil {
		return store.ExecuteResult{}, err
	}
	return res, nil
}

// decideLocked is executeLocked without the writes: the replay of an earlier input
// with the idempotency key (no Write), or the completed Write of p.Decide.
func decideLocked(ctx context.Context, p store.ExecuteParams, li lockedInstance) (store.ExecuteResult, error) {
	if li.earlier != nil {
		if li.earlier.RequestHash != p.RequestHash {
			return store.ExecuteResult{}, store.ErrIdempotencyMismatch
		}
		return store.ExecuteResult{Input: *li.earlier, Replayed: true}, nil
	}
	if p.ExpectedVersion != nil {
		var have int64
		if li.current != nil {
			have = li.current.Version
		}
		if have != *p.ExpectedVersion {
			return store.ExecuteResult{}, fmt.Errorf("%w: instance at version %d, expected %d",
				store.ErrVersionMismatch, have, *p.ExpectedVersion)
		}
	}
	var current *store.Instance
	if li.current != nil {
		c := *li.current
		current = &c
	}
	w, err := p.Decide(ctx, current, li.def)
	if err != nil {
		return store.ExecuteResult{}, decideError{err}
	}
	if w == nil {
		return store.ExecuteResult{}, errors.New("decide returned no write")
	}
	wc, err := completeWrite(p, li.current, *w)
	if err != nil {
		return store.ExecuteResult{}, err
	}
	return store.ExecuteResult{Input: wc.Input, Write: &wc}, nil
}

// completeWrite checks a DecideFunc's Write and returns a copy with what the caller may
// leave out filled in: ids, the instance's type and id, statuses, times, event seqs and
// the input's version.
func completeWrite(p store.ExecuteParams, current *store.Instance, w store.Write) (store.Write, error) {
	in := w.Input
	if in.ID == "" {
		in.ID = newID()
	}
	in.WorkflowType, in.WorkflowID = p.WorkflowType, p.WorkflowID
	if p.IdempotencyKey != "" {
		in.IdempotencyKey = p.IdempotencyKey
	}
	if p.RequestHash != "" {
		in.RequestHash = p.RequestHash
	}
	if in.Source == "" {
		in.Source = store.SourceAPI
	}
	if in.Outcome == "" {
		return store.Write{}, errors.New("write: input has no outcome")
	}
	in.CreatedAt = nowOr(in.CreatedAt)
	now := in.CreatedAt

	var version int64
	if current != nil {
		version = current.Version
	}
	if len(w.Events) > 0 && w.Instance == nil {
		return store.Write{}, errors.New("write: events without an instance")
	}
	events := make([]store.Event, len(w.Events))
	for i, e := range w.Events {
		want := version + int64(i) + 1
		if e.Seq == 0 {
			e.Seq = want
		}
		if e.Seq != want {
			return store.Write{}, fmt.Errorf("write: event seq %d does not continue version %d", e.Seq, version)
		}
		e.WorkflowType, e.WorkflowID = p.WorkflowType, p.WorkflowID
		if e.InputID == "" {
			e.InputID = in.ID
		}
		if e.InputType == "" {
			e.InputType = in.Type
		}
		e.RecordedAt = nowOr(nowOrZero(e.RecordedAt, now))
		events[i] = e
	}

	var inst *store.Instance
	if w.Instance != nil {
		ic := *w.Instance
		ic.Type, ic.ID = p.WorkflowType, p.WorkflowID
		if ic.Status == "" {
			ic.Status = store.StatusRunning
		}
		if len(events) > 0 {
			last := events[len(events)-1].Seq
			if ic.Version == 0 {
				ic.Version = last
			}
			if ic.Version != last {
				return store.Write{}, fmt.Errorf("write: instance version %d is not the last event seq %d", ic.Version, last)
			}
		} else if ic.Version != version {
			return store.Write{}, fmt.Errorf("write: instance version %d changed without events (was %d)", ic.Version, version)
		}
		if ic.CreatedAt.IsZero() && current != nil {
			ic.CreatedAt = current.CreatedAt
		}
		ic.CreatedAt = nowOr(nowOrZero(ic.CreatedAt, now))
		ic.UpdatedAt = nowOr(nowOrZero(ic.UpdatedAt, now))
		ic.CompletedAt = utcPtr(ic.CompletedAt)
		if len(ic.StateData) == 0 {
			ic.StateData = []byte("{}")
		}
		inst = &ic
		version = ic.Version
	}
	if in.Version == 0 {
		in.Version = version
	}

	effects := make([]store.Effect, len(w.Effects))
	for i, e := range w.Effects {
		if e.ID == "" {
			e.ID = newID()
		}
		e.WorkflowType, e.WorkflowID = p.WorkflowType, p.WorkflowID
		e.Status = store.EffectPending
		e.Attempts = 0
		e.LockedBy, e.LockedUntil = "", nil
		e.CreatedAt = nowOr(nowOrZero(e.CreatedAt, now))
		e.UpdatedAt = nowOr(nowOrZero(e.UpdatedAt, now))
		e.NextAttemptAt = nowOr(nowOrZero(e.NextAttemptAt, e.CreatedAt))
		e.DeliveredAt = nil
		effects[i] = e
	}

	timers := make([]store.Timer, len(w.Timers))
	for i, t := range w.Timers {
		if t.ID == "" {
			t.ID = newID()
		}
		t.WorkflowType, t.WorkflowID = p.WorkflowType, p.WorkflowID
		t.Status = store.TimerPending
		t.Attempts = 0
		t.LockedBy, t.LockedUntil = "", nil
		t.FireAt = t.FireAt.UTC()
		t.NextAttemptAt = nowOr(nowOrZero(t.NextAttemptAt, t.FireAt))
		t.CreatedAt = nowOr(nowOrZero(t.CreatedAt, now))
		t.UpdatedAt = nowOr(nowOrZero(t.UpdatedAt, now))
		t.FiredAt = nil
		timers[i] = t
	}

	return store.Write{
		Instance:        inst,
		Events:          events,
		Effects:         effects,
		Timers:          timers,
		CancelTimerKeys: append([]string(nil), w.CancelTimerKeys...),
		Input:           in,
	}, nil
}

// nowOrZero returns t, or fallback when t is zero.
func nowOrZero(t, fallback time.Time) time.Time {
	if t.IsZero() {
		return fallback
	}
	return t
}

// writeDecision holds in tx the statements that write a completed Write: the instance
// row (inserted when it is new), events, effects, timer cancellations and
// schedules and the input record. They are sent with the transaction's next round trip,
// normally its COMMIT. Its NOTIFYs are sent after the commit (notify.go).
func writeDecision(tx *batchTx, li lockedInstance, w *store.Write) error {
	b := &pgx.Batch{}
	if w.Instance != nil {
		args, err := instanceRow(w.Instance)
		if err != nil {
			return err
		}
		if li.current == nil {
			b.Queue(instanceInsert.one, args...)
		} else {
			b.Queue(`UPDATE instances SET definition_version = $3, state_name = $4, state_data = $5,
    status = $6, version = $7, unique_key = $8, created_at = $9, updated_at = $10, completed_at = $11
WHERE type = $1 AND id = $2`, args...)
		}
	}
	for _, e := range w.Events {
		args, err := eventRow(e)
		if err != nil {
			return err
		}
		b.Queue(eventInsert.one, args...)
	}
	if err := queueSideRows(b, &tx.n, li, w); err != nil {
		return err
	}
	args, err := inputRow(w.Input)
	if err != nil {
		return err
	}
	b.Queue(inputInsert.one, args...)
	tx.Hold(b)
	return nil
}

// queueSideRows queues on b the rows of w besides its instance, events and input
// record: effects, timer cancellations and new timers, and notes in n what they notify.
func queueSideRows(b *pgx.Batch, n *notifications, li lockedInstance, w *store.Write) error {
	for _, e := range w.Effects {
		if err := queueInsertEffect(b, e); err != nil {
			return err
		}
	}
	// Cancellations come before schedules, so a key both cancelled and scheduled ends
	// scheduled; scheduling a key replaces the pending timer that has it.
	cancel := append([]string(nil), w.CancelTimerKeys...)
	lastOfKey := make(map[string]int, len(w.Timers))
	for i, t := range w.Timers {
		cancel = append(cancel, t.Key)
		lastOfKey[t.Key] = i
	}
	if len(cancel) > 0 {
		b.Queue(`UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = $4
WHERE workflow_type = $1 AND workflow_id = $2 AND key = ANY($3) AND status = 'pending'`,
			li.typ, li.id, cancel, w.Input.CreatedAt)
	}
	for i := range w.Timers {
		t := &w.Timers[i]
		if lastOfKey[t.Key] != i {
			// A later timer of this write has the same key and replaces this one.
			t.Status = store.TimerCancelled
		}
		if err := queueInsertTimer(b, *t); err != nil {
			return err
		}
	}
	n.effects = n.effects || len(w.Effects) > 0
	n.timers = n.timers || len(w.Timers) > 0
	return nil
}
