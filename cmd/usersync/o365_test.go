package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	graphemu "github.com/usersync/usersync/emulate/graph"
)

const emuSecret = "emu-Secret~value.42"

// emulator serves a generated tenant on loopback and returns the flags
// that point o365 provision at it.
func emulator(t testing.TB) (*graphemu.Server, []string) {
	t.Helper()
	tenant := graphemu.Generate(11, 300, 4) // All Users 300, Group 1 150, Group 2 75, Group 3 37
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, []string{"o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1", "--authority-url", srv.URL, "--graph-url", srv.URL}
}

func TestO365Provision(t *testing.T) {
	emu, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	args := append(append([]string{}, base...), "--client-secret", emuSecret)

	// A dry run plans and writes nothing (on a directory that exists: it
	// makes none).
	fails(t, cli(t, db, "", append(args, "--auto-create", "--dry-run", "Group 2")...), 1, "usersync init")
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("the dry run made the directory: %v", err)
	}
	ok(t, cli(t, db, "", "init"))
	r := ok(t, cli(t, db, "", append(args, "--auto-create", "--dry-run", "Group 2")...))
	if !strings.Contains(r.stdout, "Dry run") || !strings.Contains(r.stdout, "users created 75") || !strings.Contains(r.stderr, "plan: create-user") {
		t.Fatalf("dry run:\n%s\n%s", r.stdout, r.stderr)
	}
	if r := ok(t, cli(t, db, "", "-o", "json", "users", "list")); !strings.Contains(r.stdout, `"total": 0`) {
		t.Fatal("the dry run wrote users")
	}

	r = ok(t, cli(t, db, "", append(args, "-a", "all", "--full-summary", "Group 2")...))
	if !strings.Contains(r.stdout, "Group 2 → Group 2: 75 source users; users created 75") || !strings.Contains(r.stdout, "create-user") {
		t.Fatalf("first sync:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, emuSecret) {
		t.Fatal("the client secret reached the output")
	}
	r = ok(t, cli(t, db, "", "-o", "json", "groups", "show", "Group 2"))
	if !strings.Contains(r.stdout, `"members": 75`) || !strings.Contains(r.stdout, `"source": "o365:`) {
		t.Fatalf("group after sync: %s", r.stdout)
	}

	// A re-run changes nothing and logs nothing.
	before := ok(t, cli(t, db, "", "-o", "json", "changes", "--limit", "100000")).stdout
	r = ok(t, cli(t, db, "", append(args, "--auto-create", "all", "Group 2")...))
	if !strings.Contains(r.stdout, "users created 0, updated 0, skipped 0; groups created 0; members added 0, removed 0") {
		t.Fatalf("re-run:\n%s", r.stdout)
	}
	if after := ok(t, cli(t, db, "", "-o", "json", "changes", "--limit", "100000")).stdout; after != before {
		t.Fatal("a no-op re-run changed the directory")
	}

	// A change at the source arrives; a member who left is removed from the group only.
	g := emu.Tenant().GroupsNamed("Group 2")[0]
	emu.Tenant().SetMembers(g.ID, g.Members[1:])
	emu.Tenant().UpdateUser(g.Members[1], func(u *graphemu.User) { u.Surname = "Renamed" })
	r = ok(t, cli(t, db, "", append(args, "-a", "--full-summary", "Group 2")...))
	if !strings.Contains(r.stdout, "updated 1") || !strings.Contains(r.stdout, "removed 1") || !strings.Contains(r.stdout, `lastName: `) {
		t.Fatalf("after a change:\n%s", r.stdout)
	}
	if r := ok(t, cli(t, db, "", "-o", "json", "users", "list")); !strings.Contains(r.stdout, `"total": 75`) {
		t.Fatalf("a user who left the source group was deleted: %s", r.stdout[:80])
	}

	// One group failing does not stop the others; exit status 1.
	r = cli(t, db, "", append(args, "-a", "all", "No Such Group", "Group 3")...)
	if r.code != 1 || !strings.Contains(r.stderr, `group "No Such Group" not found`) || !strings.Contains(r.stdout, "Group 3 → Group 3: 37 source users") {
		t.Fatalf("partial failure: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Without --auto-create a missing group is skipped with a warning.
	r = ok(t, cli(t, db, "", append(args, "Group 1")...))
	if !strings.Contains(r.stdout, "skipped") || !strings.Contains(r.stdout, "--auto-create") {
		t.Fatalf("skip:\n%s", r.stdout)
	}
	// The user limit refuses a group whole.
	r = cli(t, db, "", append(args, "-a", "--sync-user-limit", "100", "Group 1")...)
	if r.code != 1 || !strings.Contains(r.stderr, "has 150 users, more than the --sync-user-limit of 100; nothing of it was applied") {
		t.Fatalf("limit: %d %s", r.code, r.stderr)
	}
}

func TestO365ProvisionCredentialsAndErrors(t *testing.T) {
	_, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	// The secret from settings (set from stdin), the rest from flags.
	ok(t, cli(t, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	r := ok(t, cli(t, db, "", append(base, "-a", "all", "-o", "json", "Group 3")...))
	var out struct {
		Groups []struct {
			Result struct {
				Written struct {
					UsersCreated int `json:"usersCreated"`
				} `json:"written"`
			} `json:"result"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Groups[0].Result.Written.UsersCreated != 37 {
		t.Fatalf("JSON summary %s: %v", r.stdout, err)
	}
	// A wrong secret names the AADSTS code and never shows the secret.
	r = cli(t, db, "", append(base, "--client-secret", "wrong-secret-value", "-a", "all", "Group 3")...)
	if r.code != 1 || !strings.Contains(r.stderr, "AADSTS7000215") || strings.Contains(r.stderr+r.stdout, "wrong-secret-value") {
		t.Fatalf("wrong secret: %d %s", r.code, r.stderr)
	}
	fails(t, cli(t, db, "", append(base, "--auto-create", "everything", "Group 3")...), 2, `--auto-create takes all or groups`)
	fails(t, cli(t, db, "", append(base, "-t", "root", "Group 3")...), 2, `--user-type`)
	fails(t, cli(t, db, "", base...), 2, "at least one group")
	fails(t, cli(t, db, "", append(base, "--attributes-transformation", "[{'attr_name': 'x', 'action': '^(['}]", "Group 3")...), 2, "not a valid regular expression")
	fails(t, cli(t, db, "", append(base, "--graph-url", "ftp://x", "Group 3")...), 2, "not an http(s) URL")
}
