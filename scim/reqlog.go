package scim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// requestLog writes each SCIM request and its response to a daily file in
// a directory while ENABLE_SCIM_REQUEST_LOGGER is Y. The setting is read at
// most once a second, so a change takes effect without a restart. Headers,
// query parameters and attributes whose names may carry credentials are
// masked, and a body that is not JSON is not written.
type requestLog struct {
	dir string

	mu      sync.Mutex
	checked time.Time
	on      bool
}

// maxLogged bounds how much of a body is logged.
const maxLogged = 64 << 10

func (l *requestLog) enabled(s *Server, r *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.checked) > time.Second {
		st, err := s.dir.Setting(r.Context(), "ENABLE_SCIM_REQUEST_LOGGER")
		l.on, l.checked = err == nil && st.Bool(), time.Now()
	}
	return l.on
}

type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.body.Len() < maxLogged {
		r.body.Write(b[:min(len(b), maxLogged-r.body.Len())])
	}
	return r.ResponseWriter.Write(b)
}

// wrap serves the request through next, logging both sides when enabled.
func (l *requestLog) wrap(s *Server, w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	if l == nil || l.dir == "" || !l.enabled(s, r) {
		next(w, r)
		return
	}
	reqBody, _ := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	r.Body = readCloser{bytes.NewReader(reqBody)}
	rec := &recorder{ResponseWriter: w, status: 200}
	start := time.Now()
	next(rec, r)
	headers := map[string]string{}
	for k := range r.Header {
		v := r.Header.Get(k)
		if secretName(k) {
			v = "********"
		}
		headers[k] = v
	}
	query := r.URL.Query()
	for k := range query {
		if secretName(k) {
			query[k] = []string{"********"}
		}
	}
	entry := map[string]any{"time": start.UTC().Format(time.RFC3339Nano), "method": r.Method, "path": r.URL.Path, "query": query.Encode(),
		"headers": headers, "request": redactJSON(reqBody), "status": rec.status, "response": redactJSON(rec.body.Bytes()),
		"duration_ms": float64(time.Since(start).Microseconds()) / 1000}
	line, _ := json.Marshal(entry)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		s.log.Warn("SCIM request log: cannot create its directory", "dir", l.dir, "err", err)
		return
	}
	f, err := os.OpenFile(filepath.Join(l.dir, "scim-"+start.UTC().Format("2006-01-02")+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.log.Warn("SCIM request log: cannot open", "dir", l.dir, "err", err)
		return
	}
	f.Write(append(line, '\n'))
	f.Close()
}

type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }

// secretName reports a header, parameter or attribute name that may carry
// a credential: its value is masked in the log.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"authorization", "cookie", "password", "secret", "token", "api-key", "apikey", "api_key", "x-api-key", "credential", "session"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactJSON returns a body for the log: JSON with secret fields masked.
// A body that is not JSON is not written at all (only its size): it could
// hold anything.
func redactJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return map[string]any{"unparsed": true, "bytes": len(b)}
	}
	return redactValue(v)
}

// redactValue masks secret attributes by name, and the value of a PATCH
// operation whose path names one ({"op": "replace", "path": "password",
// "value": …}).
func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if p, ok := x["path"].(string); ok && secretName(p) {
			if _, has := x["value"]; has {
				x["value"] = "********"
			}
		}
		for k, e := range x {
			if secretName(k) {
				x[k] = "********"
			} else {
				x[k] = redactValue(e)
			}
		}
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
	}
	return v
}
