package timer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/timer"
)

// benchDefinition: the fired input creates the instance and nothing else.
const benchDefinition = `{"initial_state": "new", "inputs": {"start": {}},
  "states": {"new": {"on": {"start": {"to": "started"}}}, "started": {"on": {"start": {}}}}}`

// BenchmarkTimerFiringLag schedules 10,000 delayed inputs due within the same second
// (spread evenly over it), each creating its own instance, lets one timer worker fire
// them, and reports the lag from each timer's fire_at to the commit of the input it
// fired (the instance's created_at), p50 and p99 in milliseconds. One iteration is the
// whole run; use -benchtime 1x. A run with 1,000 timers shows the lag when the
// database keeps up.
func BenchmarkTimerFiringLag(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		for _, be := range enginetest.Backends() {
			b.Run(fmt.Sprintf("%s/%d", be.Name, n), func(b *testing.B) { benchmarkFiringLag(b, be, n) })
		}
	}
}

func benchmarkFiringLag(b *testing.B, be enginetest.Backend, n int) {
	for range b.N {
		st := be.NewDatabase(b).Open(b)
		eng := engine.New(engine.Config{Store: st})
		_, _, err := eng.PutDefinition(context.Background(), rtType, []byte(benchDefinition))
		require.NoError(b, err)

		// Schedule first (in parallel), with the second they are due far enough
		// ahead that every timer is stored before the first is due: the head start
		// comes from the insert rate of a warm-up (timers due in an hour, which
		// stay out of the way).
		schedule := func(id string, at time.Time) error {
			now := time.Now().UTC()
			_, err := st.ScheduleTimer(context.Background(), store.Timer{
				ID: "tm-" + id, WorkflowType: rtType, WorkflowID: id, Key: "deliver:" + id,
				FireAt: at, InputType: "start", InputData: json.RawMessage(`{}`),
				Status: store.TimerPending, NextAttemptAt: at, CreatedAt: now, UpdatedAt: now,
			})
			return err
		}
		warm := time.Now()
		for i := range 200 {
			require.NoError(b, schedule(fmt.Sprintf("warm-%d", i), warm.Add(time.Hour)))
		}
		perInsert := time.Since(warm) / 200
		base := time.Now().Add(time.Second + 3*perInsert*time.Duration(n)/2).Truncate(time.Second).Add(time.Second)
		fireAt := make(map[string]time.Time, n)
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += 8 {
					id := fmt.Sprintf("t-%05d", i)
					at := base.Add(time.Duration(i) * time.Second / time.Duration(n))
					if err := schedule(id, at); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					fireAt[id] = at.UTC().Truncate(time.Microsecond)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		require.NoError(b, <-errs)
		require.True(b, time.Now().Before(base), "scheduling took too long; raise the head start")

		w, err := timer.New(timer.Config{Store: st, Engine: eng, Registerer: prometheus.NewRegistry()})
		require.NoError(b, err)
		b.ResetTimer()
		require.NoError(b, w.Start(context.Background()))
		require.Eventually(b, func() bool {
			page, err := st.ListInstances(context.Background(), store.ListInstancesParams{Type: rtType, Limit: 1, Status: store.StatusRunning})
			require.NoError(b, err)
			if len(page.Items) == 0 || !time.Now().After(base.Add(time.Second)) {
				return false
			}
			st, err := st.Stats(context.Background(), time.Now())
			require.NoError(b, err)
			return st.PendingTimers == 200 // only the warm-up ones are left

		}, 2*time.Minute, 20*time.Millisecond)
		b.StopTimer()
		require.NoError(b, w.Stop(context.Background()))

		lags := make([]time.Duration, 0, n)
		cursor := ""
		for {
			page, err := st.ListInstances(context.Background(), store.ListInstancesParams{Type: rtType, Cursor: cursor, Limit: 500})
			require.NoError(b, err)
			for _, in := range page.Items {
				lags = append(lags, in.CreatedAt.Sub(fireAt[in.ID]))
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		require.Len(b, lags, n)
		slices.Sort(lags)
		b.ReportMetric(float64(lags[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lags[n*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lags[n-1].Microseconds())/1000, "max-ms")
	}
}
