package recovery

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A panic before anything was written is answered 500 and logged with its
// stack; one after the answer began is logged and the answer left as is;
// http.ErrAbortHandler is net/http's to handle.
func TestHandler(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	answered := func(w http.ResponseWriter, _ *http.Request, wrote bool) {
		if !wrote {
			w.WriteHeader(500)
			w.Write([]byte("sorry"))
		}
	}
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			w.Write([]byte("partial"))
		}
		var m map[string]int
		m["x"] = 1 // a nil map: a bug
	}), log, answered)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/early?q=1", nil))
	if rec.Code != 500 || rec.Body.String() != "sorry" || !strings.Contains(logs.String(), "assignment to entry in nil map") || !strings.Contains(logs.String(), "recovery_test.go") {
		t.Fatalf("early panic: %d %q\n%s", rec.Code, rec.Body, logs.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/late", nil))
	if rec.Body.String() != "partial" {
		t.Fatalf("late panic: %q", rec.Body)
	}
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Fatalf("ErrAbortHandler was not passed on: %v", p)
		}
	}()
	Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), log, answered).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}
