package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/server"
)

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

type client struct {
	t     fataler
	base  string
	token string
}

// fataler is what client needs of a test: *testing.T, or goroutineT in
// goroutines, where t.Fatal must not be called.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// goroutineT records a failure and ends the goroutine (its deferred calls run).
type goroutineT struct {
	mu     *sync.Mutex
	failed *[]string
}

func (goroutineT) Helper() {}

func (g goroutineT) Fatal(args ...any) {
	g.mu.Lock()
	*g.failed = append(*g.failed, fmt.Sprint(args...))
	g.mu.Unlock()
	runtime.Goexit()
}

func (c *client) do(method, path string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	return c.doWith(method, path, body, nil)
}

func (c *client) doWith(method, path string, body any, headers map[string]string) (int, map[string]any, http.Header) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode < 300 && c.token != "" {
		if err := checkBody(servedSchemas(c.base, c.token), out); err != nil {
			c.t.Fatal(fmt.Sprintf("%s %s: the response does not follow the served /Schemas: %v\n%v", method, path, err, out))
		}
	}
	return resp.StatusCode, out, resp.Header
}

// start serves the service over dir on loopback and returns a client with
// an administrator's token, and that of a regular user.
func start(t *testing.T, d usersync.Directory) (admin *client, regular *client) {
	return startLogging(t, d, "")
}

func startLogging(t *testing.T, d usersync.Directory, logDir string) (admin *client, regular *client) {
	ctx := context.Background()
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{SCIMLogDir: logDir}))
	t.Cleanup(srv.Close)
	token := func(name string, typ usersync.UserType) string {
		u := &usersync.User{Username: name, Email: name + "@x.example", Type: typ, Enabled: true}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		clear, _, err := d.CreateToken(ctx, u.ID, "entra")
		if err != nil {
			t.Fatal(err)
		}
		return clear
	}
	return &client{t, srv.URL + server.SCIMPath, token("scim-admin", usersync.UserAdministrator)},
		&client{t, srv.URL + server.SCIMPath, token("plain", usersync.UserRegular)}
}

func entraUser(name, external string) map[string]any {
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"externalId": external, "userName": name, "active": true, "displayName": "Ignored Display",
		"emails": []map[string]any{{"primary": true, "type": "work", "value": name}},
		"name":   map[string]any{"givenName": "Grace", "familyName": "Hopper"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Navy", "employeeNumber": "42",
			"manager": map[string]any{"value": "mgr-1"}},
		"nickName": "unsupported attributes are ignored",
	}
}

func TestAuth(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		admin, regular := start(t, open(t))
		anon := &client{t, admin.base, ""}
		wrong := &client{t, admin.base, "ust_not-a-token"}
		for _, c := range []struct {
			c    *client
			code int
		}{{anon, 401}, {wrong, 401}, {regular, 403}} {
			code, body, _ := c.c.do("GET", "/Users", nil)
			if code != c.code || body["status"] != strconv.Itoa(c.code) || body["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
				t.Fatalf("want %d with a SCIM error body, got %d %v", c.code, code, body)
			}
		}
		if code, body, _ := admin.do("POST", "/Me", `{}`); code != 404 || body["schemas"] == nil {
			t.Fatalf("unserved path: %d %v", code, body)
		}
		for _, p := range []string{"/ServiceProviderConfig", "/ResourceTypes", "/Schemas"} {
			if code, body, _ := admin.do("GET", p, nil); code != 200 || body["schemas"] == nil {
				t.Fatalf("%s: %d %v", p, code, body)
			}
		}
	})
}

func TestUsers(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		ctx := context.Background()

		code, u, h := c.do("POST", "/Users", entraUser("grace@navy.example", "obj-1"))
		if code != 201 || u["userName"] != "grace@navy.example" || u["externalId"] != "obj-1" || u["active"] != true || h.Get("Location") != c.base+"/Users/"+u["id"].(string) ||
			u["meta"].(map[string]any)["location"] != h.Get("Location") {
			t.Fatalf("create: %d %v", code, u)
		}
		// Behind a proxy that terminates TLS, locations say https.
		_, u2, _ := c.doWith("GET", "/Users/"+u["id"].(string), nil, map[string]string{"X-Forwarded-Proto": "https"})
		if want := "https://" + strings.TrimPrefix(c.base, "http://") + "/Users/" + u["id"].(string); u2["meta"].(map[string]any)["location"] != want {
			t.Fatalf("location behind a proxy: %v, want %s", u2["meta"], want)
		}
		ext := u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
		// manager is complex (RFC 7643 §4.3), though Entra sends the id alone.
		if m, _ := ext["manager"].(map[string]any); ext["department"] != "Navy" || m["value"] != "mgr-1" {
			t.Fatalf("enterprise extension: %v", ext)
		}
		stored, err := d.FindUserByUsername(ctx, "grace@navy.example")
		if err != nil || stored.AuthMethod != usersync.AuthSSO || stored.Type != usersync.UserRegular || stored.FirstName != "Grace" {
			t.Fatalf("stored %+v %v", stored, err)
		}
		cs, _ := d.ChangesAfter(ctx, 0, 1000)
		if last := cs[len(cs)-1]; last.Actor != "scim:scim-admin" {
			t.Fatalf("change actor %q", last.Actor)
		}
		alan := entraUser("alan@example.com", "obj-2")
		alan["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{"department": "Math"}
		c.do("POST", "/Users", alan)

		// Bad input: a clear SCIM error, nothing written.
		seq, _ := d.LastChangeSeq(ctx)
		noEmail := entraUser("x@example.com", "obj-3")
		delete(noEmail, "emails")
		for _, bad := range []struct {
			body           any
			code           int
			scimType, says string
		}{
			{entraUser("GRACE@navy.example", "obj-9"), 409, "uniqueness", "taken"},
			{entraUser(strings.Repeat("a", 101), "x"), 400, "invalidValue", "100"},
			{`{"userName": `, 400, "invalidSyntax", "JSON"},
			{`{"userName": "a@b", "active": "maybe"}`, 400, "invalidValue", "true or false"},
			{`{"userName": "a@b", "emails": [{"value": "a@b", "primary": true}, {"value": "c@d", "primary": true}]}`, 400, "invalidValue", "primary"},
		} {
			code, body, _ := c.do("POST", "/Users", bad.body)
			if code != bad.code || body["scimType"] != bad.scimType || !strings.Contains(body["detail"].(string), bad.says) {
				t.Errorf("POST %v: %d %v", bad.body, code, body)
			}
		}
		if s, _ := d.LastChangeSeq(ctx); s != seq {
			t.Fatal("a refused request changed the directory")
		}

		// Filters, evaluated in the database.
		for filter, want := range map[string]int{
			`userName eq "GRACE@navy.example"`:                 1,
			`externalId eq "obj-2"`:                            1,
			`externalId eq "OBJ-2"`:                            0,
			`userName sw "grace" or userName ew "example.com"`: 2,
			`emails[type eq "work" and value co "navy"]`:       1,
			`not (active eq true)`:                             0,
			`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "navy"`: 1,
			`name.familyName eq "Hopper" and meta.created gt "2020-01-01T00:00:00Z"`:          2,
		} {
			code, body, _ := c.do("GET", "/Users?filter="+url.QueryEscape(filter), nil)
			if code != 200 || int(body["totalResults"].(float64)) != want {
				t.Errorf("filter %s: %d %v", filter, code, body["totalResults"])
			}
		}
		for filter, says := range map[string]string{`userName eq`: "value", `nickNames eq "x"`: "nickNames", `active co "x"`: "true or false", `password eq "x"`: "password"} {
			code, body, _ := c.do("GET", "/Users?filter="+url.QueryEscape(filter), nil)
			if code != 400 || body["scimType"] != "invalidFilter" || !strings.Contains(body["detail"].(string), says) {
				t.Errorf("bad filter %s: %d %v", filter, code, body)
			}
		}
		// Paging (the two token holders are users too: 4 in all).
		code, page, _ := c.do("GET", "/Users?startIndex=2&count=2", nil)
		if code != 200 || page["totalResults"].(float64) != 4 || page["itemsPerPage"].(float64) != 2 || page["startIndex"].(float64) != 2 {
			t.Fatalf("paging: %v", page)
		}
		if _, page, _ = c.do("GET", "/Users?count=0", nil); page["totalResults"].(float64) != 4 || page["itemsPerPage"].(float64) != 0 {
			t.Fatalf("count=0: %v", page)
		}

		// An email is optional (RFC 7643 §4.1 requires userName only) unless
		// SCIM_REQUIRE_EMAIL says otherwise.
		code, created, _ := c.do("POST", "/Users", noEmail)
		if _, has := created["emails"]; code != 201 || has {
			t.Fatalf("a user without email: %d %v", code, created)
		}
		d.SetSetting(ctx, "SCIM_REQUIRE_EMAIL", "Y")
		noEmail["userName"], noEmail["externalId"] = "y@example.com", "obj-4"
		if code, body, _ := c.do("POST", "/Users", noEmail); code != 400 || !strings.Contains(body["detail"].(string), "SCIM_REQUIRE_EMAIL") {
			t.Fatalf("a user without email, SCIM_REQUIRE_EMAIL=Y: %d %v", code, body)
		}
		noEmail["emails"] = []any{map[string]any{"value": "not an address", "type": "work"}}
		if code, body, _ := c.do("POST", "/Users", noEmail); code != 400 || !strings.Contains(body["detail"].(string), "not an address") {
			t.Fatalf("an invalid email, SCIM_REQUIRE_EMAIL=Y: %d %v", code, body)
		}

		// Read and delete by id.
		id := u["id"].(string)
		if code, got, _ := c.do("GET", "/Users/"+id, nil); code != 200 || got["userName"] != "grace@navy.example" {
			t.Fatalf("get: %d %v", code, got)
		}
		if code, _, _ := c.do("DELETE", "/Users/"+id, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		for _, p := range []string{"/Users/" + id, "/Users/nope"} {
			if code, body, _ := c.do("GET", p, nil); code != 404 || body["status"] != "404" {
				t.Fatalf("GET %s after delete: %d %v", p, code, body)
			}
		}
	})
}

// TestRequestLogger: with ENABLE_SCIM_REQUEST_LOGGER=Y (set while serving)
// requests and responses are logged, the token and passwords redacted;
// with N nothing more is written.
func TestRequestLogger(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		dir := t.TempDir()
		c, _ := startLogging(t, d, dir)
		c.do("GET", "/Users", nil) // off: not logged
		if _, err := d.SetSetting(context.Background(), "ENABLE_SCIM_REQUEST_LOGGER", "Y"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // the setting is read at most once a second
		body := entraUser("logged@example.com", "l-1")
		body["password"] = "Sup3rSecret!"
		c.do("POST", "/Users", body)
		read := func() string {
			files, _ := filepath.Glob(filepath.Join(dir, "scim-*.log"))
			var all strings.Builder
			for _, f := range files {
				b, _ := os.ReadFile(f)
				all.Write(b)
			}
			return all.String()
		}
		log := read()
		if strings.Count(log, "\n") != 1 || !strings.Contains(log, `"path":"/Users"`) || !strings.Contains(log, "logged@example.com") || !strings.Contains(log, `"status":201`) {
			t.Fatalf("log:\n%s", log)
		}
		if strings.Contains(log, c.token) || strings.Contains(log, "Sup3rSecret!") {
			t.Fatalf("the log holds a secret:\n%s", log)
		}
		d.SetSetting(context.Background(), "ENABLE_SCIM_REQUEST_LOGGER", "N")
		time.Sleep(1100 * time.Millisecond)
		c.do("GET", "/Users", nil)
		if read() != log {
			t.Fatal("logged after the setting went back to N")
		}
	})
}

func TestAttributesProjection(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		_, u, _ := c.do("POST", "/Users", entraUser("proj@example.com", "p-1"))
		id := u["id"].(string)
		_, got, _ := c.do("GET", "/Users/"+id+"?attributes=userName,name.givenName", nil)
		if got["userName"] != "proj@example.com" || got["name"] == nil || got["emails"] != nil || got["id"] != id || got["schemas"] == nil {
			t.Fatalf("attributes: %v", got)
		}
		_, got, _ = c.do("GET", "/Users/"+id+"?excludedAttributes=emails,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil)
		if got["emails"] != nil || got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] != nil || got["userName"] == nil {
			t.Fatalf("excludedAttributes: %v", got)
		}
		_, list, _ := c.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "proj@example.com"`)+"&attributes=userName", nil)
		if r := list["Resources"].([]any)[0].(map[string]any); r["userName"] == nil || r["active"] != nil {
			t.Fatalf("list with attributes: %v", r)
		}
	})
}
