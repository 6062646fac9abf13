// Package server assembles usersync's long-running HTTP service: SCIM at
// /scim/v2, health (/healthz, /readyz) and Prometheus metrics (/metrics),
// with structured access logs. The admin UI and REST API will mount here.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/adminui"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/internal/recovery"
	"github.com/usersync/usersync/scim"
	"github.com/usersync/usersync/telemetry"
)

// SCIMPath is where SCIM is served.
const SCIMPath = "/scim/v2"

// Options configure the service.
type Options struct {
	SCIMLogDir string // where ENABLE_SCIM_REQUEST_LOGGER=Y writes requests
	// AccessLog says which requests get an access-log line: AccessAll
	// (the default), AccessErrors (status 400 and above) or AccessNone.
	AccessLog string
	// Metrics is the set /metrics serves, shared with the parts of the
	// service that count their own (the provisioners); nil: a new one.
	Metrics *telemetry.Metrics
	API     api.Options // what the REST API needs of the process
}

// Access-log levels.
const (
	AccessAll    = "all"
	AccessErrors = "errors"
	AccessNone   = "none"
)

// Writable is a directory that can tell whether it accepts writes now
// (sqlstore.DB does); /readyz asks it.
type Writable interface {
	CheckWritable(ctx context.Context) error
}

// New returns the service's handler over dir.
func New(dir usersync.Directory, log *slog.Logger, o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := dir.LastChangeSeq(ctx); err != nil {
			log.Warn("not ready: the directory does not answer", "err", usersync.ErrorMessage(err))
			http.Error(w, "directory unavailable", http.StatusServiceUnavailable)
			return
		}
		if wr, ok := dir.(Writable); ok {
			if err := wr.CheckWritable(ctx); err != nil {
				log.Warn("not ready: the directory cannot be written", "err", usersync.ErrorMessage(err))
				http.Error(w, "directory cannot be written", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	// Each server counts its own requests: two in one process (tests, the
	// demo) do not add up.
	set := o.Metrics
	if set == nil {
		set = telemetry.New()
	}
	mux.Handle("GET /metrics", set.Handler())
	mux.Handle(SCIMPath+"/", scim.New(dir, SCIMPath, log, o.SCIMLogDir))
	if o.API.Log == nil {
		o.API.Log = log
	}
	mux.Handle(api.Path+"/", api.New(dir, o.API))
	mux.Handle(adminui.Path+"/", adminui.New(dir, &api.Local{Dir: dir, Options: o.API}, log))
	return observe(mux, log, set, o.AccessLog)
}

// scimResources are the SCIM paths served; requests for any other path
// share one route label, so that no request can add a metric series of
// its own (they come before authentication).
var scimResources = map[string]bool{"ServiceProviderConfig": true, "ResourceTypes": true, "Schemas": true, "Users": true, "Groups": true}

// apiResources are the API's first path segments.
var apiResources = map[string]bool{"users": true, "groups": true, "folders": true, "tokens": true, "settings": true, "changes": true, "schedules": true, "runs": true, "provisioners": true, "openapi.json": true, "openapi.yaml": true, "openapi-3.0.json": true}

// route names a request for metrics by the pattern it matched, from a
// fixed set: ids in SCIM paths become {id}.
func route(path string) string {
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return path
	case strings.HasPrefix(path, api.Path+"/"):
		first, rest, _ := strings.Cut(strings.TrimPrefix(path, api.Path+"/"), "/")
		if !apiResources[first] {
			return api.Path + "/other"
		}
		if rest == "" {
			return api.Path + "/" + first
		}
		return api.Path + "/" + first + "/{…}"
	case strings.HasPrefix(path, SCIMPath+"/"):
		parts := strings.Split(strings.TrimPrefix(path, SCIMPath+"/"), "/")
		if !scimResources[parts[0]] {
			return SCIMPath + "/other"
		}
		switch {
		case len(parts) == 1:
			return SCIMPath + "/" + parts[0]
		case len(parts) == 2 && parts[0] != "ServiceProviderConfig":
			return SCIMPath + "/" + parts[0] + "/{id}"
		}
		return SCIMPath + "/other"
	}
	return "other"
}

// method is a request's method for metrics, from a fixed set.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return m
	}
	return "OTHER"
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.status, w.wrote = code, true
	if code != scim.StatusClientGone { // recorded, not sent: nobody reads it
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// observe counts requests by route, method and status, times them, logs
// each one as opts say (never its headers: they carry tokens), and turns a
// handler's panic into a logged, counted 500 instead of a dropped
// connection that neither the log nor the metrics would see.
func observe(next http.Handler, log *slog.Logger, set *telemetry.Metrics, accessLog string) http.Handler {
	checked := recovery.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := checkURL(r); msg != "" {
			refuse(w, r, msg)
			return
		}
		next.ServeHTTP(w, r)
	}), log, func(w http.ResponseWriter, r *http.Request, wrote bool) {
		set.Panic(route(r.URL.Path))
		sw := w.(*statusWriter)
		if wrote {
			sw.status = http.StatusInternalServerError
			return
		}
		sw.Header().Set("Content-Type", scim.MediaType)
		sw.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(sw, `{"schemas":[%q],"status":"500","detail":"internal error (request id %s; the server's log has the cause)"}`+"\n", scim.SchemaError, usersync.RequestID(r.Context()))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt, m, path := route(r.URL.Path), method(r.Method), r.URL.Path
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(usersync.WithRequestID(r.Context(), id))
		sw := &statusWriter{ResponseWriter: w, status: 200}
		checked.ServeHTTP(sw, r)
		if r.Context().Err() != nil && !sw.wrote {
			sw.status = scim.StatusClientGone
		}
		d := time.Since(start)
		set.Request(rt, m, sw.status, d) // latency as a histogram: replicas add up
		if rt == "/healthz" || rt == "/readyz" || rt == "/metrics" || accessLog == AccessNone || (accessLog == AccessErrors && sw.status < 400) {
			return
		}
		level := slog.LevelInfo
		if sw.status >= 500 && sw.status != scim.StatusClientGone {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "request", "method", r.Method, "path", path, "status", sw.status, "duration_ms", float64(d.Microseconds())/1000, "request_id", id)
	})
}

// MaxParam bounds a query parameter's value and MaxPath a request's path,
// in bytes: no search, filter or id needs more, and SQLite refuses a LIKE
// pattern over 50,000 bytes with an error that was a 500.
const (
	MaxParam = 8 << 10
	MaxPath  = 4 << 10
)

// checkURL refuses, for every part of the service at once, a path or
// query parameter that cannot be a name, id or search: a NUL character
// (PostgreSQL refuses it in text: it was a 500), invalid UTF-8, or too
// many bytes. It returns what is wrong, naming the part, or "".
func checkURL(r *http.Request) string {
	if len(r.URL.Path) > MaxPath {
		return fmt.Sprintf("the path has %d bytes; at most %d are accepted", len(r.URL.Path), MaxPath)
	}
	if p := textProblem(r.URL.Path); p != "" {
		return "the path " + p
	}
	raw := r.URL.RawQuery
	if len(raw) <= MaxParam && plainASCII(raw) {
		return "" // nothing encoded, nothing long: the common case, without parsing
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "the query string is malformed: " + err.Error()
	}
	for k, vs := range q {
		if p := textProblem(k); p != "" {
			return fmt.Sprintf("the name of query parameter %q %s", k, p)
		}
		for _, v := range vs {
			if len(v) > MaxParam {
				return fmt.Sprintf("query parameter %q has %d bytes; at most %d are accepted", k, len(v), MaxParam)
			}
			if p := textProblem(v); p != "" {
				return fmt.Sprintf("query parameter %q %s", k, p)
			}
		}
	}
	return ""
}

// textProblem says what makes s unfit to store or compare, or "".
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL character (%00)"
	}
	return ""
}

// plainASCII reports a query string with no escape and no byte outside
// printable ASCII: it can hold no NUL and no invalid UTF-8.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// refuse answers 400 in the form of the part the request was for: a SCIM
// error, an API problem, or plain text.
func refuse(w http.ResponseWriter, r *http.Request, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, SCIMPath+"/"):
		w.Header().Set("Content-Type", scim.MediaType)
		w.WriteHeader(http.StatusBadRequest)
		b, _ := json.Marshal(map[string]any{"schemas": []string{scim.SchemaError}, "status": "400", "scimType": "invalidValue", "detail": msg})
		w.Write(append(b, '\n'))
	case strings.HasPrefix(r.URL.Path, api.Path+"/"):
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		b, _ := json.Marshal(map[string]any{"title": "Bad Request", "status": 400, "detail": msg})
		w.Write(append(b, '\n'))
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintln(w, msg)
	}
}

// newRequestID returns a short random id for a request.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
