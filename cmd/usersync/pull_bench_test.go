package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProvisionProcess runs `usersync o365 provision` (the binary,
// built for the benchmark) as its own process, as an administrator does,
// on a group of n members served by `usersync emulate graph`, a second
// process: the first sync into an empty SQLite directory, then a no-op
// run. It reports the wall time of each and the usersync process's peak
// resident set. The emulator runs apart because Linux counts, in a child's
// peak, the parent's resident set at the moment it started the child (Go
// starts children with vfork): a tenant held in this process would be
// counted as usersync's. Goals (pull speed): at a million members, first
// sync ≤ 40 s and ≤ 512 MiB; at 300,000, ≤ 256 MiB.
//
// Run one size alone, e.g.:
//
//	go test ./cmd/usersync -run '^$' -bench 'ProvisionProcess/members=1000000' -benchtime 1x -timeout 60m
func BenchmarkProvisionProcess(b *testing.B) {
	for _, n := range []int{100_000, 300_000, 1_000_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			bin := buildUsersync(b)
			url, tenant := startEmulator(b, bin, n)
			var first, noop time.Duration
			var rss, cpu float64
			for i := 0; i < b.N; i++ {
				db := filepath.Join(b.TempDir(), "d.db")
				args := []string{"--db", db, "o365", "provision", "--tenant", tenant, "--client-id", "app-1", "--client-secret", emuSecret,
					"--authority-url", url, "--graph-url", url, "-a", "all", "--sync-user-limit", fmt.Sprint(n), "-q", "All Users"}
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

// startEmulator runs `usersync emulate graph` with n users, every one in
// "All Users", and returns its URL and tenant id once it listens.
func startEmulator(b *testing.B, bin string, n int) (url, tenant string) {
	cmd := exec.Command(bin, "emulate", "graph", "--listen", "127.0.0.1:0", "--users", fmt.Sprint(n), "--groups", "1",
		"--client-id", "app-1", "--client-secret", emuSecret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() && (url == "" || tenant == "") {
		l := strings.TrimSpace(lines.Text())
		if u, ok := strings.CutPrefix(l, "Graph emulator listening on "); ok {
			url = u
		}
		if t, ok := strings.CutPrefix(l, "tenant "); ok {
			tenant, _, _ = strings.Cut(t, ":")
		}
	}
	if url == "" || tenant == "" {
		b.Fatalf("usersync emulate graph did not say where it listens (%v)", lines.Err())
	}
	go io.Copy(io.Discard, out) // its further output
	return url, tenant
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
