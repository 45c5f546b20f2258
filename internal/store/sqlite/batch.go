package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ironflow/ironflow/internal/store"
)

// Batched timer firings.
//
// A burst of due timers is a burst of decisions, each of which costs the single writer
// some ten statements when recorded on its own (claim check, instance and definition
// reads, instance, event and input writes, the timer update, the savepoint around it).
// CompleteTimers records the firings of distinct instances with multi-row statements per
// table instead (rowWrite, rows.go), in one write request: the per-statement cost, which
// dominates on the writer, is paid a few times per batch rather than once per firing.

// CompleteTimers records ps as CompleteTimer would. The firings of distinct instances
// (store.SplitRouted) share one write request with set-based reads and writes; a firing
// the batch refuses (lease lost, a decision error) writes nothing and gets its error.
// When the request fails as a whole (a unique key taken, an idempotency key already
// used, the database gone) nothing of it is written, and each of its firings is recorded
// on its own, as are the rest of ps.
func (s *Store) CompleteTimers(ctx context.Context, ps []store.CompleteTimerParams) []error {
	errs := make([]error, len(ps))
	batch, rest := store.SplitRouted(ps)
	if len(batch) > 1 {
		var results []error
		var sg signals
		err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
			var err error
			results, sg, err = fireBatch(ctx, tx, ps, batch)
			return err
		})
		if err == nil {
			for k, i := range batch {
				errs[i] = mapErr("complete timer", results[k])
			}
			s.notify.send(sg)
			batch = nil
		}
	}
	// On their own, concurrently: the writer still groups them into one transaction.
	var wg sync.WaitGroup
	for _, i := range append(rest, batch...) {
		wg.Go(func() { errs[i] = s.CompleteTimer(ctx, ps[i]) })
	}
	wg.Wait()
	return errs
}

// fireBatch fires ps[batch], which are of distinct instances, inside tx: results[k] is
// the result of ps[batch[k]]. An error means the batch must be rolled back.
//
// The firing timers' idempotency keys are not looked up: a key is the timer's own id,
// and an input with it exists only if that timer fired before, which the holder check
// rules out (a fired timer is no longer pending), or if a client sent an input with the
// timer's id as its Idempotency-Key. That input's unique index then fails the batch, and
// the firing is recorded on its own, with the usual replay.
func fireBatch(ctx context.Context, tx *wtx, ps []store.CompleteTimerParams, batch []int) ([]error, signals, error) {
	var sg signals
	holders, err := timerHolders(ctx, tx, ps, batch)
	if err != nil {
		return nil, sg, err
	}
	current, err := batchInstances(ctx, tx, ps, batch)
	if err != nil {
		return nil, sg, err
	}
	type defKey struct {
		typ     string
		version int
	}
	defs := map[defKey]*store.Definition{} // read once per batch: a batch is mostly one type
	var instances, events, inputs, fired [][]any
	results := make([]error, len(batch))
	for k, i := range batch {
		p := ps[i]
		r := *p.Route
		h, ok := holders[p.TimerID]
		if !ok {
			results[k] = fmt.Errorf("timer %s: %w", p.TimerID, store.ErrNotFound)
			continue
		}
		if err := checkClaim(p, h.status, h.lockedBy); err != nil {
			results[k] = err
			continue
		}
		cur := current[[2]string{r.WorkflowType, r.WorkflowID}]
		if err := checkVersion(r, cur); err != nil {
			results[k] = err
			continue
		}
		dk := defKey{r.WorkflowType, definitionVersion(cur)}
		def, ok := defs[dk]
		if !ok {
			if def, err = loadDefinition(ctx, tx, dk.typ, dk.version); err != nil {
				return nil, sg, err
			}
			defs[dk] = def
		}
		w, err := decideWrite(ctx, r, cur, def)
		if err != nil {
			results[k] = err
			continue
		}
		// Rare in a burst, so row by row; before the timer updates below, so a firing
		// that re-arms its own key still ends fired.
		rsg, err := applySideRows(ctx, tx, w)
		if err != nil {
			return nil, sg, err
		}
		sg.merge(rsg)
		if inst := w.Instance; inst != nil {
			args, err := instanceArgs(inst)
			if err != nil {
				return nil, sg, err
			}
			if err := checkUniqueKey(ctx, tx, inst); err != nil {
				return nil, sg, err
			}
			instances = append(instances, args)
		}
		for _, e := range w.Events {
			args, err := eventArgs(e)
			if err != nil {
				return nil, sg, err
			}
			events = append(events, args)
		}
		args, err := inputArgs(&w.Input)
		if err != nil {
			return nil, sg, err
		}
		inputs = append(inputs, args)
		now := nowOr(p.Now)
		var next any // NULL keeps the timer's own
		if !p.NextAttemptAt.IsZero() {
			next = toMicros(p.NextAttemptAt)
		}
		fired = append(fired, []any{p.TimerID, next, p.Error, w.Input.Outcome, toMicros(now)})
	}
	for _, w := range []struct {
		write rowWrite
		rows  [][]any
	}{{instanceUpsert, instances}, {eventInsert, events}, {inputInsert, inputs}, {timersFired, fired}} {
		if err := w.write.exec(ctx, tx, w.rows); err != nil {
			return nil, sg, err
		}
	}
	return results, sg, nil
}

// timersFired marks timers fired, with rows of id, next_attempt_at (null keeps the
// timer's own), last_error, outcome and fired_at. No status guard, as in CompleteTimer.
var timersFired = newRowWrite(`WITH v(id, next_attempt_at, last_error, outcome, fired_at) AS (`, 5, `)
		 UPDATE timers SET status = 'fired', attempts = attempts + 1,
		        next_attempt_at = coalesce(v.next_attempt_at, timers.next_attempt_at),
		        last_error = v.last_error, outcome = v.outcome, fired_at = v.fired_at,
		        locked_by = '', locked_until = NULL, updated_at = v.fired_at
		   FROM v WHERE timers.id = v.id`)

// Reads of a batch; json_each takes the list of ids as one parameter.
const (
	sqlTimerHolders = `SELECT id, status, locked_by FROM timers WHERE id IN (SELECT value FROM json_each(?))`
	sqlInstancesOf  = `SELECT ` + instanceCols + ` FROM instances WHERE type = ? AND id IN (SELECT value FROM json_each(?))`
)

type timerHolder struct{ status, lockedBy string }

// timerHolders reads the status and holder of the firing timers, by id.
func timerHolders(ctx context.Context, tx *wtx, ps []store.CompleteTimerParams, batch []int) (map[string]timerHolder, error) {
	ids := make([]string, len(batch))
	for k, i := range batch {
		ids[k] = ps[i].TimerID
	}
	idList, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, sqlTimerHolders, string(idList))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	holders := make(map[string]timerHolder, len(batch))
	for rows.Next() {
		var id string
		var h timerHolder
		if err := rows.Scan(&id, &h.status, &h.lockedBy); err != nil {
			return nil, err
		}
		holders[id] = h
	}
	return holders, rows.Err()
}

// batchInstances reads the instances the firings are for, one statement per type.
func batchInstances(ctx context.Context, tx *wtx, ps []store.CompleteTimerParams, batch []int) (map[[2]string]*store.Instance, error) {
	byType := map[string][]string{}
	for _, i := range batch {
		r := ps[i].Route
		byType[r.WorkflowType] = append(byType[r.WorkflowType], r.WorkflowID)
	}
	current := make(map[[2]string]*store.Instance, len(batch))
	for typ, ids := range byType {
		idList, err := json.Marshal(ids)
		if err != nil {
			return nil, err
		}
		rows, err := tx.QueryContext(ctx, sqlInstancesOf, typ, string(idList))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			inst, err := scanInstance(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			current[[2]string{inst.Type, inst.ID}] = &inst
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return current, nil
}
