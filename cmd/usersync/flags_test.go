package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/sqlstore"
)

// TestO365EveryFlag runs o365 provision against the emulator over loopback
// once per seed flag and checks what the flag did in the directory.
func TestO365EveryFlag(t *testing.T) {
	ctx := context.Background()
	const appID = "0a1b2c3d-0000-4000-8000-00000000abcd"
	ext := "extension_0a1b2c3d000040008000" + "00000000abcd_costCenter"
	newTenant := func() *graphemu.Tenant {
		tenant := graphemu.Generate(31, 40, 3) // All Users 40, Group 1 20, Group 2 10
		g := tenant.GroupsNamed("Group 2")[0]
		for i, id := range g.Members {
			tenant.UpdateUser(id, func(u *graphemu.User) {
				u.Extensions = map[string]string{ext: "CC-" + u.EmployeeID}
				if i == 0 {
					u.Department = "Sales"
				}
			})
		}
		return tenant
	}
	type env struct {
		tenant *graphemu.Tenant
		db     string
		args   []string
	}
	setup := func(t *testing.T) env {
		tenant := newTenant()
		emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret})
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		return env{tenant, filepath.Join(t.TempDir(), "d.db"), []string{"o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1",
			"--client-secret", emuSecret, "--authority-url", srv.URL, "--graph-url", srv.URL}}
	}
	member := func(t *testing.T, e env, group string, i int) graphemu.User {
		u, _ := e.tenant.User(e.tenant.GroupsNamed(group)[0].Members[i])
		return u
	}
	user := func(t *testing.T, d *sqlstore.DB, name string) *usersync.User {
		u, err := d.FindUserByUsername(ctx, name)
		if err != nil {
			t.Fatalf("user %q: %v", name, err)
		}
		return u
	}

	t.Run("credentials from the environment", func(t *testing.T) {
		e := setup(t)
		t.Setenv("O365_USERSYNC_TENANT", e.tenant.ID)
		t.Setenv("O365_USERSYNC_CLIENT_ID", "app-1")
		t.Setenv("O365_USERSYNC_CLIENT_SECRET", emuSecret)
		t.Setenv("O365_USERSYNC_AUTHORITY_URL", e.args[9])
		t.Setenv("O365_USERSYNC_GRAPH_URL", e.args[11])
		ok(t, cli(t, e.db, "", "o365", "provision", "-a", "all", "Group 2"))
		if n := memberCount(t, openDir(t, e.db), "Group 2"); n != 10 {
			t.Fatalf("%d members", n)
		}
	})
	t.Run("-v -n -q", func(t *testing.T) {
		e := setup(t)
		ok(t, cli(t, e.db, "", "init"))
		r := ok(t, cli(t, e.db, "", append(e.args, "-n", "-a", "all", "Group 2")...))
		if !strings.Contains(r.stderr, "plan: create-user") || !strings.Contains(r.stdout, "Dry run") {
			t.Fatalf("-n: %s %s", r.stdout, r.stderr)
		}
		if _, n, _ := openDir(t, e.db).FindUsers(ctx, usersync.UserFilter{}); n != 0 {
			t.Fatal("-n wrote users")
		}
		r = ok(t, cli(t, e.db, "", append(e.args, "-a", "all", "Group 2")...))
		if strings.Contains(r.stderr, "plan:") || strings.Contains(r.stderr, "applied:") {
			t.Fatal("actions logged without -v")
		}
		e.tenant.UpdateUser(member(t, e, "Group 2", 3).ID, func(u *graphemu.User) { u.GivenName = "Verbose" })
		r = ok(t, cli(t, e.db, "", append(e.args, "-v", "-q", "-a", "all", "Group 2")...))
		// Applied, not planned: the label says so.
		if r.stdout != "" || !strings.Contains(r.stderr, `applied: update-user`) || strings.Contains(r.stderr, "plan:") || !strings.Contains(r.stderr, `"Verbose"`) {
			t.Fatalf("-v -q: stdout %q stderr %q", r.stdout, r.stderr)
		}
	})
	t.Run("-t and attribute flags", func(t *testing.T) {
		e := setup(t)
		ok(t, cli(t, e.db, "", append(e.args, "-a", "-t", "power_user", "--username-attr", "employeeId", "--first-name-attr", "displayName",
			"--last-name-attr", "jobTitle", "--email-attr", "userPrincipalName", "Group 2")...))
		src := member(t, e, "Group 2", 2)
		u := user(t, openDir(t, e.db), src.EmployeeID)
		if u.Type != usersync.UserPowerUser || u.FirstName != src.DisplayName || u.LastName != "Staff" || u.Email != src.UserPrincipalName {
			t.Fatalf("mapped user %+v from %+v", u, src)
		}
	})
	t.Run("--skip-default-group --target-group", func(t *testing.T) {
		e := setup(t)
		ok(t, cli(t, e.db, "", append(e.args, "-a", "--skip-default-group", "--target-group", "app:crm:users", "Group 2")...))
		d := openDir(t, e.db)
		if memberCount(t, d, "app:crm:users") != 10 || memberCount(t, d, usersync.DefaultGroupName) != 0 {
			t.Fatal("target or default group wrong")
		}
		if _, err := d.FindGroupByName(ctx, "Group 2"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
			t.Fatal("--target-group also made the source's name")
		}
	})
	t.Run("-a groups and --force", func(t *testing.T) {
		e := setup(t)
		mine := member(t, e, "Group 2", 1)
		ok(t, cli(t, e.db, "", "users", "create", "--username", mine.UserPrincipalName, "--email", "hand@made.example"))
		ok(t, cli(t, e.db, "", append(e.args, "-a", "groups", "Group 2")...))
		d := openDir(t, e.db)
		if memberCount(t, d, "Group 2") != 1 || user(t, d, mine.UserPrincipalName).Email != "hand@made.example" {
			t.Fatal("-a groups: only the existing user joins, keeping its profile")
		}
		ok(t, cli(t, e.db, "", append(e.args, "-a", "groups", "--force", "Group 2")...))
		if u := user(t, d, mine.UserPrincipalName); u.Email == "hand@made.example" || !strings.HasPrefix(u.Source, "o365:") {
			t.Fatalf("--force did not take the profile over: %+v", u)
		}
	})
	t.Run("custom attributes, app id, mapping, trusted username, transformation", func(t *testing.T) {
		e := setup(t)
		ok(t, cli(t, e.db, "", append(e.args, "-a", "--custom-user-attribute", "costCenter", "--custom-attr-app-id", appID,
			"--map-attr-to-group", "department", "--trusted-server-username-attr", "userPrincipalName",
			"--attributes-transformation", `[{"attr_name": "trusted_server_username", "action": "^([a-z.]+)[0-9]*@"}]`, "Group 2")...))
		d := openDir(t, e.db)
		src := member(t, e, "Group 2", 0)
		u := user(t, d, src.UserPrincipalName)
		local := strings.TrimRight(strings.Split(src.UserPrincipalName, "@")[0], "0123456789")
		if u.Attributes["costCenter"] != "CC-"+src.EmployeeID || u.Attributes["department"] != "Sales" || u.Attributes["trusted_server_username"] != local {
			t.Fatalf("attributes %v of %s", u.Attributes, src.UserPrincipalName)
		}
		if memberCount(t, d, "Sales") < 1 {
			t.Fatal("--map-attr-to-group made no Sales membership")
		}
	})
	t.Run("a reused UPN is unresolved: listed and exit 3", func(t *testing.T) {
		e := setup(t)
		ok(t, cli(t, e.db, "", append(e.args, "-a", "all", "Group 2")...))
		// The first member leaves; a new person is given its UPN.
		old := member(t, e, "Group 2", 0)
		g := e.tenant.GroupsNamed("Group 2")[0]
		e.tenant.DeleteUser(old.ID)
		fresh := old
		fresh.ID, fresh.Surname = "00000000-0000-4000-8000-00000000beef", "Newcomer"
		e.tenant.AddUser(fresh)
		e.tenant.SetMembers(g.ID, append(e.tenant.GroupsNamed("Group 2")[0].Members, fresh.ID))
		r := cli(t, e.db, "", append(e.args, "-a", "all", "--full-read", "Group 2")...)
		fails(t, r, 3, "1 user(s) could not be synced")
		if !strings.Contains(r.stdout, "UNRESOLVED "+old.UserPrincipalName) || !strings.Contains(r.stdout, "has this username") || !strings.Contains(r.stdout, "which the source no longer has") {
			t.Fatalf("the summary (without --full-summary) does not list it:\n%s", r.stdout)
		}
		r = cli(t, e.db, "", append(e.args, "-a", "all", "--full-read", "-o", "json", "Group 2")...)
		if r.code != 3 || !strings.Contains(r.stdout, `"unresolved": 1`) || !strings.Contains(r.stdout, `"unresolved": [`) {
			t.Fatalf("-o json: exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("--username", func(t *testing.T) {
		e := setup(t)
		one := member(t, e, "Group 1", 4)
		ok(t, cli(t, e.db, "", append(e.args, "-a", "all", "--username", one.UserPrincipalName, "Group 1")...))
		d := openDir(t, e.db)
		if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 1 || memberCount(t, d, "Group 1") != 1 {
			t.Fatalf("--username synced %d users", n)
		}
		// After full syncs, --username alone refreshes the user in every group synced before.
		ok(t, cli(t, e.db, "", append(e.args, "-a", "all", "Group 1", "Group 2")...))
		e.tenant.UpdateUser(one.ID, func(u *graphemu.User) { u.Surname = "Only" })
		other := member(t, e, "Group 1", 5)
		e.tenant.UpdateUser(other.ID, func(u *graphemu.User) { u.Surname = "Not yet" })
		r := ok(t, cli(t, e.db, "", append(e.args, "--username", one.UserPrincipalName)...))
		if user(t, d, one.UserPrincipalName).LastName != "Only" || user(t, d, other.UserPrincipalName).LastName == "Not yet" || !strings.Contains(r.stdout, "Group 2") {
			t.Fatalf("--username without groups:\n%s", r.stdout)
		}
	})
	t.Run("--proxy", func(t *testing.T) {
		e := setup(t)
		var through atomic.Int64
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			through.Add(1)
			r.RequestURI = ""
			resp, err := http.DefaultTransport.RoundTrip(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		}))
		defer proxy.Close()
		ok(t, cli(t, e.db, "", append(e.args, "-a", "--proxy", proxy.URL, "Group 2")...))
		if through.Load() < 3 {
			t.Fatalf("%d requests went through the proxy", through.Load())
		}
		fails(t, cli(t, e.db, "", append(e.args, "--proxy", "::nope", "Group 2")...), 2, "--proxy")
	})
	t.Run("--full and --full-every", func(t *testing.T) {
		e := setup(t)
		ok(t, cli(t, e.db, "", append(e.args, "-a", "all", "Group 2")...))
		if r := ok(t, cli(t, e.db, "", append(e.args, "-a", "all", "Group 2")...)); !strings.Contains(r.stdout, "incremental") {
			t.Fatalf("second run not incremental: %s", r.stdout)
		}
		if r := ok(t, cli(t, e.db, "", append(e.args, "-a", "-v", "--full-read", "Group 2")...)); strings.Contains(r.stdout, "incremental") || !strings.Contains(r.stderr, "in full: --full-read") {
			t.Fatalf("--full: %s %s", r.stdout, r.stderr)
		}
		if r := ok(t, cli(t, e.db, "", append(e.args, "-a", "-v", "--full-every", "1ns", "Group 2")...)); !strings.Contains(r.stderr, "full reconcile every 1ns") {
			t.Fatalf("--full-every: %s", r.stderr)
		}
		fails(t, cli(t, e.db, "", append(e.args, "--full-every", "-1h", "Group 2")...), 2, "--full-every")
	})
}

// openDir opens a test's directory file, closed when the test ends.
func openDir(t *testing.T, db string) *sqlstore.DB {
	t.Helper()
	d, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// memberCount is how many members a directory group has.
func memberCount(t *testing.T, d *sqlstore.DB, group string) int {
	t.Helper()
	ctx := context.Background()
	g, err := d.FindGroupByName(ctx, group)
	if err != nil {
		t.Fatalf("group %q: %v", group, err)
	}
	_, n, _ := d.Members(ctx, g.ID, 0, 1)
	return n
}
