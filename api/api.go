// Package api serves the REST API at /api/v1: the directory and usersync's
// own settings for scripts and the admin UI, described by an OpenAPI 3.1
// document generated from the handlers (huma), at /api/v1/openapi.json.
package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/jsonenc"
)

// Path is where the API is served.
const Path = "/api/v1"

// MaxBody bounds request bodies.
const MaxBody = 1 << 20

// New returns the API over dir. Every operation needs the bearer API token
// of an enabled administrator (401 without a valid one, 403 for anyone
// else); the OpenAPI document is public.
func New(dir usersync.Directory, o Options) http.Handler {
	mux := http.NewServeMux()
	config := huma.DefaultConfig("usersync API", "1")
	config.Info.Description = "The usersync directory (users, groups, members, folders), API tokens, settings and the change log. " +
		"Authenticate with an administrator's API token: Authorization: Bearer <token>."
	config.DocsPath = "" // the docs page would load scripts from a CDN
	config.CreateHooks = nil
	config.Components.SecuritySchemes = map[string]*huma.SecurityScheme{"bearer": {Type: "http", Scheme: "bearer", Description: "a usersync API token of an administrator"}}
	config.Security = []map[string][]string{{"bearer": {}}}
	s := &server{dir: dir, ops: &Local{Dir: dir, Options: o}, log: o.Log}
	if s.log == nil {
		s.log = slog.Default()
	}
	config.Transformers = append(config.Transformers, s.logInternal)
	a := humago.NewWithPrefix(mux, Path, config)
	s.api = a
	a.UseMiddleware(s.authenticate)
	s.users()
	s.groups()
	s.folders()
	s.tokens()
	s.settings()
	s.changes()
	s.schedules()
	s.scheduleWrites()
	s.provisioners()
	return http.MaxBytesHandler(checkBody(mux), MaxBody)
}

// checkBody refuses a JSON body holding text that cannot be stored or
// compared faithfully, whatever field it is in: invalid UTF-8 (the decoder
// would replace it) or a NUL character (PostgreSQL refuses it: a 500).
func checkBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			status, msg := http.StatusBadRequest, "reading the body: "+err.Error()
			if errors.As(err, &tooBig) {
				status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody)
			}
			writeProblem(w, status, msg)
			return
		}
		switch {
		case !utf8.Valid(body):
			writeProblem(w, http.StatusBadRequest, "the body is not valid UTF-8")
			return
		case jsonenc.HasNUL(body):
			writeProblem(w, http.StatusBadRequest, "the body holds a NUL character (\\u0000) in a string; usersync does not store it")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
	w.Write(append(b, '\n'))
}

type server struct {
	dir usersync.Directory // for authentication
	api huma.API
	ops *Local
	log *slog.Logger
}

// Options are what the API needs from the process that serves it.
type Options struct {
	// CheckCommand checks a schedule's command line as the command itself
	// reads it (the command line tool knows its commands); nil refuses to
	// create schedules.
	CheckCommand func(ctx context.Context, command []string) error
	// RunNow queues a run of a schedule; nil when this process runs no
	// schedules. duplicate: one was waiting or running already.
	RunNow func(ctx context.Context, name, startedBy string) (duplicate bool, err error)
	// Decide answers a quarantined run (see Operations.DecideRun); nil
	// when this process runs no schedules.
	Decide func(ctx context.Context, id int64, allow bool) (*usersync.Run, error)
	// Retry clears a provisioner's failures for a group and reconciles it
	// now; nil when this process runs no provisioners.
	Retry func(ctx context.Context, provisioner, group string) error
	// Log is where a failure of the server's own (a 500) is logged with
	// its cause; nil: the default logger.
	Log *slog.Logger
}

// authenticate admits administrators' API tokens and names them as the
// actor of the changes they make.
func (s *server) authenticate(ctx huma.Context, next func(huma.Context)) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(ctx.Header("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="usersync API"`)
		huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "missing bearer token: send an API token of an administrator as Authorization: Bearer <token>")
		return
	}
	u, err := s.dir.Authenticate(ctx.Context(), strings.TrimSpace(tok))
	if usersync.ErrorCode(err) == usersync.EUNAUTHORIZED {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="usersync API", error="invalid_token"`)
		huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "the bearer token is not a valid API token")
		return
	} else if err != nil {
		se := apiError(err)
		huma.WriteErr(s.api, ctx, se.GetStatus(), se.Error())
		return
	}
	if u.Type != usersync.UserAdministrator {
		huma.WriteErr(s.api, ctx, http.StatusForbidden, "the API token belongs to "+u.Username+", who is not an administrator")
		return
	}
	next(huma.WithContext(ctx, usersync.WithActor(ctx.Context(), "api:"+u.Username)))
}

// apiError maps a directory error onto its HTTP status, once for every
// operation: the message says what failed and why.
func apiError(err error) huma.StatusError {
	var se huma.StatusError
	if errors.As(err, &se) {
		return se
	}
	msg := usersync.ErrorMessage(err)
	switch usersync.ErrorCode(err) {
	case usersync.ENOTFOUND:
		return huma.Error404NotFound(msg)
	case usersync.ECONFLICT:
		return huma.Error409Conflict(msg)
	case usersync.ESTALE:
		return huma.Error412PreconditionFailed(msg)
	case usersync.EINVALID:
		return huma.Error422UnprocessableEntity(msg)
	case usersync.EFORBIDDEN:
		return huma.Error403Forbidden(msg)
	case usersync.EUNAUTHORIZED:
		return huma.Error401Unauthorized(msg)
	case usersync.EUNAVAILABLE:
		return huma.Error503ServiceUnavailable("the directory is unavailable; try again")
	}
	return &internalError{ErrorModel: huma.Error500InternalServerError("internal error").(*huma.ErrorModel), cause: err}
}

// internalError is a 500 that keeps its cause for the log: logInternal
// writes it there with the request's id, which the answer names.
type internalError struct {
	*huma.ErrorModel
	cause error
}

// logInternal is a response transformer: it sees every error answered,
// with the request, so a 500's cause is logged once with its request id.
func (s *server) logInternal(ctx huma.Context, status string, v any) (any, error) {
	if ie, ok := v.(*internalError); ok {
		id := usersync.RequestID(ctx.Context())
		s.log.Error("API request failed", "method", ctx.Method(), "path", ctx.URL().Path, "request_id", id, "err", ie.cause)
		ie.Detail = "internal error (request id " + id + "; the server's log has the cause)"
	}
	return v, nil
}

// etag is an object's version as a weak ETag.
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// version is the version an If-Match header lets a write apply to (0:
// any): the write itself checks it, so a change between reading and
// writing fails with 412 instead of being overwritten.
func (m IfMatch) version() (int64, error) {
	h := strings.TrimSpace(m.IfMatch)
	if h == "" || h == "*" {
		return 0, nil
	}
	if strings.Contains(h, ",") {
		return 0, huma.Error400BadRequest("If-Match names several ETags: send the one ETag of the version you read")
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v <= 0 {
		// No object of this API has that version: it cannot match (RFC 9110 §13.1.1).
		return 0, huma.Error412PreconditionFailed("If-Match " + h + " is not an ETag of this API: send the ETag header of the version you read")
	}
	return v, nil
}

// cursor is an opaque page position: the last row's sort value and id.
type cursor struct {
	Value any   `json:"v"`
	ID    int64 `json:"i"`
}

func encodeCursor(v any, id int64) string {
	b, _ := json.Marshal(cursor{v, id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*usersync.Position, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return nil, huma.Error400BadRequest("cursor is not one this API gave: pass next_cursor from the previous page as it is")
	}
	return &usersync.Position{Value: c.Value, ID: c.ID}, nil
}

// Paging are the query parameters of a paged listing.
type Paging struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"at most this many items"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// IfMatch is the header that makes a write conditional.
type IfMatch struct {
	IfMatch string `header:"If-Match" doc:"the ETag of the version the write applies to; 412 when the object changed"`
}

// longPoll waits up to wait for fn to find something, checking every 200 ms.
func longPoll[T any](ctx context.Context, wait time.Duration, fn func() ([]T, error)) ([]T, error) {
	deadline := time.Now().Add(wait)
	for {
		items, err := fn()
		if err != nil || len(items) > 0 || time.Now().After(deadline) {
			return items, err
		}
		select {
		case <-ctx.Done():
			return items, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
