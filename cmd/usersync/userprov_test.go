package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// userTenant serves an Office 365 tenant with verified domain
// contoso.example and seed 004's licenses (seats of Office Professional
// as given), behind a handler that can watch requests.
func userTenant(t *testing.T, proSeats int, o graphemu.Options, watch func(r *http.Request)) (*graphemu.Server, []string) {
	t.Helper()
	tenant := graphemu.NewTenant(pushTenant)
	tenant.SetDomains(pushTenant)
	tenant.AddSKU(graphemu.SKU{ID: "sku-yam", PartNumber: "YAMMER_ENTERPRISE", Enabled: 1000})
	tenant.AddSKU(graphemu.SKU{ID: "sku-owa", PartNumber: "SHAREPOINTWAC", Enabled: 1000})
	tenant.AddSKU(graphemu.SKU{ID: "sku-pro", PartNumber: "OFFICESUBSCRIPTION", Enabled: proSeats, Plans: []graphemu.Plan{{ID: "plan-od", Name: "ONEDRIVESTANDARD"}}})
	tenant.AddGroup(graphemu.Group{ID: "grp-all", DisplayName: "All Staff", MailNickname: "allstaff"})
	o.ClientID, o.ClientSecret = "app-1", emuSecret
	emu := graphemu.NewServer(tenant, o)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emu.ServeHTTP(w, r)
		if watch != nil {
			watch(r)
		}
	}))
	t.Cleanup(srv.Close)
	return emu, []string{"--kind", "users", "--tenant-id", pushTenant, "--client-id", "app-1", "--domain", pushTenant, "--authority-url", srv.URL, "--graph-url", srv.URL}
}

// seedOffice365 makes the seed's directory side: users in group
// "Office 365", role "Office 365" and the mapping between them.
func seedOffice365(t *testing.T, db string, names ...string) {
	t.Helper()
	ok(t, cli(t, db, "", "init"))
	ok(t, cli(t, db, "", "groups", "create", "Office 365"))
	add := []string{"groups", "members", "add", "Office 365"}
	for _, n := range names {
		first, last, _ := strings.Cut(n, " ")
		user := strings.ToLower(first) + "@" + pushTenant
		ok(t, cli(t, db, "", "users", "create", "--username", user, "--email", user, "--first-name", first, "--last-name", last, "--attr", "usageLocation=US"))
		add = append(add, user)
	}
	ok(t, cli(t, db, "", add...))
	ok(t, cli(t, db, "", "roles", "create", "Office 365"))
	ok(t, cli(t, db, "", "mappings", "create", "Office 365 Mapping", "--if", `memberOf co "Office 365"`, "--set-role", "Office 365"))
}

// The README's walk through seed 004 on the CLI: role, mapping,
// provisioner, entitlements, rule, check, approve; and bad input refused
// with its reason, changing nothing.
func TestUserProvisioningCLI(t *testing.T) {
	emu, flags := userTenant(t, 5, graphemu.Options{}, nil)
	db := filepath.Join(t.TempDir(), "d.db")
	seedOffice365(t, db, "Josh Ames", "Ann Lee", "Bo Chen")
	changes := func() int {
		r := ok(t, cli(t, db, "", "-o", "json", "changes"))
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("changes: %v: %s", err, r.stdout)
		}
		return len(list)
	}
	before := changes()
	// Bad input: each names what is wrong, and nothing changes.
	fails(t, cli(t, db, "", "mappings", "create", "m2", "--if", `memberOf co`, "--set-role", "Office 365"), 1, `at character 12: expected a space and a value after "co"`)
	fails(t, cli(t, db, "", "mappings", "create", "m2", "--if", `email pr`, "--set-role", "Nobody"), 1, `no role named "Nobody"`)
	fails(t, cli(t, db, "", "users", "roles", "add", "josh@"+pushTenant, "Nobody"), 1, `no role named "Nobody"`)
	fails(t, cli(t, db, emuSecret, append([]string{"provisioners", "create", "o365u", "--client-secret-file", "-", "--scope-role", "Nobody"}, flags...)...), 1, `no role named "Nobody"`)
	badDomain := append([]string{"provisioners", "create", "o365u", "--client-secret-file", "-", "--scope-role", "Office 365"}, flags...)
	for i, f := range badDomain {
		if f == "--domain" {
			badDomain[i+1] = "fabrikam.com"
		}
	}
	fails(t, cli(t, db, emuSecret, badDomain...), 1, "fabrikam.com is not a verified domain of tenant contoso.example")
	fails(t, cli(t, db, "", "approvals", "approve", "42"), 1, "no approval with id 42")
	if n := changes(); n != before {
		t.Fatalf("refused commands changed the directory: %d change events, had %d", n, before)
	}
	r := ok(t, cli(t, db, emuSecret, append([]string{"provisioners", "create", "o365u", "--client-secret-file", "-", "--scope-role", "Office 365", "--approve", "create"}, flags...)...))
	if !strings.Contains(r.stdout, "users holding role Office 365 are provisioned") {
		t.Fatalf("create: %s", r.stdout)
	}
	fails(t, cli(t, db, "", "provisioners", "rules", "add", "o365u", "Josh", "--if", `displayName eq "Josh Ames"`, "--license", "YAMMER_ENTERPRISE"), 1, "the tenant's are not known yet: usersync provisioners entitlements o365u --refresh")
	r = ok(t, cli(t, db, "", "provisioners", "entitlements", "o365u", "--refresh"))
	if !strings.Contains(r.stdout, "OFFICESUBSCRIPTION  5      0     5") {
		t.Fatalf("entitlements: %s", r.stdout)
	}
	fails(t, cli(t, db, "", "provisioners", "rules", "add", "o365u", "Josh", "--if", `displayName eq "Josh Ames"`, "--license", "ENTERPRISEPREMIUM"), 1, `the tenant has no license "ENTERPRISEPREMIUM"`)
	fails(t, cli(t, db, "", "provisioners", "rules", "add", "o365u", "Josh", "--if", `displayName eq "Josh Ames`, "--license", "YAMMER_ENTERPRISE"), 1, "unterminated string")
	// The seed's rule, as written: display name equals Josh Ames → Yammer / Office Web Apps / Office Professional.
	ok(t, cli(t, db, "", "provisioners", "rules", "add", "o365u", "Josh Ames licenses", "--if", `displayName eq "Josh Ames"`,
		"--license", "YAMMER_ENTERPRISE", "--license", "SHAREPOINTWAC", "--license", "OFFICESUBSCRIPTION:ONEDRIVESTANDARD"))
	r = ok(t, cli(t, db, "", "provisioners", "rules", "check", "o365u", "Josh Ames licenses", "--user", "josh@"+pushTenant+",ann@"+pushTenant))
	if !strings.Contains(r.stdout, "josh@contoso.example  Will be mapped      displayName eq \"Josh Ames\" holds") ||
		!strings.Contains(r.stdout, "ann@contoso.example   Will not be mapped  displayName eq \"Josh Ames\" does not hold") {
		t.Fatalf("check: %s", r.stdout)
	}
	fails(t, cli(t, db, "", "provisioners", "rules", "check", "o365u", "Josh Ames licenses", "--user", "nobody@x"), 1, "no user named nobody@x")
	r = ok(t, cli(t, db, "", "provisioners", "run", "o365u", "--dry-run"))
	if !strings.Contains(r.stdout, "create:pending-approval 3") || len(emu.Writes()) != 0 {
		t.Fatalf("dry run: %s %v", r.stdout, emu.Writes())
	}
	ok(t, cli(t, db, "", "provisioners", "run", "o365u"))
	r = ok(t, cli(t, db, "", "-o", "json", "approvals", "list"))
	var pending []struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	json.Unmarshal([]byte(r.stdout), &pending)
	if len(pending) != 3 || emu.Writes()["POST /users"] != 0 {
		t.Fatalf("pending: %s, writes %v", r.stdout, emu.Writes())
	}
	ids := map[string]string{}
	for _, p := range pending {
		ids[p.Username] = fmt.Sprint(p.ID)
	}
	// Approve two at once: sent at once.
	r = ok(t, cli(t, db, "", "approvals", "approve", ids["josh@"+pushTenant], ids["ann@"+pushTenant]))
	if !strings.Contains(r.stdout, "create:done 2") || !strings.Contains(r.stdout, "licenses:done 1") {
		t.Fatalf("approve: %s", r.stdout)
	}
	josh, okU := emu.Tenant().UserByUPN("josh@" + pushTenant)
	if !okU || len(josh.Licenses) != 3 || josh.DisplayName != "Josh Ames" {
		t.Fatalf("josh in Entra: %+v", josh)
	}
	// Sent: the approval is used up, and cannot be decided again.
	fails(t, cli(t, db, "", "approvals", "approve", ids["josh@"+pushTenant]), 1, "is used already")
	ok(t, cli(t, db, "", "approvals", "reject", ids["bo@"+pushTenant]))
	r = ok(t, cli(t, db, "", "approvals", "list", "--all"))
	if !strings.Contains(r.stdout, "rejected") || !strings.Contains(r.stdout, "used") || !strings.Contains(r.stdout, "cli:") {
		t.Fatalf("decided approvals: %s", r.stdout)
	}
	// A rejection can be reopened: it waits again; reopened twice is refused.
	r = ok(t, cli(t, db, "", "approvals", "reopen", ids["bo@"+pushTenant]))
	if !strings.Contains(r.stdout, "reopened approval "+ids["bo@"+pushTenant]) {
		t.Fatalf("reopen: %s", r.stdout)
	}
	fails(t, cli(t, db, "", "approvals", "reopen", ids["bo@"+pushTenant]), 1, "cannot be made pending")
	ok(t, cli(t, db, "", "approvals", "reject", ids["bo@"+pushTenant]))
	r = ok(t, cli(t, db, "", "provisioners", "status", "o365u"))
	if !strings.Contains(r.stdout, "2 active, 0 suspended, 0 deleted") || !strings.Contains(r.stdout, "failing users:      none") {
		t.Fatalf("status: %s", r.stdout)
	}
	r = ok(t, cli(t, db, "", "provisioners", "retry", "o365u", "bo@"+pushTenant))
	if !strings.Contains(r.stdout, "create:rejected 1") {
		t.Fatalf("retry of a rejected create: %s", r.stdout)
	}
	// The log shows each action with what it modified; failed filters.
	r = ok(t, cli(t, db, "", "provisioners", "log", "o365u", "--user", "josh@"+pushTenant))
	if !strings.Contains(r.stdout, `displayName: "" → "Josh Ames"`) || !strings.Contains(r.stdout, "pending-approval") {
		t.Fatalf("log: %s", r.stdout)
	}
	r = ok(t, cli(t, db, "", "users", "roles", "show", "josh@"+pushTenant))
	if !strings.Contains(r.stdout, "Office 365  mapping Office 365 Mapping") {
		t.Fatalf("roles: %s", r.stdout)
	}
	r = ok(t, cli(t, db, "", "mappings", "reapply", "--dry-run"))
	if !strings.Contains(r.stdout, "3 users in scope; create:rejected 1; 0 failed") {
		t.Fatalf("reapply after all is done (bo's create rejected): %s", r.stdout)
	}
	all := ""
	for _, args := range [][]string{{"provisioners", "show", "o365u"}, {"-o", "json", "provisioners", "show", "o365u"}, {"-o", "json", "provisioners", "log", "o365u"}} {
		all += ok(t, cli(t, db, "", args...)).stdout
	}
	if strings.Contains(all, emuSecret) {
		t.Fatal("the client secret was printed")
	}
}

// TestKillDuringUserProvisioning kills `usersync provisioners run` while it
// creates users, then runs it again: every user is in Entra once, with its
// license, and the seats used are exactly the users.
func TestKillDuringUserProvisioning(t *testing.T) {
	const users = 40
	t.Setenv(sqlstore.KeyEnv, pgtest.SecretKey)
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "d.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			for round, kills := range []int64{2, 23} {
				db := dsn(t)
				var creates atomic.Int64
				started := make(chan struct{})
				emu, flags := userTenant(t, users, graphemu.Options{Latency: 3 * time.Millisecond}, func(r *http.Request) {
					if r.Method == http.MethodPost && r.URL.Path == "/v1.0/users" && creates.Add(1) == kills {
						close(started)
					}
				})
				var names []string
				for i := 0; i < users; i++ {
					names = append(names, fmt.Sprintf("U%02d Staff", i))
				}
				seedOffice365(t, db, names...)
				ok(t, cli(t, db, emuSecret, append([]string{"provisioners", "create", "o365u", "--client-secret-file", "-", "--scope-role", "Office 365"}, flags...)...))
				ok(t, cli(t, db, "", "provisioners", "entitlements", "o365u", "--refresh"))
				ok(t, cli(t, db, "", "provisioners", "rules", "add", "o365u", "everyone", "--license", "OFFICESUBSCRIPTION", "--group", "All Staff"))
				args := []string{"--db", db, "provisioners", "run", "o365u"}
				cmd := child(t, args...)
				select {
				case <-started:
				case <-time.After(60 * time.Second):
					t.Fatal("the child never created a user")
				}
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				killedAt := len(emu.Tenant().UsersByUPN())
				ok(t, cli(t, db, "", args[2:]...))
				byUPN := emu.Tenant().UsersByUPN()
				t.Logf("round %d: killed after %d creates (%d users in Entra); after the re-run %d", round, kills, killedAt, len(byUPN))
				if len(byUPN) != users {
					t.Fatalf("round %d: %d Entra users, want %d", round, len(byUPN), users)
				}
				for upn, list := range byUPN {
					if len(list) != 1 || len(list[0].Licenses) != 1 {
						t.Fatalf("round %d: %s is in Entra %d times, licenses %+v", round, upn, len(list), list[0].Licenses)
					}
				}
				if n := emu.Tenant().Consumed("OFFICESUBSCRIPTION"); n != users {
					t.Fatalf("round %d: %d seats used, want %d", round, n, users)
				}
				if g, _ := emu.Tenant().Group("grp-all"); len(g.Members) != users {
					t.Fatalf("round %d: All Staff has %d members, want %d", round, len(g.Members), users)
				}
				r := ok(t, cli(t, db, "", "provisioners", "run", "o365u"))
				if !strings.Contains(r.stdout, "nothing to write") {
					t.Fatalf("round %d: a third run still writes: %s", round, r.stdout)
				}
			}
		})
	}
}
