package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// The write protocol: Execute, CompleteEffect(s) and CompleteTimer(s) are all one loop
// (record) over a batch of items, each of which may complete a claimed row and may
// decide an input. Execute is a batch of one.

// maxOptimistic is how many times a transaction whose snapshot went stale is started
// again before the next attempt asks the backend to hold its write lock from Load to
// commit (Driver.Begin's serial), so a hot instance cannot starve a caller.
const maxOptimistic = 3

// item is one entry of a protocol batch.
type item struct {
	route *store.ExecuteParams // the input to decide; nil for none
	// claim, when set, is the claimed row the item completes: table, id and worker.
	table, id, worker string
	// complete adds the completion's rows given the routed input's outcome.
	complete func(rows *Rows, outcome string)
	err      error // the item is invalid
}

// result is what record made of one item.
type result struct {
	res store.ExecuteResult
	err error
}

// record runs items in one protocol transaction: Load, then per item the claim check and
// the decision, then one Write of every prepared row. The routes must be of distinct
// instances. lookupKeys looks up the routes' idempotency keys (a batch skips it:
// decision 0009). Each result carries its item's error (the item wrote nothing); the
// returned error means nothing was written.
func (s *Store) record(ctx context.Context, items []item, lookupKeys, dryRun bool) ([]result, error) {
	req := LoadRequest{IdempotencyKeys: map[Key]string{}}
	for _, it := range items {
		if r := it.route; r != nil {
			k := Key{r.WorkflowType, r.WorkflowID}
			req.Instances = append(req.Instances, k)
			if lookupKeys && r.IdempotencyKey != "" {
				req.IdempotencyKeys[k] = r.IdempotencyKey
			}
		}
		if it.table != "" {
			req.Table = it.table
			req.Claimed = append(req.Claimed, it.id)
		}
	}
	slices.SortFunc(req.Instances, func(a, b Key) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) })
	for attempt := 0; ; attempt++ {
		results := make([]result, len(items))
		// Most items write one input, an event or two and an effect: room for them
		// spares a batch the growing copies.
		rows := Rows{Inputs: make([]store.InputRecord, 0, len(items)), Events: make([]store.Event, 0, len(items)),
			Effects: make([]store.Effect, 0, len(items))}
		err := s.d.Begin(ctx, attempt >= maxOptimistic, func(tx Tx) error {
			snap, err := tx.Load(ctx, req)
			if err != nil {
				return err
			}
			for k, it := range items {
				results[k] = decideItem(ctx, snap, it, &rows)
			}
			if len(items) == 1 && results[0].err != nil && !errors.Is(results[0].err, errCancelled) {
				return results[0].err // nothing to write: end the transaction
			}
			if dryRun || rows.empty() {
				return nil
			}
			return tx.Write(ctx, &rows)
		})
		if errors.Is(err, ErrStale) {
			continue
		}
		if len(items) == 1 && err != nil && errors.Is(err, results[0].err) {
			return results, nil
		}
		if err != nil {
			return nil, err
		}
		if !dryRun {
			s.notify(rowTopics(&rows))
			for k, it := range items {
				if r := results[k]; it.route != nil && it.route.CommittedFunc != nil && r.err == nil && r.res.Write != nil {
					it.route.CommittedFunc(r.res.Write)
				}
			}
		}
		return results, nil
	}
}

// decideItem checks the claim of it and decides its route against snap, adding what they
// write to rows.
func decideItem(ctx context.Context, snap *Snapshot, it item, rows *Rows) result {
	if it.table != "" {
		if err := checkClaim(snap, it); err != nil {
			return result{err: err}
		}
	}
	if it.table == TableEffects && snap.Holders[it.id].Status == store.EffectCancelled {
		// Cancelled while this worker held it: record the attempt, route nothing.
		if it.complete != nil {
			it.complete(rows, outcomeCancelled)
		}
		return result{err: errCancelled}
	}
	var r result
	if it.route != nil {
		r.res, r.err = decide(ctx, *it.route, snap)
		if r.err != nil {
			return r
		}
		if w := r.res.Write; w != nil {
			rows.add(w, snap.Instances[Key{w.Input.WorkflowType, w.Input.WorkflowID}] != nil)
		}
	}
	if it.complete != nil {
		it.complete(rows, r.res.Input.Outcome)
	}
	return r
}

// outcomeCancelled is the RoutedOutcome of an attempt whose effect was cancelled while
// it was in flight: its answer was recorded and not routed.
const outcomeCancelled = "not_routed_cancelled"

// errCancelled is the result of a completion of a cancelled effect: its attempt is
// written all the same (record commits it and then reports store.ErrCancelled).
var errCancelled = fmt.Errorf("the effect was cancelled while in flight; attempt recorded, answer not routed: %w", store.ErrCancelled)

// checkClaim returns store.ErrNotFound when the claimed row is gone and
// store.ErrLeaseLost when it is no longer the item's worker's pending claim (an empty
// worker never holds one). An effect cancelled while the worker held it passes (its
// attempt is recorded and nothing routed).
func checkClaim(snap *Snapshot, it item) error {
	h, ok := snap.Holders[it.id]
	if !ok {
		return fmt.Errorf("%s %s: %w", it.table, it.id, store.ErrNotFound)
	}
	if it.table == TableEffects && h.Status == store.EffectCancelled && h.LockedBy == it.worker && it.worker != "" {
		return nil
	}
	if h.Status != store.EffectPending || h.LockedBy != it.worker || it.worker == "" { // pending: one word for both
		return fmt.Errorf("%s %s held by %q in status %s: %w", it.table, it.id, h.LockedBy, h.Status, store.ErrLeaseLost)
	}
	return nil
}

// decide replays the input recorded earlier with p's idempotency key, or checks the
// expected version, calls p.Decide and prepares what it returns.
func decide(ctx context.Context, p store.ExecuteParams, snap *Snapshot) (store.ExecuteResult, error) {
	k := Key{p.WorkflowType, p.WorkflowID}
	if earlier := snap.Earlier[k]; earlier != nil {
		if earlier.RequestHash != p.RequestHash {
			return store.ExecuteResult{}, fmt.Errorf("key %q: %w", p.IdempotencyKey, store.ErrIdempotencyMismatch)
		}
		return store.ExecuteResult{Input: *earlier, Replayed: true}, nil
	}
	current := snap.Instances[k]
	if p.ExpectedVersion != nil {
		var have int64
		if current != nil {
			have = current.Version
		}
		if have != *p.ExpectedVersion {
			return store.ExecuteResult{}, fmt.Errorf("instance at version %d, expected %d: %w",
				have, *p.ExpectedVersion, store.ErrVersionMismatch)
		}
	}
	var cur *store.Instance
	if current != nil {
		c := *current // the decision may not change the snapshot
		cur = &c
	}
	w, err := p.Decide(ctx, cur, snap.Definition(p.WorkflowType, current))
	if err != nil {
		return store.ExecuteResult{}, decideError{err}
	}
	if w == nil {
		return store.ExecuteResult{}, errors.New("decide returned no write")
	}
	prepared, err := prepareWrite(p, current, *w)
	if err != nil {
		return store.ExecuteResult{}, err
	}
	return store.ExecuteResult{Input: prepared.Input, Write: &prepared}, nil
}

// add appends the rows of a prepared Write; existed tells whether its instance did.
func (r *Rows) add(w *store.Write, existed bool) {
	if w.Instance != nil {
		if existed {
			r.Updated = append(r.Updated, w.Instance)
		} else {
			r.Created = append(r.Created, w.Instance)
		}
	}
	r.Events = append(r.Events, w.Events...)
	r.Inputs = append(r.Inputs, w.Input)
	if w.CancelEffects != store.CancelNone {
		r.EffectCancels = append(r.EffectCancels, EffectCancel{Type: w.Input.WorkflowType, ID: w.Input.WorkflowID,
			StateScoped: w.CancelEffects != store.CancelAll, ChildSends: w.CancelEffects == store.CancelEnding,
			At: w.Input.CreatedAt})
	}
	r.Effects = append(r.Effects, w.Effects...)
	cancel := append([]string(nil), w.CancelTimerKeys...)
	for _, t := range w.Timers {
		if !slices.Contains(cancel, t.Key) {
			cancel = append(cancel, t.Key)
		}
	}
	if len(cancel) > 0 || w.CancelAllTimers {
		r.Cancels = append(r.Cancels, TimerCancel{Type: w.Input.WorkflowType, ID: w.Input.WorkflowID, Keys: cancel,
			All: w.CancelAllTimers, At: w.Input.CreatedAt})
	}
	r.Timers = append(r.Timers, w.Timers...)
}

func rowTopics(r *Rows) Topics {
	t := Topics{Effects: len(r.Effects) > 0, Timers: len(r.Timers) > 0, Events: len(r.Events) > 0}
	for _, c := range r.TimerCompletions {
		// Rescheduled: sleeping workers must recompute their next wake-up.
		t.Timers = t.Timers || c.Status == store.TimerPending
	}
	return t
}

// Execute decides and records one input in one transaction: the replay of an earlier
// input with p.IdempotencyKey, the expected-version check, p.Decide against the current
// instance and the definition it is pinned to, then its Write with the input record.
//
// It returns the earlier record with Replayed set when p.IdempotencyKey was used before
// with the same RequestHash, store.ErrIdempotencyMismatch when with another,
// store.ErrVersionMismatch, store.ErrUniqueKeyConflict, an error of p.Decide unchanged,
// or store.ErrUnavailable. With p.DryRun nothing is written. p.Decide may run more than
// once when a backend that decides outside its write lock lost a race.
//
// Where the driver batches inputs (Driver.BatchInputs), concurrent inputs of distinct
// instances share one transaction (inputs.go); each is still decided, answered and
// refused on its own. A dry run, and an input that finds nothing in flight, go alone at
// once.
func (s *Store) Execute(ctx context.Context, p store.ExecuteParams) (store.ExecuteResult, error) {
	if p.Decide == nil {
		return store.ExecuteResult{}, s.mapErr("execute", errors.New("no DecideFunc"))
	}
	if s.inputs == nil || p.DryRun {
		return s.execute(ctx, p)
	}
	c := &inputCall{ctx: ctx, p: p}
	if err := s.inputs.Complete(ctx, c); err != nil {
		return store.ExecuteResult{}, err
	}
	return c.res, nil
}

// execute records one input in a transaction of its own, with the errors Execute
// returns.
func (s *Store) execute(ctx context.Context, p store.ExecuteParams) (store.ExecuteResult, error) {
	results, err := s.record(ctx, []item{{route: &p}}, true, p.DryRun)
	if err == nil {
		err = results[0].err
	}
	if err != nil {
		return store.ExecuteResult{}, s.mapErr("execute", err)
	}
	return results[0].res, nil
}

// CompleteEffect records an attempt of a claimed effect and sets its next status, and,
// when p.Route is set and the effect was delivered or died, executes the routed (or
// on_dead) input in the same transaction and stores its outcome on the attempt (and a
// dead effect's first on_dead outcome on the effect). It returns store.ErrLeaseLost
// (changing nothing) when p.Worker no longer holds the claim or the effect is no longer
// pending, store.ErrNotFound when it does not exist, and the route's errors as Execute
// returns them.
func (s *Store) CompleteEffect(ctx context.Context, p store.CompleteEffectParams) error {
	return s.CompleteEffects(ctx, []store.CompleteEffectParams{p})[0]
}

// CompleteEffects records ps as CompleteEffect would; the deliveries with a routed
// input of distinct instances share one transaction (store.CompleteRouted, DeliverBatch).
func (s *Store) CompleteEffects(ctx context.Context, ps []store.CompleteEffectParams) []error {
	return store.CompleteRouted(ps,
		func(ps []store.CompleteEffectParams) ([]error, error) { return s.DeliverBatch(ctx, ps) },
		func(p store.CompleteEffectParams) error { return s.completeOne(ctx, "complete effect", effectItem(p)) })
}

// DeliverBatch is the batch path of CompleteEffects: it records ps, deliveries with a
// routed input of distinct instances, in one transaction and returns each one's error
// (a completion refused wrote nothing), or an error of its own when it recorded nothing
// at all. Exported so that a backend's tests can see a batch commit as one.
func (s *Store) DeliverBatch(ctx context.Context, ps []store.CompleteEffectParams) ([]error, error) {
	return recordBatch(ctx, s, "complete effect", ps, effectItem)
}

// CompleteTimer records the completion of a claimed timer. When p.Route is set and the
// timer fired, the timer's input is executed first in the same transaction (so an input
// that re-arms the timer's own key leaves the new timer pending while this one ends
// fired) and its outcome is stored on the timer. It returns store.ErrLeaseLost
// (executing and changing nothing) when p.Worker no longer holds the claim or the timer
// is no longer pending, store.ErrNotFound when it does not exist, and the route's
// errors as Execute returns them.
func (s *Store) CompleteTimer(ctx context.Context, p store.CompleteTimerParams) error {
	return s.CompleteTimers(ctx, []store.CompleteTimerParams{p})[0]
}

// CompleteTimers records ps as CompleteTimer would; the firings of distinct instances
// share one transaction (store.CompleteRouted, FireBatch), so a burst costs one commit.
func (s *Store) CompleteTimers(ctx context.Context, ps []store.CompleteTimerParams) []error {
	return store.CompleteRouted(ps,
		func(ps []store.CompleteTimerParams) ([]error, error) { return s.FireBatch(ctx, ps) },
		func(p store.CompleteTimerParams) error { return s.completeOne(ctx, "complete timer", timerItem(p)) })
}

// FireBatch is the batch path of CompleteTimers, as DeliverBatch is of CompleteEffects.
func (s *Store) FireBatch(ctx context.Context, ps []store.CompleteTimerParams) ([]error, error) {
	return recordBatch(ctx, s, "complete timer", ps, timerItem)
}

// completeOne records one completion on its own.
func (s *Store) completeOne(ctx context.Context, op string, it item) error {
	if it.err != nil {
		return s.mapErr(op, it.err)
	}
	results, err := s.record(ctx, []item{it}, true, false)
	if err == nil {
		err = results[0].err
	}
	return s.mapErr(op, err)
}

// recordBatch records completions that each route an input, of distinct instances, in
// one record.
func recordBatch[P any](ctx context.Context, s *Store, op string, ps []P, toItem func(P) item) ([]error, error) {
	items := make([]item, len(ps))
	for k, p := range ps {
		if items[k] = toItem(p); items[k].err != nil || items[k].route == nil {
			return nil, errors.Join(items[k].err, errors.New("a batch completion without an input"))
		}
	}
	results, err := s.record(ctx, items, false, false)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(results))
	for k, r := range results {
		errs[k] = s.mapErr(op, r.err)
	}
	return errs, nil
}

// effectItem is the protocol item of an effect's completion.
func effectItem(p store.CompleteEffectParams) item {
	switch p.Status {
	case store.EffectDelivered, store.EffectPending, store.EffectDead:
	default:
		return item{err: fmt.Errorf("invalid status %q", p.Status)}
	}
	return item{route: routeOf(p.Routed()), table: TableEffects, id: p.EffectID, worker: p.Worker,
		complete: func(rows *Rows, outcome string) {
			now := nowOr(p.Now)
			c := EffectCompletion{ID: p.EffectID, Status: p.Status, NextAttemptAt: nowOr(orTime(p.NextAttemptAt, now)),
				Now: now, Attempt: p.Attempt}
			switch {
			case outcome == outcomeCancelled:
				c.Status = store.EffectCancelled
			case p.Status == store.EffectDelivered:
				c.DeliveredAt = &now
			case p.Status == store.EffectDead:
				c.OnDeadOutcome = outcome
			}
			c.Attempt.EffectID, c.Attempt.StartedAt = p.EffectID, nowOr(p.Attempt.StartedAt)
			c.Attempt.Error, c.Attempt.RoutedOutcome = CleanText(p.Attempt.Error), outcome
			rows.EffectCompletions = append(rows.EffectCompletions, c)
		}}
}

// timerItem is the protocol item of a timer's completion.
func timerItem(p store.CompleteTimerParams) item {
	switch p.Status {
	case store.TimerFired, store.TimerPending, store.TimerDead:
	default:
		return item{err: fmt.Errorf("invalid status %q", p.Status)}
	}
	return item{route: routeOf(p.Routed()), table: TableTimers, id: p.TimerID, worker: p.Worker,
		complete: func(rows *Rows, outcome string) {
			now := nowOr(p.Now)
			c := TimerCompletion{ID: p.TimerID, Status: p.Status, NextAttemptAt: nowOr(orTime(p.NextAttemptAt, now)),
				Error: CleanText(p.Error), Outcome: outcome, Now: now}
			if p.Status == store.TimerFired {
				c.FiredAt = &now
			}
			rows.TimerCompletions = append(rows.TimerCompletions, c)
		}}
}

// routeOf is a completion's route, never a dry run.
func routeOf(r *store.ExecuteParams) *store.ExecuteParams {
	if r == nil {
		return nil
	}
	c := *r
	c.DryRun = false
	return &c
}

// prepareWrite checks a DecideFunc's Write against the current instance and returns a
// copy with what the caller may leave out filled in: identities from p, ids, event seqs
// continuing the history, statuses and times (the input record's CreatedAt, or now), the
// input's version and idempotency fields, compacted JSON and clean text.
//
// Pinned by the conformance suite (decision 0011): an instance Version other than its
// last event's seq is an error, never overwritten; a completed instance without
// CompletedAt completes at its UpdatedAt; its CreatedAt never changes.
func prepareWrite(p store.ExecuteParams, current *store.Instance, w store.Write) (store.Write, error) {
	in := w.Input
	if in.ID == "" {
		in.ID = NewID()
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
	switch w.CancelEffects {
	case store.CancelNone, store.CancelAll, store.CancelState, store.CancelEnding:
	default:
		return store.Write{}, fmt.Errorf("write: unknown CancelEffects %q", w.CancelEffects)
	}
	in.CreatedAt = nowOr(in.CreatedAt)
	in.Reason = CleanText(in.Reason)
	now := in.CreatedAt
	var err error
	if in.Data, err = compact(in.Data); err != nil {
		return store.Write{}, fmt.Errorf("write: input data: %w", err)
	}

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
		e.WorkflowType, e.WorkflowID, e.InputID = p.WorkflowType, p.WorkflowID, in.ID
		if e.InputType == "" {
			e.InputType = in.Type
		}
		e.RecordedAt = nowOr(orTime(e.RecordedAt, now))
		if e.Data, err = compact(e.Data); err != nil {
			return store.Write{}, fmt.Errorf("write: event %d data: %w", e.Seq, err)
		}
		events[i] = e
	}

	var inst *store.Instance
	if w.Instance != nil {
		ic := *w.Instance
		ic.Type, ic.ID = p.WorkflowType, p.WorkflowID
		if ic.Status == "" {
			ic.Status = store.StatusRunning
		}
		last := version + int64(len(events))
		if ic.Version == 0 && len(events) > 0 {
			ic.Version = last
		}
		if ic.Version != last {
			return store.Write{}, fmt.Errorf("write: instance version %d is not the last event seq %d", ic.Version, last)
		}
		if current != nil {
			ic.CreatedAt = current.CreatedAt
		}
		ic.CreatedAt = nowOr(orTime(ic.CreatedAt, now))
		ic.UpdatedAt = nowOr(orTime(ic.UpdatedAt, now))
		ic.CompletedAt = utcPtr(ic.CompletedAt)
		if store.Ended(ic.Status) && ic.CompletedAt == nil {
			t := ic.UpdatedAt
			ic.CompletedAt = &t
		}
		if ic.StateData, err = compact(ic.StateData); err != nil {
			return store.Write{}, fmt.Errorf("write: instance state data: %w", err)
		}
		if ic.StateData == nil {
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
			e.ID = NewID()
		}
		e.WorkflowType, e.WorkflowID = p.WorkflowType, p.WorkflowID
		if e.Seq == 0 {
			e.Seq = version
		}
		e.Status, e.Attempts, e.LastError, e.OnDeadOutcome = store.EffectPending, 0, "", ""
		e.InitialInterval, e.MaxInterval, e.Timeout = wholeMillis(e.InitialInterval), wholeMillis(e.MaxInterval), wholeMillis(e.Timeout)
		e.LockedBy, e.LockedUntil, e.DeliveredAt = "", nil, nil
		e.CreatedAt = nowOr(orTime(e.CreatedAt, now))
		e.UpdatedAt = nowOr(orTime(e.UpdatedAt, e.CreatedAt))
		e.NextAttemptAt = nowOr(orTime(e.NextAttemptAt, e.CreatedAt))
		if e.Payload, err = compact(e.Payload); err != nil {
			return store.Write{}, fmt.Errorf("write: effect %s payload: %w", e.Name, err)
		}
		if e.Item, err = compact(e.Item); err != nil {
			return store.Write{}, fmt.Errorf("write: effect %s item: %w", e.Name, err)
		}
		effects[i] = e
	}

	timers := make([]store.Timer, len(w.Timers))
	lastOfKey := make(map[string]int, len(w.Timers))
	for i, t := range w.Timers {
		t.WorkflowType, t.WorkflowID = p.WorkflowType, p.WorkflowID
		if err := prepareTimer(&t, now); err != nil {
			return store.Write{}, fmt.Errorf("write: %w", err)
		}
		timers[i] = t
		lastOfKey[t.Key] = i
	}
	for i := range timers {
		if lastOfKey[timers[i].Key] != i {
			// A later timer of this write has the same key and replaces this one.
			timers[i].Status = store.TimerCancelled
		}
	}

	return store.Write{
		Instance:        inst,
		Events:          events,
		Effects:         effects,
		Timers:          timers,
		CancelTimerKeys: append([]string(nil), w.CancelTimerKeys...),
		CancelEffects:   w.CancelEffects,
		CancelAllTimers: w.CancelAllTimers,
		Input:           in,
	}, nil
}

// prepareTimer fills a new pending timer: id, status, due time (its own NextAttemptAt,
// or FireAt) and times (now, or the current time when now is zero).
func prepareTimer(t *store.Timer, now time.Time) error {
	if t.Key == "" {
		return errors.New("timer has no key")
	}
	if t.ID == "" {
		t.ID = NewID()
	}
	t.Status, t.Attempts = store.TimerPending, 0
	t.LockedBy, t.LockedUntil, t.FiredAt, t.LastError, t.Outcome = "", nil, nil, "", ""
	t.FireAt = t.FireAt.UTC()
	t.NextAttemptAt = nowOr(orTime(t.NextAttemptAt, t.FireAt))
	t.CreatedAt = nowOr(orTime(t.CreatedAt, now))
	t.UpdatedAt = nowOr(orTime(t.UpdatedAt, t.CreatedAt))
	var err error
	if t.InputData, err = compact(t.InputData); err != nil {
		return fmt.Errorf("timer %s input data: %w", t.Key, err)
	}
	return nil
}

// decideError carries an error returned by a DecideFunc through the transaction so the
// store can hand it back unchanged.
type decideError struct{ err error }

func (e decideError) Error() string { return e.err.Error() }
func (e decideError) Unwrap() error { return e.err }

// wholeMillis is d as an effect's policy keeps it: whole milliseconds.
func wholeMillis(d time.Duration) time.Duration { return d.Truncate(time.Millisecond) }
