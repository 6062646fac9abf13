package okta

import (
	"context"
	"fmt"
	"testing"
	"time"

	oktaemu "github.com/usersync/usersync/emulate/okta"
	"github.com/usersync/usersync/internal/benchtest"
	"github.com/usersync/usersync/pull"
)

// Okta pull benchmarks: emulator on loopback HTTP, client, sync engine and a
// SQLite directory in one process, as `usersync okta provision` runs.
//
// Run: go test ./source/okta -run '^$' -bench Pull -benchtime 1x -timeout 30m

// BenchmarkPullOktaFull is a first sync of Everyone (100,000 users; about
// 3% DEPROVISIONED and skipped) into an empty directory at zero latency.
func BenchmarkPullOktaFull(b *testing.B) {
	const n = 100_000
	org := oktaemu.Generate(77, n, 1)
	var peak uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_, srv := start(b, org, oktaemu.Options{RateLimit: 1 << 30})
		src := newClient(b, Config{Host: srv.URL, Token: token}).Source(Mapping{})
		d := benchtest.Dir(b)
		b.StartTimer()
		peak = max(peak, benchtest.PeakHeap(func() {
			r, err := pull.Sync(context.Background(), d, src, "Everyone", pull.Options{AutoCreate: pull.CreateAll})
			if err != nil || r.Written.UsersCreated+r.Counts[pull.SkipUser] != n {
				b.Fatalf("%+v %v", r, err)
			}
		}))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkPullOktaRateLimited reads the 100,000-member group with the
// emulator enforcing R requests per window and pages of P users. The
// window is 2 s instead of Okta's minute, to keep the run short; the
// arithmetic is the same. The floor is pages/R windows; the goal is
// total ≤ 1.1 × (pages/R × window) with no 429 received.
func BenchmarkPullOktaRateLimited(b *testing.B) {
	const n, window = 100_000, 2 * time.Second
	for _, c := range []struct{ r, p int }{{25, 1000}, {50, 500}} {
		b.Run(fmt.Sprintf("R=%d/window,P=%d", c.r, c.p), func(b *testing.B) {
			org := oktaemu.Generate(78, n, 1)
			pages := (n + c.p - 1) / c.p
			floor := time.Duration(float64(pages) / float64(c.r) * float64(window))
			var total time.Duration
			throttled := 0
			for i := 0; i < b.N; i++ {
				emu, srv := start(b, org, oktaemu.Options{RateLimit: c.r, Window: window, MaxPage: c.p})
				src := newClient(b, Config{Host: srv.URL, Token: token}).Source(Mapping{})
				d := benchtest.Dir(b)
				start := time.Now()
				if _, err := pull.Sync(context.Background(), d, src, "Everyone", pull.Options{AutoCreate: pull.CreateAll}); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				throttled += emu.Requests()["429"]
			}
			b.ReportMetric(float64(total/time.Duration(b.N))/float64(floor), "total/floor")
			b.ReportMetric(floor.Seconds(), "floor-s")
			b.ReportMetric(float64(throttled), "429s")
		})
	}
}

// BenchmarkPullOktaUnchanged re-reads an unchanged 100,000-member group
// (Okta has no delta: every run reads in full and diffs its writes) and
// compares it with the reads alone. Goal: ≤ 1.5 × the reads, 0 rows written.
func BenchmarkPullOktaUnchanged(b *testing.B) {
	const n = 100_000
	org := oktaemu.Generate(79, n, 1)
	_, srv := start(b, org, oktaemu.Options{RateLimit: 1 << 30})
	src := newClient(b, Config{Host: srv.URL, Token: token}).Source(Mapping{})
	d := benchtest.Dir(b)
	ctx := context.Background()
	o := pull.Options{AutoCreate: pull.CreateAll, SyncUserLimit: n}
	if _, err := pull.Sync(ctx, d, src, "Everyone", o); err != nil {
		b.Fatal(err)
	}
	g, err := src.FindGroup(ctx, "Everyone")
	if err != nil {
		b.Fatal(err)
	}
	var reads, reread time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := src.Members(ctx, g, func([]pull.User) error { return nil }); err != nil {
			b.Fatal(err)
		}
		reads += time.Since(start)
		start = time.Now()
		r, err := pull.Sync(ctx, d, src, "Everyone", o)
		reread += time.Since(start)
		if err != nil || r.Written.RowsWritten != 0 {
			b.Fatalf("%+v %v", r, err)
		}
	}
	b.ReportMetric(reads.Seconds()/float64(b.N), "reads-s")
	b.ReportMetric(reread.Seconds()/float64(b.N), "reread-s")
	b.ReportMetric(float64(reread)/float64(reads), "reread/reads")
}
