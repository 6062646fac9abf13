package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
)

// With --server the directory commands go through a running serve's API,
// as an administrator's token, and say the same; commands that need the
// database refuse before doing anything.
func TestServerMode(t *testing.T) {
	emu, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	s := startServe(t, db, "--no-provisioners")
	remote := func(stdin string, args ...string) result {
		t.Helper()
		return cli(t, "", stdin, append([]string{"--server", s.base, "--token", s.token}, args...)...)
	}

	// The directory, through the API: the change log names the token's user.
	ok(t, remote("", "users", "create", "--username", "ann", "--email", "ann@example.com", "--first-name", "Ann"))
	ok(t, remote("", "users", "create", "--username", "bob", "--email", "bob@example.com"))
	ok(t, remote("", "groups", "create", "app:staff"))
	if r := ok(t, remote("", "groups", "members", "add", "app:staff", "ann")); !strings.Contains(r.stdout, "added 1 user") {
		t.Fatalf("add: %s", r.stdout)
	}
	if r := ok(t, remote("", "groups", "members", "add", "app:staff", "ann", "bob")); !strings.Contains(r.stdout, "added 1 of 2 users (1 was a member already)") {
		t.Fatalf("add again: %s", r.stdout)
	}
	var members struct {
		Total   int              `json:"total"`
		Members []*usersync.User `json:"members"`
	}
	json.Unmarshal([]byte(ok(t, remote("", "-o", "json", "groups", "members", "list", "app:staff")).stdout), &members)
	if members.Total != 2 || len(members.Members) != 2 || members.Members[0].Username != "ann" {
		t.Fatalf("members through the API: %+v", members)
	}
	var cs []*usersync.Change
	json.Unmarshal([]byte(ok(t, cli(t, db, "", "-o", "json", "changes", "--limit", "5000")).stdout), &cs)
	if last := cs[len(cs)-1]; last.Actor != "api:entra-admin" || last.Kind != usersync.MemberAdded {
		t.Fatalf("the last change, made through the API: %+v", last)
	}
	if r := ok(t, remote("", "users", "show", "ann")); !strings.Contains(r.stdout, "app:staff") || !strings.Contains(r.stdout, "Ann") {
		t.Fatalf("show through the API:\n%s", r.stdout)
	}
	fails(t, remote("", "groups", "members", "add", "app:staff", "nobody"), 1, `user "nobody" not found; nothing was changed`)
	fails(t, remote("", "users", "show", "nobody"), 1, "not found")

	// Settings: a secret goes in from standard input and never comes out.
	if r := ok(t, remote(emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-")); strings.Contains(r.stdout, emuSecret) || !strings.Contains(r.stdout, "********") {
		t.Fatalf("set a secret: %s", r.stdout)
	}
	fails(t, remote("", "settings", "get", "O365_USERSYNC_CLIENT_SECRET", "--reveal"), 2, "the API never gives secrets out")
	if r := ok(t, cli(t, db, "", "settings", "get", "O365_USERSYNC_CLIENT_SECRET", "--reveal")); strings.TrimSpace(r.stdout) != emuSecret {
		t.Fatal("the secret set through the API is not the one stored")
	}

	// Schedules: the server checks the command line; a run waits for serve.
	pull := append(append([]string{}, base...), "--auto-create", "all", "Group 2")
	fails(t, remote("", append([]string{"schedules", "create", "g2", "--cron", "*/40 * * * *", "--"}, append(pull, "--client-secret", "x")...)...), 1, "must not hold a secret")
	if r := ok(t, remote("", "-o", "json", "schedules", "list")); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("a refused schedule was stored: %s", r.stdout)
	}
	ok(t, remote("", append([]string{"schedules", "create", "g2", "--cron", "*/40 * * * *", "--"}, pull...)...))
	if r := ok(t, remote("", "schedules", "run", "g2")); !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("run through serve: %s", r.stdout)
	}
	count := func() int {
		var out struct{ Total int }
		json.Unmarshal([]byte(ok(t, remote("", "-o", "json", "groups", "members", "list", "Group 2")).stdout), &out)
		return out.Total
	}
	if n := count(); n != 75 {
		t.Fatalf("Group 2 has %d members", n)
	}
	var runs []*usersync.Run
	json.Unmarshal([]byte(ok(t, remote("", "-o", "json", "runs", "list", "--schedule", "g2")).stdout), &runs)
	if len(runs) != 1 || runs[0].Trigger != "manual" || runs[0].StartedBy != "api:entra-admin" {
		t.Fatalf("the run serve made: %+v", runs)
	}

	// A quarantined run, decided through the API: reject, then allow.
	g := emu.Tenant().GroupsNamed("Group 2")[0]
	emu.Tenant().SetMembers(g.ID, g.Members[:45])
	heldRun := func() int64 {
		fails(t, remote("", "schedules", "run", "g2"), 1, "removals held")
		var rs []*usersync.Run
		json.Unmarshal([]byte(ok(t, remote("", "-o", "json", "runs", "list", "--limit", "1")).stdout), &rs)
		if rs[0].Outcome != usersync.RunQuarantined || count() != 75 {
			t.Fatalf("quarantined: %+v, %d members", rs[0], count())
		}
		return rs[0].ID
	}
	id := heldRun()
	if r := ok(t, remote("", "runs", "reject", fmt.Sprint(id))); !strings.Contains(r.stdout, "nothing was removed") || count() != 75 {
		t.Fatalf("reject: %s", r.stdout)
	}
	id = heldRun() // the source still lacks them: held again
	if r := ok(t, remote("", "runs", "allow-removals", fmt.Sprint(id))); !strings.Contains(r.stdout, "is queued") {
		t.Fatalf("allow: %s", r.stdout)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var r usersync.Run
		json.Unmarshal([]byte(ok(t, remote("", "-o", "json", "runs", "show", fmt.Sprint(id))).stdout), &r)
		if r.Outcome == usersync.RunRemovalsAllowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the allowed removals were not applied: %+v", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := count(); n != 45 {
		t.Fatalf("after allowing: %d members", n)
	}
	fails(t, remote("", "runs", "reject", fmt.Sprint(id)), 1, "not quarantined")

	// What needs the database refuses, and so do mistakes.
	fails(t, remote("", append(pull, "--client-secret", emuSecret)...), 2, "works on the database itself")
	fails(t, remote("", "init"), 2, "works on the database itself")
	fails(t, cli(t, db, "", "--server", s.base, "--token", s.token, "users", "list"), 2, "--db and --server exclude each other")
	fails(t, cli(t, "", "", "--server", s.base, "--token", "ust_wrong", "users", "list"), 1, "refused the API token")
	fails(t, cli(t, "", "", "--server", s.base, "users", "list"), 1, "needs an administrator's API token")
	fails(t, cli(t, "", "", "--server", "127.0.0.1:1", "--token", s.token, "users", "list"), 1, "is not the URL of a usersync serve")
	fails(t, cli(t, "", "", "--server", "http://127.0.0.1:1", "--token", s.token, "users", "list"), 1, "cannot reach usersync serve")
	t.Setenv(serverEnv, s.base)
	t.Setenv(tokenEnv, s.token)
	if r := ok(t, cli(t, "", "", "-o", "json", "users", "list", "--search", "ann")); !strings.Contains(r.stdout, `"total": 1`) {
		t.Fatalf("through the environment: %s", r.stdout)
	}
	s.stop()
	s.wait(t)
}
