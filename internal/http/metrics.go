package http

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series the API and the engine record. They live in the
// registry passed to NewMetrics, never in the global one, so that several servers (in
// tests) can run in one process.
type Metrics struct {
	inputs       *prometheus.CounterVec
	ended        *prometheus.CounterVec
	decisions    *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
}

// NewMetrics creates the series and registers them with reg. It panics when reg
// already holds them (a programming error).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ironflow_inputs_total",
			Help: "Inputs decided, by workflow type, input type and outcome (accepted, rejected, already_completed).",
		}, []string{"workflow_type", "input_type", "outcome"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ironflow_instances_ended_total",
			Help: "Instances that ended, by workflow type and status (completed, failed, terminated).",
		}, []string{"workflow_type", "status"}),
		decisions: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ironflow_decision_duration_seconds",
			Help:    "Time to decide and commit one input (lock, load, decide, append), by workflow type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"workflow_type"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ironflow_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ironflow_http_request_duration_seconds",
			Help:    "HTTP request latency, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.inputs, m.ended, m.decisions, m.httpRequests, m.httpDuration)
	return m
}

// ObserveDecision records one decided input; it fits engine.Config.ObserveDecisionFunc.
func (m *Metrics) ObserveDecision(workflowType, inputType, outcome string, d time.Duration) {
	m.inputs.WithLabelValues(workflowType, inputType, outcome).Inc()
	m.decisions.WithLabelValues(workflowType).Observe(d.Seconds())
}

// ObserveEnded records one instance that ended; it fits engine.Config.ObserveEndedFunc.
func (m *Metrics) ObserveEnded(workflowType, status string) {
	m.ended.WithLabelValues(workflowType, status).Inc()
}

// observeRequest records one served HTTP request. route is the chi pattern, so ids do
// not explode the label space.
func (m *Metrics) observeRequest(method, route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}
