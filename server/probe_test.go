package server_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
)

var probeFull = flag.Bool("probe.full", false, "TestHostileProbe: every payload on every route (about 10× the default)")

// TestHostileProbe sends hostile values through every route of SCIM, the
// API and the console, with every kind of credential, on both backends:
// no answer may be a 5xx or a panic, and no credential but an enabled
// administrator's may read or change anything. It reports what it tried:
//
//	go test ./server -run TestHostileProbe -v -probe.full
func TestHostileProbe(t *testing.T) {
	long := strings.Repeat("x", 9000)
	payloads := []string{"a\x00b", "\xff\xfe", long, strings.Repeat("é", 30000), "%", "../../etc/passwd", "' OR 1=1 --", `"`, "\\u0000",
		"<script>alert(1)</script>", "‮rtl", "９", " ", "", "-1", "99999999999999999999", "null"}
	jsonValues := []string{`"a\u0000b"`, `"\ud800"`, `"` + long + `"`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `1e999`, `{"":{"":{}}}`,
		`true`, `null`, `-0`, `"‮"`}
	if !*probeFull {
		payloads, jsonValues = payloads[:9], jsonValues[:6]
	}
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		srv, logs, admin := serve(t, d)
		ctx := context.Background()
		plain := &usersync.User{Username: "plain@example.com", Type: usersync.UserRegular, Enabled: true}
		off := &usersync.User{Username: "off@example.com", Type: usersync.UserAdministrator, Enabled: true}
		for _, u := range []*usersync.User{plain, off} {
			if err := d.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		plainTok, _, _ := d.CreateToken(ctx, plain.ID, "p")
		offTok, _, _ := d.CreateToken(ctx, off.ID, "o")
		f := false
		if _, err := d.UpdateUser(ctx, off.ID, usersync.UserUpdate{Enabled: &f}, 0); err != nil {
			t.Fatal(err)
		}
		creds := map[string]string{"admin": admin, "regular": plainTok, "disabled admin": offTok, "revoked-looking": admin + "x", "none": ""}
		type route struct{ method, path string }
		var routes []route
		for _, p := range payloads {
			e := url.PathEscape(p)
			q := url.QueryEscape(p)
			routes = append(routes,
				route{"GET", "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "`+p+`"`)},
				route{"GET", "/scim/v2/Users?filter=" + url.QueryEscape(`emails co "`+p+`"`) + "&sortBy=" + q + "&count=" + q},
				route{"GET", "/scim/v2/Groups?filter=" + url.QueryEscape(`displayName sw "`+p+`"`) + "&cursor=" + q},
				route{"GET", "/scim/v2/Users/" + e},
				route{"DELETE", "/scim/v2/Groups/" + e},
				route{"GET", "/scim/v2/Schemas/" + e},
				route{"GET", "/api/v1/users?search=" + q + "&cursor=" + q},
				route{"GET", "/api/v1/groups?search=" + q + "&folder=" + q},
				route{"GET", "/api/v1/users/" + e},
				route{"GET", "/api/v1/groups/" + e + "/members?transitive=" + q},
				route{"GET", "/api/v1/changes?after=" + q + "&wait=0"},
				route{"DELETE", "/api/v1/settings/" + e},
				route{"GET", "/admin/users?q=" + q},
				route{"GET", "/admin/groups/" + e},
			)
		}
		type bodyRoute struct{ method, path, body string }
		var bodies []bodyRoute
		for _, v := range jsonValues {
			bodies = append(bodies,
				bodyRoute{"POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":` + v + `,"emails":[{"value":` + v + `}]}`},
				bodyRoute{"POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":` + v + `,"members":[{"value":` + v + `}]}`},
				bodyRoute{"POST", "/scim/v2/Users/.search", `{"filter":` + v + `,"sortBy":` + v + `}`},
				bodyRoute{"POST", "/scim/v2/Bulk", `{"Operations":[{"method":"POST","path":"/Users","bulkId":` + v + `,"data":` + v + `}]}`},
				bodyRoute{"POST", "/api/v1/users", `{"username":` + v + `,"email":` + v + `}`},
				bodyRoute{"POST", "/api/v1/groups", `{"name":` + v + `,"members":[` + v + `]}`},
				bodyRoute{"PUT", "/api/v1/settings/SCIM_REQUIRE_EMAIL", `{"value":` + v + `}`},
				bodyRoute{"POST", "/api/v1/tokens", `{"name":` + v + `,"user":` + v + `}`},
			)
		}
		var tried, fiveXX, authLeaks int
		var slowest time.Duration
		var slowestWhat string
		statuses := map[int]int{}
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		do := func(cred, method, path, body string) {
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			if req == nil {
				return
			}
			if creds[cred] != "" {
				req.Header.Set("Authorization", "Bearer "+creds[cred])
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/scim+json")
			}
			start := time.Now()
			resp, err := hc.Do(req)
			took := time.Since(start)
			tried++
			if err != nil {
				t.Errorf("%s %.100s as %s: %v (a dropped connection)", method, path, cred, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[resp.StatusCode]++
			if took > slowest {
				slowest, slowestWhat = took, method+" "+path[:min(len(path), 60)]
			}
			if resp.StatusCode >= 500 {
				fiveXX++
				t.Errorf("%s %.100s as %s: %d", method, path, cred, resp.StatusCode)
			}
			// Only an enabled administrator's token reaches SCIM and the
			// API; the console wants a session and takes no bearer token.
			if resp.StatusCode/100 == 2 && (cred != "admin" || strings.HasPrefix(path, "/admin/")) {
				authLeaks++
				t.Errorf("%s %.100s as %s: %d, want refused", method, path, cred, resp.StatusCode)
			}
		}
		for cred := range creds {
			for _, r := range routes {
				do(cred, r.method, r.path, "")
			}
			for _, b := range bodies {
				do(cred, b.method, b.path, b.body)
			}
		}
		panics := strings.Count(logs.String(), "panicked")
		if panics > 0 {
			t.Errorf("%d panics:\n%s", panics, logs)
		}
		var codes []string
		for c, n := range statuses {
			codes = append(codes, fmt.Sprintf("%d×%d", c, n))
		}
		sort.Strings(codes)
		t.Logf("%d requests (%d routes and %d bodies × %d credentials): %d 5xx, %d panics, %d answered 2xx without an administrator's credential; slowest %s (%s); statuses %s",
			tried, len(routes), len(bodies), len(creds), fiveXX, panics, authLeaks, slowest.Round(time.Millisecond), slowestWhat, strings.Join(codes, " "))
	})
}
