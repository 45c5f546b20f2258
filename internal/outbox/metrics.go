package outbox

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	lag        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
	for _, c := range []prometheus.Collector{m.deliveries, m.duration, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("outbox: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeAttempt(o outcome) {
	m.duration.Observe(o.attempt.Duration.Seconds())
}
