package okta

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, srv *httptest.Server, token, path string) (*http.Response, any) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "SSWS "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func errorCode(body any) string {
	m, _ := body.(map[string]any)
	s, _ := m["errorCode"].(string)
	return s
}

func TestWire(t *testing.T) {
	org := Generate(3, 2500, 3)
	srv := httptest.NewServer(NewServer(org, Options{Token: "tok"}))
	defer srv.Close()

	if resp, body := get(t, srv, "", "/api/v1/groups"); resp.StatusCode != 401 || errorCode(body) != "E0000011" {
		t.Fatalf("no token: %d %v", resp.StatusCode, body)
	}
	if resp, body := get(t, srv, "nope", "/api/v1/groups"); resp.StatusCode != 401 || errorCode(body) != "E0000011" {
		t.Fatalf("wrong token: %d %v", resp.StatusCode, body)
	}
	// Exact search; Everyone is BUILT_IN.
	resp, body := get(t, srv, "tok", "/api/v1/groups?"+url.Values{"search": {`profile.name eq "Everyone"`}}.Encode())
	groups, _ := body.([]any)
	if resp.StatusCode != 200 || len(groups) != 1 || groups[0].(map[string]any)["type"] != "BUILT_IN" {
		t.Fatalf("search Everyone: %d %v", resp.StatusCode, body)
	}
	for _, h := range []string{"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"} {
		if resp.Header.Get(h) == "" {
			t.Fatalf("answer lacks %s", h)
		}
	}
	if _, body := get(t, srv, "tok", "/api/v1/groups?"+url.Values{"search": {`profile.name eq "Group"`}}.Encode()); len(body.([]any)) != 0 {
		t.Fatal("search is not exact")
	}
	if _, body := get(t, srv, "tok", "/api/v1/groups?q=grou"); len(body.([]any)) != 2 {
		t.Fatalf("q= prefix: %v", body)
	}
	if resp, body := get(t, srv, "tok", "/api/v1/groups?"+url.Values{"search": {`type eq "OKTA_GROUP"`}}.Encode()); resp.StatusCode != 400 {
		t.Fatalf("unsupported search: %d %v", resp.StatusCode, body)
	}
	every := org.GroupsNamed("Everyone")[0]
	if _, body := get(t, srv, "tok", "/api/v1/groups/"+every.ID+"?expand=stats"); body.(map[string]any)["_embedded"].(map[string]any)["stats"].(map[string]any)["usersCount"] != float64(2500) {
		t.Fatalf("stats: %v", body)
	}
	if resp, body := get(t, srv, "tok", "/api/v1/groups/00gnope"); resp.StatusCode != 404 || errorCode(body) != "E0000007" {
		t.Fatalf("missing group: %d %v", resp.StatusCode, body)
	}

	// Members: limit capped at 1000, next page in the Link header, every user once.
	seen := map[string]bool{}
	path, pages := "/api/v1/groups/"+every.ID+"/users?limit=5000", 0
	for path != "" {
		resp, body := get(t, srv, "tok", path)
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", pages, resp.StatusCode, body)
		}
		pages++
		for _, u := range body.([]any) {
			id := u.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("user %s twice", id)
			}
			seen[id] = true
		}
		path = ""
		for _, l := range resp.Header.Values("Link") {
			if strings.Contains(l, `rel="next"`) {
				u, _ := url.Parse(strings.Trim(strings.Split(l, ";")[0], "<>"))
				path = u.RequestURI()
			}
		}
	}
	if pages != 3 || len(seen) != 2500 {
		t.Fatalf("%d pages, %d users", pages, len(seen))
	}
}

func TestRateLimit(t *testing.T) {
	org := Generate(3, 10, 1)
	srv := httptest.NewServer(NewServer(org, Options{Token: "tok", RateLimit: 3, Window: time.Hour}))
	defer srv.Close()
	for i := 1; i <= 3; i++ {
		resp, _ := get(t, srv, "tok", "/api/v1/groups")
		if resp.StatusCode != 200 || resp.Header.Get("X-Rate-Limit-Remaining") != string(rune('0'+3-i)) {
			t.Fatalf("request %d: %d remaining %s", i, resp.StatusCode, resp.Header.Get("X-Rate-Limit-Remaining"))
		}
	}
	resp, body := get(t, srv, "tok", "/api/v1/groups")
	if resp.StatusCode != 429 || errorCode(body) != "E0000047" {
		t.Fatalf("over the limit: %d %v", resp.StatusCode, body)
	}
	// Families are limited separately.
	if resp, _ := get(t, srv, "tok", "/api/v1/groups/"+org.GroupsNamed("Everyone")[0].ID); resp.StatusCode != 200 {
		t.Fatalf("another family: %d", resp.StatusCode)
	}
}

func FuzzSearchName(f *testing.F) {
	for _, s := range []string{`profile.name eq "Sales"`, `profile.name eq "a \"b\" c"`, `profile.name eq "back\\slash"`, `profile.name eq "x"y"`, `name eq "x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		name, err := searchName(expr)
		if err != nil {
			return
		}
		// What parsed must round-trip through the escaping a client does.
		esc := strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `"`, `\"`)
		again, err := searchName(`profile.name eq "` + esc + `"`)
		if err != nil || again != name {
			t.Fatalf("%q → %q → %q %v", expr, name, again, err)
		}
	})
}

// Every answer, errors included, carries X-Okta-Request-Id; a rate-limit
// window starts with its first request, not on the clock's minute (wire
// facts §11), so the reset is a whole window away from it.
func TestRequestIDAndWindows(t *testing.T) {
	org := Generate(3, 10, 2)
	srv := httptest.NewServer(NewServer(org, Options{Token: "tok", RateLimit: 100, Window: 10 * time.Second}))
	defer srv.Close()
	seen := map[string]bool{}
	for _, c := range []struct{ token, path string }{{"tok", "/api/v1/groups"}, {"bad", "/api/v1/groups"}, {"tok", "/api/v1/nope"}} {
		resp, _ := get(t, srv, c.token, c.path)
		id := resp.Header.Get("X-Okta-Request-Id")
		if id == "" || seen[id] {
			t.Fatalf("%s %s: request id %q", c.token, c.path, id)
		}
		seen[id] = true
	}
	resp, _ := get(t, srv, "tok", "/api/v1/groups/"+org.GroupsNamed("Everyone")[0].ID)
	reset, _ := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64)
	if left := time.Until(time.Unix(reset, 0)); left < 9*time.Second || left > 11*time.Second {
		t.Fatalf("the window resets in %s, want about 10 s from its first request", left)
	}
}

// X-Rate-Limit-Reset and Date agree as Okta's do: the wait they give is
// never longer than the window, on the first request of a window and on
// a 429 (the Okta SDK refuses a backoff longer than the window: a window
// begun mid-second once said 61 s of 60).
func TestRateLimitResetAgreesWithDate(t *testing.T) {
	org := Generate(3, 10, 2)
	srv := httptest.NewServer(NewServer(org, Options{Token: "tok", RateLimit: 3, Window: 60 * time.Second}))
	defer srv.Close()
	for i := 0; i < 8; i++ {
		time.Sleep(37 * time.Millisecond) // land at different points of a second
		resp, _ := get(t, srv, "tok", "/api/v1/groups")
		reset, err := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64)
		date, err2 := http.ParseTime(resp.Header.Get("Date"))
		if err != nil || err2 != nil {
			t.Fatalf("headers: %v %v", err, err2)
		}
		if wait := reset - date.Unix(); wait < 0 || wait > 60 {
			t.Fatalf("request %d (%d): Reset − Date = %d s against a 60 s window", i+1, resp.StatusCode, wait)
		}
	}
}

// FuzzQueryOptions sends any search, q, filter, expand, limit and after
// to the lists and reads the emulator serves: every answer is below 500.
func FuzzQueryOptions(f *testing.F) {
	for _, seed := range [][6]string{
		{`profile.name eq "Everyone"`, "", "", "stats", "200", ""},
		{`profile.name eq "`, "Gr", `status eq "ACTIVE"`, "", "0", "zzz"},
		{"", "", "", "", "-1", "00u"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5])
	}
	var logs bytes.Buffer
	org := Generate(3, 12, 2)
	s := NewServer(org, Options{Token: "tok", RateLimit: 1 << 30, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	g := org.GroupsNamed("Everyone")[0]
	paths := []string{"/api/v1/groups", "/api/v1/groups/" + g.ID, "/api/v1/groups/" + g.ID + "/users", "/api/v1/users/" + g.Members[0], "/api/v1/users"}
	f.Fuzz(func(t *testing.T, search, q, filter, expand, limit, after string) {
		v := url.Values{}
		for k, x := range map[string]string{"search": search, "q": q, "filter": filter, "expand": expand, "limit": limit, "after": after} {
			if x != "" {
				v.Set(k, x)
			}
		}
		for _, p := range paths {
			req := httptest.NewRequest("GET", p+"?"+v.Encode(), nil)
			req.Header.Set("Authorization", "SSWS tok")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("GET %s?%s: %d %s\n%s", p, v.Encode(), rec.Code, rec.Body, logs.String())
			}
		}
	})
}
