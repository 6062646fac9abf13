package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// BenchmarkScheduleStartLatency measures how late serve starts a scheduled
// run: from the due time of a schedule due every second to the run's start,
// over b.N runs, with one replica on SQLite and two on PostgreSQL (real
// processes). Run it on its own, e.g.
//
//	go test ./cmd/usersync -run '^$' -bench ScheduleStartLatency -benchtime 300x -timeout 30m
func BenchmarkScheduleStartLatency(b *testing.B) {
	for _, setup := range []struct {
		name     string
		replicas int
		db       func(b *testing.B) string
	}{
		{"sqlite-1-replica", 1, func(b *testing.B) string { return filepath.Join(b.TempDir(), "d.db") }},
		{"postgres-2-replicas", 2, func(b *testing.B) string {
			b.Setenv(sqlstore.KeyEnv, pgtest.SecretKey) // the replicas inherit it
			return pgtest.NewDatabase(b)
		}},
	} {
		b.Run(setup.name, func(b *testing.B) {
			db := setup.db(b)
			_, base := emulator(b)
			ok(b, cli(b, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
			ok(b, cli(b, db, "", append([]string{"schedules", "create", "tick", "--cron", "* * * * * ?", "--"}, append(append([]string{}, base...), "--auto-create", "all", "Group 3")...)...))
			for range setup.replicas {
				child(b, "--db", db, "serve", "--listen", "127.0.0.1:0", "--no-provisioners")
			}
			d, err := sqlstore.OpenWith(context.Background(), db, sqlstore.Options{SecretKey: pgtest.SecretKey})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.ResetTimer()
			var rs []*usersync.Run
			deadline := time.Now().Add(time.Duration(b.N)*2*time.Second + 30*time.Second)
			for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				if rs, err = d.ListRuns(context.Background(), "tick", 0); err != nil {
					b.Fatal(err)
				}
				if ended(rs) >= b.N {
					break
				}
			}
			b.StopTimer()
			var lates []time.Duration
			seen := map[int64]bool{}
			for _, r := range rs {
				if r.Outcome == usersync.RunRunning {
					continue
				}
				if r.Outcome != usersync.RunSucceeded {
					b.Fatalf("run %d: %s %s", r.ID, r.Outcome, r.Error)
				}
				due := r.StartedAt.Truncate(time.Second)
				if seen[due.Unix()] {
					b.Fatalf("due time %s ran twice", due)
				}
				seen[due.Unix()] = true
				lates = append(lates, r.StartedAt.Sub(due))
			}
			if len(lates) < b.N {
				b.Fatalf("%d runs ended, want %d", len(lates), b.N)
			}
			slices.Sort(lates)
			pct := func(p int) time.Duration { return lates[min(len(lates)-1, len(lates)*p/100)] }
			b.ReportMetric(float64(pct(50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lates[len(lates)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(len(seen)), "runs")
			b.Logf("%d runs: p50 %s, p99 %s, max %s; skipped due times: %d", len(lates), pct(50).Round(time.Millisecond), pct(99).Round(time.Millisecond),
				lates[len(lates)-1].Round(time.Millisecond), skipped(rs))
		})
	}
}

func ended(rs []*usersync.Run) int {
	n := 0
	for _, r := range rs {
		if r.Outcome != usersync.RunRunning {
			n++
		}
	}
	return n
}

// skipped counts the due times between the first and the last run that
// have no run: a run that outlasts its second makes the next due time
// wait (unique jobs), which this reports rather than hides.
func skipped(rs []*usersync.Run) int {
	if len(rs) < 2 {
		return 0
	}
	first, last := rs[len(rs)-1].StartedAt.Truncate(time.Second), rs[0].StartedAt.Truncate(time.Second)
	return int(last.Sub(first)/time.Second) + 1 - len(rs)
}
