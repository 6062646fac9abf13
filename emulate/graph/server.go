package graph

import (
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usersync/usersync/internal/jsonenc"
	"github.com/usersync/usersync/internal/recovery"
)

// Options are the emulator's credentials and knobs.
type Options struct {
	Log           *slog.Logger // where a handler's panic is logged; nil: the default logger
	ClientID      string
	ClientSecret  string
	TokenLifetime time.Duration // default 3599 s, as the real service
	Latency       time.Duration // added to every Graph request
	// Throttling: more than RequestBudget Graph requests within Window get
	// 429 with Retry-After (seconds, rounded up). 0 disables it.
	RequestBudget int
	Window        time.Duration
	FailRate      float64 // share of Graph requests answered 503 without Retry-After
	Seed          int64   // for FailRate
	// DeltaTokenLifetime: older delta tokens get 410 Gone; default seven
	// days, as for directory objects.
	DeltaTokenLifetime time.Duration
	// WriteBudget writes (POST, PATCH, DELETE, each inner request of a
	// $batch) per WriteWindow are accepted; more get 429 with Retry-After.
	// Graph's quota per app and tenant is 3,000 per 150 s. 0: no quota.
	WriteBudget int
	WriteWindow time.Duration // default 150 s
	// ReplicationLag: a group created less than this ago answers 404 on
	// reads and writes, as Graph's replicas do for a few seconds.
	ReplicationLag time.Duration
	// Fault, when set, is asked about each Graph request (each inner
	// request of a $batch too): a non-zero status is answered instead, with
	// Graph's error body (and Retry-After: 1 for 429). For staging failures.
	Fault func(r *http.Request) int
}

// Server serves a Tenant over the Graph and token wire protocols.
type Server struct {
	tenant *Tenant
	opts   Options

	mu          sync.Mutex
	tokens      map[string]time.Time // access token → expiry
	counts      map[string]int       // endpoint → requests
	windowStart time.Time
	inWindow    int
	rng         *mrand.Rand
	instance    string // this process's own: delta tokens name it

	handler http.Handler // serve, with panics answered 500

	writes         map[string]int // accepted writes by kind
	writeStart     time.Time
	writesInWindow int
}

// NewServer returns an emulator for tenant.
func NewServer(tenant *Tenant, o Options) *Server {
	if o.TokenLifetime == 0 {
		o.TokenLifetime = 3599 * time.Second
	}
	if o.Window == 0 {
		o.Window = 10 * time.Second
	}
	if o.DeltaTokenLifetime == 0 {
		o.DeltaTokenLifetime = 7 * 24 * time.Hour
	}
	if o.WriteWindow == 0 {
		o.WriteWindow = 150 * time.Second
	}
	s := &Server{tenant: tenant, opts: o, tokens: map[string]time.Time{}, counts: map[string]int{}, rng: mrand.New(mrand.NewSource(o.Seed)), instance: newGUID(), writes: map[string]int{}}
	s.handler = recovery.Handler(http.HandlerFunc(s.serve), o.Log, func(w http.ResponseWriter, _ *http.Request, wrote bool) {
		if !wrote {
			graphError(w, 500, "InternalServerError", "The emulator failed on this request (a bug): its log has the cause.")
		}
	})
	return s
}

// CountsPath serves the emulator's counts of requests and writes as JSON.
const CountsPath = "/_emulator/counts"

// Tenant returns the tenant being served.
func (s *Server) Tenant() *Tenant { return s.tenant }

// Requests returns how many requests each endpoint got ("token",
// "groups", "group", "members", "users", "user"; throttled and failed
// requests count too, under "429" and "503" as well).
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// ExpireTokens makes every issued access token expired, as if an hour passed.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.tokens {
		s.tokens[k] = time.Time{}
	}
}

func (s *Server) count(endpoint string) {
	s.mu.Lock()
	s.counts[endpoint]++
	s.mu.Unlock()
}

// ServeHTTP serves the emulated API; a panic in it is a logged 500, as a
// real service answers, never a dropped connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Every answer carries request-id and client-request-id (the client's
	// own when it sent one), as Graph's do; error bodies repeat them.
	w.Header().Set("request-id", newGUID())
	if id := r.Header.Get("client-request-id"); id != "" {
		w.Header().Set("client-request-id", id)
	} else {
		w.Header().Set("client-request-id", w.Header().Get("request-id"))
	}
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		s.count("token")
		s.token(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, openIDPath) {
		s.count("openid-configuration")
		s.openIDConfiguration(w, r)
		return
	}
	if r.URL.Path == CountsPath {
		// What was asked of the emulator, for people staging a provisioner
		// and for tests: requests by endpoint, and accepted writes by kind.
		writeJSON(w, 200, map[string]any{"requests": s.Requests(), "writes": s.Writes()})
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v1.0/") {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource not found for the segment '"+r.URL.Path+"'.")
		return
	}
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}
	if !s.authorized(r) {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
		return
	}
	s.count("http")
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		// Graph takes compressed request bodies; Microsoft's SDKs send them.
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "The request body is not valid gzip.")
			return
		}
		defer zr.Close()
		r.Body = io.NopCloser(zr)
		r.Header.Del("Content-Encoding")
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1.0/$batch" {
		s.batch(w, r)
		return
	}
	s.serveOne(w, r)
}

// serveOne answers one Graph request, alone or inside a $batch.
func (s *Server) serveOne(w http.ResponseWriter, r *http.Request) {
	if s.opts.Fault != nil {
		if status := s.opts.Fault(r); status != 0 {
			s.count(strconv.Itoa(status))
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			graphError(w, status, "injectedFault", "Failure injected by the emulator's Fault option.")
			return
		}
	}
	if retry, ok := s.throttle(); !ok {
		s.count("429")
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		graphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		return
	}
	if s.fail() {
		s.count("503")
		graphError(w, http.StatusServiceUnavailable, "serviceNotAvailable", "The service is temporarily unavailable.")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1.0/"), "/")
	if r.Method != http.MethodGet {
		s.serveWrite(w, r, parts)
		return
	}
	switch {
	case len(parts) == 2 && parts[1] == "delta" && (parts[0] == "users" || parts[0] == "groups"):
		s.count(parts[0] + "/delta")
		s.delta(w, r, parts[0])
	case isUniqueNameKey(parts):
		s.count("group")
		s.getGroupByUniqueName(w, r, parts)
	case parts[0] == "groups" && len(parts) == 1:
		s.count("groups")
		s.listGroups(w, r)
	case parts[0] == "groups" && len(parts) == 2:
		s.count("group")
		s.getGroup(w, r, parts[1])
	case parts[0] == "groups" && len(parts) >= 3 && len(parts) <= 5 && (parts[2] == "members" || parts[2] == "transitiveMembers"):
		cast, count := "", false
		if len(parts) >= 4 && parts[len(parts)-1] == "$count" {
			count, parts = true, parts[:len(parts)-1]
		}
		if len(parts) == 4 {
			cast = parts[3]
			if cast != "microsoft.graph.user" && cast != "microsoft.graph.group" {
				graphError(w, http.StatusBadRequest, "Request_BadRequest", "Unsupported type cast '"+cast+"'.")
				return
			}
		}
		if len(parts) == 5 {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Unsupported segment in '"+r.URL.Path+"'.")
			return
		}
		s.count("members")
		s.members(w, r, parts[1], parts[2] == "members", cast, count)
	case parts[0] == "users" && len(parts) == 1:
		s.count("users")
		s.listUsers(w, r)
	case parts[0] == "subscribedSkus" && len(parts) == 1:
		s.count("subscribedSkus")
		s.subscribedSKUs(w)
	case parts[0] == "domains" && len(parts) == 1:
		s.count("domains")
		s.listDomains(w)
	case (parts[0] == "users" || parts[0] == "groups") && len(parts) == 2 && parts[1] == "$count":
		s.count(parts[0] + "/$count")
		s.countAll(w, r, parts[0])
	case parts[0] == "users" && len(parts) == 2:
		s.count("user")
		s.getUser(w, r, parts[1])
	default:
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Unsupported segment in '"+r.URL.Path+"'.")
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

func (s *Server) throttle() (int, bool) {
	if s.opts.RequestBudget <= 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.windowStart) >= s.opts.Window {
		s.windowStart, s.inWindow = now, 0
	}
	s.inWindow++
	if s.inWindow <= s.opts.RequestBudget {
		return 0, true
	}
	wait := s.opts.Window - now.Sub(s.windowStart)
	return int((wait + time.Second - 1) / time.Second), false
}

func (s *Server) fail() bool {
	if s.opts.FailRate <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < s.opts.FailRate
}

// token implements the client-credentials grant of the identity platform.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		tokenError(w, 400, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	switch {
	case tenant != s.tenant.ID && tenant != "contoso.example":
		tokenError(w, 400, "invalid_request", fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
	case r.PostForm.Get("grant_type") != "client_credentials":
		tokenError(w, 400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
	case r.PostForm.Get("client_id") != s.opts.ClientID:
		tokenError(w, 400, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", r.PostForm.Get("client_id"), tenant))
	case r.PostForm.Get("client_secret") != s.opts.ClientSecret:
		tokenError(w, 401, "invalid_client", fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.opts.ClientID))
	case !strings.HasSuffix(r.PostForm.Get("scope"), "/.default"):
		tokenError(w, 400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
	default:
		b := make([]byte, 24)
		rand.Read(b)
		tok := "emu." + hex.EncodeToString(b)
		s.mu.Lock()
		s.tokens[tok] = time.Now().Add(s.opts.TokenLifetime)
		s.mu.Unlock()
		secs := int(s.opts.TokenLifetime / time.Second)
		writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
	}
}

// openIDPath ends the OpenID Connect discovery document of a tenant, by id
// or by a verified domain: clients learn the tenant's id from its issuer.
const openIDPath = "/v2.0/.well-known/openid-configuration"

// openIDConfiguration serves the identity platform's discovery document,
// with the fields a client reads (issuer, token endpoint).
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), openIDPath)
	if !strings.EqualFold(tenant, s.tenant.ID) && !strings.EqualFold(tenant, "contoso.example") {
		tokenError(w, 400, "invalid_tenant", fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	id := s.tenant.ID
	writeJSON(w, 200, map[string]any{
		"issuer":                                base + "/" + id + "/v2.0",
		"token_endpoint":                        base + "/" + id + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/" + id + "/oauth2/v2.0/authorize",
		"jwks_uri":                              base + "/" + id + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc + "\r\nTrace ID: 00000000-0000-0000-0000-000000000000", "error_codes": []int{}})
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": w.Header().Get("request-id"),
			"client-request-id": w.Header().Get("client-request-id")}}})
}

// newGUID returns a random (version 4) GUID.
func newGUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// scheme is how the client reached the emulator: https behind a
// TLS-terminating proxy that says so in X-Forwarded-Proto.
func scheme(r *http.Request) string {
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		return p
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// jsonType is the Content-Type of Graph's JSON answers.
const jsonType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// eqFilter parses "prop eq 'value'" with ” as an escaped quote.
func eqFilter(filter, prop string) (string, bool, error) {
	if filter == "" {
		return "", false, nil
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(filter), prop+" eq '")
	if !ok || !strings.HasSuffix(rest, "'") {
		return "", false, fmt.Errorf("Invalid filter clause: only \"%s eq '…'\" is supported by the emulator", prop)
	}
	inner := rest[:len(rest)-1]
	if strings.Count(strings.ReplaceAll(inner, "''", ""), "'") > 0 {
		return "", false, fmt.Errorf("Invalid filter clause: unbalanced quotes")
	}
	return strings.ReplaceAll(inner, "''", "'"), true, nil
}

// page cuts items by $top and $skiptoken and writes a collection answer.
func page(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	pageOf(w, r, len(items), func(i int) any { return items[i] })
}

// pageOf is page for n items made on demand: only the page's items are
// rendered, so reading a large collection page by page stays linear.
func pageOf(w http.ResponseWriter, r *http.Request, n int, item func(i int) any) {
	q := r.URL.Query()
	top := 100
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 999 {
			graphError(w, 400, "Request_BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", v))
			return
		}
		top = n
	}
	offset := 0
	if v := q.Get("$skiptoken"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			offset, err = strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
		}
		if err != nil || offset < 0 || offset > n {
			graphError(w, 400, "Request_BadRequest", "Invalid skip token.")
			return
		}
	}
	end := min(offset+top, n)
	// Written by hand, keys in encoding/json's (sorted) order: a page of
	// 999 users through reflection cost the emulator more time than the
	// client spends reading it, and the emulator shares the machine with
	// the sync it serves in benchmarks.
	b := make([]byte, 0, 256+320*(end-offset)) // a user with a pull's properties is about 300 bytes
	b = append(b, `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata"`...)
	// @odata.count: an advanced query, only with ConsistencyLevel: eventual
	// (without it $count=true is silently ignored), on the first page only.
	if strings.EqualFold(q.Get("$count"), "true") && strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") && offset == 0 {
		b = strconv.AppendInt(append(b, `,"@odata.count":`...), int64(n), 10)
	}
	if end < n {
		q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte("o:"+strconv.Itoa(end))))
		next := (&url.URL{Scheme: scheme(r), Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}).String()
		b = jsonenc.AppendString(append(b, `,"@odata.nextLink":`...), next)
	}
	b = append(b, `,"value":[`...)
	for i := offset; i < end; i++ {
		if i > offset {
			b = append(b, ',')
		}
		b = appendValue(b, item(i))
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", jsonType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(200)
	w.Write(b)
}

// appendArray appends xs as a JSON array (null when nil, as encoding/json
// writes a nil slice), each element by each.
func appendArray[T any](b []byte, xs []T, each func([]byte, T) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, e := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, e)
	}
	return append(b, ']')
}

// userObject is a user with the properties to show of it (sorted, as
// userPropsOf gives them): a page writes it without a map per user, and
// userJSON makes that map where one is wanted.
type userObject struct {
	u     *User
	props []string
}

// userPropsOf returns the properties userJSON writes for sel, sorted.
func userPropsOf(sel map[string]bool) []string {
	props := []string{"@odata.type"}
	if sel == nil {
		props = append(props, defaultUserProps...)
	} else {
		for k := range sel {
			if k != "@odata.type" {
				props = append(props, k)
			}
		}
	}
	sort.Strings(props)
	return props
}

// each calls fn with each property the user has, in props' order.
func (o userObject) each(fn func(k string, v any)) {
	for _, k := range o.props {
		if k == "@odata.type" {
			fn(k, "#microsoft.graph.user")
		} else if v, ok := userProp(o.u, k); ok {
			fn(k, v)
		}
	}
}

// appendValue appends v as encoding/json would (map keys sorted), without
// reflection for the types the emulator's objects hold.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return jsonenc.AppendString(b, x)
	case *string: // an optional property: null when unset
		if x == nil {
			return append(b, "null"...)
		}
		return jsonenc.AppendString(b, *x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case userObject:
		b = append(b, '{')
		first := true
		x.each(func(k string, v any) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendValue(append(jsonenc.AppendString(b, k), ':'), v)
		})
		return append(b, '}')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(append(jsonenc.AppendString(b, k), ':'), x[k])
		}
		return append(b, '}')
	case []map[string]any:
		return appendArray(b, x, func(b []byte, e map[string]any) []byte { return appendValue(b, e) })
	case []string:
		return appendArray(b, x, jsonenc.AppendString)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("emulator: cannot encode %T: %v", v, err)) // a value the emulator made itself
	}
	return append(b, enc...)
}

func selectSet(r *http.Request) map[string]bool {
	v := r.URL.Query().Get("$select")
	if v == "" {
		return nil
	}
	out := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		out[strings.TrimSpace(f)] = true
	}
	return out
}

// userProps are the properties of Graph's user resource (v1.0) the
// emulator answers to: those it stores, and others as null. Selecting any
// other is refused with 400, as Graph refuses it.
var userProps = map[string]bool{}

func init() {
	for _, p := range strings.Fields(`id userPrincipalName displayName givenName surname mail mailNickname accountEnabled
		department jobTitle companyName officeLocation employeeId employeeType employeeHireDate city state country
		postalCode streetAddress usageLocation assignedLicenses preferredLanguage mobilePhone businessPhones onPremisesImmutableId
		onPremisesSamAccountName onPremisesUserPrincipalName onPremisesDomainName onPremisesExtensionAttributes
		createdDateTime deletedDateTime userType otherMails proxyAddresses identities ageGroup`) {
		userProps[p] = true
	}
}

// unknownUserProp returns the first selected property the user resource
// lacks ("" when all are known). Directory extensions are taken as
// registered: the emulator does not model applications.
func unknownUserProp(sel map[string]bool) string {
	var unknown []string
	for p := range sel {
		if !userProps[p] && !strings.HasPrefix(p, "extension_") {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	sort.Strings(unknown)
	return unknown[0]
}

// badSelect answers Graph's refusal of an unknown $select property.
func badSelect(w http.ResponseWriter, prop string) {
	graphError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.user'.", prop))
}

// defaultUserProps are returned when no $select is given, as Graph does;
// accountEnabled, onPremisesImmutableId and extensions need $select.
var defaultUserProps = []string{"id", "displayName", "givenName", "jobTitle", "mail", "surname", "userPrincipalName"}

// userProp is property k of u as Graph answers it, and whether the user
// resource has it.
func userProp(u *User, k string) (any, bool) {
	switch k {
	case "id":
		return u.ID, true
	case "userPrincipalName":
		return u.UserPrincipalName, true
	case "displayName":
		return u.DisplayName, true
	case "givenName":
		return u.GivenName, true
	case "surname":
		return u.Surname, true
	case "mail":
		return u.Mail, true
	case "accountEnabled":
		return u.AccountEnabled, true
	case "department":
		return u.Department, true
	case "jobTitle":
		return u.JobTitle, true
	case "employeeId":
		return u.EmployeeID, true
	case "onPremisesImmutableId":
		return u.OnPremisesImmutableID, true
	case "usageLocation":
		return u.UsageLocation, true
	case "mailNickname":
		return u.MailNickname, true
	case "assignedLicenses":
		out := make([]map[string]any, len(u.Licenses))
		for i, l := range u.Licenses {
			out[i] = map[string]any{"skuId": l.SkuID, "disabledPlans": nonNilStr(l.DisabledPlans)}
		}
		return out, true
	case "companyName", "officeLocation", "mobilePhone", "city", "country":
		if v, ok := u.Other[k]; ok {
			return v, true
		}
		return nil, true
	}
	if strings.HasPrefix(k, "extension_") {
		v, ok := u.Extensions[k]
		return v, ok
	}
	return nil, false
}

func userJSON(u *User, sel map[string]bool) map[string]any {
	o := userObject{u, userPropsOf(sel)}
	out := make(map[string]any, len(o.props))
	o.each(func(k string, v any) { out[k] = v })
	return out
}

func groupJSON(g *Group, sel map[string]bool) map[string]any {
	security := g.SecurityEnabled == nil || *g.SecurityEnabled
	types := g.GroupTypes
	if types == nil {
		types = []string{}
	}
	var nick, vis any
	if g.MailNickname != "" {
		nick = g.MailNickname
	}
	if g.Visibility != "" {
		vis = g.Visibility
	}
	var desc any
	if g.Description != "" {
		desc = g.Description
	}
	var unique any
	if g.UniqueName != "" {
		unique = g.UniqueName
	}
	all := map[string]any{"id": g.ID, "displayName": g.DisplayName, "description": desc, "securityEnabled": security,
		"mailEnabled": g.MailEnabled, "groupTypes": types, "mailNickname": nick, "visibility": vis, "uniqueName": unique}
	out := map[string]any{"@odata.type": "#microsoft.graph.group"}
	for k, v := range all {
		if sel == nil || sel[k] {
			out[k] = v
		}
	}
	return out
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	match, err := groupFilter(r.URL.Query().Get("$filter"))
	if err != nil {
		graphError(w, 400, "Request_UnsupportedQuery", err.Error())
		return
	}
	sel := selectSet(r)
	var items []map[string]any
	s.tenant.mu.RLock()
	for _, id := range s.tenant.order {
		g := s.tenant.groups[id]
		if match == nil {
			items = append(items, groupJSON(g, sel))
		} else if match(g) && !s.lagging(g) { // a filter is a query of the index, which lags
			items = append(items, groupJSON(g, sel))
		}
	}
	s.tenant.mu.RUnlock()
	page(w, r, nonNil(items))
}

// groupFilter reads the $filter clauses the emulator serves on groups:
// "displayName eq '…'", "mailNickname eq '…'", "uniqueName eq '…'" and
// "startswith(uniqueName|displayName,'…')" (nil: no filter).
func groupFilter(filter string) (func(*Group) bool, error) {
	filter = strings.TrimSpace(filter)
	if filter == "" {
		return nil, nil
	}
	for _, p := range []string{"uniqueName", "displayName"} {
		rest, ok := strings.CutPrefix(filter, "startswith("+p+",")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if len(rest) < len("'')") || !strings.HasPrefix(rest, "'") || !strings.HasSuffix(rest, "')") {
			return nil, fmt.Errorf("Invalid filter clause: expected startswith(%s,'…')", p)
		}
		prefix := rest[1 : len(rest)-2]
		if strings.Count(strings.ReplaceAll(prefix, "''", ""), "'") > 0 {
			return nil, fmt.Errorf("Invalid filter clause: unbalanced quotes")
		}
		prefix = strings.ToLower(strings.ReplaceAll(prefix, "''", "'"))
		byUnique := p == "uniqueName"
		return func(g *Group) bool {
			v := g.DisplayName
			if byUnique {
				v = g.UniqueName
			}
			return v != "" && strings.HasPrefix(strings.ToLower(v), prefix)
		}, nil
	}
	prop := "displayName"
	for _, p := range []string{"mailNickname", "uniqueName"} {
		if strings.HasPrefix(filter, p) {
			prop = p
		}
	}
	name, _, err := eqFilter(filter, prop)
	if err != nil {
		return nil, err
	}
	return func(g *Group) bool {
		v := g.DisplayName
		switch prop {
		case "mailNickname":
			v = g.MailNickname
		case "uniqueName":
			v = g.UniqueName
		}
		return strings.EqualFold(v, name) && (v != "" || prop != "uniqueName")
	}, nil
}

// getGroupByUniqueName serves GET /groups(uniqueName='…'), found by the
// key whether it has replicated or not.
func (s *Server) getGroupByUniqueName(w http.ResponseWriter, r *http.Request, parts []string) {
	key, _ := uniqueNameKey(parts)
	s.tenant.mu.RLock()
	g := s.tenant.groupByUniqueName(key)
	var body map[string]any
	if g != nil {
		body = groupJSON(g, selectSet(r))
	}
	s.tenant.mu.RUnlock()
	if g == nil {
		notFound(w, key)
		return
	}
	writeJSON(w, 200, body)
}

func nonNil(items []map[string]any) []map[string]any {
	if items == nil {
		return []map[string]any{}
	}
	return items
}

func notFound(w http.ResponseWriter, id string) {
	graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, id string) {
	g, ok := s.tenant.Group(id)
	if !ok || s.lagging(&g) {
		notFound(w, id)
		return
	}
	writeJSON(w, 200, groupJSON(&g, selectSet(r)))
}

// members lists a group's direct or transitive members, optionally cast to
// one type, or counts them ($count, an advanced query that needs the
// ConsistencyLevel: eventual header).
func (s *Server) members(w http.ResponseWriter, r *http.Request, id string, direct bool, cast string, count bool) {
	s.tenant.mu.RLock()
	g, ok := s.tenant.groups[id] // not Group(id): that copies the member list
	ok = ok && !s.lagging(g)
	s.tenant.mu.RUnlock()
	if !ok {
		notFound(w, id)
		return
	}
	if count && !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
		graphError(w, 400, "Request_BadRequest", "Count is not currently supported without the header ConsistencyLevel: eventual.")
		return
	}
	sel := selectSet(r)
	if p := unknownUserProp(sel); p != "" && cast == "microsoft.graph.user" {
		badSelect(w, p)
		return
	}
	var users []*User
	if cast != "microsoft.graph.group" {
		users = s.tenant.transitiveUsers(id, direct)
	}
	var groups []map[string]any
	if cast != "microsoft.graph.user" {
		s.tenant.mu.RLock()
		for _, gid := range s.tenant.subgroups(id, direct) {
			groups = append(groups, groupJSON(s.tenant.groups[gid], sel))
		}
		s.tenant.mu.RUnlock()
	}
	if count {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, len(users)+len(groups))
		return
	}
	s.tenant.mu.RLock() // users are read while rendered
	defer s.tenant.mu.RUnlock()
	props := userPropsOf(sel)
	pageOf(w, r, len(users)+len(groups), func(i int) any {
		if i < len(users) {
			return userObject{users[i], props}
		}
		return groups[i-len(users)]
	})
}

// countAll answers /users/$count and /groups/$count: plain text, and only
// with ConsistencyLevel: eventual (an advanced query).
func (s *Server) countAll(w http.ResponseWriter, r *http.Request, kind string) {
	if !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
		graphError(w, 400, "Request_BadRequest", "$count is not currently supported.")
		return
	}
	s.tenant.mu.RLock()
	n := len(s.tenant.users)
	if kind == "groups" {
		n = len(s.tenant.groups)
	}
	s.tenant.mu.RUnlock()
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, n)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	upn, filtered, err := eqFilter(r.URL.Query().Get("$filter"), "userPrincipalName")
	if err != nil {
		graphError(w, 400, "Request_UnsupportedQuery", err.Error())
		return
	}
	sel := selectSet(r)
	if p := unknownUserProp(sel); p != "" {
		badSelect(w, p)
		return
	}
	var users []*User
	s.tenant.mu.RLock()
	for _, u := range s.tenant.users {
		if !filtered || strings.EqualFold(u.UserPrincipalName, upn) {
			users = append(users, u)
		}
	}
	// Stable pages: ordered by id, which a $select need not include (the
	// rendered objects were sorted by their "id" and a $select without it
	// panicked).
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		items = append(items, userJSON(u, sel))
	}
	s.tenant.mu.RUnlock()
	page(w, r, items)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, key string) {
	if p := unknownUserProp(selectSet(r)); p != "" {
		badSelect(w, p)
		return
	}
	s.tenant.mu.RLock()
	u, ok := s.tenant.users[key]
	if !ok {
		for _, c := range s.tenant.users {
			if strings.EqualFold(c.UserPrincipalName, key) {
				u, ok = c, true
				break
			}
		}
	}
	var body map[string]any
	if ok {
		body = userJSON(u, selectSet(r))
	}
	s.tenant.mu.RUnlock()
	if !ok {
		notFound(w, key)
		return
	}
	writeJSON(w, 200, body)
}
