package timer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	fired *prometheus.CounterVec
	lag   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
	for _, c := range []prometheus.Collector{m.fired, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("timer: register metrics: %w", err)
		}
	}
	return m, nil
}
