package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	graphemu "github.com/usersync/usersync/emulate/graph"
)

// BenchmarkProvisionProcess runs `usersync o365 provision` (the binary,
// built for the benchmark) as its own process, as an administrator does, on a group of n members served by
// the Graph emulator in this process: the first sync into an empty SQLite
// directory, then a no-op run. It reports the wall time of each and the
// usersync process's peak resident set (its own memory, the emulator's
// not included). Goals (pull speed): at a million members, first sync
// ≤ 40 s and ≤ 512 MiB; at 300,000, ≤ 256 MiB.
//
// Run one size alone, e.g.:
//
//	go test ./cmd/usersync -run '^$' -bench 'ProvisionProcess/members=1000000' -benchtime 1x -timeout 60m
func BenchmarkProvisionProcess(b *testing.B) {
	for _, n := range []int{100_000, 300_000, 1_000_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			bin := buildUsersync(b)
			tenant := graphemu.Generate(7, n, 1) // "All Users": every one
			srv := httptest.NewServer(graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret}))
			b.Cleanup(srv.Close)
			var first, noop time.Duration
			var rss, cpu float64
			for i := 0; i < b.N; i++ {
				db := filepath.Join(b.TempDir(), "d.db")
				args := []string{"--db", db, "o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1", "--client-secret", emuSecret,
					"--authority-url", srv.URL, "--graph-url", srv.URL, "-a", "all", "--sync-user-limit", fmt.Sprint(n), "-q", "All Users"}
				took, st := runUsersync(b, bin, args)
				first += took
				ru := st.SysUsage().(*syscall.Rusage)
				rss = max(rss, float64(ru.Maxrss)/1024) // KiB on Linux
				cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
				took, _ = runUsersync(b, bin, args)
				noop += took
			}
			b.ReportMetric(first.Seconds()/float64(b.N), "first-s")
			b.ReportMetric(cpu/float64(b.N), "first-cpu-s")
			b.ReportMetric(rss, "first-max-rss-MiB")
			b.ReportMetric(float64(noop.Milliseconds())/float64(b.N), "noop-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// buildUsersync builds the usersync binary, as it is installed, once per
// benchmark: the test binary, which the tests run as usersync, carries
// more and does not measure the same resident set.
func buildUsersync(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "usersync")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runUsersync runs the binary with args and returns its wall time and
// state; it fails the benchmark when the run fails.
func runUsersync(b *testing.B, bin string, args []string) (time.Duration, *os.ProcessState) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "USERSYNC_DB=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("usersync %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return took, cmd.ProcessState
}
