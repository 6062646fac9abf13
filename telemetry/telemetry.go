// Package telemetry holds usersync's Prometheus metrics (client_golang):
// HTTP requests, provisioner runs and schedule runs, with latencies as
// histograms so that the series of several replicas add up in Prometheus
// (summaries' quantiles do not).
package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usersync/usersync"
)

// Metrics is one process's (or one test server's) set of metrics.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpErrors   *prometheus.CounterVec
	httpPanics   *prometheus.CounterVec

	provRuns        *prometheus.CounterVec
	provDuration    *prometheus.HistogramVec
	provLastSuccess *prometheus.GaugeVec
	provActions     *prometheus.CounterVec
	provFailed      *prometheus.CounterVec

	schedRuns        *prometheus.CounterVec
	schedDuration    *prometheus.HistogramVec
	schedLastSuccess *prometheus.GaugeVec
}

// Request latencies, from 1 ms to 10 s; run durations, from 10 ms to an hour.
var (
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	runBuckets     = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600}
)

// New makes a registry with the process and Go runtime collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(g)
		return g
	}
	m.httpRequests = counter("usersync_http_requests_total", "HTTP requests by route pattern, method and status code.", "route", "method", "code")
	m.httpDuration = histogram("usersync_http_request_duration_seconds", "HTTP request latency.", requestBuckets, "route", "method")
	m.httpErrors = counter("usersync_http_errors_total", "HTTP answers with a 5xx status, by route.", "route")
	m.httpPanics = counter("usersync_http_panics_total", "Handler panics (bugs), answered 500, by route.", "route")
	m.provRuns = counter("usersync_provisioner_runs_total", "Provisioner runs by result (ok, error).", "provisioner", "result")
	m.provDuration = histogram("usersync_provisioner_run_duration_seconds", "Provisioner run duration.", runBuckets, "provisioner")
	m.provLastSuccess = gauge("usersync_provisioner_last_success_timestamp_seconds", "When a provisioner last ran without error (Unix time).", "provisioner")
	m.provActions = counter("usersync_provisioner_actions_total", "Writes and decisions of provisioner runs, by kind.", "provisioner", "action")
	m.provFailed = counter("usersync_provisioner_failed_groups_total", "Groups that failed in provisioner runs.", "provisioner")
	m.schedRuns = counter("usersync_schedule_runs_total", "Schedule runs by outcome (succeeded, failed).", "schedule", "outcome")
	m.schedDuration = histogram("usersync_schedule_run_duration_seconds", "Schedule run duration.", runBuckets, "schedule")
	m.schedLastSuccess = gauge("usersync_schedule_last_success_timestamp_seconds", "When a schedule last ran successfully (Unix time).", "schedule")
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request records an HTTP request; route and method come from fixed sets.
func (m *Metrics) Request(route, method string, code int, took time.Duration) {
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(took.Seconds())
	if code >= 500 {
		m.httpErrors.WithLabelValues(route).Inc()
	}
}

// Panic records a handler's panic.
func (m *Metrics) Panic(route string) { m.httpPanics.WithLabelValues(route).Inc() }

// ProvisionerRun records a provisioner run: its actions by kind and the
// groups that failed.
func (m *Metrics) ProvisionerRun(name string, ok bool, took time.Duration, actions map[string]int, failedGroups int) {
	result := "error"
	if ok {
		result = "ok"
		m.provLastSuccess.WithLabelValues(name).Set(float64(time.Now().Unix()))
	}
	m.provRuns.WithLabelValues(name, result).Inc()
	m.provDuration.WithLabelValues(name).Observe(took.Seconds())
	for k, n := range actions {
		m.provActions.WithLabelValues(name, k).Add(float64(n))
	}
	m.provFailed.WithLabelValues(name).Add(float64(failedGroups))
}

// ScheduleRun records a schedule run.
func (m *Metrics) ScheduleRun(name, outcome string, took time.Duration) {
	m.schedRuns.WithLabelValues(name, outcome).Inc()
	m.schedDuration.WithLabelValues(name).Observe(took.Seconds())
	if outcome == usersync.RunSucceeded {
		m.schedLastSuccess.WithLabelValues(name).Set(float64(time.Now().Unix()))
	}
}
