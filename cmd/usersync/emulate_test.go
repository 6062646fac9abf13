package main

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEmulateGraphServes starts `usersync emulate graph` on a free port and
// syncs from it with the command line it prints.
func TestEmulateGraphServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"emulate", "graph", "--listen", "127.0.0.1:0", "--users", "40", "--groups", "3", "--client-secret", "s3cr3t-value"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var provision string
	for lines.Scan() {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "usersync o365 provision") {
			provision = l
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if provision == "" {
		t.Fatal("the emulator printed no provision command")
	}
	args := strings.Fields(strings.TrimPrefix(provision, "usersync "))
	args = append(args[:len(args)-2], "Group 1") // replace `"All Users"` (quoted for a shell)
	db := filepath.Join(t.TempDir(), "d.db")
	r := ok(t, cli(t, db, "", args...))
	if !strings.Contains(r.stdout, "Group 1 → Group 1: 20 source users; users created 20") {
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
