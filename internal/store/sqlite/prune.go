package sqlite

import (
	"context"
	"time"
)

// pruneQueries delete one batch each (before, batch; the instance queries take before
// twice).
var pruneQueries = []struct {
	query      string
	beforeArgs int
}{
	// Attempts first: they belong to the delivered effects deleted next.
	{`DELETE FROM effect_attempts WHERE effect_id IN (
    SELECT id FROM effects WHERE status = 'delivered' AND delivered_at < ?
    ORDER BY delivered_at, id LIMIT ?)`, 1},
	{`DELETE FROM effects WHERE id IN (
    SELECT id FROM effects WHERE status = 'delivered' AND delivered_at < ?
    ORDER BY delivered_at, id LIMIT ?)`, 1},
	{`DELETE FROM timers WHERE id IN (
    SELECT id FROM timers WHERE status IN ('fired', 'cancelled') AND updated_at < ?
    ORDER BY updated_at, id LIMIT ?)`, 1},
	{`DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i JOIN instances w ON w.type = i.workflow_type AND w.id = i.workflow_id
    WHERE w.status = 'completed' AND w.completed_at < ? AND i.created_at < ?
    ORDER BY i.rid LIMIT ?)`, 2},
	{`DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i WHERE i.created_at < ? AND NOT EXISTS (
        SELECT 1 FROM instances w WHERE w.type = i.workflow_type AND w.id = i.workflow_id)
    ORDER BY i.rid LIMIT ?)`, 1},
}

// Prune deletes at most batch rows of each kind that retention allows to forget; see
// store.Store.
func (s *Store) Prune(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, nil
	}
	b := toMicros(before)
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		for i, q := range pruneQueries {
			args := make([]any, 0, 3)
			for range q.beforeArgs {
				args = append(args, b)
			}
			res, err := tx.ExecContext(ctx, q.query, append(args, batch)...)
			if err != nil {
				return err
			}
			if i == 0 {
				continue // attempts are not counted
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
