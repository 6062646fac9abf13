package graph

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/benchtest"
	"github.com/usersync/usersync/pull"
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
	c, err := New(Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: tenant.ID, ClientID: "app-1", ClientSecret: secret, HTTPClient: &http.Client{Transport: rc}})
	if err != nil {
		b.Fatal(err)
	}
	return c.Source(Mapping{}), rc
}

// BenchmarkPullFull is a first sync of a whole group into an empty
// directory, at zero latency: time, peak heap and Graph requests.
func BenchmarkPullFull(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			tenant, _ := benchTenant(n)
			var peak uint64
			var requests int64
			var fetch time.Duration
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
				d := benchtest.Dir(b)
				b.StartTimer()
				peak = max(peak, benchtest.PeakHeap(func() {
					r, err := pull.Sync(context.Background(), d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll})
					if err != nil || r.Written.UsersCreated != n {
						b.Fatalf("%+v %v", r, err)
					}
				}))
				b.StopTimer()
				requests = rc.n.Load()
			}
			b.ReportMetric(fetch.Seconds()/float64(b.N), "fetch-only-s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(requests), "requests")
		})
	}
}

// BenchmarkPullLatency is the same first sync with a per-request latency L
// at the emulator. pages×L is the time the fetches alone take; the ratio
// total/(pages×L) shows how well directory writes hide behind them (goal ≤ 1.15).
func BenchmarkPullLatency(b *testing.B) {
	const n = 100_000
	pages := (n + MaxPage - 1) / MaxPage
	for _, latency := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		b.Run(fmt.Sprintf("L=%s", latency), func(b *testing.B) {
			tenant, _ := benchTenant(n)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				src, _ := benchSource(b, tenant, latency)
				d := benchtest.Dir(b)
				start := time.Now()
				if _, err := pull.Sync(context.Background(), d, src, "Bench", pull.Options{AutoCreate: pull.CreateAll}); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			fetch := time.Duration(pages) * latency
			b.ReportMetric(float64(total/time.Duration(b.N))/float64(fetch), "total/(pages×L)")
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
