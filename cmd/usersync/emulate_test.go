package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEmulateGraphServes starts `usersync emulate graph` on a free port and
// syncs from it with the command line it prints.
func TestEmulateGraphServes(t *testing.T) {
	serveAndSync(t, []string{"--users", "40", "--groups", "3"}, "Group 1", "Group 1 → Group 1: 20 source users; users created 20")
}

// TestEmulateGraphTenantFile serves a tenant loaded from a JSON file.
func TestEmulateGraphTenantFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tenant.json")
	os.WriteFile(file, []byte(`{"id": "contoso-test", "users": [
		{"id": "u1", "userPrincipalName": "ann@contoso.example", "givenName": "Ann", "accountEnabled": true},
		{"id": "u2", "userPrincipalName": "bob@contoso.example", "accountEnabled": true}],
		"groups": [{"id": "g1", "displayName": "Team", "members": ["u1", "u2"]}]}`), 0o600)
	serveAndSync(t, []string{"--tenant-file", file}, "Team", "Team → Team: 2 source users; users created 2")
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"id": "x", "groups": [{"id": "g", "members": ["ghost"]}]}`), 0o600)
	fails(t, cli(t, filepath.Join(t.TempDir(), "d.db"), "", "emulate", "graph", "--tenant-file", bad), 2, `member "ghost"`)
}

// TestEmulateOktaServes starts `usersync emulate okta` and syncs from it.
func TestEmulateOktaServes(t *testing.T) {
	serveAndSyncFrom(t, "okta", []string{"--users", "40", "--groups", "3", "--token", "tok-1"}, "Group 1", "Group 1 → Group 1: 20 source users")
}

func serveAndSync(t *testing.T, flags []string, group, want string) {
	serveAndSyncFrom(t, "graph", flags, group, want)
}

func serveAndSyncFrom(t *testing.T, kind string, flags []string, group, want string) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		base := []string{"emulate", "graph", "--listen", "127.0.0.1:0", "--client-secret", "s3cr3t-value"}
		if kind == "okta" {
			base = []string{"emulate", "okta", "--listen", "127.0.0.1:0"}
		}
		done <- run(ctx, append(base, flags...), strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var provision string
	for lines.Scan() {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "usersync o365 provision") || strings.HasPrefix(l, "usersync okta provision") {
			provision = l
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if provision == "" {
		t.Fatal("the emulator printed no provision command")
	}
	args := strings.Fields(strings.TrimPrefix(provision, "usersync "))
	if kind == "okta" {
		args = append(args[:len(args)-1], group) // replace Everyone
	} else {
		args = append(args[:len(args)-2], group) // replace `"All Users"` (quoted for a shell)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	r := ok(t, cli(t, db, "", args...))
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("sync from the served emulator:\n%s", r.stdout)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("emulator exited %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the emulator did not shut down")
	}
}
