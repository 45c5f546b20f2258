package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

// Completions that execute a routed input: an effect delivered with an input in its
// response, a timer firing. Each locks the instance, checks the claim of the row it
// completes, decides the input and writes the decision and the completion.

// holder is who holds a claimed row (an effect or a timer), read FOR UPDATE.
type holder struct {
	found            bool
	status, lockedBy string
}

// queueHolder queues on b the locking read of the holder of row id of table ("effects"
// or "timers"); the holder it returns is filled in once b has been sent.
func queueHolder(b *pgx.Batch, table, id string) *holder {
	h := &holder{}
	b.Queue(`SELECT status, locked_by FROM `+table+` WHERE id = $1 FOR UPDATE`, id).
		QueryRow(func(row pgx.Row) error {
			err := row.Scan(&h.status, &h.lockedBy)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			h.found = err == nil
			return err
		})
	return h
}

// check returns store.ErrNotFound when the row is gone and store.ErrLeaseLost when it
// is no longer worker's pending claim.
func (h holder) check(worker string) error {
	if !h.found {
		return store.ErrNotFound
	}
	if h.status != store.EffectPending || h.lockedBy != worker { // pending is the same word for timers
		return store.ErrLeaseLost
	}
	return nil
}

// completeClaimed records, in tx, the completion of row id of table ("effects" or
// "timers") claimed by worker. With a route it locks the route's instance first, as
// every path that locks both does, so that they never deadlock; the row's holder is
// read, locked, in the same round trip. It checks the claim (store.ErrNotFound,
// store.ErrLeaseLost), executes the route, and holds what complete queues, given the
// routed input's outcome ("" without a route), for the COMMIT's round trip.
func completeClaimed(ctx context.Context, tx *batchTx, table, id, worker string, route *store.ExecuteParams,
	complete func(b *pgx.Batch, outcome string)) error {
	b := &pgx.Batch{}
	var li *lockedInstance
	if route != nil {
		li = queueLockInstance(b, route.WorkflowType, route.WorkflowID, route.IdempotencyKey)
	}
	h := queueHolder(b, table, id)
	if err := tx.Send(ctx, b); err != nil {
		return err
	}
	if err := h.check(worker); err != nil {
		return err
	}
	outcome := ""
	if route != nil {
		r := *route
		r.DryRun = false
		res, err := executeLocked(ctx, tx, r, *li)
		if err != nil {
			return err
		}
		outcome = res.Input.Outcome
	}
	b = &pgx.Batch{}
	complete(b, outcome)
	tx.Hold(b)
	return nil
}

// routed is one completion of a batch: the claimed row it completes (by id, held by
// worker) and the input it executes.
type routed struct {
	id, worker string
	route      store.ExecuteParams
}

// routedBatch executes the routes of items, which are of distinct instances, and
// completes their rows of kind ("effect" or "timer", in table kind+"s") in one
// transaction of two round trips, with one
// statement per table rather than per row: the locks and reads of the whole batch in
// the first (lockBatch); the writes of every decision, then what complete queues, and
// the COMMIT in the second. complete gets the input record each item's decision wrote,
// nil for an item refused; results[k] is item k's error, mapped as the single path
// maps it: store.ErrNotFound or store.ErrLeaseLost when its row is gone or no longer
// its worker's pending claim, or its decision's error (such an item writes nothing).
// When routedBatch returns an error, nothing was committed.
//
// The instances are locked in (type, id) order, so the batches of concurrent workers
// never deadlock; the single-row paths also lock the instance before the claimed row.
// The routes' idempotency keys are not looked up (docs/decisions/0009-timer-bursts.md):
// a key is the completed row's own id, which no earlier input has unless a client
// chose it, and then the unique index fails the batch.
func (s *Store) routedBatch(ctx context.Context, kind string, items []routed,
	complete func(b *pgx.Batch, inputs []*store.InputRecord)) ([]error, error) {
	order := make([]int, len(items))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int {
		ra, rb := items[a].route, items[b].route
		return cmp.Or(cmp.Compare(ra.WorkflowType, rb.WorkflowType), cmp.Compare(ra.WorkflowID, rb.WorkflowID))
	})
	types, ids, claimed := make([]string, len(items)), make([]string, len(items)), make([]string, len(items))
	for j, k := range order {
		types[j], ids[j], claimed[j] = items[k].route.WorkflowType, items[k].route.WorkflowID, items[k].id
	}
	results := make([]error, len(items))
	err := s.withTx(ctx, func(tx *batchTx) error {
		reads, err := lockBatch(ctx, tx, kind+"s", types, ids, claimed)
		if err != nil {
			return err
		}
		var instances, events, inputRows [][]any
		inputs := make([]*store.InputRecord, len(items))
		side := &pgx.Batch{}
		for _, k := range order {
			it := items[k]
			if results[k] = reads.holders[it.id].check(it.worker); results[k] != nil {
				continue
			}
			r := it.route
			r.DryRun = false
			cur := reads.instances[[2]string{r.WorkflowType, r.WorkflowID}]
			li := lockedInstance{typ: r.WorkflowType, id: r.WorkflowID, current: cur, def: reads.definition(r.WorkflowType, cur)}
			res, err := decideLocked(ctx, r, li)
			if err != nil {
				results[k] = err
				continue
			}
			w := res.Write
			if w.Instance != nil {
				row, err := instanceRow(w.Instance)
				if err != nil {
					return err
				}
				instances = append(instances, row)
			}
			for _, e := range w.Events {
				row, err := eventRow(e)
				if err != nil {
					return err
				}
				events = append(events, row)
			}
			row, err := inputRow(w.Input)
			if err != nil {
				return err
			}
			inputRows = append(inputRows, row)
			if err := queueSideRows(side, &tx.n, li, w); err != nil {
				return err
			}
			inputs[k] = &w.Input
		}
		b := &pgx.Batch{}
		instanceUpsert.queueMany(b, instances)
		eventInsert.queueMany(b, events)
		inputInsert.queueMany(b, inputRows)
		// Before the completions: a firing that re-arms or cancels its own key still
		// ends fired.
		b.QueuedQueries = append(b.QueuedQueries, side.QueuedQueries...)
		complete(b, inputs)
		tx.Hold(b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, err := range results {
		results[k] = mapErr("complete "+kind, err)
	}
	return results, nil
}

// batchReads are the locked rows a batch decides by.
type batchReads struct {
	instances map[[2]string]*store.Instance
	defs      map[string]map[int]*store.Definition // by type and version
	holders   map[string]holder
}

// lockBatch locks the instances (types[k], ids[k]) in that order, then reads them,
// their definitions (the pinned version, or the latest for an instance that does not
// exist) and the holders of the claimed rows of table, locking the rows: one round trip.
func lockBatch(ctx context.Context, tx *batchTx, table string, types, ids, claimed []string) (batchReads, error) {
	r := batchReads{
		instances: make(map[[2]string]*store.Instance, len(ids)),
		defs:      map[string]map[int]*store.Definition{},
		holders:   make(map[string]holder, len(claimed)),
	}
	b := &pgx.Batch{}
	// unnest yields the pairs in array order, so the locks are taken in that order.
	b.Queue(`SELECT count(pg_advisory_xact_lock(hashtextextended(t || '/' || i, 0)))
FROM unnest($1::text[], $2::text[]) AS u(t, i)`, types, ids)
	b.Queue(`SELECT `+prefixed("i.", instanceColumns)+` FROM instances i
JOIN unnest($1::text[], $2::text[]) AS u(t, id) ON i.type = u.t AND i.id = u.id
FOR UPDATE OF i`, types, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			inst, err := scanInstance(rows, nil)
			if err != nil {
				return err
			}
			r.instances[[2]string{inst.Type, inst.ID}] = &inst
		}
		return rows.Err()
	})
	b.Queue(`SELECT `+definitionColumns+` FROM definitions WHERE (type, version) IN (
    SELECT i.type, i.definition_version FROM instances i
    JOIN unnest($1::text[], $2::text[]) AS u(t, id) ON i.type = u.t AND i.id = u.id
    UNION
    SELECT type, max(version) FROM definitions WHERE type = ANY($1) GROUP BY type)`, types, ids).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				d, err := scanDefinition(rows)
				if err != nil {
					return err
				}
				if r.defs[d.Type] == nil {
					r.defs[d.Type] = map[int]*store.Definition{}
				}
				r.defs[d.Type][d.Version] = &d
			}
			return rows.Err()
		})
	b.Queue(`SELECT id, status, locked_by FROM `+table+` WHERE id = ANY($1) ORDER BY id FOR UPDATE`, claimed).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				h := holder{found: true}
				if err := rows.Scan(&id, &h.status, &h.lockedBy); err != nil {
					return err
				}
				r.holders[id] = h
			}
			return rows.Err()
		})
	return r, tx.Send(ctx, b)
}

// definition is the definition a decision on (typ, id) is made by: the version current
// is pinned to, or the latest of typ when current is nil; nil when there is none.
func (r batchReads) definition(typ string, current *store.Instance) *store.Definition {
	versions := r.defs[typ]
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
