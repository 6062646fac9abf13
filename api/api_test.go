package api_test

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
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/server"
)

// client calls the API of a real server over loopback and checks every
// response against the OpenAPI document the server serves: the document
// is generated from the handlers, and this keeps it honest.
type client struct {
	t      *testing.T
	base   string
	token  string
	router routers.Router
}

func start(t *testing.T, d usersync.Directory) (admin, regular *client) {
	t.Helper()
	return startWith(t, d, api.Options{})
}

func startWith(t *testing.T, d usersync.Directory, o api.Options) (admin, regular *client) {
	t.Helper()
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{API: o}))
	t.Cleanup(srv.Close)
	token := func(name string, typ usersync.UserType) string {
		u := &usersync.User{Username: name, Email: name + "@x.example", Type: typ, Enabled: true}
		if err := d.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		clear, _, err := d.CreateToken(context.Background(), u.ID, "api")
		if err != nil {
			t.Fatal(err)
		}
		return clear
	}
	resp, err := http.Get(srv.URL + "/api/v1/openapi-3.0.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatalf("the served OpenAPI document does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served OpenAPI document is not valid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL + "/api/v1"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/api/v1"
	return &client{t, base, token("api-admin", usersync.UserAdministrator), router}, &client{t, base, token("plain", usersync.UserRegular), router}
}

func (c *client) do(method, path string, body any, headers ...string) (int, map[string]any, http.Header) {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	validate(c.t, c.router, req, resp, data)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out, resp.Header
}

// validate fails the test when a response does not follow the OpenAPI
// document.
func validate(t *testing.T, router routers.Router, req *http.Request, resp *http.Response, data []byte) {
	t.Helper()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: resp.StatusCode, Header: resp.Header, Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(data)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s: the %d response does not follow the OpenAPI document: %v\n%s", req.Method, req.URL, resp.StatusCode, err, data)
	}
}

// checked is a transport that validates every response against the
// OpenAPI document: api.Client's traffic is held to it too.
type checked struct {
	t      *testing.T
	router routers.Router
}

func (c checked) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	validate(c.t, c.router, req, resp, data)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

func TestAuthAndDocument(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		admin, regular := start(t, open(t))
		anon := &client{t, admin.base, "", admin.router}
		code, body, h := anon.do("GET", "/users", nil)
		if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body["detail"].(string), "bearer token") {
			t.Fatalf("no token: %d %v %v", code, h, body)
		}
		if code, body, _ := regular.do("GET", "/users", nil); code != 403 || !strings.Contains(body["detail"].(string), "not an administrator") {
			t.Fatalf("a regular user's token: %d %v", code, body)
		}
		resp, err := http.Get(admin.base + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc["openapi"] != "3.1.0" || doc["paths"].(map[string]any)["/users"] == nil {
			t.Fatalf("openapi.json: %v", doc["openapi"])
		}
	})
}

func TestUsers(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		code, u, h := c.do("POST", "/users", map[string]any{"username": "ann@example.com", "email": "ann@example.com", "firstName": "Ann", "attributes": map[string]any{"dept": "IT"}})
		if code != 201 || u["username"] != "ann@example.com" || u["enabled"] != true || u["type"] != "regular" || h.Get("ETag") != `W/"1"` {
			t.Fatalf("create: %d %v %v", code, u, h)
		}
		// Bad input: a message naming the field, and nothing written.
		seq, _ := d.LastChangeSeq(context.Background())
		for _, bad := range []struct {
			body any
			code int
			says string
		}{
			{map[string]any{"email": "x@example.com"}, 422, "username"},
			{map[string]any{"username": "b", "type": "emperor"}, 422, "type"},
			{map[string]any{"username": "b", "email": "not an address"}, 422, "email"},
			{map[string]any{"username": "ANN@example.com"}, 409, "already exists"},
			{`{"username": `, 400, "unexpected"},
		} {
			code, body, _ := c.do("POST", "/users", bad.body)
			if text, _ := json.Marshal(body); code != bad.code || !strings.Contains(string(text), bad.says) {
				t.Errorf("POST %v: %d %s", bad.body, code, text)
			}
		}
		if s, _ := d.LastChangeSeq(context.Background()); s != seq {
			t.Fatal("a refused request changed the directory")
		}
		// If-Match: a stale version changes nothing.
		code, body, _ := c.do("PATCH", "/users/ann@example.com", map[string]any{"lastName": "Lee"}, "If-Match", `W/"7"`)
		if code != 412 {
			t.Fatalf("stale If-Match: %d %v", code, body)
		}
		code, u, h = c.do("PATCH", "/users/ANN@example.com", map[string]any{"lastName": "Lee", "attributes": map[string]any{"dept": nil}}, "If-Match", `W/"1"`)
		if code != 200 || u["lastName"] != "Lee" || u["attributes"] != nil && len(u["attributes"].(map[string]any)) != 0 || h.Get("ETag") != `W/"2"` {
			t.Fatalf("PATCH: %d %v %v", code, u, h)
		}
		// Cursor paging: every user once, in username order.
		for i := 0; i < 25; i++ {
			d.CreateUser(context.Background(), &usersync.User{Username: fmt.Sprintf("page%02d@example.com", i)})
		}
		var seen []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			_, page, _ := c.do("GET", "/users?limit=10&cursor="+url.QueryEscape(cursor), nil)
			for _, it := range page["items"].([]any) {
				seen = append(seen, it.(map[string]any)["username"].(string))
			}
			if page["total"] != 28.0 {
				t.Fatalf("total %v", page["total"])
			}
			next, _ := page["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 28 {
			t.Fatalf("paged %d users, want 28: %v", len(seen), seen)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Fatalf("out of order or repeated: %v", seen)
			}
		}
		if code, _, _ := c.do("GET", "/users?cursor=nope", nil); code != 400 {
			t.Fatalf("a bad cursor: %d", code)
		}
		if code, _, _ := c.do("DELETE", "/users/ann@example.com", nil, "If-Match", `W/"1"`); code != 412 {
			t.Fatalf("stale delete: %d", code)
		}
		if code, _, _ := c.do("DELETE", "/users/ann@example.com", nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if code, body, _ := c.do("GET", "/users/ann@example.com", nil); code != 404 || !strings.Contains(body["detail"].(string), "ann@example.com") {
			t.Fatalf("after delete: %d %v", code, body)
		}
		cs, _ := d.ChangesAfter(context.Background(), seq, 10)
		if len(cs) == 0 || cs[0].Actor != "api:api-admin" {
			t.Fatalf("the change log does not name the API's caller: %+v", cs)
		}
	})
}

func TestGroupsAndMembers(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		for _, n := range []string{"ann", "bob"} {
			c.do("POST", "/users", map[string]any{"username": n})
		}
		if code, g, _ := c.do("POST", "/groups", map[string]any{"name": "app:eng", "members": []any{"bob"}}); code != 201 || g["name"] != "app:eng" {
			t.Fatalf("create: %d %v", code, g)
		}
		code, g, h := c.do("POST", "/groups", map[string]any{"name": "Staff", "members": []any{"ann"}, "groups": []any{"app:eng"}})
		if code != 201 {
			t.Fatalf("create with a nested group: %d %v", code, g)
		}
		_, m, _ := c.do("GET", "/groups/Staff/members?transitive=true", nil)
		if m["total"] != 2.0 {
			t.Fatalf("effective members: %v", m)
		}
		_, m, _ = c.do("GET", "/groups/Staff/members", nil)
		if m["total"] != 1.0 || m["groups"].([]any)[0] != "app:eng" {
			t.Fatalf("direct members: %v", m)
		}
		seq, _ := d.LastChangeSeq(context.Background())
		for _, bad := range []struct {
			body map[string]any
			says string
		}{
			{map[string]any{"add": []any{"bob", "nobody"}}, "nobody"},
			{map[string]any{"addGroups": []any{"Staff"}}, "itself"},
		} {
			code, body, _ := c.do("PATCH", "/groups/Staff/members", bad.body)
			if code != 422 || !strings.Contains(body["detail"].(string), bad.says) {
				t.Errorf("PATCH members %v: %d %v", bad.body, code, body)
			}
		}
		if code, body, _ := c.do("PATCH", "/groups/app:eng/members", map[string]any{"addGroups": []any{"Staff"}}); code != 422 || !strings.Contains(body["detail"].(string), "cycle") {
			t.Errorf("a cycle: %d %v", code, body)
		}
		if s, _ := d.LastChangeSeq(context.Background()); s != seq {
			t.Fatal("a refused change was half applied")
		}
		code, g, _ = c.do("PATCH", "/groups/Staff/members", map[string]any{"add": []any{"bob"}, "removeGroups": []any{"app:eng"}}, "If-Match", h.Get("ETag"))
		if code != 200 || g["group"].(map[string]any)["version"].(float64) < 2 || g["added"] != 1.0 || g["removedGroups"] != 1.0 {
			t.Fatalf("change members: %d %v", code, g)
		}
		if _, m, _ = c.do("GET", "/groups/Staff/members?limit=1", nil); len(m["users"].([]any)) != 1 || m["next_cursor"] == nil {
			t.Fatalf("a page of one: %v", m)
		}
		if code, f, _ := c.do("PATCH", "/folders/app", map[string]any{"attributes": map[string]any{"o365Sync": "true"}}); code != 200 || f["attributes"].(map[string]any)["o365Sync"] != "true" {
			t.Fatalf("folder attributes: %d %v", code, f)
		}
		if code, g, _ := c.do("PATCH", "/groups/"+url.PathEscape("app:eng"), map[string]any{"name": "app:engineering"}); code != 200 || g["name"] != "app:engineering" {
			t.Fatalf("rename: %d %v", code, g)
		}
	})
}

func TestTokensSettingsAndChanges(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		code, tok, _ := c.do("POST", "/tokens", map[string]any{"user": "api-admin", "name": "script"})
		clear, _ := tok["token"].(string)
		if code != 201 || !strings.HasPrefix(clear, "ust_") {
			t.Fatalf("create token: %d %v", code, tok)
		}
		_, list, _ := c.do("GET", "/tokens?user=api-admin", nil)
		if text, _ := json.Marshal(list); len(list["items"].([]any)) != 2 || strings.Contains(string(text), clear) {
			t.Fatalf("token list: %s", text)
		}
		if code, body, _ := c.do("PUT", "/settings/O365_USERSYNC_CLIENT_SECRET", map[string]any{"value": "s3cret-value"}); code != 200 || body["value"] != "********" {
			t.Fatalf("a secret setting: %d %v", code, body)
		}
		_, sts, _ := c.do("GET", "/settings", nil)
		if text, _ := json.Marshal(sts); strings.Contains(string(text), "s3cret-value") {
			t.Fatal("a secret value is listed")
		}
		if code, body, _ := c.do("PUT", "/settings/SCIM_REQUIRE_EMAIL", map[string]any{"value": "perhaps"}); code != 422 {
			t.Fatalf("a bad setting value: %d %v", code, body)
		}
		// Long polling: the call waits for the next change.
		last, _ := d.LastChangeSeq(context.Background())
		go func() {
			time.Sleep(300 * time.Millisecond)
			d.CreateUser(context.Background(), &usersync.User{Username: "late"})
		}()
		start := time.Now()
		_, cs, _ := c.do("GET", fmt.Sprintf("/changes?after=%d&wait=10", last), nil)
		items := cs["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["object"].(map[string]any)["name"] != "late" || time.Since(start) > 5*time.Second {
			t.Fatalf("long poll: %v after %s", cs, time.Since(start))
		}
		if cs["last"].(float64) <= float64(last) {
			t.Fatalf("last %v", cs["last"])
		}
	})
}

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

func TestSchedulesAndRuns(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		ctx := context.Background()
		if err := d.CreateSchedule(ctx, &usersync.Schedule{Name: "sales", Cron: "*/40 * * * *", Command: []string{"o365", "provision", "Sales"}}); err != nil {
			t.Fatal(err)
		}
		r := &usersync.Run{Schedule: "sales", Trigger: "cli", StartedBy: "cli:test"}
		d.StartRun(ctx, r)
		d.FinishRun(ctx, r.ID, usersync.RunSucceeded, `{"usersCreated": 3}`, "")
		_, list, _ := c.do("GET", "/schedules", nil)
		if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "sales" {
			t.Fatalf("schedules: %v", list)
		}
		if code, _, _ := c.do("PATCH", "/schedules/sales", map[string]any{"paused": true}, "If-Match", `W/"9"`); code != 412 {
			t.Fatalf("stale If-Match: %d", code)
		}
		code, s, _ := c.do("PATCH", "/schedules/sales", map[string]any{"paused": true}, "If-Match", `W/"1"`)
		if code != 200 || s["paused"] != true {
			t.Fatalf("pause: %d %v", code, s)
		}
		_, runs, _ := c.do("GET", "/runs?schedule=sales", nil)
		if items := runs["items"].([]any); len(items) != 1 || items[0].(map[string]any)["outcome"] != "succeeded" {
			t.Fatalf("runs: %v", runs)
		}
		if code, run, _ := c.do("GET", fmt.Sprintf("/runs/%d", r.ID), nil); code != 200 || run["output"] != `{"usersCreated": 3}` {
			t.Fatalf("run: %d %v", code, run)
		}
		if code, _, _ := c.do("GET", "/schedules/nope", nil); code != 404 {
			t.Fatalf("unknown schedule: %d", code)
		}
	})
}

// Schedules made and run through the API use the serving process's
// command-line check and job queue; without them the API says so.
func TestScheduleWrites(t *testing.T) {
	d := dirtest.SQLite(t)
	var queued []string
	c, _ := startWith(t, d, api.Options{
		CheckCommand: func(ctx context.Context, command []string) error {
			if strings.Contains(strings.Join(command, " "), "--client-secret") {
				return usersync.Errorf(usersync.EINVALID, "a schedule's command line must not hold a secret")
			}
			return nil
		},
		RunNow: func(ctx context.Context, name, by string) (bool, error) {
			if _, err := d.FindSchedule(ctx, name); err != nil {
				return false, err
			}
			queued = append(queued, name+" by "+by)
			return len(queued) > 1, nil
		},
	})
	good := map[string]any{"name": "sales", "cron": "*/40 * * * *", "command": []any{"o365", "provision", "Sales"}}
	for _, bad := range []struct {
		body map[string]any
		says string
	}{
		{map[string]any{"name": "sales", "cron": "61 * * * *", "command": []any{"o365", "provision", "Sales"}}, "above maximum"},
		{map[string]any{"name": "sales", "cron": "* * * * *", "timeZone": "Mars/Olympus", "command": []any{"o365", "provision", "Sales"}}, "IANA"},
		{map[string]any{"name": "sales", "cron": "* * * * *", "command": []any{"o365", "provision", "--client-secret", "x", "Sales"}}, "secret"},
		{map[string]any{"name": "bad name", "cron": "* * * * *", "command": []any{"o365", "provision", "Sales"}}, "name"},
	} {
		code, body, _ := c.do("POST", "/schedules", bad.body)
		if text, _ := json.Marshal(body); code != 422 || !strings.Contains(string(text), bad.says) {
			t.Errorf("POST %v: %d %s", bad.body, code, text)
		}
	}
	if list, _ := d.ListSchedules(context.Background()); len(list) != 0 {
		t.Fatalf("a refused schedule was stored: %v", list)
	}
	if code, s, h := c.do("POST", "/schedules", good); code != 201 || s["name"] != "sales" || h.Get("ETag") != `W/"1"` {
		t.Fatalf("create: %d %v", code, s)
	}
	if code, _, _ := c.do("POST", "/schedules", good); code != 409 {
		t.Fatalf("twice: %d", code)
	}
	if code, r, _ := c.do("POST", "/schedules/sales/runs", nil); code != 202 || r["queued"] != true {
		t.Fatalf("run now: %d %v", code, r)
	}
	if _, r, _ := c.do("POST", "/schedules/sales/runs", nil); r["duplicate"] != true || r["queued"] != false {
		t.Fatalf("a second run now: %v", r)
	}
	if len(queued) != 2 || queued[0] != "sales by api:api-admin" {
		t.Fatalf("queued %v", queued)
	}
	if code, _, _ := c.do("POST", "/schedules/nope/runs", nil); code != 404 {
		t.Fatalf("run of an unknown schedule: %d", code)
	}
	if code, _, _ := c.do("DELETE", "/schedules/sales", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	bare, _ := start(t, dirtest.SQLite(t))
	if code, _, _ := bare.do("POST", "/schedules", good); code != 503 {
		t.Fatalf("create without a command check: %d", code)
	}
	if code, _, _ := bare.do("POST", "/schedules/sales/runs", nil); code != 503 {
		t.Fatalf("run without a queue: %d", code)
	}
}

// Provisioners are listed without secrets, with their backlog and
// failing groups.
func TestProvisioners(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		ctx := context.Background()
		p := &usersync.Provisioner{Name: "o365", Kind: usersync.ProvisionerGroups,
			Config: usersync.ProvisionerConfig{TenantID: "contoso.onmicrosoft.com", ClientID: "app-1", Domain: "contoso.com"}}
		if err := d.CreateProvisioner(ctx, p, "the-secret-value"); err != nil {
			t.Fatal(err)
		}
		g := &usersync.Group{Name: "app:g"}
		d.CreateGroup(ctx, g)
		d.SaveProvisionerItem(ctx, usersync.ProvisionerItem{Provisioner: "o365", GroupID: g.ID, GroupName: g.Name, Failures: 2, LastError: "Graph said no", Quarantined: true})
		_, list, _ := c.do("GET", "/provisioners", nil)
		if text, _ := json.Marshal(list); len(list["items"].([]any)) != 1 || strings.Contains(string(text), "the-secret-value") {
			t.Fatalf("provisioners: %s", text)
		}
		code, st, _ := c.do("GET", "/provisioners/o365", nil)
		items, _ := st["items"].([]any)
		if code != 200 || st["backlog"].(float64) < 1 || len(items) != 1 || items[0].(map[string]any)["quarantined"] != true {
			t.Fatalf("status: %d %v", code, st)
		}
		if code, _, _ := c.do("GET", "/provisioners/nope", nil); code != 404 {
			t.Fatalf("unknown provisioner: %d", code)
		}
	})
}
