package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// Stats returns the backlog figures: pending and dead effects (and the creation time of
// the oldest pending one), pending and dead timers. now is not needed by this store.
func (s *Store) Stats(ctx context.Context, _ time.Time) (store.Stats, error) {
	var st store.Stats
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx,
		`SELECT
		   (SELECT COUNT(*) FROM effects WHERE status = 'pending'),
		   (SELECT MIN(created_at) FROM effects WHERE status = 'pending'),
		   (SELECT COUNT(*) FROM effects WHERE status = 'dead'),
		   (SELECT COUNT(*) FROM timers WHERE status = 'pending'),
		   (SELECT COUNT(*) FROM timers WHERE status = 'dead')`).
		Scan(&st.PendingEffects, &oldest, &st.DeadEffects, &st.PendingTimers, &st.DeadTimers)
	if err != nil {
		return store.Stats{}, mapErr("stats", err)
	}
	st.OldestPendingEffect = fromNullMicros(oldest)
	return st, nil
}
