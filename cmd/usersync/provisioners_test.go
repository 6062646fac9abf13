package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

const pushTenant = "contoso.example"

// pushEmulator serves a tenant of n users u000@contoso.example, … and
// returns the flags that point a provisioner at it.
func pushEmulator(t *testing.T, n int, o graphemu.Options) (*graphemu.Server, *httptest.Server, []string) {
	t.Helper()
	tenant := graphemu.NewTenant(pushTenant)
	for i := 0; i < n; i++ {
		tenant.AddUser(graphemu.User{ID: fmt.Sprintf("id-u%03d", i), UserPrincipalName: fmt.Sprintf("u%03d@%s", i, pushTenant), AccountEnabled: true})
	}
	o.ClientID, o.ClientSecret = "app-1", emuSecret
	emu := graphemu.NewServer(tenant, o)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv, []string{"--tenant-id", pushTenant, "--client-id", "app-1", "--domain", pushTenant, "--authority-url", srv.URL, "--graph-url", srv.URL}
}

// seedUsers makes directory users u000@contoso.example, ….
func seedUsers(t *testing.T, db string, n int) {
	t.Helper()
	d, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; i < n; i++ {
		if err := d.CreateUser(context.Background(), &usersync.User{Username: fmt.Sprintf("u%03d@%s", i, pushTenant)}); err != nil {
			t.Fatal(err)
		}
	}
}

// The provisioner commands as an administrator uses them: create with the
// secret on standard input, mark a folder, run, change a member, status,
// eval, reconcile; the secret never shows.
func TestProvisionersCLI(t *testing.T) {
	emu, _, flags := pushEmulator(t, 20, graphemu.Options{})
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	seedUsers(t, db, 10)
	var all []string
	r := ok(t, cli(t, db, emuSecret+"\n", append([]string{"provisioners", "create", "o365", "--client-secret-file", "-"}, flags...)...))
	all = append(all, r.stdout, r.stderr)
	if !strings.Contains(r.stdout, "created provisioner o365") {
		t.Fatalf("create: %s", r.stdout)
	}
	ok(t, cli(t, db, "", "groups", "create", "apps:crm:sales"))
	ok(t, cli(t, db, "", "groups", "members", "add", "apps:crm:sales", "u001@"+pushTenant, "u002@"+pushTenant))
	ok(t, cli(t, db, "", "folders", "set-attr", "apps:crm", usersync.DefaultSyncAttribute+"=true"))

	r = ok(t, cli(t, db, "", "provisioners", "run", "o365", "--dry-run"))
	if !strings.Contains(r.stdout, "would create-group apps:crm:sales") || len(emu.Writes()) != 0 {
		t.Fatalf("dry run: %s (writes %v)", r.stdout, emu.Writes())
	}
	r = ok(t, cli(t, db, "", "-o", "json", "provisioners", "run", "o365"))
	all = append(all, r.stdout, r.stderr)
	var res struct {
		Counts  map[string]int `json:"counts"`
		Actions []struct {
			Action, Group, Member string
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Counts["create-group"] != 1 || res.Counts["add-member"] != 2 {
		t.Fatalf("run: %s %v", r.stdout, err)
	}
	groups := emu.Tenant().GroupsNamed("apps:crm:sales")
	if len(groups) != 1 || len(groups[0].Members) != 2 {
		t.Fatalf("in Entra: %+v", groups)
	}

	ok(t, cli(t, db, "", "groups", "members", "add", "apps:crm:sales", "u003@"+pushTenant))
	r = ok(t, cli(t, db, "", "provisioners", "run", "o365"))
	if !strings.Contains(r.stdout, "add-member 1") {
		t.Fatalf("second run: %s", r.stdout)
	}
	r = ok(t, cli(t, db, "", "provisioners", "status", "o365"))
	if !strings.Contains(r.stdout, "up to 0 change events") || !strings.Contains(r.stdout, "failing groups:  none") {
		t.Fatalf("status: %s", r.stdout)
	}
	r = ok(t, cli(t, db, "", "provisioners", "eval", "o365", "--group", "apps:crm:sales", `group.parentStem.extension + " / " + group.extension`))
	if strings.TrimSpace(r.stdout) != "crm / sales" {
		t.Fatalf("eval: %q", r.stdout)
	}
	r = ok(t, cli(t, db, "", "provisioners", "eval", "o365", "--subject", "u003@"+pushTenant))
	if !strings.Contains(r.stdout, "u003@"+pushTenant) {
		t.Fatalf("eval subject: %q", r.stdout)
	}
	// Out-of-band drift, shown by a dry reconcile and repaired by a real one.
	emu.Tenant().RemoveMember(groups[0].ID, "id-u001")
	r = ok(t, cli(t, db, "", "provisioners", "reconcile", "o365", "--dry-run"))
	if !strings.Contains(r.stdout, "would add-member apps:crm:sales u001@"+pushTenant) {
		t.Fatalf("reconcile plan: %s", r.stdout)
	}
	ok(t, cli(t, db, "", "provisioners", "reconcile", "o365"))
	if g, _ := emu.Tenant().Group(groups[0].ID); len(g.Members) != 3 {
		t.Fatalf("after reconcile: %v", g.Members)
	}

	r = ok(t, cli(t, db, "", "provisioners", "show", "o365"))
	all = append(all, r.stdout)
	r = ok(t, cli(t, db, "", "-o", "json", "provisioners", "show", "o365"))
	all = append(all, r.stdout)
	if strings.Contains(strings.Join(all, "\n"), emuSecret) {
		t.Fatal("the client secret reached the output")
	}
	raw, _ := os.ReadFile(db)
	if strings.Contains(string(raw), emuSecret) {
		t.Fatal("the client secret is in the database file in clear")
	}
}

// Bad input gets a message that names what is wrong, and changes nothing.
func TestProvisionersBadInput(t *testing.T) {
	emu, srv, flags := pushEmulator(t, 5, graphemu.Options{})
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(emuSecret+"\n"), 0o600)
	create := func(name string, extra ...string) result {
		return cli(t, db, "", append(append([]string{"provisioners", "create", name, "--client-secret-file", secretFile}, flags...), extra...)...)
	}
	fails(t, cli(t, db, "", "provisioners", "run", "nobody"), 1, `provisioner "nobody" not found`)
	fails(t, create("p", "--group-jexl", `group.name.replaceAll("a", `), 1, `groupJexl: expression "group.name.replaceAll(\"a\", "`)
	fails(t, create("p", "--group-jexl", `group.nmae`), 1, `group has no property "nmae"`)
	fails(t, create("p", "--quartz-cron", "*/5 * * * *"), 1, "quartzCron: quartz cron \"*/5 * * * *\" has 5 fields")
	fails(t, create("p", "--group-type", "Distribution"), 1, `groupType "Distribution" is not Security or Unified`)
	fails(t, cli(t, db, "", append([]string{"provisioners", "create", "p"}, flags...)...), 2, "needs its client secret")
	fails(t, cli(t, db, "not-the-secret\n", append([]string{"provisioners", "create", "p", "--client-secret-file", "-"}, flags...)...), 1, "Invalid client secret")
	dead := []string{"--authority-url", "http://127.0.0.1:1", "--graph-url", "http://127.0.0.1:1"}
	fails(t, create("p", dead...), 1, "cannot reach http://127.0.0.1:1")
	if r := ok(t, cli(t, db, "", "-o", "json", "provisioners", "list")); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("a refused provisioner was stored: %s", r.stdout)
	}

	// A run that cannot reach Graph fails and keeps its cursor.
	ok(t, create("p"))
	ok(t, cli(t, db, "", "groups", "create", "apps:g"))
	ok(t, cli(t, db, "", "folders", "set-attr", "apps", usersync.DefaultSyncAttribute+"=x"))
	srv.Close()
	fails(t, cli(t, db, "", "provisioners", "run", "p"), 1, "cannot reach")
	r := ok(t, cli(t, db, "", "-o", "json", "provisioners", "status", "p"))
	var st struct{ Cursor, Backlog int64 }
	json.Unmarshal([]byte(r.stdout), &st)
	if st.Backlog == 0 {
		t.Fatalf("the cursor moved past events that were not written: %s", r.stdout)
	}
	_ = emu

	// A group whose Entra name would be too long fails alone, before any call.
	emu2, _, flags2 := pushEmulator(t, 5, graphemu.Options{})
	ok(t, cli(t, db, "", append(append([]string{"provisioners", "update", "p", "--client-secret-file", secretFile}, flags2...),
		"--group-jexl", `group.extension == "long" ? group.description + group.description : group.name`)...))
	ok(t, cli(t, db, "", "groups", "create", "apps:long", "--description", strings.Repeat("n", 200)))
	r = cli(t, db, "", "provisioners", "run", "p")
	if r.code != 1 || !strings.Contains(r.stdout, "failed: apps:long") || !strings.Contains(r.stdout, "more than Entra's 256") {
		t.Fatalf("too long: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if len(emu2.Tenant().GroupsNamed("apps:g")) != 1 || emu2.Writes()["PATCH /groups(uniqueName)"] != 1 {
		t.Fatalf("the other group should go on alone: %v", emu2.Writes())
	}
}

// import reads Grouper's grouper-loader.properties: a placeholder left in
// names its key and imports nothing; a filled-in file makes every Office
// 365 consumer a provisioner.
func TestProvisionersImport(t *testing.T) {
	_, srv, _ := pushEmulator(t, 5, graphemu.Options{})
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	seed := `
changeLog.consumer.o365.class = edu.internet2.middleware.grouper.changeLog.consumer.Office365ChangeLogConsumer
changeLog.consumer.o365.quartzCron = 0,5,10,15,20,25,30,35,40,45,50,55 * * * * ?
changeLog.consumer.o365.syncAttributeName = etc:attribute:office365:o365Sync
changeLog.consumer.o365.retryOnError = true
changeLog.consumer.o365.tenantId = @o365.tenantId@
changeLog.consumer.o365.clientId = @o365.clientId@
changeLog.consumer.o365.clientSecret = @o365.clientSecret@
#changeLog.consumer.o365.domain =
`
	file := filepath.Join(t.TempDir(), "grouper-loader.properties")
	os.WriteFile(file, []byte(seed), 0o600)
	fails(t, cli(t, db, "", "provisioners", "import", file), 1, "changeLog.consumer.o365.clientId is the placeholder @o365.clientId@")

	filled := strings.NewReplacer("@o365.tenantId@", pushTenant, "@o365.clientId@", "app-1", "@o365.clientSecret@", emuSecret).Replace(seed) + `
changeLog.consumer.o365.authorityUrl = ` + srv.URL + `
changeLog.consumer.o365.graphUrl = ` + srv.URL + `
changeLog.consumer.o365Unified.class = edu.internet2.middleware.grouper.changeLog.consumer.Office365ChangeLogConsumer
changeLog.consumer.o365Unified.tenantId = ` + pushTenant + `
changeLog.consumer.o365Unified.clientId = app-1
changeLog.consumer.o365Unified.clientSecret = ` + emuSecret + `
changeLog.consumer.o365Unified.syncAttributeName = etc:attribute:office365:o365SyncUnified
changeLog.consumer.o365Unified.groupType = Unified
changeLog.consumer.o365Unified.visibility = Private
changeLog.consumer.o365Unified.authorityUrl = ` + srv.URL + `
changeLog.consumer.o365Unified.graphUrl = ` + srv.URL + `
changeLog.consumer.ldap.class = edu.internet2.middleware.grouper.changeLog.consumer.LdapChangeLogConsumer
`
	os.WriteFile(file, []byte(filled+"changeLog.consumer.o365.groupJexel = group.name\n"), 0o600)
	fails(t, cli(t, db, "", "provisioners", "import", file), 1, `changeLog.consumer.o365.groupJexel: usersync does not know the property "groupJexel"`)
	os.WriteFile(file, []byte(filled), 0o600)
	r := ok(t, cli(t, db, "", "provisioners", "import", file))
	if !strings.Contains(r.stdout, "imported provisioner o365:") || !strings.Contains(r.stdout, "imported provisioner o365Unified:") || !strings.Contains(r.stderr, "skipped changeLog.consumer.ldap") {
		t.Fatalf("import: %s %s", r.stdout, r.stderr)
	}
	r = ok(t, cli(t, db, "", "-o", "json", "provisioners", "show", "o365Unified"))
	if !strings.Contains(r.stdout, `"groupType": "Unified"`) || !strings.Contains(r.stdout, `"visibility": "Private"`) ||
		!strings.Contains(r.stdout, `"remoteIdAttribute": "etc:attribute:office365:o365Id:o365Unified"`) || strings.Contains(r.stdout, emuSecret) {
		t.Fatalf("imported settings: %s", r.stdout)
	}
	fails(t, cli(t, db, "", "provisioners", "import", file), 1, "exists already (--replace replaces it); nothing imported")
}

// TestKillDuringProvisionerRun kills `usersync provisioners run` while it
// creates groups and adds members, then runs it again: every marked group
// is in Entra once, with all its members, and its id on the directory group.
func TestKillDuringProvisionerRun(t *testing.T) {
	const groups, members, users = 30, 25, 100
	t.Setenv(sqlstore.KeyEnv, pgtest.SecretKey)
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "d.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			for round, kills := range []int64{3, 17} {
				db := dsn(t)
				emu, _, flags := pushEmulator(t, users, graphemu.Options{Latency: 5 * time.Millisecond})
				var creates atomic.Int64
				started := make(chan struct{})
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					emu.ServeHTTP(w, r)
					if r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/v1.0/groups(uniqueName=") && creates.Add(1) == kills {
						close(started)
					}
				}))
				flags = append(flags[:len(flags)-4], "--authority-url", srv.URL, "--graph-url", srv.URL)
				ok(t, cli(t, db, "", "init"))
				seedUsers(t, db, users)
				ok(t, cli(t, db, emuSecret, append([]string{"provisioners", "create", "o365", "--client-secret-file", "-"}, flags...)...))
				ok(t, cli(t, db, "", "folders", "create", "apps"))
				ok(t, cli(t, db, "", "folders", "set-attr", "apps", usersync.DefaultSyncAttribute+"=x"))
				for g := 0; g < groups; g++ {
					args := []string{"groups", "members", "add", fmt.Sprintf("apps:g%02d", g)}
					for m := 0; m < members; m++ {
						args = append(args, fmt.Sprintf("u%03d@%s", (g*7+m)%users, pushTenant))
					}
					ok(t, cli(t, db, "", "groups", "create", args[3]))
					ok(t, cli(t, db, "", args...))
				}
				args := []string{"--db", db, "provisioners", "run", "o365"}
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "USERSYNC_CLI_CHILD="+strings.Join(args, "\x1f"))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-started:
				case <-time.After(60 * time.Second):
					t.Fatal("the child never created a group")
				}
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				killedAt := len(emu.Tenant().Groups())

				ok(t, cli(t, db, "", args[2:]...))
				byName := map[string]int{}
				for _, g := range emu.Tenant().Groups() {
					byName[g.DisplayName]++
					if len(g.Members) != members {
						t.Fatalf("round %d: Entra group %s has %d members, want %d", round, g.DisplayName, len(g.Members), members)
					}
				}
				t.Logf("round %d: killed after %d creates (%d groups in Entra); after the re-run %d", round, kills, killedAt, len(byName))
				if len(byName) != groups {
					t.Fatalf("round %d: %d Entra groups, want %d", round, len(byName), groups)
				}
				for n, k := range byName {
					if k != 1 {
						t.Fatalf("round %d: Entra group %s made %d times", round, n, k)
					}
				}
				r := ok(t, cli(t, db, "", "-o", "json", "groups", "show", "apps:g00"))
				if !strings.Contains(r.stdout, usersync.DefaultRemoteIDAttr) {
					t.Fatalf("no Entra id stored: %s", r.stdout)
				}
				srv.Close()
			}
		})
	}
}

// Ctrl-C during `provisioners run`: it says it was interrupted and how many
// writes were made, exits 130 (it said "Internal error."), and the same
// command run again completes it with no group made twice.
func TestProvisionersRunInterrupted(t *testing.T) {
	t.Setenv(sqlstore.KeyEnv, pgtest.SecretKey)
	ctx, cancel := context.WithCancel(context.Background())
	var creates atomic.Int64
	emu, _, flags := pushEmulator(t, 5, graphemu.Options{Latency: 20 * time.Millisecond})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emu.ServeHTTP(w, r)
		if r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/v1.0/groups(uniqueName=") && creates.Add(1) == 2 {
			cancel() // Ctrl-C after the second group
		}
	}))
	t.Cleanup(srv.Close)
	flags = append(flags[:len(flags)-4], "--authority-url", srv.URL, "--graph-url", srv.URL)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "init"))
	ok(t, cli(t, db, emuSecret, append([]string{"provisioners", "create", "o365", "--client-secret-file", "-"}, flags...)...))
	ok(t, cli(t, db, "", "folders", "create", "apps"))
	ok(t, cli(t, db, "", "folders", "set-attr", "apps", usersync.DefaultSyncAttribute+"=x"))
	for g := 0; g < 6; g++ {
		ok(t, cli(t, db, "", "groups", "create", fmt.Sprintf("apps:g%d", g)))
	}
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"--db", db, "provisioners", "run", "o365"}, strings.NewReader(""), &out, &errOut)
	if code != 130 || !strings.Contains(errOut.String(), "interrupted:") || !strings.Contains(errOut.String(), "Run the same command again") ||
		strings.Contains(errOut.String(), "Internal error") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	r := ok(t, cli(t, db, "", "provisioners", "run", "o365"))
	if len(emu.Tenant().Groups()) != 6 {
		t.Fatalf("after the re-run: %d Entra groups, want 6\n%s", len(emu.Tenant().Groups()), r.stdout)
	}
}
