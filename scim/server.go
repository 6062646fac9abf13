package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/jsonenc"
)

// MaxFilter bounds a filter, in bytes, in a query or a search body.
const MaxFilter = 8 << 10

// MaxBody bounds request bodies; MaxResults bounds a page of a list, and
// DefaultPageSize is a page when the client gives no count.
const (
	MaxBody         = 1 << 20
	MaxResults      = 200
	DefaultPageSize = 100
)

// MediaType is SCIM's JSON media type.
const MediaType = "application/scim+json"

// Schema URIs (RFC 7643).
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaListResp   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// MaxUserName is the longest userName accepted over SCIM (the seed's limit).
const MaxUserName = 100

// SourceSCIM owns users and groups created over SCIM.
const SourceSCIM = "scim"

// Server serves SCIM over a directory at its mount point (e.g. /scim/v2).
type Server struct {
	dir  usersync.Directory
	base string // the mount path, for meta.location
	log  *slog.Logger
	mux  *http.ServeMux
	reqs *requestLog
}

// New returns a SCIM server for dir mounted at base ("/scim/v2"). While
// ENABLE_SCIM_REQUEST_LOGGER is Y, requests and responses are written to
// daily files in logDir ("" disables that).
func New(dir usersync.Directory, base string, log *slog.Logger, logDir string) *Server {
	s := &Server{dir: dir, base: strings.TrimRight(base, "/"), log: log, mux: http.NewServeMux(), reqs: &requestLog{dir: logDir}}
	s.mux.HandleFunc("GET /ServiceProviderConfig", s.serviceProviderConfig)
	s.mux.HandleFunc("GET /ResourceTypes", s.resourceTypes)
	s.mux.HandleFunc("GET /ResourceTypes/{name}", s.resourceType)
	s.mux.HandleFunc("GET /Schemas", s.schemas)
	s.mux.HandleFunc("GET /Schemas/{id}", s.schema)
	s.mux.HandleFunc("GET /Users", s.listUsers)
	s.mux.HandleFunc("POST /Users", s.createUser)
	s.mux.HandleFunc("GET /Users/{id}", s.getUser)
	s.mux.HandleFunc("DELETE /Users/{id}", s.deleteUser)
	s.mux.HandleFunc("PATCH /Users/{id}", s.patchUser)
	s.mux.HandleFunc("PUT /Users/{id}", s.putUser)
	s.mux.HandleFunc("GET /Groups", s.listGroups)
	s.mux.HandleFunc("POST /Groups", s.createGroup)
	s.mux.HandleFunc("GET /Groups/{id}", s.getGroup)
	s.mux.HandleFunc("PATCH /Groups/{id}", s.patchGroup)
	s.mux.HandleFunc("PUT /Groups/{id}", s.putGroup)
	s.mux.HandleFunc("DELETE /Groups/{id}", s.deleteGroup)
	s.mux.HandleFunc("POST /Bulk", s.bulk)
	s.mux.HandleFunc("POST /Users/.search", s.search(s.listUsers))
	s.mux.HandleFunc("POST /Groups/.search", s.search(s.listGroups))
	s.mux.HandleFunc("POST /.search", s.rootSearch)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: 404, Detail: r.Method + " " + r.URL.Path + " is not served (yet): see /ServiceProviderConfig"})
	})
	return s
}

// ServeHTTP authenticates the request (a bearer API token of an enabled
// administrator) and serves it; paths are relative to the mount point.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The scheme is case-insensitive (RFC 7235 §2.1); a 401 names it
	// (RFC 6750 §3, RFC 7644 §2).
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="usersync SCIM"`)
		writeError(w, &Error{Status: 401, Detail: "missing bearer token: send an API token of an administrator as Authorization: Bearer <token>"})
		return
	}
	u, err := s.dir.Authenticate(r.Context(), strings.TrimSpace(tok))
	if usersync.ErrorCode(err) == usersync.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="usersync SCIM", error="invalid_token"`)
		writeError(w, &Error{Status: 401, Detail: "the bearer token is not a valid API token"})
		return
	} else if err != nil { // the directory failed, not the client
		s.fail(w, r, err)
		return
	}
	if err := checkQuery(r); err != nil {
		s.fail(w, r, err)
		return
	}
	if u.Type != usersync.UserAdministrator {
		writeError(w, &Error{Status: 403, Detail: "the API token belongs to " + u.Username + ", who is not an administrator"})
		return
	}
	r = r.WithContext(context.WithValue(usersync.WithActor(r.Context(), "scim:"+u.Username), tokenOwnerKey{}, u))
	rel := *r.URL // a copy: the caller's URL stays as it was
	rel.Path = canonicalPath(strings.TrimPrefix(r.URL.Path, s.base))
	rel.RawPath = ""
	r.URL = &rel
	s.reqs.wrap(s, w, r, s.mux.ServeHTTP)
}

type tokenOwnerKey struct{}

// refuseSelf refuses to delete or disable u when it is the administrator
// whose API token the request carries: the token would stop working with
// it, and the client would get 401 for every request after, from then on,
// with nothing saying why.
func refuseSelf(r *http.Request, u *usersync.User, what string) error {
	if owner, _ := r.Context().Value(tokenOwnerKey{}).(*usersync.User); owner != nil && owner.ID == u.ID {
		return &Error{Status: http.StatusForbidden, Detail: fmt.Sprintf("refused to %s %s: it is the administrator this request's API token belongs to, and the token would stop working "+
			"(every later request would get 401); use another administrator's token, or usersync users on the command line", what, u.Username)}
	}
	return nil
}

// endpoints are the resource paths' first segments as served.
var endpoints = map[string]string{}

func init() {
	for _, e := range []string{"Users", "Groups", "Schemas", "ResourceTypes", "ServiceProviderConfig", "Bulk", ".search"} {
		endpoints[strings.ToLower(e)] = e
	}
}

// canonicalPath is a request path relative to the mount, with its
// endpoint spelled as served and no trailing slash: clients that send
// /users or /Users/ are understood (a lenience that breaks no RFC client).
func canonicalPath(p string) string {
	p = "/" + strings.Trim(p, "/")
	segs := strings.SplitN(p[1:], "/", 3)
	if e, ok := endpoints[strings.ToLower(segs[0])]; ok {
		segs[0] = e
	}
	if len(segs) == 2 && strings.EqualFold(segs[1], ".search") {
		segs[1] = ".search"
	}
	return "/" + strings.Join(segs, "/")
}

// root is the absolute URL of the SCIM mount as the client addressed it:
// meta.location, $ref and Location are absolute URIs (RFC 7643 §3.1,
// RFC 7644 §3.3). Behind a TLS-terminating proxy, X-Forwarded-Proto says
// the scheme.
func (s *Server) root(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + s.base
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers a SCIM error body (RFC 7644 §3.12).
func writeError(w http.ResponseWriter, e *Error) {
	body := map[string]any{"schemas": []string{SchemaError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	writeJSON(w, e.Status, body)
}

// fail turns a directory error into a SCIM error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away (or gave up): nobody reads an answer, and
		// nothing is wrong with the directory.
		s.log.Info("scim request abandoned: the client went away before the answer", "method", r.Method, "path", r.URL.Path)
		w.WriteHeader(StatusClientGone)
		return
	}
	var se *Error
	if errors.As(err, &se) {
		writeError(w, se)
		return
	}
	msg := usersync.ErrorMessage(err)
	switch usersync.ErrorCode(err) {
	case usersync.ENOTFOUND:
		writeError(w, &Error{Status: 404, Detail: msg})
	case usersync.ECONFLICT:
		writeError(w, &Error{Status: 409, ScimType: "uniqueness", Detail: msg})
	case usersync.ESTALE:
		if r.Header.Get("If-Match") != "" {
			writeError(w, &Error{Status: http.StatusPreconditionFailed, Detail: msg})
		} else {
			writeError(w, &Error{Status: http.StatusConflict, Detail: msg + "; send the request again"})
		}
	case usersync.EINVALID:
		writeError(w, &Error{Status: 400, ScimType: "invalidValue", Detail: msg})
	case usersync.EFORBIDDEN: // e.g. renaming or deleting the built-in Default Group
		writeError(w, &Error{Status: http.StatusForbidden, Detail: msg})
	case usersync.EUNAVAILABLE:
		s.log.Warn("scim request failed: the directory is unavailable", "method", r.Method, "path", r.URL.Path, "err", msg)
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Detail: "the directory is unavailable; try again"})
	default:
		id := usersync.RequestID(r.Context())
		s.log.Error("scim request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		writeError(w, &Error{Status: 500, Detail: "internal error (request id " + id + "; the server's log has the cause)"})
	}
}

// StatusClientGone is recorded (never sent) for a request whose client
// went away before its answer, as nginx's 499 "client closed request".
const StatusClientGone = 499

// checkQuery refuses query parameters that cannot be stored or compared
// faithfully: NUL characters and invalid UTF-8.
func checkQuery(r *http.Request) error {
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			if err := usersync.ValidateText("query parameter "+k, map[string]string{"value": v}); err != nil {
				if k == "filter" {
					return &Error{Status: 400, ScimType: "invalidFilter", Detail: usersync.ErrorMessage(err)}
				}
				return invalidValue("%s", usersync.ErrorMessage(err))
			}
		}
	}
	return nil
}

// readBody decodes a JSON body of at most MaxBody bytes. Text that cannot
// be stored faithfully (invalid UTF-8, which would be replaced; NUL, which
// PostgreSQL refuses) is refused on every path, before anything is read.
func readBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return &Error{Status: 400, ScimType: "invalidSyntax", Detail: "reading the body: " + err.Error()}
	}
	if len(body) > MaxBody {
		return &Error{Status: 413, Detail: "the body is larger than " + strconv.Itoa(MaxBody) + " bytes"}
	}
	return decodeBody(body, v)
}

// decodeBody decodes a JSON body read whole.
func decodeBody(body []byte, v any) error {
	if !utf8.Valid(body) {
		return &Error{Status: 400, ScimType: "invalidSyntax", Detail: "the body is not valid UTF-8 (RFC 7644 §3.8: JSON in UTF-8)"}
	}
	if jsonenc.HasNUL(body) {
		return &Error{Status: 400, ScimType: "invalidValue", Detail: "the body holds a NUL character (\\u0000) in a string; usersync does not store it"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Status: 400, ScimType: "invalidSyntax", Detail: "the body is not the JSON expected: " + err.Error()}
	}
	return nil
}

// find reads the resource named by the path's {id}; it answers the error
// itself and returns nil when there is none.
func find[T any](s *Server, w http.ResponseWriter, r *http.Request, kind string, get func(context.Context, int64) (*T, error)) *T {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, &Error{Status: 404, Detail: kind + " " + r.PathValue("id") + " not found"})
		return nil
	}
	v, err := get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	return v
}

// writeList answers a ListResponse.
func writeList(w http.ResponseWriter, start, total int, resources []map[string]any) {
	if resources == nil {
		resources = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{SchemaListResp},
		"totalResults": total,
		"startIndex":   start,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	})
}

// readPatch reads and checks a PatchOp body.
func readPatch(r *http.Request) (*patchRequest, error) {
	var req patchRequest
	if err := readBody(r, &req); err != nil {
		return nil, err
	}
	return &req, req.check()
}

// ifMatch honours If-Match (RFC 7644 §3.14): a stale version is refused
// with 412 before anything is read from the body.
func ifMatch(w http.ResponseWriter, r *http.Request, version int64) bool {
	want := r.Header.Get("If-Match")
	if want == "" || want == "*" {
		return true
	}
	for _, t := range strings.Split(want, ",") {
		if strings.TrimSpace(t) == etag(version) {
			return true
		}
	}
	writeError(w, &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed: its version is " + etag(version) + ", not " + want})
	return false
}

// expectedVersion is the version a write that passed ifMatch must find
// when it commits (0: any), so that a change between the check and the
// write fails with 412 instead of being overwritten.
func expectedVersion(r *http.Request, version int64) int64 {
	if h := r.Header.Get("If-Match"); h != "" && h != "*" {
		return version
	}
	return 0
}

// attrName is an attributes/excludedAttributes entry without a value
// filter: some clients send emails[type eq "work"], read as emails.
func attrName(a string) string {
	a = strings.TrimSpace(a)
	if i := strings.IndexByte(a, '['); i >= 0 {
		rest := ""
		if j := strings.LastIndexByte(a, ']'); j > i {
			rest = a[j+1:]
		}
		a = a[:i] + rest
	}
	return a
}

// excluded reports whether a request's attributes/excludedAttributes leave
// out attr (only "members" is worth leaving out: it can be huge).
func excluded(r *http.Request, attr string) bool {
	q := r.URL.Query()
	has := func(list string) bool {
		for _, a := range strings.Split(list, ",") {
			a = attrName(a)
			a = strings.TrimPrefix(strings.TrimPrefix(a, SchemaGroup+":"), SchemaUser+":")
			if strings.EqualFold(a, attr) {
				return true
			}
		}
		return false
	}
	if v := q.Get("excludedAttributes"); v != "" && has(v) {
		return true
	}
	if v := q.Get("attributes"); v != "" && !has(v) {
		return true
	}
	return false
}

// project applies a request's attributes and excludedAttributes (RFC 7644
// §3.4.2.5) to a resource: id, schemas and meta.resourceType always stay.
// Names are top-level attributes ("name", "emails", "members"), a
// sub-attribute ("name.givenName") or, for the enterprise extension, its
// URN-qualified attributes.
func project(r *http.Request, res map[string]any) map[string]any {
	q := r.URL.Query()
	list := func(v string) []string {
		var out []string
		for _, a := range strings.Split(v, ",") {
			if a = attrName(a); a != "" {
				a = strings.TrimPrefix(strings.TrimPrefix(a, SchemaUser+":"), SchemaGroup+":")
				out = append(out, a)
			}
		}
		return out
	}
	// top names the top-level attribute a path is in, and whether the path
	// is that whole attribute.
	top := func(a string) (string, bool) {
		if strings.EqualFold(a, SchemaEnterprise) {
			return SchemaEnterprise, true
		}
		if _, ok := enterpriseKey(a); ok {
			return SchemaEnterprise, false
		}
		name, sub, _ := strings.Cut(a, ".")
		return name, sub == ""
	}
	find := func(key string) (string, bool) {
		for k := range res {
			if strings.EqualFold(k, key) {
				return k, true
			}
		}
		return "", false
	}
	if v := q.Get("attributes"); v != "" {
		out := map[string]any{"id": res["id"], "schemas": res["schemas"]}
		for _, a := range list(v) {
			key, _ := top(a)
			if k, ok := find(key); ok {
				out[k] = res[k]
			}
		}
		return out
	}
	if v := q.Get("excludedAttributes"); v != "" {
		for _, a := range list(v) {
			key, whole := top(a)
			if k, ok := find(key); ok && whole && k != "id" && k != "schemas" {
				delete(res, k)
			}
		}
	}
	return res
}
