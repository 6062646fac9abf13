package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// The admin console as served by `usersync serve`, on SQLite and on
// PostgreSQL: an administrator signs in, every page renders with the
// directory's data, and an approval made there is sent to the tenant.
func TestConsoleThroughServe(t *testing.T) {
	t.Setenv(sqlstore.KeyEnv, pgtest.SecretKey)
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "d.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) {
			db := dsn(t)
			emu, flags := userTenant(t, 5, graphemu.Options{}, nil)
			seedOffice365(t, db, "Josh Ames", "Ann Lee")
			ok(t, cli(t, db, emuSecret, append([]string{"provisioners", "create", "o365u", "--client-secret-file", "-", "--scope-role", "Office 365", "--approve", "create"}, flags...)...))
			ok(t, cli(t, db, "", "users", "create", "--username", "root@example.com", "--email", "root@example.com", "--type", "administrator"))
			const pw = "correct horse battery staple"
			ok(t, cli(t, db, pw+"\n", "users", "set-password", "root@example.com"))
			s := startServe(t, db)
			// serve runs the provisioner at once: the creates wait for approval.
			deadline := time.Now().Add(20 * time.Second)
			for {
				r := ok(t, cli(t, db, "", "-o", "json", "approvals", "list"))
				if strings.Count(r.stdout, `"status": "pending"`) == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve made no approvals: %s", r.stdout)
				}
				time.Sleep(100 * time.Millisecond)
			}
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			get := func(path string) string {
				t.Helper()
				resp, err := c.Get(s.base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
				}
				return string(b)
			}
			token := regexp.MustCompile(`name="(?:token|csrf)" value="([^"]+)"`)
			login := get("/admin/login")
			resp, err := c.PostForm(s.base+"/admin/login", url.Values{"token": {token.FindStringSubmatch(login)[1]}, "username": {"root@example.com"}, "password": {pw}, "next": {"/admin/approvals"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(b)
			if !strings.Contains(page, "josh@contoso.example") || !strings.Contains(page, "entered scope") {
				t.Fatalf("approvals after sign-in: %d %s", resp.StatusCode, page)
			}
			csrf := token.FindStringSubmatch(page)[1]
			for path, want := range map[string]string{
				"/admin/users":                          "root@example.com",
				"/admin/users/josh@contoso.example":     "mapping Office 365 Mapping",
				"/admin/groups":                         "Office 365",
				"/admin/folders":                        "No folder",
				"/admin/mappings":                       `memberOf co &#34;Office 365&#34;`,
				"/admin/provisioners":                   "2 pending",
				"/admin/provisioning?provisioner=o365u": "pending-approval",
				"/admin/settings":                       "SCIM",
				"/admin/schedules":                      "Syncs and runs",
				"/admin/changes":                        "mapping.created",
				"/admin/tokens":                         "entra",
			} {
				if p := get(path); !strings.Contains(p, want) {
					t.Fatalf("%s does not show %q:\n%s", path, want, p)
				}
			}
			ids := regexp.MustCompile(`name="id" value="(\d+)"`).FindAllStringSubmatch(page, -1)
			form := url.Values{"csrf": {csrf}, "decision": {"approve"}}
			for _, m := range ids {
				form.Add("id", m[1])
			}
			resp, err = c.PostForm(s.base+"/admin/approvals", form)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), fmt.Sprintf("%d actions approved and sent", len(ids))) {
				t.Fatalf("approve: %s", b)
			}
			for _, upn := range []string{"josh@contoso.example", "ann@contoso.example"} {
				if _, ok := emu.Tenant().UserByUPN(upn); !ok {
					t.Fatalf("%s is not in the tenant after its approval", upn)
				}
			}
			if n := len(emu.Tenant().UsersByUPN()); n != 2 {
				t.Fatalf("%d users in the tenant, want 2", n)
			}
			s.stop()
			s.wait(t)
		})
	}
}
