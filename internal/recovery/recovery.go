// Package recovery turns a handler's panic into a logged 500: without it
// net/http drops the connection, the client sees a reset, and nothing but
// stderr (if anyone reads it) says why.
package recovery

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/usersync/usersync"
)

// Handler serves next; a panic is logged with its stack and the request's
// id on log (the default logger when nil), then answer is called with the
// writer next was given and whether next had written to it: it answers 500
// when it had not. http.ErrAbortHandler passes through: it is net/http's
// own way to abort a response.
func Handler(next http.Handler, log *slog.Logger, answer func(w http.ResponseWriter, r *http.Request, wrote bool)) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			log.Error("request failed: the handler panicked (a bug)", "method", r.Method, "path", r.URL.Path, "request_id", usersync.RequestID(r.Context()),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			answer(w, r, tw.wrote)
		}()
		next.ServeHTTP(tw, r)
	})
}

type trackWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *trackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
