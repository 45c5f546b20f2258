package worker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironflow/ironflow/internal/store"
)

// backlogTimeout bounds the store query behind one scrape of the backlog gauges.
const backlogTimeout = 5 * time.Second

// BacklogCollector exports the backlog of both workers (pending and dead effects, the
// oldest pending effect's age, pending and dead timers) from one store.Stats query per
// scrape. It reads the database at scrape time, so every server sharing a database
// reports the same figures.
type BacklogCollector struct {
	store   store.Store
	nowFunc func() time.Time

	effectsPending, effectsOldest, effectsDead, effectsCancelled *prometheus.Desc
	timersPending, timersDead                                    *prometheus.Desc
}

// NewBacklogCollector returns the collector for st; nowFunc is time.Now when nil.
func NewBacklogCollector(st store.Store, nowFunc func() time.Time) *BacklogCollector {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &BacklogCollector{
		store:   st,
		nowFunc: nowFunc,
		effectsPending: prometheus.NewDesc("ironflow_effects_pending",
			"Effects waiting to be delivered.", nil, nil),
		effectsOldest: prometheus.NewDesc("ironflow_effects_oldest_pending_age_seconds",
			"Age of the oldest pending effect (0 when none).", nil, nil),
		effectsDead: prometheus.NewDesc("ironflow_effects_dead",
			"Effects that exhausted their attempts and wait for an operator.", nil, nil),
		effectsCancelled: prometheus.NewDesc("ironflow_effects_cancelled",
			"Effects cancelled before delivery (their instance was terminated or left their state).", nil, nil),
		timersPending: prometheus.NewDesc("ironflow_timers_pending",
			"Timers waiting to fire.", nil, nil),
		timersDead: prometheus.NewDesc("ironflow_timers_dead",
			"Timers that exhausted their attempts and wait for an operator.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (b *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.effectsPending, b.effectsOldest, b.effectsDead, b.effectsCancelled, b.timersPending, b.timersDead} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; a store error makes the scrape report an
// invalid metric rather than stale figures.
func (b *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	now := b.nowFunc()
	st, err := b.store.Stats(ctx, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(b.effectsPending, err)
		return
	}
	age := 0.0
	if st.OldestPendingEffect != nil {
		age = max(now.Sub(*st.OldestPendingEffect).Seconds(), 0)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(b.effectsPending, float64(st.PendingEffects))
	gauge(b.effectsOldest, age)
	gauge(b.effectsDead, float64(st.DeadEffects))
	gauge(b.effectsCancelled, float64(st.CancelledEffects))
	gauge(b.timersPending, float64(st.PendingTimers))
	gauge(b.timersDead, float64(st.DeadTimers))
}
