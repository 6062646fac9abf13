package scim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// MaxBody bounds request bodies; MaxResults bounds a page of a list.
const (
	MaxBody    = 1 << 20
	MaxResults = 200
)

// MediaType is SCIM's JSON media type.
const MediaType = "application/scim+json"

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
	s.mux.HandleFunc("GET /Schemas", s.schemas)
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
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: 404, Detail: r.Method + " " + r.URL.Path + " is not served (yet): see /ServiceProviderConfig"})
	})
	return s
}

// ServeHTTP authenticates the request (a bearer API token of an enabled
// administrator) and serves it; paths are relative to the mount point.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		writeError(w, &Error{Status: 401, Detail: "missing bearer token: send an API token of an administrator as Authorization: Bearer <token>"})
		return
	}
	u, err := s.dir.Authenticate(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		writeError(w, &Error{Status: 401, Detail: "the bearer token is not a valid API token"})
		return
	}
	if u.Type != usersync.UserAdministrator {
		writeError(w, &Error{Status: 403, Detail: "the API token belongs to " + u.Username + ", who is not an administrator"})
		return
	}
	r = r.WithContext(usersync.WithActor(r.Context(), "scim:"+u.Username))
	rel := *r.URL // a copy: the caller's URL stays as it was
	rel.Path = "/" + strings.TrimLeft(strings.TrimPrefix(r.URL.Path, s.base), "/")
	r.URL = &rel
	s.reqs.wrap(s, w, r, s.mux.ServeHTTP)
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
		s.log.Warn("scim request failed: the directory is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Detail: "the directory is unavailable; try again"})
	default:
		s.log.Error("scim request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, &Error{Status: 500, Detail: "internal error"})
	}
}

// readBody decodes a JSON body of at most MaxBody bytes.
func readBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return &Error{Status: 400, ScimType: "invalidSyntax", Detail: "reading the body: " + err.Error()}
	}
	if len(body) > MaxBody {
		return &Error{Status: 413, Detail: "the body is larger than " + strconv.Itoa(MaxBody) + " bytes"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Status: 400, ScimType: "invalidSyntax", Detail: "the body is not the JSON expected: " + err.Error()}
	}
	return nil
}

// paging reads startIndex (1-based; below 1 means 1, RFC 7644 §3.4.2.4) and
// count (default 100, at most MaxResults).
func paging(r *http.Request) (start, count int, err error) {
	start, count = 1, 100
	q := r.URL.Query()
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, invalidValue("startIndex must be an integer, not %q", v)
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, invalidValue("count must be an integer, not %q", v)
		}
		count = min(max(n, 0), MaxResults)
	}
	return start, count, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, count, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := usersync.UserFilter{Offset: start - 1, Limit: count}
	if v := q.Get("filter"); v != "" {
		e, err := filter.Parse(v)
		if err != nil {
			writeError(w, &Error{Status: 400, ScimType: "invalidFilter", Detail: err.Error()})
			return
		}
		if f.Where, err = userCond(e, sd.prefix); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	var users []*usersync.User
	var total int
	if count == 0 {
		f.Limit = 1 // only the total is asked for
		_, total, err = s.dir.FindUsers(r.Context(), f)
	} else {
		users, total, err = s.dir.FindUsers(r.Context(), f)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resources := make([]map[string]any, 0, len(users))
	for _, u := range users {
		resources = append(resources, project(r, s.userJSON(r, u, sd.prefix)))
	}
	writeList(w, start, total, resources)
}

func (s *Server) findUser(w http.ResponseWriter, r *http.Request) *usersync.User {
	return find(s, w, r, "user", s.dir.FindUserByID)
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

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil {
		return
	}
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, 200, project(r, s.userJSON(r, u, sd.prefix)))
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil {
		return
	}
	if err := s.dir.DeleteUser(r.Context(), u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var in userResource
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := in.toUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.dir.CreateUser(r.Context(), u); err != nil {
		if usersync.ErrorCode(err) == usersync.ECONFLICT {
			writeError(w, &Error{Status: 409, ScimType: "uniqueness", Detail: "userName " + strconv.Quote(u.Username) + " is taken"})
			return
		}
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", s.root(r)+"/Users/"+strconv.FormatInt(u.ID, 10))
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, http.StatusCreated, s.userJSON(r, u, "")) // created enabled: no soft-delete prefix
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

// softDelete is what active=false means, from the settings.
type softDelete struct {
	remove bool   // delete the user
	prefix string // else disable it and prefix its username
}

func (s *Server) softDelete(r *http.Request) (softDelete, error) {
	rm, err := s.dir.Setting(r.Context(), "SCIM_REMOVE_USER_ON_SOFT_DELETE")
	if err != nil {
		return softDelete{}, err
	}
	p, err := s.dir.Setting(r.Context(), "SCIM_SOFT_DELETE_PREFIX")
	return softDelete{remove: rm.Bool(), prefix: p.Value}, err
}

// scimName is the userName a SCIM client sees: a soft-deleted user's name
// without the prefix that marks it in the directory, so that the client
// finds the user it disabled by the name it gave it.
func scimName(u *usersync.User, prefix string) string {
	if !u.Enabled && prefix != "" {
		return strings.TrimPrefix(u.Username, prefix)
	}
	return u.Username
}

// stateOf is what SCIM sees of a user: a soft-deleted user's name without
// the prefix it got when it was disabled.
func stateOf(u *usersync.User, prefix string) userState {
	st := userState{UserName: scimName(u, prefix), GivenName: u.FirstName, FamilyName: u.LastName, Email: u.Email,
		Active: u.Enabled, Attrs: map[string]string{}}
	if u.Source == SourceSCIM {
		st.ExternalID = u.SourceID
	}
	for k, v := range u.Attributes {
		st.Attrs[k] = v
	}
	return st
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil || !ifMatch(w, r, u.Version) {
		return
	}
	req, err := readPatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeUser(w, r, u, func(u *usersync.User, sd softDelete) (userState, error) {
		st := stateOf(u, sd.prefix)
		for _, op := range req.Operations {
			if err := st.apply(op); err != nil {
				return st, err
			}
		}
		return st, nil
	})
}

func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil || !ifMatch(w, r, u.Version) {
		return
	}
	var in userResource
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	next, err := in.toUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeUser(w, r, u, func(*usersync.User, softDelete) (userState, error) {
		return userState{UserName: next.Username, ExternalID: next.SourceID, GivenName: next.FirstName, FamilyName: next.LastName,
			Email: next.Email, Active: next.Enabled, Attrs: next.Attributes}, nil
	})
}

// errSoftDelete stops a user write that is a soft delete with
// SCIM_REMOVE_USER_ON_SOFT_DELETE=Y: the user is deleted instead.
var errSoftDelete = errors.New("soft delete removes the user")

// writeUser saves the state that state computes from the user as stored
// (inside the write, so concurrent PATCHes of one user never lose each
// other's changes) and answers the request. With If-Match the write
// applies only to the version the client named.
func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u *usersync.User, state func(*usersync.User, softDelete) (userState, error)) {
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var expect int64
	if r.Header.Get("If-Match") != "" {
		expect = u.Version
	}
	next, err := s.dir.ModifyUser(r.Context(), u.ID, expect, func(cur *usersync.User) (usersync.UserUpdate, error) {
		st, err := state(cur, sd)
		if err != nil {
			return usersync.UserUpdate{}, err
		}
		if !st.Active && sd.remove {
			return usersync.UserUpdate{}, errSoftDelete
		}
		return updateFor(cur, st, sd.prefix), nil
	})
	if errors.Is(err, errSoftDelete) {
		if err = s.dir.DeleteUser(r.Context(), u.ID); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if err != nil {
		s.fail(w, r, err) // a taken userName is ECONFLICT: 409 uniqueness
		return
	}
	w.Header().Set("ETag", etag(next.Version))
	writeJSON(w, 200, s.userJSON(r, next, sd.prefix))
}

// updateFor is the update that turns u into st. active=false is a soft
// delete: the user is disabled and its username gets the prefix;
// active=true after it restores the name.
func updateFor(u *usersync.User, st userState, prefix string) usersync.UserUpdate {
	name := st.UserName
	if !st.Active && prefix != "" {
		name = prefix + name
	}
	upd := usersync.UserUpdate{Attributes: map[string]*string{}}
	if name != u.Username {
		upd.Username = &name
	}
	if st.Email != u.Email {
		upd.Email = &st.Email
	}
	if st.GivenName != u.FirstName {
		upd.FirstName = &st.GivenName
	}
	if st.FamilyName != u.LastName {
		upd.LastName = &st.FamilyName
	}
	if st.Active != u.Enabled {
		upd.Enabled = &st.Active
	}
	if u.Source == SourceSCIM && st.ExternalID != u.SourceID {
		upd.SourceID = &st.ExternalID
	} else if u.Source != SourceSCIM && st.ExternalID != "" {
		// A SCIM client that gives a user its id takes the user over.
		src := SourceSCIM
		upd.Source, upd.SourceID = &src, &st.ExternalID
	}
	for k, v := range st.Attrs {
		if u.Attributes[k] != v {
			v := v
			upd.Attributes[k] = &v
		}
	}
	for k := range u.Attributes {
		if _, ok := st.Attrs[k]; !ok {
			upd.Attributes[k] = nil
		}
	}
	return upd
}
