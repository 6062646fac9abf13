package entra

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
)

// benchEnv is a SQLite directory and an emulated tenant that share n
// users m0@contoso.com, m1@…; it returns their directory ids.
func benchEnv(b *testing.B, n int, o graphemu.Options) (*env, []int64) {
	b.Helper()
	e := newEnv(b, dirtest.SQLite(b), o, nil)
	batch := &usersync.Batch{}
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("m%d", i)
		e.tenant.AddUser(graphemu.User{ID: "id-" + uid, UserPrincipalName: uid + "@contoso.com"})
		batch.Users = append(batch.Users, usersync.UserUpsert{User: usersync.User{Username: uid + "@contoso.com", Source: "bench", SourceID: uid}, Create: true})
	}
	if _, err := e.dir.ApplyBatch(ctx, batch); err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, n)
	for i := range ids {
		u, err := e.dir.FindUserByUsername(ctx, fmt.Sprintf("m%d@contoso.com", i))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
	}
	e.cfg.Sleep = nil // real waits: Retry-After and pacing count
	return e, ids
}

// BenchmarkAddMembers: n members added to one marked group in one change.
// Reports Graph requests and writes per membership change, and the wall
// time against the bound requests × latency (one request at a time).
//
//	go test ./target/entra -run '^$' -bench BenchmarkAddMembers -benchtime 1x
func BenchmarkAddMembers(b *testing.B) {
	for _, c := range []struct {
		n       int
		latency time.Duration
	}{{10000, 0}, {10000, 100 * time.Millisecond}} {
		b.Run(fmt.Sprintf("n=%d/L=%s", c.n, c.latency), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e, ids := benchEnv(b, c.n, graphemu.Options{Latency: c.latency})
				e.cfg.WritesPerSecond = 0 // Graph's pace: 20 writes a second
				e.mark("app")
				g := e.group("app:big")
				e.run()
				if _, err := e.dir.AddMembers(ctx, g.ID, ids); err != nil {
					b.Fatal(err)
				}
				before, writes := e.emu.Requests()["http"], sum(e.emu.Writes())
				b.StartTimer()
				start := time.Now()
				r := e.run()
				wall := time.Since(start)
				b.StopTimer()
				if got := len(e.remote("app:big").Members); got != c.n || len(r.Failures) != 0 {
					b.Fatalf("%d members in Entra, failures %v", got, r.Failures)
				}
				reqs := e.emu.Requests()["http"] - before
				b.ReportMetric(float64(reqs)/float64(c.n), "requests/change")
				b.ReportMetric(float64(sum(e.emu.Writes())-writes)/float64(c.n), "writes/change")
				if c.latency > 0 {
					bound := time.Duration(reqs) * c.latency
					b.ReportMetric(wall.Seconds(), "wall-s")
					b.ReportMetric(wall.Seconds()/bound.Seconds(), "wall/bound")
				}
			}
		})
	}
}

// BenchmarkRemoveMembers: 1,000 members removed from one group in one change.
//
//	go test ./target/entra -run '^$' -bench BenchmarkRemoveMembers -benchtime 1x
func BenchmarkRemoveMembers(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e, ids := benchEnv(b, n, graphemu.Options{})
		e.cfg.WritesPerSecond = -1
		e.mark("app")
		g := e.group("app:big")
		e.dir.AddMembers(ctx, g.ID, ids)
		e.run()
		e.dir.RemoveMembers(ctx, g.ID, ids)
		before, writes := e.emu.Requests()["http"], sum(e.emu.Writes())
		b.StartTimer()
		e.run()
		b.StopTimer()
		if got := len(e.remote("app:big").Members); got != 0 {
			b.Fatalf("%d members left", got)
		}
		b.ReportMetric(float64(e.emu.Requests()["http"]-before)/n, "requests/change")
		b.ReportMetric(float64(sum(e.emu.Writes())-writes)/n, "writes/change")
	}
}

// BenchmarkChangeToEntra: the time from a single-member change in the
// directory to the member in the Entra group, with usersync serve's loop
// (default poll) running; p50 and p99 over b.N changes.
//
//	go test ./target/entra -run '^$' -bench BenchmarkChangeToEntra -benchtime 200x
func BenchmarkChangeToEntra(b *testing.B) {
	e, ids := benchEnv(b, b.N, graphemu.Options{})
	e.cfg.WritesPerSecond = 0
	e.mark("app")
	g := e.group("app:live")
	e.run()
	remote := e.find("app:live").Attributes[e.p.Config.RemoteIDAttribute]
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(sctx, e.dir, ServeOptions{NewClient: func(context.Context, *usersync.Provisioner) (*msgraph.Client, error) { return msgraph.New(e.cfg) }})
	}()
	defer func() { cancel(); <-done }()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := e.dir.AddMembers(ctx, g.ID, ids[i:i+1]); err != nil {
			b.Fatal(err)
		}
		for {
			if rg, _ := e.tenant.Group(remote); len(rg.Members) == i+1 {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("change %d did not reach Entra in 30 s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Milliseconds()), "p99-ms")
}

// BenchmarkInitialProvisioning: 200 marked groups of 500 members each,
// provisioned from nothing, against the write quota. The quota's window is
// scaled tenfold (3,000 writes per 15 s) so the run takes seconds, not
// minutes (-bench.quota-window 150s runs Graph's), and the client knows
// the same quota. The bound is when the
// quota lets the last write through: a window for each full quota before
// it (5,200 writes: one window).
//
//	go test ./target/entra -run '^$' -bench BenchmarkInitialProvisioning -benchtime 1x
var quotaWindow = flag.Duration("bench.quota-window", 15*time.Second, "BenchmarkInitialProvisioning: the write quota's window (Graph's is 150s)")

func BenchmarkInitialProvisioning(b *testing.B) {
	const groups, members, users = 200, 500, 5000
	const quota = 3000
	window := *quotaWindow
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e, ids := benchEnv(b, users, graphemu.Options{WriteBudget: quota, WriteWindow: window})
		e.cfg.WriteQuota, e.cfg.WriteWindow, e.cfg.WritesPerSecond = quota, window, 0
		e.mark("app")
		for g := 0; g < groups; g++ {
			grp := &usersync.Group{Name: fmt.Sprintf("app:g%03d", g)}
			m := make([]int64, members)
			for k := range m {
				m[k] = ids[(g*37+k)%users]
			}
			if err := e.dir.CreateGroup(ctx, grp, m...); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		r := e.run()
		wall := time.Since(start)
		b.StopTimer()
		if len(r.Failures) != 0 || len(e.tenant.Groups()) != groups {
			b.Fatalf("failures %v, %d groups", r.Failures, len(e.tenant.Groups()))
		}
		writes := sum(e.emu.Writes())
		bound := time.Duration((writes-1)/quota) * window
		b.ReportMetric(float64(writes), "writes")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(wall.Seconds()/bound.Seconds(), "wall/bound")
		b.ReportMetric(float64(e.emu.Requests()["429"]), "throttled")
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// BenchmarkMemberChangeLookups: single member changes over 10 marked groups
// of 100 members, under serve's loop, each awaited in Entra; reports the
// user lookups Graph answered per change. Members were resolved when the
// groups were first provisioned, so a change needs none (it made 0.77).
//
//	go test ./target/entra -run '^$' -bench BenchmarkMemberChangeLookups -benchtime 1000x
func BenchmarkMemberChangeLookups(b *testing.B) {
	const groups, users = 10, 200
	e, ids := benchEnv(b, users, graphemu.Options{})
	e.cfg.WritesPerSecond = -1
	e.mark("app")
	gs := make([]*usersync.Group, groups)
	for g := range gs {
		gs[g] = &usersync.Group{Name: fmt.Sprintf("app:g%d", g)}
		if err := e.dir.CreateGroup(ctx, gs[g], ids[g*10:g*10+100]...); err != nil {
			b.Fatal(err)
		}
	}
	e.run()
	remote := make([]string, groups)
	for g := range gs {
		remote[g] = e.find(gs[g].Name).Attributes[e.p.Config.RemoteIDAttribute]
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(sctx, e.dir, ServeOptions{NewClient: func(context.Context, *usersync.Provisioner) (*msgraph.Client, error) { return msgraph.New(e.cfg) }})
	}()
	defer func() { cancel(); <-done }()
	lookups := e.emu.Requests()["user"]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := i % groups
		u := ids[g*10+(i/groups)%100] // a member: removed, then added back on its next turn
		rg, _ := e.tenant.Group(remote[g])
		want := len(rg.Members) - 1
		var err error
		if (i/(groups*100))%2 == 0 {
			_, err = e.dir.RemoveMembers(ctx, gs[g].ID, []int64{u})
		} else {
			_, err = e.dir.AddMembers(ctx, gs[g].ID, []int64{u})
			want += 2
		}
		if err != nil {
			b.Fatal(err)
		}
		for start := time.Now(); ; time.Sleep(2 * time.Millisecond) {
			if rg, _ := e.tenant.Group(remote[g]); len(rg.Members) == want {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("change %d did not reach Entra in 30 s", i)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.emu.Requests()["user"]-lookups)/float64(b.N), "lookups/change")
}
