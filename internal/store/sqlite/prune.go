package sqlite

import (
	"context"
	"time"
)

// pruneQueries delete one batch each, of ?1 before, at most ?2 rows. A delivered
// effect's attempts go with it (ON DELETE CASCADE; the writer enforces foreign keys).
var pruneQueries = []string{
	`DELETE FROM effects WHERE id IN (
    SELECT id FROM effects WHERE status = 'delivered' AND delivered_at < ?1
    ORDER BY delivered_at, id LIMIT ?2)`,
	`DELETE FROM timers WHERE id IN (
    SELECT id FROM timers WHERE status IN ('fired', 'cancelled') AND updated_at < ?1
    ORDER BY updated_at, id LIMIT ?2)`,
	`DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i JOIN instances w ON w.type = i.workflow_type AND w.id = i.workflow_id
    WHERE w.status = 'completed' AND w.completed_at < ?1 AND i.created_at < ?1
    ORDER BY i.rid LIMIT ?2)`,
	`DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i WHERE i.created_at < ?1 AND NOT EXISTS (
        SELECT 1 FROM instances w WHERE w.type = i.workflow_type AND w.id = i.workflow_id)
    ORDER BY i.rid LIMIT ?2)`,
}

// Prune deletes at most batch rows of each kind that retention allows to forget; see
// store.Store.
func (s *Store) Prune(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, nil
	}
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		for _, q := range pruneQueries {
			res, err := tx.ExecContext(ctx, q, toMicros(before), batch)
			if err != nil {
				return err
			}
			c, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += c
		}
		return nil
	})
	if err != nil {
		return 0, mapErr("prune", err)
	}
	return n, nil
}
