package graph

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/benchtest"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/pull"
	"github.com/usersync/usersync/sqlstore"
)

// Pull benchmarks: emulator on loopback HTTP, Graph client, sync engine and
// a SQLite directory, all in one process, as `usersync o365 provision` runs.
//
// Run: go test ./source/graph -run '^$' -bench Pull -benchtime 1x -timeout 30m

// benchTenant holds n users, a group "Bench" of every one of them but the
// last 1000 (kept outside to join later).
func benchTenant(n int) (*graphemu.Tenant, graphemu.Group) {
	tenant := graphemu.Generate(77, n+1000, 1)
	all := tenant.GroupsNamed("All Users")[0]
	g := graphemu.Group{ID: "bbbbbbbb-0000-4000-8000-000000000001", DisplayName: "Bench", Members: all.Members[:n]}
	tenant.AddGroup(g)
	return tenant, g
}

// requestCounter counts HTTP requests a client sends, as Graph would bill them.
type requestCounter struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func benchSource(b *testing.B, tenant *graphemu.Tenant, latency time.Duration) (pull.DeltaSource, *requestCounter) {
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: secret, Latency: latency})
	srv := httptest.NewServer(emu)
	b.Cleanup(srv.Close)
	rc := &requestCounter{next: &http.Transport{MaxIdleConnsPerHost: 4}}
	c, err := msgraph.New(msgraph.Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: tenant.ID, ClientID: "app-1", ClientSecret: secret, HTTPClient: &http.Client{Transport: rc}})
	if err != nil {
		b.Fatal(err)
	}
	return NewSource(c, Mapping{}), rc
}

// BenchmarkPullFull is a first sync of a whole group into an empty
// directory, at zero latency: time, peak heap and Graph requests.
func BenchmarkPullFull(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			tenant, _ := benchTenant(n)
			var peak uint64
			var requests int64
			var fetch, cpu, sync, bare, bareLog time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				src, rc := benchSource(b, tenant, 0)
				// The fetch alone, for comparison: what the source costs.
				g, err := src.FindGroup(context.Background(), "Bench")
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := src.Members(context.Background(), g, func([]pull.User) error { return nil }); err != nil {
					b.Fatal(err)
				}
				fetch += time.Since(start)
				rc.n.Store(0)
				path := filepath.Join(b.TempDir(), "bench.db")
				d, err := sqlstore.Open(context.Background(), path)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				peak = max(peak, benchtest.PeakHeap(func() {
					c, start := benchtest.CPUTime(), time.Now()
					r, err := pull.Sync(context.Background(), d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll})
					sync += time.Since(start)
					cpu += benchtest.CPUTime() - c
					if err != nil || r.Written.UsersCreated != n {
						b.Fatalf("%+v %v", r, err)
					}
				}))
				b.StopTimer()
				requests = rc.n.Load()
				// The floor: the same rows with bare INSERTs (see BareInserts),
				// without and with the change log's.
				bare += benchtest.BareInserts(b, path, "groups", "users", "memberships")
				bareLog += benchtest.BareInserts(b, path, "groups", "users", "memberships", "changes")
				d.Close()
			}
			b.ReportMetric(fetch.Seconds()/float64(b.N), "fetch-only-s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s") // emulator's share included
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(requests), "requests")
			b.ReportMetric(float64(sync)/float64(bare), "sync/bare")
			b.ReportMetric(float64(sync)/float64(bareLog), "sync/bare-with-log")
			b.ReportMetric(bare.Seconds()/float64(b.N), "bare-s")
		})
	}
}

// BenchmarkPullLatency is the same first sync with a per-request latency L
// at the emulator. pages×L is the time the fetches alone would take at
// best; the ratio total/(pages×L) shows how well directory writes hide
// behind them (goal ≤ 1.10). total/reads compares with the source's pages
// read alone at the same latency, in the same run (the emulator's own time
// per page comes on top of L), and tail-ms is how long the run outlasts them.
func BenchmarkPullLatency(b *testing.B) {
	const n = 100_000
	pages := (n + msgraph.MaxPage - 1) / msgraph.MaxPage
	for _, latency := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		b.Run(fmt.Sprintf("L=%s", latency), func(b *testing.B) {
			tenant, _ := benchTenant(n)
			var total, reads time.Duration
			for i := 0; i < b.N; i++ {
				src, _ := benchSource(b, tenant, latency)
				// The reads alone at the same latency: the source's last
				// page arrives at their end, at best.
				g, err := src.FindGroup(context.Background(), "Bench")
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := src.Members(context.Background(), g, func([]pull.User) error { return nil }); err != nil {
					b.Fatal(err)
				}
				reads += time.Since(start)
				d := benchtest.Dir(b)
				start = time.Now()
				if _, err := pull.Sync(context.Background(), d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll}); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			fetch := time.Duration(pages) * latency
			b.ReportMetric(float64(total/time.Duration(b.N))/float64(fetch), "total/(pages×L)")
			b.ReportMetric(float64(total)/float64(reads), "total/reads")
			b.ReportMetric(float64(total-reads)/float64(b.N)/1e6, "tail-ms")
			b.ReportMetric(float64(pages), "pages")
		})
	}
}

// BenchmarkPullIncremental syncs a 100,000-member group, makes 100 changes
// in the tenant (25 joiners, 25 leavers, 50 profile changes), and measures
// the incremental run that follows: Graph requests and time. Then a no-op
// run, which must write nothing.
func BenchmarkPullIncremental(b *testing.B) {
	const n = 100_000
	var requests, noopRows int64
	var incr time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tenant, g := benchTenant(n)
		src, rc := benchSource(b, tenant, 0)
		d := benchtest.Dir(b)
		ctx := context.Background()
		if _, err := pull.Sync(ctx, d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll}); err != nil {
			b.Fatal(err)
		}
		all := tenant.GroupsNamed("All Users")[0]
		for _, id := range all.Members[n : n+25] {
			tenant.AddMember(g.ID, id)
		}
		for _, id := range g.Members[:25] {
			tenant.RemoveMember(g.ID, id)
		}
		for _, id := range g.Members[100:150] {
			tenant.UpdateUser(id, func(u *graphemu.User) { u.JobTitle = "Changed"; u.Surname += "-x" })
		}
		before := rc.n.Load()
		b.StartTimer()
		start := time.Now()
		r, err := pull.Sync(ctx, d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll})
		incr += time.Since(start)
		b.StopTimer()
		if err != nil || r.Mode != pull.ModeIncremental || r.Counts[pull.AddMember] != 25 || r.Counts[pull.RemoveMember] != 25 || r.Counts[pull.UpdateUser] != 50 {
			b.Fatalf("incremental run: %+v %v", r, err)
		}
		requests = rc.n.Load() - before
		r, err = pull.Sync(ctx, d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll})
		if err != nil {
			b.Fatal(err)
		}
		noopRows = r.Written.RowsWritten
		full, err := pull.Sync(ctx, d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll, Full: true})
		if err != nil || full.Mode != pull.ModeFull {
			b.Fatal(err)
		}
		noopRows += full.Written.RowsWritten
	}
	b.ReportMetric(float64(requests), "requests")
	b.ReportMetric(float64(incr.Milliseconds())/float64(b.N), "incremental-ms")
	b.ReportMetric(float64(noopRows), "noop-rows-written")
}

// BenchmarkPullNoop is an incremental run with nothing changed, for groups
// of 100,000 and 300,000 members: it must cost the same at any size (goal
// ≤ 50 ms and ≤ 64 MiB), since it touches only its delta state.
func BenchmarkPullNoop(b *testing.B) {
	for _, n := range []int{100_000, 300_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.StopTimer()
			tenant, _ := benchTenant(n)
			src, rc := benchSource(b, tenant, 0)
			d := benchtest.Dir(b)
			ctx := context.Background()
			o := pull.Options{AutoCreate: pull.CreateAll, SyncUserLimit: n}
			if _, err := pull.Sync(ctx, d, src, "Bench", o); err != nil {
				b.Fatal(err)
			}
			// As between two runs of the CLI (the last connection's close
			// checkpoints the WAL): the first sync's WAL is not the no-op's.
			if err := d.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
			var peak uint64
			var took time.Duration
			var requests int64
			for i := 0; i < b.N; i++ {
				before := rc.n.Load()
				b.StartTimer()
				peak = max(peak, benchtest.PeakHeap(func() { // times inside: PeakHeap collects garbage first
					start := time.Now()
					r, err := pull.Sync(ctx, d, src, "Bench", o)
					took += time.Since(start)
					if err != nil || r.Mode != pull.ModeIncremental || r.Written.RowsWritten != 0 {
						b.Fatalf("%+v %v", r, err)
					}
				}))
				b.StopTimer()
				requests = rc.n.Load() - before
			}
			b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "noop-ms")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(requests), "requests")
		})
	}
}

// BenchmarkPullMillion is a group of 1,000,000 members (the emulator in
// process): the first sync, a no-op incremental run, and an incremental run
// after 1,000 changes (250 join, 250 leave, 500 profile changes). Goals:
// first sync ≤ 40 s and ≤ 512 MiB, incremental ≤ 1 s. The peak heap is the
// sync's, above the emulator's tenant (generated before).
//
// Run alone: go test ./source/graph -run '^$' -bench PullMillion -benchtime 1x -timeout 60m
func BenchmarkPullMillion(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tenant, g := benchTenant(n)
		src, _ := benchSource(b, tenant, 0)
		d := benchtest.Dir(b)
		ctx := context.Background()
		o := pull.Options{AutoCreate: pull.CreateAll, SyncUserLimit: n}
		b.StartTimer()
		var first time.Duration
		peak := benchtest.PeakHeap(func() {
			start := time.Now()
			r, err := pull.Sync(ctx, d, src, "Bench", o)
			first = time.Since(start)
			if err != nil || r.Written.UsersCreated != n {
				b.Fatalf("%+v %v", r, err)
			}
		})
		b.StopTimer()
		start := time.Now()
		if r, err := pull.Sync(ctx, d, src, "Bench", o); err != nil || r.Mode != pull.ModeIncremental || r.Written.RowsWritten != 0 {
			b.Fatalf("no-op: %+v %v", r, err)
		}
		noop := time.Since(start)
		all := tenant.GroupsNamed("All Users")[0]
		for _, id := range all.Members[n : n+250] {
			tenant.AddMember(g.ID, id)
		}
		for _, id := range g.Members[:250] {
			tenant.RemoveMember(g.ID, id)
		}
		for _, id := range g.Members[1000:1500] {
			tenant.UpdateUser(id, func(u *graphemu.User) { u.Surname += "-x" })
		}
		var incr time.Duration
		incrPeak := benchtest.PeakHeap(func() {
			start := time.Now()
			r, err := pull.Sync(ctx, d, src, "Bench", o)
			incr = time.Since(start)
			if err != nil || r.Mode != pull.ModeIncremental || r.Counts[pull.AddMember] != 250 || r.Counts[pull.RemoveMember] != 250 || r.Counts[pull.UpdateUser] != 500 {
				b.Fatalf("incremental: %+v %v", r, err)
			}
		})
		b.ReportMetric(first.Seconds(), "first-s")
		b.ReportMetric(float64(peak)/(1<<20), "first-peak-heap-MiB")
		b.ReportMetric(float64(noop.Milliseconds()), "noop-ms")
		b.ReportMetric(float64(incr.Milliseconds()), "incremental-ms")
		b.ReportMetric(float64(incrPeak)/(1<<20), "incremental-peak-heap-MiB")
		b.ReportMetric(float64(benchtest.MaxRSS())/(1<<20), "process-max-rss-MiB")
	}
}
