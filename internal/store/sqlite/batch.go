package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ironflow/ironflow/internal/store"
)

// Batched completions that execute a routed input: timer firings and effect deliveries
// whose response routes an input back.
//
// A burst of them is a burst of decisions, each of which costs the single writer some
// ten statements when recorded on its own (claim check, instance and definition reads,
// instance, event and input writes, the completion, the savepoint around it).
// CompleteTimers and CompleteEffects record those of distinct instances with
// multi-row statements per table instead (rowWrite, rows.go), in one write request: the
// per-statement cost, which dominates on the writer, is paid a few times per batch
// rather than once per completion.

// completeBatch runs batch in one write request and sends its signals after the
// commit: the batch path of store.CompleteRouted.
func completeBatch[P any](ctx context.Context, s *Store, ps []P,
	batch func(context.Context, *wtx, []P) ([]error, signals, error)) ([]error, error) {
	var results []error
	var sg signals
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		results, sg, err = batch(ctx, tx, ps)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notify.send(sg)
	return results, nil
}

// CompleteTimers records ps as CompleteTimer would; the firings of distinct instances
// share one write request (store.CompleteRouted, fireBatch). The others, sent
// concurrently, share the writer's group transaction anyway.
func (s *Store) CompleteTimers(ctx context.Context, ps []store.CompleteTimerParams) []error {
	return store.CompleteRouted(ps,
		func(batch []store.CompleteTimerParams) ([]error, error) {
			return completeBatch(ctx, s, batch, fireBatch)
		},
		func(p store.CompleteTimerParams) error { return s.CompleteTimer(ctx, p) })
}

// completeClaimed checks, in tx, that row id of kind ("effect" or "timer", in table
// kind+"s") is still worker's pending claim (store.ErrNotFound, store.ErrLeaseLost), and
// executes route if it is set: the single path of CompleteEffect and CompleteTimer,
// which then write the completion given the routed input's outcome ("" without one).
func completeClaimed(ctx context.Context, tx *wtx, kind, id, worker string, route *store.ExecuteParams) (outcome string, sg signals, err error) {
	holders, err := readHolders(ctx, tx, kind+"s", []string{id})
	if err != nil {
		return "", sg, err
	}
	h, ok := holders[id]
	if !ok {
		return "", sg, fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
	}
	if err := checkClaim(kind, id, worker, h.status, h.lockedBy); err != nil {
		return "", sg, err
	}
	if route == nil {
		return "", sg, nil
	}
	res, sg, err := execute(ctx, tx, *route)
	if err != nil {
		return "", sg, err
	}
	return res.Input.Outcome, sg, nil
}

// fireBatch fires ps, which are of distinct instances, inside tx (routedBatch).
func fireBatch(ctx context.Context, tx *wtx, ps []store.CompleteTimerParams) ([]error, signals, error) {
	items := make([]routed, len(ps))
	for k, p := range ps {
		items[k] = routed{id: p.TimerID, worker: p.Worker, route: *p.Route}
	}
	return routedBatch(ctx, tx, "timer", items, func(inputs []*store.InputRecord) error {
		var rows [][]any
		for k, in := range inputs {
			if in != nil {
				rows = append(rows, timerCompletion(ps[k], in.Outcome))
			}
		}
		return timerUpdate.exec(ctx, tx, rows)
	})
}

// routed is one completion of a batch: the claimed row it completes (by id, held by
// worker) and the input it executes.
type routed struct {
	id, worker string
	route      store.ExecuteParams
}

// routedBatch executes the routes of items, which are of distinct instances, inside tx,
// then calls complete with the input record each item's decision wrote (nil for an
// item refused) to write the completions. kind ("effect" or "timer") names the claimed
// rows, in table kind+"s". results[k] is item k's error: store.ErrNotFound or
// store.ErrLeaseLost when its row is gone or no longer its worker's pending claim, or
// its decision's error (such an item writes nothing). An error means the batch must be
// rolled back.
//
// The routes' idempotency keys are not looked up: a key is the completed row's own id,
// and an input with it exists only if that row was completed before, which the holder
// check rules out (it is no longer pending), or if a client sent an input with the id
// as its Idempotency-Key. That input's unique index then fails the batch, and the
// completion is recorded on its own, with the usual replay.
func routedBatch(ctx context.Context, tx *wtx, kind string, items []routed,
	complete func(inputs []*store.InputRecord) error) ([]error, signals, error) {
	var sg signals
	ids := make([]string, len(items))
	for k, it := range items {
		ids[k] = it.id
	}
	holders, err := readHolders(ctx, tx, kind+"s", ids)
	if err != nil {
		return nil, sg, err
	}
	current, err := batchInstances(ctx, tx, items)
	if err != nil {
		return nil, sg, err
	}
	type defKey struct {
		typ     string
		version int
	}
	defs := map[defKey]*store.Definition{} // read once per batch: a batch is mostly one type
	var instances, events, inputRows [][]any
	inputs := make([]*store.InputRecord, len(items))
	results := make([]error, len(items))
	for k, it := range items {
		r := it.route
		h, ok := holders[it.id]
		if !ok {
			results[k] = fmt.Errorf("%s %s: %w", kind, it.id, store.ErrNotFound)
			continue
		}
		if err := checkClaim(kind, it.id, it.worker, h.status, h.lockedBy); err != nil {
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
		// Rare in a burst, so row by row; before the completions, so a firing that
		// re-arms its own key still ends fired.
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
		inputRows = append(inputRows, args)
		inputs[k] = &w.Input
	}
	for _, w := range []struct {
		write rowWrite
		rows  [][]any
	}{{instanceUpsert, instances}, {eventInsert, events}, {inputInsert, inputRows}} {
		if err := w.write.exec(ctx, tx, w.rows); err != nil {
			return nil, sg, err
		}
	}
	if err := complete(inputs); err != nil {
		return nil, sg, err
	}
	for k, err := range results {
		results[k] = mapErr("complete "+kind, err)
	}
	return results, sg, nil
}

// sqlInstancesOf reads instances of one type by id; json_each takes the list of ids as
// one parameter.
const sqlInstancesOf = `SELECT ` + instanceCols + ` FROM instances WHERE type = ? AND id IN (SELECT value FROM json_each(?))`

// sqlHolders reads the status and holder of rows of table by id, like sqlInstancesOf.
func sqlHolders(table string) string {
	return `SELECT id, status, locked_by FROM ` + table + ` WHERE id IN (SELECT value FROM json_each(?))`
}

type holder struct{ status, lockedBy string }

// readHolders reads the status and holder of rows ids of table.
func readHolders(ctx context.Context, tx *wtx, table string, ids []string) (map[string]holder, error) {
	idList, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, sqlHolders(table), string(idList))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	holders := make(map[string]holder, len(ids))
	for rows.Next() {
		var id string
		var h holder
		if err := rows.Scan(&id, &h.status, &h.lockedBy); err != nil {
			return nil, err
		}
		holders[id] = h
	}
	return holders, rows.Err()
}

// batchInstances reads the instances the items are for, one statement per type.
func batchInstances(ctx context.Context, tx *wtx, items []routed) (map[[2]string]*store.Instance, error) {
	byType := map[string][]string{}
	for _, it := range items {
		byType[it.route.WorkflowType] = append(byType[it.route.WorkflowType], it.route.WorkflowID)
	}
	current := make(map[[2]string]*store.Instance, len(items))
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
