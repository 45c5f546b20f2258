package timer

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironflow/ironflow/internal/store"
)

// statsTimeout bounds the store query behind one scrape of the backlog gauges.
const statsTimeout = 5 * time.Second

type metrics struct {
	fired *prometheus.CounterVec
	lag   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, st store.Store, now func() time.Time) (*metrics, error) {
	m := &metrics{
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ironflow_timers_fired_total",
			Help: "Timer firings by result: fired, retry, dead, lease_lost, error.",
		}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ironflow_timer_firing_lag_seconds",
			Help:    "Time from a timer falling due (fire_at, or its retry time) to its execution.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.fired, m.lag, &backlog{store: st, now: now}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("timer: register metrics: %w", err)
		}
	}
	return m, nil
}

var (
	pendingDesc = prometheus.NewDesc("ironflow_timers_pending", "Timers waiting to fire.", nil, nil)
	deadDesc    = prometheus.NewDesc("ironflow_timers_dead",
		"Timers that exhausted their attempts and wait for an operator.", nil, nil)
)

// backlog reads the timer figures from the store at scrape time.
type backlog struct {
	store store.Store
	now   func() time.Time
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- deadDesc
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	st, err := b.store.Stats(ctx, b.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.PendingTimers))
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(st.DeadTimers))
}
