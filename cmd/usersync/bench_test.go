package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchSCIM runs `usersync bench scim` small: the server is a child
// process, every load reports a rate and latencies, nothing fails.
func TestBenchSCIM(t *testing.T) {
	childCommand = func(ctx context.Context, args ...string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "USERSYNC_CLI_CHILD="+strings.Join(args, "\x1f"))
		return cmd, nil
	}
	t.Setenv("USERSYNC_DB", "")
	r := ok(t, cli(t, "", "", "bench", "scim", "--clients", "4", "--duration", "300ms", "--users", "300", "--group-members", "500"))
	for _, want := range []string{"GET /Users?filter=userName eq", "POST /Users", "PATCH /Groups (add one member)", "GET excl. members, 500-member group", "PATCH adding 10,000 members"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, " 0 req/s") {
		t.Fatalf("a load made no request:\n%s", r.stdout)
	}
}
