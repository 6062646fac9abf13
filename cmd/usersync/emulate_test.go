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
	serveAndSync(t, []string{"--users", "40", "--groups", "3"}, "All Users → All Users: 40 source users; users created 40")
}

// A tenant above the default user limit: the printed command says so.
func TestEmulateGraphLargeTenant(t *testing.T) {
	serveAndSync(t, []string{"--users", "10050", "--groups", "1"}, "All Users → All Users: 10050 source users; users created 10050")
}

// Served over TLS with a certificate made on the spot, which clients trust
// through SSL_CERT_FILE, as the printed hint says.
func TestEmulateGraphSelfSignedTLS(t *testing.T) {
	serveAndSync(t, []string{"--users", "10", "--groups", "1", "--tls-self-signed"}, "All Users → All Users: 10 source users")
}

// TestEmulateGraphTenantFile serves a tenant loaded from a JSON file.
func TestEmulateGraphTenantFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tenant.json")
	os.WriteFile(file, []byte(`{"id": "contoso-test", "users": [
		{"id": "u1", "userPrincipalName": "ann@contoso.example", "givenName": "Ann", "accountEnabled": true},
		{"id": "u2", "userPrincipalName": "bob@contoso.example", "accountEnabled": true}],
		"groups": [{"id": "g1", "displayName": "Team", "members": ["u1", "u2"]}]}`), 0o600)
	serveAndSync(t, []string{"--tenant-file", file}, "Team → Team: 2 source users; users created 2")
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"id": "x", "groups": [{"id": "g", "members": ["ghost"]}]}`), 0o600)
	fails(t, cli(t, filepath.Join(t.TempDir(), "d.db"), "", "emulate", "graph", "--tenant-file", bad), 2, `member "ghost"`)
}

// TestEmulateOktaServes starts `usersync emulate okta` and syncs from it.
func TestEmulateOktaServes(t *testing.T) {
	serveAndSyncFrom(t, "okta", []string{"--users", "40", "--groups", "3", "--token", "tok-1"}, "Everyone → Everyone: 40 source users")
}

func serveAndSync(t *testing.T, flags []string, want string) {
	serveAndSyncFrom(t, "graph", flags, want)
}

// serveAndSyncFrom starts an emulator and runs, as it is, the provision
// command line it prints.
func serveAndSyncFrom(t *testing.T, kind string, flags []string, want string) {
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
	var provision, certFile string
	for lines.Scan() {
		l := strings.TrimSpace(lines.Text())
		if _, f, ok := strings.Cut(l, "SSL_CERT_FILE="); ok {
			certFile = strings.TrimSuffix(f, ")")
		}
		if strings.Contains(l, " o365 provision ") || strings.Contains(l, " okta provision ") {
			provision = l
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if provision == "" {
		t.Fatal("the emulator printed no provision command")
	}
	words := splitShell(provision)
	i := 0
	for words[i] != "o365" && words[i] != "okta" {
		i++ // the command that runs usersync: "usersync", "go run ./cmd/usersync", …
	}
	args := words[i:]
	if certFile != "" {
		t.Setenv("SSL_CERT_FILE", certFile)
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

// splitShell splits a command line printed for a POSIX shell (words,
// 'single-quoted' words).
func splitShell(line string) []string {
	var out []string
	var word strings.Builder
	in, quoted := false, false
	for _, c := range line {
		switch {
		case c == '\'':
			quoted, in = !quoted, true
		case c == ' ' && !quoted:
			if in {
				out = append(out, word.String())
				word.Reset()
			}
			in = false
		default:
			word.WriteRune(c)
			in = true
		}
	}
	if in {
		out = append(out, word.String())
	}
	return out
}
