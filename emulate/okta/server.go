package okta

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usersync/usersync/internal/recovery"
)

// MaxLimit is the largest page of group members Okta serves.
const MaxLimit = 1000

// Options are the emulator's token and knobs.
type Options struct {
	Log   *slog.Logger // where a handler's panic is logged; nil: the default logger
	Token string
	// RateLimit is how many requests each endpoint family takes per Window
	// (default 600 per minute, Okta's list-users default); over it, 429
	// E0000047. Every answer carries the X-Rate-Limit-* headers.
	RateLimit int
	Window    time.Duration
	MaxPage   int           // largest page of group members served; default and at most 1000
	Latency   time.Duration // added to every API request
	FailRate  float64       // share of API requests answered 500 E0000009
	Seed      int64         // for FailRate
}

// Server serves an Org over the Okta management API.
type Server struct {
	org  *Org
	opts Options

	handler http.Handler // serve, with panics answered 500

	mu      sync.Mutex
	revoked bool
	buckets map[string]*bucket
	counts  map[string]int
	rng     *mrand.Rand
}

type bucket struct {
	start time.Time
	used  int
}

// NewServer returns an emulator for org.
func NewServer(org *Org, o Options) *Server {
	if o.RateLimit == 0 {
		o.RateLimit = 600
	}
	if o.Window == 0 {
		o.Window = time.Minute
	}
	if o.MaxPage <= 0 || o.MaxPage > MaxLimit {
		o.MaxPage = MaxLimit
	}
	s := &Server{org: org, opts: o, buckets: map[string]*bucket{}, counts: map[string]int{}, rng: mrand.New(mrand.NewSource(o.Seed))}
	s.handler = recovery.Handler(http.HandlerFunc(s.serve), o.Log, func(w http.ResponseWriter, _ *http.Request, wrote bool) {
		if !wrote {
			apiError(w, 500, "E0000009", "Internal Server Error")
		}
	})
	return s
}

// Org returns the org being served.
func (s *Server) Org() *Org { return s.org }

// RevokeToken makes the API token invalid, as when it expired unused.
func (s *Server) RevokeToken() {
	s.mu.Lock()
	s.revoked = true
	s.mu.Unlock()
}

// Requests returns how many requests each endpoint family got ("groups",
// "group", "members", "user"), and how many were answered 429, 500 or 401.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// apiError writes Okta's error body.
func apiError(w http.ResponseWriter, status int, code, summary string) {
	id := make([]byte, 8)
	rand.Read(id)
	writeJSON(w, status, map[string]any{"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae" + hex.EncodeToString(id), "errorCauses": []any{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ServeHTTP serves the emulated API; a panic in it is a logged 500, as a
// real service answers, never a dropped connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Okta-Request-Id", requestID()) // on every answer, as Okta's (wire facts §14)
	if r.URL.Path == "/.well-known/okta-organization" && r.Method == http.MethodGet {
		s.count("organization")
		s.organization(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v1/") {
		apiError(w, 404, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/"), "/")
	family := "other"
	switch {
	case parts[0] == "groups" && len(parts) == 1:
		family = "groups"
	case parts[0] == "groups" && len(parts) == 2:
		family = "group"
	case parts[0] == "groups" && len(parts) >= 3 && parts[2] == "users":
		family = "members"
	case parts[0] == "users" && len(parts) == 1:
		family = "users"
	case parts[0] == "users" && len(parts) >= 2:
		family = "user"
	case strings.Join(parts, "/") == "meta/schemas/user/default":
		family = "schema"
	}
	s.mu.Lock()
	s.counts[family]++
	revoked := s.revoked
	s.mu.Unlock()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "SSWS "); !ok || tok != s.opts.Token || revoked {
		s.count("401")
		apiError(w, 401, "E0000011", "Invalid token provided")
		return
	}
	if !s.rateLimit(w, family) {
		s.count("429")
		apiError(w, 429, "E0000047", "API call exceeded rate limit due to too many requests.")
		return
	}
	if s.fail() {
		s.count("500")
		apiError(w, 500, "E0000009", "Internal Server Error")
		return
	}
	if r.Method != http.MethodGet {
		s.write(w, r, parts)
		return
	}
	switch family {
	case "groups":
		s.listGroups(w, r)
	case "group":
		s.getGroup(w, r, parts[1])
	case "members":
		if len(parts) != 3 {
			apiError(w, 404, "E0000007", "Not found: Resource not found: "+r.URL.Path)
			return
		}
		s.members(w, r, parts[1])
	case "user":
		if len(parts) != 2 {
			apiError(w, 404, "E0000007", "Not found: Resource not found: "+r.URL.Path)
			return
		}
		s.getUser(w, r, parts[1])
	case "schema":
		s.userSchema(w, r)
	default:
		apiError(w, 404, "E0000007", "Not found: Resource not found: "+r.URL.Path)
	}
}

func (s *Server) count(k string) {
	s.mu.Lock()
	s.counts[k]++
	s.mu.Unlock()
}

// rateLimit takes one request from the family's window and sets the
// X-Rate-Limit-* headers; it reports whether the request is within the limit.
func (s *Server) rateLimit(w http.ResponseWriter, family string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A window starts with the first request after the last one ended, so
	// windows do not line up with the clock's minutes (Okta's do not:
	// wire facts §11); a client must read the reset time, not guess it.
	// Windows start on a whole second, and Date is written from the same
	// clock reading: Reset − Date is then never more than the window (a
	// window started mid-second, its end rounded up and Date rounded down,
	// told a client to wait 61 s of a 60 s window, and the Okta SDK's
	// backoff check refused it).
	now := time.Now()
	b := s.buckets[family]
	if b == nil || !now.Before(b.start.Add(s.opts.Window)) {
		b = &bucket{start: now.Truncate(time.Second)}
		s.buckets[family] = b
	}
	reset := b.start.Add(s.opts.Window)
	b.used++
	h := w.Header()
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(max(s.opts.RateLimit-b.used, 0)))
	// Reset is in epoch seconds, rounded up: never earlier than the window's end.
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt((reset.UnixNano()+1e9-1)/1e9, 10))
	return b.used <= s.opts.RateLimit
}

func (s *Server) fail() bool {
	if s.opts.FailRate <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < s.opts.FailRate
}

// requestID is an opaque id like Okta's X-Okta-Request-Id.
func requestID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func groupJSON(r *http.Request, g *Group, stats bool) map[string]any {
	out := map[string]any{
		"id": g.ID, "created": "2024-01-02T03:04:05.000Z", "lastUpdated": "2024-01-02T03:04:05.000Z", "lastMembershipUpdated": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"objectClass": []string{"okta:user_group"}, "type": g.Type, "profile": map[string]any{"name": g.Name, "description": g.Description},
		"_links": map[string]any{"users": map[string]any{"href": baseURL(r) + "/api/v1/groups/" + g.ID + "/users"}},
	}
	if stats {
		out["_embedded"] = map[string]any{"stats": map[string]any{"usersCount": len(g.Members)}}
	}
	return out
}

func userJSON(r *http.Request, u *User) map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	return map[string]any{"id": u.ID, "status": u.Status, "created": ts(u.Created), "activated": ts(u.Created), "statusChanged": ts(u.LastUpdated),
		"lastLogin": nil, "lastUpdated": ts(u.LastUpdated), "passwordChanged": nil, "type": map[string]any{"id": "oty0000000default0"},
		"profile": u.Profile, "credentials": map[string]any{"provider": map[string]any{"type": "OKTA", "name": "OKTA"}},
		"_links": map[string]any{"self": map[string]any{"href": baseURL(r) + "/api/v1/users/" + u.ID}}}
}

// listGroups answers ?search=profile.name eq "…" (exact) and ?q=… (name prefix).
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var match func(g *Group) bool
	switch {
	case q.Get("search") != "":
		name, err := searchName(q.Get("search"))
		if err != nil {
			apiError(w, 400, "E0000031", "Invalid search criteria. "+err.Error())
			return
		}
		match = func(g *Group) bool { return g.Name == name }
	case q.Get("q") != "":
		prefix := strings.ToLower(q.Get("q"))
		match = func(g *Group) bool { return strings.HasPrefix(strings.ToLower(g.Name), prefix) }
	default:
		match = func(*Group) bool { return true }
	}
	s.org.mu.RLock()
	items := []map[string]any{}
	for _, id := range s.org.order {
		if g := s.org.groups[id]; match(g) {
			items = append(items, groupJSON(r, g, q.Get("expand") == "stats"))
		}
	}
	s.org.mu.RUnlock()
	writeJSON(w, 200, items)
}

// searchName reads the one search expression the emulator supports:
// profile.name eq "…", with \" and \\ escapes.
func searchName(expr string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(expr), "profile.name eq \"")
	if !ok || !strings.HasSuffix(rest, "\"") {
		return "", fmt.Errorf("the emulator supports only profile.name eq \"…\"")
	}
	rest = rest[:len(rest)-1]
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '\\' && i+1 < len(rest) && (rest[i+1] == '"' || rest[i+1] == '\\'):
			b.WriteByte(rest[i+1])
			i++
		case c == '"' || c == '\\':
			return "", fmt.Errorf("unescaped %q in the name", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, id string) {
	s.org.mu.RLock()
	g, ok := s.org.groups[id]
	var body map[string]any
	if ok {
		body = groupJSON(r, g, r.URL.Query().Get("expand") == "stats")
	}
	s.org.mu.RUnlock()
	if !ok {
		apiError(w, 404, "E0000007", "Not found: Resource not found: "+id+" (UserGroup)")
		return
	}
	writeJSON(w, 200, body)
}

// members answers a page of a group's users: limit (default and maximum
// 1000) and after (an opaque cursor); the next page is in the Link header.
func (s *Server) members(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	limit := s.opts.MaxPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			apiError(w, 400, "E0000001", "Api validation failed: limit")
			return
		}
		limit = min(n, s.opts.MaxPage)
	}
	offset := 0
	if v := q.Get("after"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			offset, err = strconv.Atoi(strings.SplitN(string(b), ":", 2)[0])
		}
		if err != nil || offset < 0 {
			apiError(w, 400, "E0000001", "Api validation failed: after")
			return
		}
	}
	s.org.mu.RLock()
	defer s.org.mu.RUnlock()
	g, ok := s.org.groups[id]
	if !ok {
		apiError(w, 404, "E0000007", "Not found: Resource not found: "+id+" (UserGroup)")
		return
	}
	end := min(offset+limit, len(g.Members))
	items := make([]map[string]any, 0, max(end-offset, 0))
	for i := offset; i < end; i++ {
		if u, ok := s.org.users[g.Members[i]]; ok {
			items = append(items, userJSON(r, u))
		}
	}
	self := baseURL(r) + r.URL.Path
	links := []string{fmt.Sprintf("<%s?limit=%d>; rel=\"self\"", self, limit)}
	if end < len(g.Members) {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end) + ":" + g.Members[end-1]))
		links = append(links, fmt.Sprintf("<%s?%s>; rel=\"next\"", self, url.Values{"after": {cursor}, "limit": {strconv.Itoa(limit)}}.Encode()))
	}
	for _, l := range links {
		w.Header().Add("Link", l)
	}
	writeJSON(w, 200, items)
}

// BaseProfile is Okta's default user profile: the base properties of the
// user schema.
var BaseProfile = []string{"login", "email", "secondEmail", "firstName", "lastName", "middleName", "honorificPrefix", "honorificSuffix",
	"title", "displayName", "nickName", "profileUrl", "primaryPhone", "mobilePhone", "streetAddress", "city", "state", "zipCode",
	"countryCode", "postalAddress", "preferredLanguage", "locale", "timezone", "userType", "employeeNumber", "costCenter",
	"organization", "division", "department", "managerId", "manager"}

// userSchema serves GET /api/v1/meta/schemas/user/default as Okta does:
// the base profile's properties, and as custom ones every other profile
// attribute the org's users have.
func (s *Server) userSchema(w http.ResponseWriter, r *http.Request) {
	base, custom := map[string]any{}, map[string]any{}
	for _, p := range BaseProfile {
		base[p] = map[string]any{"title": p, "type": "string", "mutability": "READ_WRITE", "scope": "NONE"}
	}
	s.org.mu.RLock()
	for _, u := range s.org.users {
		for k, v := range u.Profile {
			if _, ok := base[k]; !ok {
				typ := "string"
				switch v.(type) {
				case bool:
					typ = "boolean"
				case float64:
					typ = "number"
				}
				custom[k] = map[string]any{"title": k, "type": typ, "mutability": "READ_WRITE", "scope": "NONE"}
			}
		}
	}
	s.org.mu.RUnlock()
	id := baseURL(r) + "/api/v1/meta/schemas/user/default"
	writeJSON(w, 200, map[string]any{"id": id, "$schema": "http://json-schema.org/draft-04/schema#", "name": "user", "title": "User", "type": "object",
		"definitions": map[string]any{
			"base":   map[string]any{"id": "#base", "type": "object", "properties": base, "required": []string{"login", "firstName", "lastName", "email"}},
			"custom": map[string]any{"id": "#custom", "type": "object", "properties": custom, "required": []string{}},
		},
		"properties": map[string]any{"profile": map[string]any{"allOf": []any{map[string]any{"$ref": "#/definitions/custom"}, map[string]any{"$ref": "#/definitions/base"}}}},
		"_links":     map[string]any{"self": map[string]any{"href": id, "method": "GET"}}})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, key string) {
	s.org.mu.RLock()
	u, ok := s.org.users[key]
	if !ok {
		for _, c := range s.org.users {
			if login, _ := c.Profile["login"].(string); strings.EqualFold(login, key) {
				u, ok = c, true
				break
			}
		}
	}
	var body map[string]any
	if ok {
		body = userJSON(r, u)
	}
	s.org.mu.RUnlock()
	if !ok {
		apiError(w, 404, "E0000007", "Not found: Resource not found: "+key+" (User)")
		return
	}
	writeJSON(w, 200, body)
}

// organization serves the org's public well-known document (no token is
// needed): its id and its canonical URL.
func (s *Server) organization(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	writeJSON(w, 200, map[string]any{"id": s.org.ID, "pipeline": "idx",
		"_links": map[string]any{"organization": map[string]any{"href": base}, "alternate": map[string]any{"href": base}}})
}
