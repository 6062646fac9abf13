// Package server assembles usersync's long-running HTTP service: SCIM at
// /scim/v2, health (/healthz, /readyz) and Prometheus metrics (/metrics),
// with structured access logs. The admin UI and REST API will mount here.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim"
)

// SCIMPath is where SCIM is served.
const SCIMPath = "/scim/v2"

// Options configure the service.
type Options struct {
	SCIMLogDir string // where ENABLE_SCIM_REQUEST_LOGGER=Y writes requests
}

// New returns the service's handler over dir.
func New(dir usersync.Directory, log *slog.Logger, o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := dir.LastChangeSeq(ctx); err != nil {
			log.Warn("not ready: the directory does not answer", "err", err)
			http.Error(w, "directory unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	// Each server counts its own requests: two in one process (tests, the
	// demo) do not add up.
	set := metrics.NewSet()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.Handle(SCIMPath+"/", scim.New(dir, SCIMPath, log, o.SCIMLogDir))
	return observe(mux, log, set)
}

// route names a request for metrics with a bounded set of values: ids in
// SCIM paths become {id}.
func route(path string) string {
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return path
	case strings.HasPrefix(path, SCIMPath+"/"):
		parts := strings.Split(strings.TrimPrefix(path, SCIMPath+"/"), "/")
		switch {
		case len(parts) == 1:
			return SCIMPath + "/" + parts[0]
		case len(parts) == 2:
			return SCIMPath + "/" + parts[0] + "/{id}"
		}
	}
	return "other"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// observe counts requests by route, method and status, times them, and
// logs each one (never its headers: they carry tokens).
func observe(next http.Handler, log *slog.Logger, set *metrics.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt, path := route(r.URL.Path), r.URL.Path
		sw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		set.GetOrCreateCounter(fmt.Sprintf(`usersync_http_requests_total{route=%q,method=%q,code="%d"}`, rt, r.Method, sw.status)).Inc()
		// A summary (p50, p90, p99 over 5 minutes): Prometheus reads it as is.
		set.GetOrCreateSummaryExt(fmt.Sprintf(`usersync_http_request_duration_seconds{route=%q,method=%q}`, rt, r.Method), 5*time.Minute, []float64{0.5, 0.9, 0.99}).Update(d.Seconds())
		if sw.status >= 500 {
			set.GetOrCreateCounter(fmt.Sprintf(`usersync_http_errors_total{route=%q}`, rt)).Inc()
		}
		if rt != "/healthz" && rt != "/readyz" && rt != "/metrics" {
			log.Info("request", "method", r.Method, "path", path, "status", sw.status, "duration_ms", float64(d.Microseconds())/1000)
		}
	})
}
