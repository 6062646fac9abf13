package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/sqlstore"
)

// Commands that only read never make a directory: a mistyped --db path is
// an error that says how to make one, and leaves no file behind.
func TestReadsMakeNoDirectory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "typo.db")
	for _, args := range [][]string{{"users", "list"}, {"groups", "list"}, {"groups", "members", "list", "G"}, {"settings", "list"},
		{"settings", "get", "SCIM_SOFT_DELETE_PREFIX"}, {"changes"}, {"tokens", "list"}, {"folders", "list"}, {"users", "show", "x"}} {
		fails(t, cli(t, db, "", args...), 1, "usersync init --db "+db)
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Fatalf("%v made the directory", args)
		}
	}
	r := ok(t, cli(t, db, "", "init"))
	if !strings.Contains(r.stdout, "is ready") {
		t.Fatalf("init: %s", r.stdout)
	}
	if st, err := os.Stat(db); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the new directory file: %v %v", st.Mode(), err)
	}
	ok(t, cli(t, db, "", "users", "list"))
}

// Secret settings are sealed with a key file beside the database (0600);
// --reveal still shows them, and a missing key is an error that says so.
func TestSecretSettingsSealed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "the-client-secret\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	raw, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	if bytes.Contains(append(raw, wal...), []byte("the-client-secret")) {
		t.Fatal("the secret is in the database file in clear")
	}
	if st, err := os.Stat(db + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if r := ok(t, cli(t, db, "", "settings", "get", "--reveal", "O365_USERSYNC_CLIENT_SECRET")); strings.TrimSpace(r.stdout) != "the-client-secret" {
		t.Fatalf("--reveal: %q", r.stdout)
	}
	if r := ok(t, cli(t, db, "", "settings", "list")); strings.Contains(r.stdout, "the-client-secret") || !strings.Contains(r.stdout, "********") {
		t.Fatalf("list: %s", r.stdout)
	}
	os.Rename(db+".key", db+".key.away")
	fails(t, cli(t, db, "", "settings", "get", "--reveal", "O365_USERSYNC_CLIENT_SECRET"), 1, "not available")
	ok(t, cli(t, db, "", "settings", "list"))
	// o365 provision reading the secret from the settings says why it cannot.
	fails(t, cli(t, db, "", "o365", "provision", "--tenant", "t", "--client-id", "c", "G"), 1, "O365_USERSYNC_CLIENT_SECRET is sealed")
}

// Ctrl-C mid-sync: the run says it was interrupted, how much was written,
// that a re-run completes it, and exits 130; the re-run does.
func TestInterruptedSync(t *testing.T) {
	tenant := graphemu.Generate(41, 4000, 2) // All Users 4,000: 5 pages
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret, Latency: 150 * time.Millisecond})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	db := filepath.Join(t.TempDir(), "d.db")
	args := []string{"--db", db, "o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1", "--client-secret", emuSecret,
		"--authority-url", srv.URL, "--graph-url", srv.URL, "--sync-user-limit", "5000", "-a", "all", "All Users"}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for { // stop once the first page is in
			time.Sleep(20 * time.Millisecond)
			if d, err := openDirQuiet(db); err == nil {
				_, n, _ := d.FindUsers(context.Background(), usersync.UserFilter{Limit: 1})
				d.Close()
				if n > 0 {
					cancel()
					return
				}
			}
		}
	}()
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &out, &errOut)
	if code != 130 || !strings.Contains(errOut.String(), "interrupted while syncing group") || !strings.Contains(errOut.String(), "users created") ||
		!strings.Contains(errOut.String(), "Run the same command again") || strings.Contains(errOut.String(), "cannot reach") {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	// The summary says how far the run read (it said "0 source users").
	if !strings.Contains(out.String(), "All Users → All Users: ") || strings.Contains(out.String(), ": 0 source users") {
		t.Fatalf("the interrupted run's summary:\n%s", out.String())
	}
	out.Reset()
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("re-run: exit %d %s", code, errOut.String())
	}
	if n := memberCount(t, openDir(t, db), "All Users"); n != 4000 {
		t.Fatalf("after the re-run: %d members", n)
	}
}

// A --username that is in none of the groups is an error, not a quiet 0.
func TestUnknownUsername(t *testing.T) {
	_, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	args := append(append([]string{}, base...), "--client-secret", emuSecret)
	ok(t, cli(t, db, "", append(args, "-a", "all", "Group 3")...))
	fails(t, cli(t, db, "", append(args, "--username", "nobody@contoso.example", "Group 3")...), 1, `user "nobody@contoso.example" is in none of the groups`)
	fails(t, cli(t, db, "", append(args, "--username", "nobody@contoso.example")...), 1, "in none of the groups")
	if r := cli(t, db, "", append(args, "--username", "nobody@contoso.example")...); strings.Contains(r.stderr, "Internal error") {
		t.Fatalf("a mistyped --username is an internal error:\n%s", r.stderr)
	}
}

// openDirQuiet opens an existing directory file, for polling from another goroutine.
func openDirQuiet(db string) (*sqlstore.DB, error) {
	return sqlstore.OpenWith(context.Background(), db, sqlstore.Options{Existing: true})
}

// The members add/remove message says what happened, without claiming
// "the others" when there are none.
func TestMembersChangedMessage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "groups", "create", "G"))
	for _, u := range []string{"ann", "ben"} {
		ok(t, cli(t, db, "", "users", "create", "--username", u, "--email", u+"@example.com"))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"groups", "members", "add", "G", "ann", "ben"}, "added 2 users"},
		{[]string{"groups", "members", "add", "G", "ann"}, "added 0 of 1 users (1 was a member already)"},
		{[]string{"groups", "members", "remove", "G", "ann"}, "removed 1 user"},
		{[]string{"groups", "members", "remove", "G", "ann", "ben"}, "removed 1 of 2 users (1 was not a member)"},
	} {
		if r := ok(t, cli(t, db, "", c.args...)); strings.TrimSpace(r.stdout) != c.want || strings.Contains(r.stdout, "  ") {
			t.Fatalf("%v: %q, want %q", c.args, r.stdout, c.want)
		}
	}
}

// serve names what stops it: a port in use, a TLS file that is missing.
func TestServeStartupErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fails(t, cli(t, db, "", "serve", "--listen", busy.Addr().String()), 1, "another program uses that address")
	fails(t, cli(t, db, "", "serve", "--listen", "127.0.0.1:0", "--tls-cert", "missing.pem", "--tls-key", "missing-key.pem"), 1, "cannot use the TLS certificate missing.pem")
	for _, r := range []result{cli(t, db, "", "serve", "--listen", busy.Addr().String())} {
		if strings.Contains(r.stderr, "Internal error") {
			t.Fatalf("an environment problem reported as internal: %s", r.stderr)
		}
	}
}
