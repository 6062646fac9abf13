package main

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	oktaemu "github.com/usersync/usersync/emulate/okta"
)

const oktaToken = "00okta-Token_value.42"

// TestOktaEveryFlag runs okta provision against the emulator over loopback
// once per seed flag and checks what the flag did in the directory.
func TestOktaEveryFlag(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*oktaemu.Org, string, []string) {
		org := oktaemu.Generate(51, 60, 3) // Everyone 60, Group 1 30, Group 2 15
		srv := httptest.NewServer(oktaemu.NewServer(org, oktaemu.Options{Token: oktaToken}))
		t.Cleanup(srv.Close)
		return org, filepath.Join(t.TempDir(), "d.db"), []string{"okta", "provision", "-H", srv.URL}
	}
	// active returns the users of a group that the sync creates (not DEPROVISIONED).
	active := func(org *oktaemu.Org, group string) []oktaemu.User {
		var out []oktaemu.User
		for _, id := range org.GroupsNamed(group)[0].Members {
			if u, _ := org.User(id); u.Status != oktaemu.StatusDeprovisioned {
				out = append(out, u)
			}
		}
		return out
	}

	t.Run("-H -P, token never shown", func(t *testing.T) {
		org, db, args := setup(t)
		r := ok(t, cli(t, db, "", append(args, "-P", oktaToken, "-a", "all", "Group 2")...))
		if n := memberCount(t, openDir(t, db), "Group 2"); n != len(active(org, "Group 2")) || strings.Contains(r.stdout+r.stderr, oktaToken) {
			t.Fatalf("%d members; output %s", n, r.stdout)
		}
		r = cli(t, db, "", append(args, "-P", "wrong-token", "-a", "all", "Group 2")...)
		if r.code != 1 || !strings.Contains(r.stderr, "E0000011") || !strings.Contains(r.stderr, "expire") || strings.Contains(r.stderr, "wrong-token") {
			t.Fatalf("wrong token: %d %s", r.code, r.stderr)
		}
	})
	t.Run("-P without a value reads the token", func(t *testing.T) {
		_, db, args := setup(t)
		ok(t, cli(t, db, oktaToken+"\n", append(args, "-P", "-a", "all", "Group 2")...)) // as argparse, -P takes the next word unless it is an option
		fails(t, cli(t, db, "", append(args, "-P", "-a", "all", "Group 2")...), 2, "no token")
	})
	t.Run("host and token from the environment and settings", func(t *testing.T) {
		_, db, args := setup(t)
		t.Setenv("OKTA_USERSYNC_HOST", args[3])
		ok(t, cli(t, db, oktaToken+"\n", "settings", "set", "OKTA_USERSYNC_TOKEN", "-"))
		ok(t, cli(t, db, "", "okta", "provision", "-a", "all", "Group 2"))
		fails(t, cli(t, filepath.Join(t.TempDir(), "e.db"), "", "okta", "provision", "Group 2"), 2, "token is missing")
	})
	t.Run("-v -n -q --full-summary", func(t *testing.T) {
		_, db, args := setup(t)
		args = append(args, "-P", oktaToken)
		ok(t, cli(t, db, "", "init"))
		r := ok(t, cli(t, db, "", append(args, "-n", "-a", "all", "Group 2")...))
		if !strings.Contains(r.stderr, "plan: create-user") || !strings.Contains(r.stdout, "Dry run") {
			t.Fatalf("-n: %s %s", r.stdout, r.stderr)
		}
		if _, n, _ := openDir(t, db).FindUsers(ctx, usersync.UserFilter{}); n != 0 {
			t.Fatal("-n wrote users")
		}
		if r := ok(t, cli(t, db, "", append(args, "-q", "-a", "all", "Group 2")...)); r.stdout != "" {
			t.Fatalf("-q printed %q", r.stdout)
		}
		r = ok(t, cli(t, db, "", append(args, "-v", "--full-summary", "-a", "all", "Group 1")...))
		if !strings.Contains(r.stdout, "      create-user ") || !strings.Contains(r.stderr, "applied: ") {
			t.Fatalf("-v --full-summary: %s / %s", r.stdout, r.stderr)
		}
	})
	t.Run("-t and attribute flags", func(t *testing.T) {
		org, db, args := setup(t)
		ok(t, cli(t, db, "", append(args, "-P", oktaToken, "-a", "all", "-t", "administrator", "--username-attr", "employeeNumber",
			"--first-name-attr", "lastName", "--last-name-attr", "department", "--email-attr", "login", "Group 2")...))
		src := active(org, "Group 2")[0]
		u, err := openDir(t, db).FindUserByUsername(ctx, src.Profile["employeeNumber"].(string))
		if err != nil || u.Type != usersync.UserAdministrator || u.FirstName != src.Profile["lastName"] || u.LastName != src.Profile["department"] || u.Email != src.Profile["login"] {
			t.Fatalf("mapped %+v from %v: %v", u, src.Profile, err)
		}
	})
	t.Run("--skip-default-group --target-group --sync-user-limit", func(t *testing.T) {
		_, db, args := setup(t)
		args = append(args, "-P", oktaToken)
		fails(t, cli(t, db, "", append(args, "-a", "all", "--sync-user-limit", "20", "Group 1")...), 1, "more than the --sync-user-limit of 20")
		if _, n, _ := openDir(t, db).FindUsers(ctx, usersync.UserFilter{}); n != 0 {
			t.Fatal("a group over the limit was half-applied")
		}
		ok(t, cli(t, db, "", append(args, "-a", "all", "--skip-default-group", "--target-group", "app:okta", "Group 1")...))
		d := openDir(t, db)
		if memberCount(t, d, "app:okta") == 0 || memberCount(t, d, usersync.DefaultGroupName) != 0 {
			t.Fatal("target or default group wrong")
		}
	})
	t.Run("-a groups and --force", func(t *testing.T) {
		org, db, args := setup(t)
		args = append(args, "-P", oktaToken)
		mine := active(org, "Group 2")[0]
		login := mine.Profile["login"].(string)
		ok(t, cli(t, db, "", "users", "create", "--username", login, "--email", "hand@made.example"))
		ok(t, cli(t, db, "", append(args, "-a", "groups", "Group 2")...))
		d := openDir(t, db)
		if memberCount(t, d, "Group 2") != 1 {
			t.Fatal("-a groups: only the existing user joins")
		}
		if u, _ := d.FindUserByUsername(ctx, login); u.Email != "hand@made.example" {
			t.Fatal("profile overwritten without --force")
		}
		ok(t, cli(t, db, "", append(args, "-a", "groups", "--force", "Group 2")...))
		if u, _ := d.FindUserByUsername(ctx, login); u.Email != login || !strings.HasPrefix(u.Source, "okta:") {
			t.Fatalf("--force: %+v", u)
		}
	})
}
