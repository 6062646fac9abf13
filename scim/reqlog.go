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
// most once a second, so a change takes effect without a restart. Only
// known harmless headers and query parameters are written in clear,
// attributes whose names may carry credentials are masked, and a body
// that is not a JSON object is not written.
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
		if !loggedHeaders[http.CanonicalHeaderKey(k)] {
			v = "********"
		}
		headers[k] = v
	}
	query := r.URL.Query()
	for k := range query {
		if !loggedParams[strings.ToLower(k)] {
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

// loggedHeaders and loggedParams are written as sent; any other header or
// query parameter is written masked. A list of what is harmless, not of
// what is secret: a credential can come in a header nobody foresaw
// (X-Auth-Key, a proxy's own).
var loggedHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Content-Type": true, "Content-Length": true,
	"Content-Encoding": true, "User-Agent": true, "If-Match": true, "If-None-Match": true, "X-Request-Id": true,
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "Traceparent": true,
	"Client-Request-Id": true, "Connection": true,
}

var loggedParams = map[string]bool{ // RFC 7644 §3.4.2 and §3.9, RFC 9865's cursor; lower case
	"filter": true, "startindex": true, "count": true, "cursor": true, "sortby": true, "sortorder": true,
	"attributes": true, "excludedattributes": true,
}

// secretName reports an attribute name that may carry a credential: its
// value is masked in the log. Names are compared ignoring case (RFC 7643
// §2.1), and a URN-qualified name by its last part.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "secret", "token", "api-key", "apikey", "api_key", "credential", "session", "authorization", "cookie"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactJSON returns a body for the log: a JSON object with secret fields
// masked. Any other body (not JSON, or a bare string, number or array) is
// not written at all, only its size: it could hold anything.
func redactJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	var v map[string]any
	if json.Unmarshal(b, &v) != nil || v == nil {
		return map[string]any{"unparsed": true, "bytes": len(b)}
	}
	return redactValue(v)
}

// redactValue masks secret attributes by name, and the value of a PATCH
// operation whose path names one ({"op": "replace", "path": "password",
// "value": …}); member names are matched ignoring case, as a SCIM
// server reads them.
func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		secretPath := false
		for k, e := range x {
			if p, ok := e.(string); ok && strings.EqualFold(k, "path") && secretName(p) {
				secretPath = true
			}
		}
		for k, e := range x {
			if secretName(k) || (secretPath && strings.EqualFold(k, "value")) {
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
