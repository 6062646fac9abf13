package main

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	graphemu "github.com/usersync/usersync/emulate/graph"
	oktaemu "github.com/usersync/usersync/emulate/okta"
)

// One tenant typed by its id on one run and by its domain on the next is
// one source: its users and groups are updated whichever spelling runs,
// and a directory an earlier usersync kept under the domain is moved to the
// tenant's id once, with a note. (Issue 26, item 1: the domain run refused
// the group as "another one" with the same id, and dropped a surname
// change with exit 0.)
func TestTenantSpelledTwoWays(t *testing.T) {
	emu, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	tenantID := emu.Tenant().ID
	byDomain := append([]string{}, base...)
	for i, a := range byDomain {
		if a == tenantID {
			byDomain[i] = "contoso.example"
		}
	}
	secret := []string{"--client-secret", emuSecret, "-a", "all"}
	ok(t, cli(t, db, "", append(append(base, secret...), "Group 3")...))
	g := emu.Tenant().GroupsNamed("Group 3")[0]
	emu.Tenant().UpdateUser(g.Members[0], func(u *graphemu.User) { u.Surname = "Changed" })
	r := ok(t, cli(t, db, "", append(append(byDomain, secret...), "--full-summary", "Group 3")...))
	if !strings.Contains(r.stdout, "updated 1") || !strings.Contains(r.stdout, "Changed") || !strings.Contains(r.stdout, "incremental") {
		t.Fatalf("the domain run:\n%s\n%s", r.stdout, r.stderr)
	}
	owner := "o365:" + tenantID
	d := openDir(t, db)
	if srcs, _ := d.Sources(context.Background()); strings.Join(srcs, " ") != owner+" system" {
		t.Fatalf("sources %v, want only %s (and system)", srcs, owner)
	}
	// A directory from before: everything kept under the domain.
	if _, err := d.RenameSource(context.Background(), owner, "o365:contoso.example"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	emu.Tenant().UpdateUser(g.Members[1], func(u *graphemu.User) { u.Surname = "Again" })
	r = ok(t, cli(t, db, "", append(append(base, secret...), "--full-summary", "Group 3")...))
	if !strings.Contains(r.stderr, "o365:contoso.example is "+owner+": its 37 users, 1 groups and 1 sync states are kept under "+owner) ||
		!strings.Contains(r.stdout, "Again") || strings.Contains(r.stdout, "create-user") {
		t.Fatalf("the run adopting the old spelling:\n%s\n%s", r.stdout, r.stderr)
	}
	// Once moved, no run has anything to move.
	r = ok(t, cli(t, db, "", append(append(byDomain, secret...), "Group 3")...))
	if strings.Contains(r.stderr, "kept under") {
		t.Fatalf("moved twice:\n%s", r.stderr)
	}
}

// An Okta org reached as localhost and as 127.0.0.1 is one org: it is keyed
// by the id its /.well-known/okta-organization tells.
func TestOktaOrgSpelledTwoWays(t *testing.T) {
	org := oktaemu.Generate(51, 60, 3)
	srv := httptest.NewServer(oktaemu.NewServer(org, oktaemu.Options{Token: oktaToken}))
	t.Cleanup(srv.Close)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	byIP := []string{"okta", "provision", "-H", srv.URL, "-P", oktaToken, "-a", "all"}
	byName := []string{"okta", "provision", "-H", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), "-P", oktaToken, "-a", "all"}
	ok(t, cli(t, db, "", append(byIP, "Group 2")...))
	g := org.GroupsNamed("Group 2")[0]
	org.UpdateUser(g.Members[0], func(u *oktaemu.User) { u.Profile["lastName"] = "Changed" })
	r := ok(t, cli(t, db, "", append(byName, "--full-summary", "Group 2")...))
	if !strings.Contains(r.stdout, "Changed") || strings.Contains(r.stdout, "create-user") {
		t.Fatalf("the run by name:\n%s\n%s", r.stdout, r.stderr)
	}
	d := openDir(t, db)
	defer d.Close()
	if srcs, _ := d.Sources(context.Background()); strings.Join(srcs, " ") != "okta:"+org.ID+" system" {
		t.Fatalf("sources %v", srcs)
	}
}

// A mistyped group name is refused with the name it most likely meant, by
// both pulls.
func TestGroupNameDidYouMean(t *testing.T) {
	_, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	fails(t, cli(t, db, "", append(append(base, "--client-secret", emuSecret, "-a", "all"), "Grop 3")...), 1, `did you mean "Group 3"?`)
	org := oktaemu.Generate(51, 60, 3)
	srv := httptest.NewServer(oktaemu.NewServer(org, oktaemu.Options{Token: oktaToken}))
	t.Cleanup(srv.Close)
	fails(t, cli(t, db, "", "okta", "provision", "-H", srv.URL, "-P", oktaToken, "-a", "all", "Group  2"), 1, `did you mean "Group 2"?`)
}

// With -v, a wait for Okta's rate limit is printed as it starts (it printed
// nothing, and a run looked hung).
func TestOktaWaitsShown(t *testing.T) {
	org := oktaemu.Generate(52, 60, 3)
	srv := httptest.NewServer(oktaemu.NewServer(org, oktaemu.Options{Token: oktaToken, RateLimit: 3, Window: time.Second, MaxPage: 5}))
	t.Cleanup(srv.Close)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	r := ok(t, cli(t, db, "", "okta", "provision", "-H", srv.URL, "-P", oktaToken, "-a", "all", "-v", "Group 1", "Group 2"))
	if !strings.Contains(r.stderr, "wait: ") || !strings.Contains(r.stderr, "waiting ") || strings.Contains(r.stderr, oktaToken) {
		t.Fatalf("no wait shown:\n%s", r.stderr)
	}
}

// o365 check and okta check try the credentials without naming a group,
// and fail with the first thing that does not hold.
func TestCheckCommands(t *testing.T) {
	emu, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	flags := append([]string{"o365", "check"}, base[2:]...) // --tenant … --graph-url URL
	r := ok(t, cli(t, db, "", append(flags, "--client-secret", emuSecret)...))
	if !strings.Contains(r.stdout, "is "+emu.Tenant().ID) || !strings.Contains(r.stdout, "signed in") || !strings.Contains(r.stdout, "may read groups and users") {
		t.Fatalf("o365 check:\n%s", r.stdout)
	}
	fails(t, cli(t, db, "", append(flags, "--client-secret", "wrong")...), 1, "Invalid client secret")
	domain := append([]string{}, flags...)
	for i := range domain {
		if domain[i] == emu.Tenant().ID {
			domain[i] = "fabrikam.example"
		}
	}
	fails(t, cli(t, db, "", append(domain, "--client-secret", emuSecret)...), 1, `tenant "fabrikam.example" is unknown`)

	org := oktaemu.Generate(53, 10, 2)
	srv := httptest.NewServer(oktaemu.NewServer(org, oktaemu.Options{Token: oktaToken}))
	t.Cleanup(srv.Close)
	r = ok(t, cli(t, db, "", "okta", "check", "-H", srv.URL, "-P", oktaToken))
	if !strings.Contains(r.stdout, "org "+org.ID) || !strings.Contains(r.stdout, "token is accepted") || strings.Contains(r.stdout+r.stderr, oktaToken) {
		t.Fatalf("okta check:\n%s%s", r.stdout, r.stderr)
	}
	fails(t, cli(t, db, "", "okta", "check", "-H", srv.URL, "-P", "wrong-token"), 1, "Okta refused the API token")
}

// Shell completion offers the values a flag or argument takes.
func TestCompletionOfValues(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"o365", "provision", "--user-type", ""}, []string{"regular", "power_user", "administrator"}},
		{[]string{"okta", "provision", "--auto-create="}, []string{"all", "groups"}}, // its value is optional: completed after "="
		{[]string{"settings", "set", ""}, []string{"SCIM_SOFT_DELETE", "O365_USERSYNC_CLIENT_SECRET"}},
		{[]string{"settings", "set", "SCIM_REQUIRE_EMAIL", ""}, []string{"Y", "N"}},
	} {
		r := ok(t, cli(t, db, "", append([]string{"__complete"}, c.args...)...))
		for _, w := range c.want {
			if !strings.Contains(r.stdout, w) {
				t.Fatalf("completing %v: %q lacks %s", c.args, r.stdout, w)
			}
		}
	}
}

// The write quota a provisioner's writes are paced under is a setting of
// the provisioner, checked when it is made.
func TestProvisionerWriteQuota(t *testing.T) {
	_, _, flags := pushEmulator(t, 3, graphemu.Options{})
	db := filepath.Join(t.TempDir(), "d.db")
	create := append([]string{"provisioners", "create", "o365", "--client-secret-file", "-"}, flags...)
	fails(t, cli(t, db, emuSecret+"\n", append(create, "--write-quota", "-1")...), 1, "must not be negative")
	ok(t, cli(t, db, emuSecret+"\n", append(create, "--write-quota", "10000", "--write-window", "300")...))
	r := ok(t, cli(t, db, "", "-o", "json", "provisioners", "show", "o365"))
	if !strings.Contains(r.stdout, `"writeQuota": 10000`) || !strings.Contains(r.stdout, `"writeWindowSeconds": 300`) {
		t.Fatalf("provisioners show:\n%s", r.stdout)
	}
}
