package outbox

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
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	lag        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, st store.Store, now func() time.Time) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ironflow_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: delivered, retry, dead, gone (410), lease_lost, error.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ironflow_webhook_delivery_duration_seconds",
			Help:    "Duration of one webhook delivery attempt, from request to the end of the response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ironflow_effect_delivery_latency_seconds",
			Help:    "Time from an effect becoming due to its successful delivery being recorded.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.duration, m.lag, &backlog{store: st, now: now}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("outbox: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeAttempt(o outcome) {
	m.duration.Observe(o.attempt.Duration.Seconds())
}

var (
	pendingDesc = prometheus.NewDesc("ironflow_effects_pending",
		"Effects waiting to be delivered.", nil, nil)
	oldestDesc = prometheus.NewDesc("ironflow_effects_oldest_pending_age_seconds",
		"Age of the oldest pending effect (0 when none).", nil, nil)
	deadDesc = prometheus.NewDesc("ironflow_effects_dead",
		"Effects that exhausted their attempts and wait for an operator.", nil, nil)
)

// backlog reads the outbox figures from the store at scrape time, so every server
// sharing a database reports the same backlog.
type backlog struct {
	store store.Store
	now   func() time.Time
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- oldestDesc
	ch <- deadDesc
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	now := b.now()
	st, err := b.store.Stats(ctx, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	age := 0.0
	if st.OldestPendingEffect != nil {
		age = max(now.Sub(*st.OldestPendingEffect).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.PendingEffects))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(st.DeadEffects))
}
