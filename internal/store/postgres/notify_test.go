package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// TestNotifyIsPaced pokes the notifier without pause and counts the notifications
// another connection receives: no two NOTIFYs closer than notifyInterval. Then a poke
// during the rest after a NOTIFY is carried by the next one. (Receipt times are not
// compared: a busy machine may wake the test late for one and on time for the next.)
func TestNotifyIsPaced(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := pgtest.MigratedDatabaseURL(t, Migrate)
	s, d, err := open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "LISTEN "+channelTimers)
	require.NoError(t, err)
	// received collects notifications until none came for a while.
	received := func() []time.Time {
		var got []time.Time
		for {
			wctx, wcancel := context.WithTimeout(ctx, 10*notifyInterval)
			_, err := conn.WaitForNotification(wctx)
			wcancel()
			if err != nil {
				return got
			}
			got = append(got, time.Now())
		}
	}
	poke := func() { d.notifier.poke(sqlstore.Topics{Timers: true}) }

	const poking = 20 * notifyInterval
	start := time.Now()
	for time.Since(start) < poking {
		poke()
		time.Sleep(50 * time.Microsecond)
	}
	got := received()
	require.NotEmpty(t, got)
	elapsed := got[len(got)-1].Sub(start)
	assert.LessOrEqual(t, len(got), int(elapsed/notifyInterval)+1,
		"%d notifications in %s: NOTIFYs at least %s apart", len(got), elapsed, notifyInterval)
	t.Logf("%d notifications for pokes over %s", len(got), poking)

	poke()
	_, err = conn.WaitForNotification(ctx) // sent: the notifier rests
	require.NoError(t, err)
	poke()
	require.Len(t, received(), 1, "the poke during the rest is carried by the next NOTIFY")
}
