package scim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/server"
)

// Soft-deleted is its own state (seed 002): only deactivating an active
// user over SCIM renames it; a user disabled any other way, or created
// inactive, keeps its name whatever else a client changes.
func TestSoftDeleteOnlyOnDeactivation(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		ctx := context.Background()
		patch := func(id, path string, value any) (int, map[string]any) {
			t.Helper()
			code, body, _ := c.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []map[string]any{{"op": "replace", "path": path, "value": value}}})
			return code, body
		}
		stored := func(name string) *usersync.User {
			t.Helper()
			u, err := d.FindUserByUsername(ctx, name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return u
		}
		// Disabled by the CLI or a pull: a PATCH of the given name only.
		pulled := &usersync.User{Username: "pulled@x.example", Email: "pulled@x.example", Source: "o365:t", SourceID: "obj-9"}
		if err := d.CreateUser(ctx, pulled); err != nil {
			t.Fatal(err)
		}
		if code, body := patch(fmt.Sprint(pulled.ID), "name.givenName", "Renamed"); code != 200 || body["userName"] != "pulled@x.example" {
			t.Fatalf("patch of a disabled user: %d %v", code, body)
		}
		if u := stored("pulled@x.example"); u.SoftDeleted || u.FirstName != "Renamed" {
			t.Fatalf("disabled user after a PATCH: %+v", u)
		}
		// Created inactive: not renamed, and a PATCH keeps it so.
		in := entraUser("inactive@x.example", "ext-i")
		in["active"] = false
		code, body, _ := c.do("POST", "/Users", in)
		if code != 201 || body["active"] != false {
			t.Fatalf("create inactive: %d %v", code, body)
		}
		id := body["id"].(string)
		patch(id, "name.familyName", "Still")
		if u := stored("inactive@x.example"); u.SoftDeleted || u.Enabled || u.LastName != "Still" {
			t.Fatalf("inactive user after a PATCH: %+v", u)
		}
		// Deactivating an active user is the soft delete: prefixed, marked;
		// the client still sees its name; other PATCHes keep it soft-deleted.
		code, body, _ = c.do("POST", "/Users", entraUser("active@x.example", "ext-a"))
		aid := body["id"].(string)
		if code, body := patch(aid, "active", "False"); code != 200 || body["userName"] != "active@x.example" || body["active"] != false {
			t.Fatalf("soft delete: %d %v", code, body)
		}
		if u := stored("deleted_active@x.example"); !u.SoftDeleted {
			t.Fatalf("soft-deleted user: %+v", u)
		}
		patch(aid, "name.givenName", "Ghost")
		if u := stored("deleted_active@x.example"); !u.SoftDeleted || u.FirstName != "Ghost" {
			t.Fatalf("soft-deleted user after a PATCH: %+v", u)
		}
		if code, body := patch(aid, "active", true); code != 200 || body["userName"] != "active@x.example" {
			t.Fatalf("restore: %d %v", code, body)
		}
		if u := stored("active@x.example"); u.SoftDeleted || !u.Enabled {
			t.Fatalf("restored user: %+v", u)
		}
	})
}

// PATCH /Groups/{id} with value filters on members: remove takes any
// filter and answers noTarget when it selects nothing (RFC 7644 §3.5.2.2,
// §3.12); add and replace with a filter are a 400 naming the path. Never a
// panic (each of these once dereferenced nil).
func TestGroupMemberPathForms(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		g := &usersync.Group{Name: "G"}
		d.CreateGroup(context.Background(), g)
		for _, p := range []string{`members[value pr]`, `members[value eq "1" or value eq "2"]`, `members[not (value eq "1")]`, `members[value eq 1]`} {
			for _, op := range []string{"remove", "replace", "add"} {
				code, body, _ := c.do("PATCH", fmt.Sprint("/Groups/g", g.ID), map[string]any{"Operations": []map[string]any{{"op": op, "path": p}}})
				want := "invalidPath"
				switch {
				case op == "remove" && p == `members[value eq 1]`:
					want = "invalidFilter"
				case op == "remove":
					want = "noTarget"
				}
				if code != 400 || body["scimType"] != want {
					t.Fatalf("%s %s: %d %v, want %s", op, p, code, body, want)
				}
			}
		}
	})
}

// panicky is a directory whose FindUsers panics (a bug anywhere below a
// handler), and whose other answers can be made to fail.
type panicky struct {
	usersync.Directory
	authErr, writeErr error
	block             chan struct{} // FindUsers waits for its context when set
}

func (p *panicky) FindUsers(ctx context.Context, f usersync.UserFilter) ([]*usersync.User, int, error) {
	if p.block != nil {
		<-ctx.Done()
		return nil, 0, usersync.Errorf(usersync.EUNAVAILABLE, "list users: %v", ctx.Err())
	}
	panic("boom")
}

func (p *panicky) Authenticate(ctx context.Context, tok string) (*usersync.User, error) {
	if p.authErr != nil {
		return nil, p.authErr
	}
	return p.Directory.Authenticate(ctx, tok)
}

func (p *panicky) CheckWritable(ctx context.Context) error { return p.writeErr }

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startWith(t *testing.T, d usersync.Directory, o server.Options) (*httptest.Server, *syncBuffer, string) {
	t.Helper()
	logs := &syncBuffer{}
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(logs, nil)), o))
	t.Cleanup(srv.Close)
	return srv, logs, adminToken(t, d)
}

func adminToken(t *testing.T, d usersync.Directory) string {
	t.Helper()
	u := &usersync.User{Username: "admin-" + fmt.Sprint(time.Now().UnixNano()), Email: "a@x.example", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	tok, _, err := d.CreateToken(context.Background(), u.ID, "t")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A panic in a handler is a logged 500 with a SCIM error body, counted in
// the metrics — not a dropped connection.
func TestPanicIsLogged500(t *testing.T) {
	d := &panicky{Directory: dirtest.SQLite(t)}
	srv, logs, tok := startWith(t, d, server.Options{})
	code, body := get(t, srv.URL+server.SCIMPath+"/Users", "Bearer "+tok)
	if code != 500 || !strings.Contains(body, `"status":"500"`) {
		t.Fatalf("panic answered %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "panicked") || !strings.Contains(logs.String(), "boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
	if id := regexp.MustCompile(`request id ([0-9a-f]+)`).FindStringSubmatch(body); id == nil || !strings.Contains(logs.String(), "request_id="+id[1]) {
		t.Fatalf("the answer and the log do not share a request id:\n%s\n%s", body, logs.String())
	}
	if _, m := get(t, srv.URL+"/metrics", ""); !strings.Contains(m, `usersync_http_panics_total{route="/scim/v2/Users"} 1`) ||
		!strings.Contains(m, `usersync_http_requests_total{code="500",method="GET",route="/scim/v2/Users"} 1`) {
		t.Fatalf("panic not counted:\n%s", m)
	}
}

// A directory that fails is 503 with its cause logged, not 401 "not a
// valid API token"; /readyz fails when the directory cannot be written.
func TestDirectoryFailureIsNotUnauthorized(t *testing.T) {
	d := &panicky{Directory: dirtest.SQLite(t), authErr: usersync.Errorf(usersync.EUNAVAILABLE, "read token: the database x.db is read-only")}
	srv, logs, tok := startWith(t, d, server.Options{})
	if code, body := get(t, srv.URL+server.SCIMPath+"/Groups", "Bearer "+tok); code != 503 || strings.Contains(body, "API token") {
		t.Fatalf("failing directory: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "read-only") {
		t.Fatalf("cause not logged: %s", logs.String())
	}
	if code, _ := get(t, srv.URL+"/readyz", ""); code != 200 {
		t.Fatalf("readyz with a writable directory: %d", code)
	}
	d.writeErr = usersync.Errorf(usersync.EUNAVAILABLE, "the database x.db is read-only")
	if code, body := get(t, srv.URL+"/readyz", ""); code != 503 || !strings.Contains(body, "cannot be written") {
		t.Fatalf("readyz with a read-only directory: %d %s", code, body)
	}
}

// The Authorization scheme is case-insensitive (RFC 7235 §2.1), and a 401
// says which scheme is expected (RFC 6750 §3).
func TestBearerSchemeAnyCase(t *testing.T) {
	d := dirtest.SQLite(t)
	srv, _, tok := startWith(t, d, server.Options{})
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if code, body := get(t, srv.URL+server.SCIMPath+"/Users", scheme+" "+tok); code != 200 {
			t.Fatalf("%s: %d %s", scheme, code, body)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+server.SCIMPath+"/Users", nil)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without WWW-Authenticate: %d %v", resp.StatusCode, resp.Header)
	}
}

// NUL characters and invalid UTF-8 are refused with 400 on every path,
// and nothing stored makes later filters fail (on PostgreSQL a stored
// NUL made every filter on enterprise attributes answer 500).
func TestNULAndInvalidUTF8Refused(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		_, u, _ := c.do("POST", "/Users", entraUser("ok@x.example", "ext-ok"))
		uid := u["id"].(string)
		g := &usersync.Group{Name: "G"}
		d.CreateGroup(context.Background(), g)
		gid := fmt.Sprint(g.ID)
		nul := `"a\u0000b"`
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/Users", `{"userName":` + nul + `,"emails":[{"type":"work","value":"n@x.example"}]}`},
			{"POST", "/Users", `{"userName":"n2@x.example","name":{"givenName":` + nul + `},"emails":[{"type":"work","value":"n2@x.example"}]}`},
			{"POST", "/Users", `{"userName":"n3@x.example","emails":[{"type":"work","value":"n3@x.example"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":` + nul + `}}`},
			{"PUT", "/Users/" + uid, `{"userName":"ok@x.example","emails":[{"type":"work","value":"ok@x.example"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":` + nul + `}}`},
			{"PATCH", "/Users/" + uid, `{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":` + nul + `}]}`},
			{"PATCH", "/Users/" + uid, `{"Operations":[{"op":"replace","path":"name.givenName","value":"caf` + "\xe9" + `"}]}`},
			{"POST", "/Groups", `{"displayName":` + nul + `}`},
			{"PATCH", "/Groups/" + gid, `{"Operations":[{"op":"replace","path":"description","value":` + nul + `}]}`},
			{"GET", "/Users?filter=" + "userName%20eq%20%22a%00b%22", ""},
			{"GET", "/Users?filter=" + "userName%20eq%20%22a%E9%22", ""},
			{"GET", "/Groups?filter=" + "displayName%20eq%20%22a%00%22", ""},
		} {
			code, body, _ := c.do(r.method, r.path, r.body)
			if code != 400 {
				t.Fatalf("%s %s %q: %d %v", r.method, r.path, r.body, code, body)
			}
		}
		code, body, _ := c.do("GET", "/Users?filter="+strings.ReplaceAll(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Navy"`, " ", "%20"), nil)
		if code != 200 || body["totalResults"] != float64(1) {
			t.Fatalf("filter on enterprise attributes afterwards: %d %v", code, body)
		}
	})
}

// Metric series are bounded by route pattern and method: unauthenticated
// requests to arbitrary paths add none (20,000 of them once took /metrics
// from 5 KB to 11 MB).
func TestMetricsBounded(t *testing.T) {
	d := dirtest.SQLite(t)
	srv, _, _ := startWith(t, d, server.Options{AccessLog: server.AccessNone})
	_, before := get(t, srv.URL+"/metrics", "")
	for i := 0; i < 500; i++ {
		req, _ := http.NewRequest([]string{"GET", "BREW", "PROPFIND"}[i%3], fmt.Sprintf("%s%s/x%d/y%d/z", srv.URL, server.SCIMPath, i, i), nil)
		if i%2 == 0 {
			req.URL.Path = fmt.Sprintf("/nope-%d", i)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	_, after := get(t, srv.URL+"/metrics", "")
	series := func(m string) int { return strings.Count(m, "usersync_http_requests_total{") }
	if series(after) > series(before)+6 || strings.Contains(after, "x1") || strings.Contains(after, "BREW") {
		t.Fatalf("metric series grew with the paths: %d → %d\n%.2000s", series(before), series(after), after)
	}
}

// A client that goes away mid-request is logged as such, at info, and
// recorded as 499 — not as "the directory is unavailable".
func TestClientGone(t *testing.T) {
	d := &panicky{Directory: dirtest.SQLite(t), block: make(chan struct{})}
	srv, logs, tok := startWith(t, d, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+server.SCIMPath+"/Users", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "status=499") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l := logs.String()
	if !strings.Contains(l, "client went away") || strings.Contains(l, "directory is unavailable") || !strings.Contains(l, "status=499") || strings.Contains(l, "level=WARN") {
		t.Fatalf("log:\n%s", l)
	}
}

// The access log's volume is a choice: errors only, or none.
func TestAccessLogLevels(t *testing.T) {
	d := dirtest.SQLite(t)
	srv, logs, tok := startWith(t, d, server.Options{AccessLog: server.AccessErrors})
	get(t, srv.URL+server.SCIMPath+"/Users", "Bearer "+tok)
	get(t, srv.URL+server.SCIMPath+"/Users/999999", "Bearer "+tok)
	if l := logs.String(); strings.Contains(l, "status=200") || !strings.Contains(l, "status=404") {
		t.Fatalf("errors only:\n%s", l)
	}
	srv, logs, tok = startWith(t, d, server.Options{AccessLog: server.AccessNone})
	get(t, srv.URL+server.SCIMPath+"/Users/999999", "Bearer "+tok)
	if l := logs.String(); strings.Contains(l, "msg=request") {
		t.Fatalf("none:\n%s", l)
	}
}

// The SCIM request logger masks secrets by attribute, header and parameter
// name, and never writes a body it could not parse.
func TestRequestLoggerMasksSecrets(t *testing.T) {
	d := dirtest.SQLite(t)
	if _, err := d.SetSetting(context.Background(), "ENABLE_SCIM_REQUEST_LOGGER", "Y"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, _, tok := startWith(t, d, server.Options{SCIMLogDir: dir})
	send := func(method, path, body string, headers map[string]string) {
		req, _ := http.NewRequest(method, srv.URL+server.SCIMPath+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	c := &client{t, srv.URL + server.SCIMPath, tok}
	_, u, _ := c.do("POST", "/Users", entraUser("log@x.example", "ext-l"))
	id := u["id"].(string)
	send("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"password","value":"hunter2-patch"}]}`, nil)
	send("POST", "/Users", `{"userName": "x", "password": "hunter3-malformed"`, nil)
	send("GET", "/Users?access_token=hunter4-query", "", map[string]string{"Proxy-Authorization": "Basic hunter5-proxy", "X-Api-Key": "hunter6-key"})
	// Attribute names are case-insensitive (RFC 7643 §2.1), and a secret
	// travels in headers and parameters no list of names foresees: only
	// the headers and parameters known to be harmless are written.
	send("PATCH", "/Users/"+id, `{"Operations":[{"Op":"Replace","Path":"PassWord","Value":"hunter7-path"}]}`, nil)
	send("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","VALUE":"hunter8-urn"}]}`, nil)
	send("GET", "/Users?sig=hunter9-param", "", map[string]string{"X-Auth-Key": "hunter10-header", "X-Custom": "hunter11"})
	send("POST", "/Users", `"hunter12-bare-string"`, nil)
	send("POST", "/Users", `["hunter13-array"]`, nil)
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(files) != 1 {
		t.Fatalf("log files: %v", files)
	}
	b, _ := os.ReadFile(files[0])
	for _, secret := range []string{"hunter2", "hunter3", "hunter4", "hunter5", "hunter6", "hunter7", "hunter8", "hunter9", "hunter10", "hunter11", "hunter12", "hunter13", tok} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("the request log holds %q:\n%s", secret, b)
		}
	}
	if !strings.Contains(string(b), `"unparsed":true`) || !strings.Contains(string(b), "log@x.example") ||
		!strings.Contains(string(b), `"Content-Type":"application/scim+json"`) || !strings.Contains(string(b), `"X-Auth-Key":"********"`) {
		t.Fatalf("log content:\n%s", b)
	}
}

// A SCIM client cannot delete or disable the administrator its own token
// belongs to (by DELETE, PATCH active=false, PUT active=false, or within a
// Bulk request): the token would die with it and every later request get
// 401 with nothing saying why. Refused with 403 saying so; another
// administrator's token can.
func TestCannotDisableOwnTokensAdministrator(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		for _, removeOnSoftDelete := range []string{"N", "Y"} {
			if _, err := d.SetSetting(context.Background(), "SCIM_REMOVE_USER_ON_SOFT_DELETE", removeOnSoftDelete); err != nil {
				t.Fatal(err)
			}
			srv, _, tok := startWith(t, d, server.Options{})
			self, err := d.Authenticate(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			c := &client{t, srv.URL + server.SCIMPath, tok}
			id := strconv.FormatInt(self.ID, 10)
			for _, r := range []struct {
				method, path string
				body         any
			}{
				{"DELETE", "/Users/" + id, nil},
				{"PATCH", "/Users/" + id, ops(map[string]any{"op": "Replace", "path": "active", "value": "False"})},
				{"PUT", "/Users/" + id, map[string]any{"schemas": []any{coreUser}, "userName": self.Username, "active": false}},
			} {
				code, body, _ := c.do(r.method, r.path, r.body)
				if code != 403 || !strings.Contains(fmt.Sprint(body["detail"]), "API token belongs to") {
					t.Fatalf("%s %s of the token's own administrator (remove on soft delete %s): %d %v", r.method, r.path, removeOnSoftDelete, code, body)
				}
			}
			code, body, _ := c.do("POST", "/Bulk", map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"},
				"Operations": []any{map[string]any{"method": "DELETE", "path": "/Users/" + id}}})
			if code != 200 || !strings.Contains(fmt.Sprint(body), "403") {
				t.Fatalf("Bulk DELETE of the token's own administrator: %d %v", code, body)
			}
			if u, err := d.FindUserByID(context.Background(), self.ID); err != nil || !u.Enabled {
				t.Fatalf("the token's administrator after the refusals: %+v %v", u, err)
			}
			if _, err := d.Authenticate(context.Background(), tok); err != nil {
				t.Fatalf("the token stopped working: %v", err)
			}
			// Another administrator's token can.
			other := &client{t, srv.URL + server.SCIMPath, adminToken(t, d)}
			if code, _, _ := other.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "Replace", "path": "active", "value": false})); code/100 != 2 {
				t.Fatalf("another administrator disabling it: %d", code)
			}
		}
	})
}
