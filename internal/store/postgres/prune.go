package postgres

import (
	"context"
	"time"
)

// pruneQueries delete one batch each ($1 before, $2 batch). Rows are picked oldest
// first and with SKIP LOCKED, so pruning never waits on a worker or a decision.
var pruneQueries = []string{
	// Delivered effects; their attempts go with them (ON DELETE CASCADE).
	`DELETE FROM effects WHERE id IN (
    SELECT id FROM effects WHERE status = 'delivered' AND delivered_at < $1
    ORDER BY delivered_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	// Fired and cancelled timers.
	`DELETE FROM timers WHERE id IN (
    SELECT id FROM timers WHERE status IN ('fired', 'cancelled') AND updated_at < $1
    ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	// Inputs of instances completed before $1.
	`DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i JOIN instances w ON w.type = i.workflow_type AND w.id = i.workflow_id
    WHERE w.status = 'completed' AND w.completed_at < $1 AND i.created_at < $1
    ORDER BY i.rid LIMIT $2 FOR UPDATE OF i SKIP LOCKED)`,
	// Inputs that never created an instance (a rejected first input).
	`DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i WHERE i.created_at < $1 AND NOT EXISTS (
        SELECT 1 FROM instances w WHERE w.type = i.workflow_type AND w.id = i.workflow_id)
    ORDER BY i.rid LIMIT $2 FOR UPDATE OF i SKIP LOCKED)`,
}

// Prune deletes at most batch rows of each kind that retention allows to forget; see
// store.Store.
func (s *Store) Prune(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, nil
	}
	var n int64
	err := s.withTx(ctx, func(tx *batchTx) error {
		for _, q := range pruneQueries {
			tag, err := tx.Exec(ctx, q, before.UTC(), batch)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, mapErr("prune", err)
	}
	return n, nil
}
