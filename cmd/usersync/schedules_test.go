package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// Schedules from the command line: bad input is refused with a reason and
// stores nothing; a schedule runs on demand and the run is recorded.
func TestSchedulesCLI(t *testing.T) {
	_, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	pull := append(append([]string{}, base...), "--auto-create", "all", "Group 2")
	create := func(name, cron string, command ...string) result {
		return cli(t, db, "", append([]string{"schedules", "create", name, "--cron", cron, "--"}, command...)...)
	}
	fails(t, create("sales", "*/40 * * * *", pull...), 1, "set O365_USERSYNC_CLIENT_SECRET")
	ok(t, cli(t, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	for _, bad := range []struct {
		name, cron string
		command    []string
		says       string
	}{
		{"sales", "61 * * * *", pull, "above maximum"},
		{"sales", "* * *", pull, "five"},
		{"sales", "0 0 0 L * ?", pull, "not supported"},
		{"sales", "*/40 * * * *", append(append([]string{}, pull...), "--client-secret", "x"), "must not hold a secret"},
		{"sales", "*/40 * * * *", []string{"users", "list"}, "a schedule runs a pull"},
		{"sales", "*/40 * * * *", append(append([]string{}, base...), "--bogus", "G"), "unknown flag: --bogus"},
		{"bad name", "*/40 * * * *", pull, "letters, digits"},
	} {
		fails(t, create(bad.name, bad.cron, bad.command...), exitFor(bad.says), bad.says)
	}
	fails(t, cli(t, db, "", "schedules", "create", "sales", "--cron", "* * * * *", "--time-zone", "Mars/Olympus", "--", "o365", "provision", "G"), 2, "IANA")
	if r := ok(t, cli(t, db, "", "-o", "json", "schedules", "list")); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("a refused schedule was stored: %s", r.stdout)
	}

	ok(t, cli(t, db, "", append([]string{"schedules", "create", "sales", "--cron", "*/40 * * * *", "--time-zone", "Europe/Paris", "--"}, pull...)...))
	fails(t, create("sales", "* * * * *", pull...), 1, "exists already")
	r := ok(t, cli(t, db, "", "-o", "json", "schedules", "run", "sales"))
	var run usersync.Run
	if err := json.Unmarshal([]byte(r.stdout), &run); err != nil || run.Outcome != usersync.RunSucceeded || run.Trigger != "cli" || run.EndedAt == nil ||
		!strings.Contains(run.Output, `"usersCreated": 75`) {
		t.Fatalf("schedules run: %s %v", r.stdout, err)
	}
	if strings.Contains(r.stdout+r.stderr, emuSecret) {
		t.Fatal("the secret reached the output")
	}
	ok(t, cli(t, db, "", "schedules", "pause", "sales"))
	if r := ok(t, cli(t, db, "", "schedules", "list")); !strings.Contains(r.stdout, "paused") {
		t.Fatalf("list after pause: %s", r.stdout)
	}
	ok(t, cli(t, db, "", "schedules", "update", "sales", "--cron", "0 0/5 * * * ?"))
	if r := ok(t, cli(t, db, "", "schedules", "show", "sales")); !strings.Contains(r.stdout, "0 0/5 * * * ?") || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("show: %s", r.stdout)
	}
	// A failing run is recorded as failed, with its reason.
	ok(t, cli(t, db, "", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "wrong"))
	fails(t, cli(t, db, "", "schedules", "run", "sales"), 1, "schedule sales failed")
	if r := ok(t, cli(t, db, "", "runs", "list", "--schedule", "sales")); !strings.Contains(r.stdout, "failed") {
		t.Fatalf("runs list: %s", r.stdout)
	}
	ok(t, cli(t, db, "", "schedules", "delete", "sales"))
	if r := ok(t, cli(t, db, "", "-o", "json", "runs", "list")); strings.Count(r.stdout, `"schedule": "sales"`) != 2 {
		t.Fatalf("runs stay on record: %s", r.stdout)
	}
}

// exitFor is the exit status a schedules create refusal gives: 2 for
// usage (flags, cron, command line), 1 for the rest.
func exitFor(says string) int {
	if says == "letters, digits" {
		return 1
	}
	return 2
}

// child starts `usersync ARGS` as a real process (this test binary,
// re-executed: see TestMain).
func child(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "USERSYNC_CLI_CHILD="+strings.Join(args, "\x1f"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// Two replicas of usersync serve on one PostgreSQL database share a
// schedule that is due every other second: each due time runs once, never
// two at once. Then the replica running a slow pull is killed (SIGKILL): the other
// runs the schedule again within the rescue delay plus River's rescuer
// interval, and the abandoned run is recorded as such.
func TestScheduleReplicas(t *testing.T) {
	db := pgtest.NewDatabase(t)
	t.Setenv(sqlstore.KeyEnv, pgtest.SecretKey) // the children inherit it
	tenant := graphemu.Generate(12, 200, 2)
	var slow atomicDuration
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(slow.get())
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ok(t, cli(t, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	ok(t, cli(t, db, "", "schedules", "create", "every-second", "--cron", "*/2 * * * * ?", "--", "o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1",
		"--authority-url", srv.URL, "--graph-url", srv.URL, "--auto-create", "all", "All Users"))
	serve := func() *exec.Cmd {
		return child(t, "--db", db, "serve", "--listen", "127.0.0.1:0", "--no-provisioners", "--job-timeout", "4s", "--rescue-after", "5s")
	}
	a, b := serve(), serve()
	d, err := sqlstore.OpenWith(context.Background(), db, sqlstore.Options{SecretKey: pgtest.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	runs := func() []*usersync.Run {
		rs, err := d.ListRuns(ctx, "every-second", 0)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	deadline := time.Now().Add(40 * time.Second)
	for len(runs()) < 10 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	rs := runs()
	if len(rs) < 10 {
		t.Fatalf("%d runs in 40 s of a schedule due every other second", len(rs))
	}
	t.Logf("two replicas: %s", startLatencies(t, rs, 2*time.Second))
	for i, r := range rs {
		if r.Outcome != usersync.RunSucceeded && r.Outcome != usersync.RunRunning {
			t.Fatalf("run %d: %s %s", r.ID, r.Outcome, r.Error)
		}
		if i+1 < len(rs) && rs[i+1].EndedAt != nil && rs[i+1].EndedAt.After(r.StartedAt) {
			t.Fatalf("run %d started before run %d ended: two at once", r.ID, rs[i+1].ID)
		}
	}

	// Slow the pull, so that a run is in progress when its replica dies.
	slow.set(400 * time.Millisecond)
	slowedAt := time.Now()
	var victim *usersync.Run
	for victim == nil && time.Now().Before(deadline.Add(30*time.Second)) {
		for _, r := range runs() {
			// One that began slowed: a run already under way may end at once.
			if r.Outcome == usersync.RunRunning && r.StartedAt.After(slowedAt) {
				victim = r
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if victim == nil {
		t.Fatal("no run in progress to interrupt")
	}
	var killed *exec.Cmd
	for _, c := range []*exec.Cmd{a, b} {
		if strings.HasSuffix(victim.StartedBy, fmt.Sprintf(":%d", c.Process.Pid)) {
			killed = c
		}
	}
	if killed == nil {
		t.Fatalf("run %d was started by %s, neither replica", victim.ID, victim.StartedBy)
	}
	killedAt := time.Now()
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	slow.set(0) // only now: the run must still be going when its replica dies
	if r, _ := d.FindRun(ctx, victim.ID); r.Outcome != usersync.RunRunning {
		t.Fatalf("run %d ended (%s) before its replica was killed; the pull was not slow enough", r.ID, r.Outcome)
	}
	var failover time.Duration
	for time.Since(killedAt) < 90*time.Second {
		for _, r := range runs() {
			if r.ID > victim.ID && r.StartedAt.After(killedAt) && r.Outcome == usersync.RunSucceeded {
				failover = r.StartedAt.Sub(killedAt)
			}
		}
		if failover > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if failover == 0 {
		t.Fatal("the schedule did not run again within 90 s of its replica's death")
	}
	t.Logf("failover after SIGKILL: %s (the rescue delay is 5 s; River's rescuer looks every 30 s)", failover.Round(100*time.Millisecond))
	// The bound: the rescue delay, River's rescuer interval (30 s), and a
	// new leader's election when the killed replica led.
	if failover > 60*time.Second {
		t.Fatalf("failover took %s, more than the rescue delay, the rescuer's interval and a leader election", failover)
	}
	// The rescued job's next attempt records the killed run as abandoned.
	deadline = time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		r, err := d.FindRun(ctx, victim.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome == usersync.RunFailed && strings.Contains(r.Error, "abandoned") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r, _ := d.FindRun(ctx, victim.ID)
	t.Fatalf("the killed run is recorded as %s %q", r.Outcome, r.Error)
}

type atomicDuration struct{ v atomic.Int64 }

func (a *atomicDuration) get() time.Duration  { return time.Duration(a.v.Load()) }
func (a *atomicDuration) set(d time.Duration) { a.v.Store(int64(d)) }

// One replica on SQLite runs a schedule due every other second, each due
// time once.
func TestScheduleServeSQLite(t *testing.T) {
	_, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	ok(t, cli(t, db, "", append([]string{"schedules", "create", "tick", "--cron", "*/2 * * * * ?", "--"}, append(append([]string{}, base...), "--auto-create", "all", "Group 3")...)...))
	child(t, "--db", db, "serve", "--listen", "127.0.0.1:0", "--no-provisioners")
	d, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var rs []*usersync.Run
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if rs, err = d.ListRuns(context.Background(), "tick", 0); err != nil {
			t.Fatal(err)
		}
		if len(rs) >= 10 {
			break
		}
	}
	if len(rs) < 10 {
		t.Fatalf("%d runs in 30 s of a schedule due every other second", len(rs))
	}
	for _, r := range rs {
		if r.Trigger != "schedule" {
			t.Fatalf("run %d has trigger %s", r.ID, r.Trigger)
		}
	}
	t.Logf("one replica: %s", startLatencies(t, rs, 2*time.Second))
}

// startLatencies checks that each due time of a schedule due every period
// ran once (a run belongs to the due time before it: it started within the
// period), and says how late the runs started: the median and the largest.
// The figures go to BENCHMARKS.md; they are reported, not asserted, since a
// loaded machine may delay a run.
func startLatencies(t *testing.T, rs []*usersync.Run, period time.Duration) string {
	t.Helper()
	seen := map[int64]bool{}
	var lates []time.Duration
	for _, r := range rs {
		due := r.StartedAt.Truncate(period)
		late := r.StartedAt.Sub(due)
		if late >= period*9/10 || seen[due.Unix()] {
			t.Fatalf("run %d started %s, %s after its due time %s (or a second run of it); runs %+v", r.ID, r.StartedAt, late, due, rs)
		}
		seen[due.Unix()] = true
		lates = append(lates, late)
	}
	slices.Sort(lates)
	return fmt.Sprintf("%d runs started %s (median) to %s (largest) after their due times", len(lates), lates[len(lates)/2].Round(time.Millisecond), lates[len(lates)-1].Round(time.Millisecond))
}

// A scheduled pull that would remove more than the guard allows is
// quarantined: the removals wait, the run says so, and an administrator
// allows them (the command runs again with --allow-removals) or rejects
// them (nothing is removed).
func TestScheduleQuarantine(t *testing.T) {
	emu, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	ok(t, cli(t, db, "", append([]string{"schedules", "create", "g2", "--cron", "*/40 * * * *", "--"}, append(append([]string{}, base...), "--auto-create", "all", "Group 2")...)...))
	ok(t, cli(t, db, "", "schedules", "run", "g2"))
	members := func() int {
		var out struct{ Total int }
		json.Unmarshal([]byte(ok(t, cli(t, db, "", "-o", "json", "groups", "members", "list", "Group 2")).stdout), &out)
		return out.Total
	}
	if n := members(); n != 75 {
		t.Fatalf("Group 2 has %d members after the first run", n)
	}
	g := emu.Tenant().GroupsNamed("Group 2")[0]
	emu.Tenant().SetMembers(g.ID, g.Members[:45]) // 30 of 75 leave: more than 20 %
	lastRun := func() usersync.Run {
		var rs []usersync.Run
		json.Unmarshal([]byte(ok(t, cli(t, db, "", "-o", "json", "runs", "list", "--limit", "1")).stdout), &rs)
		return rs[0]
	}
	for _, decision := range []string{"reject", "allow-removals"} {
		fails(t, cli(t, db, "", "schedules", "run", "g2"), 1, "removals held")
		held := lastRun()
		if held.Outcome != usersync.RunQuarantined || !strings.Contains(held.Error, `would lose 30 of its 75 members`) || !strings.Contains(held.Error, fmt.Sprintf("runs allow-removals %d", held.ID)) {
			t.Fatalf("quarantined run: %+v", held)
		}
		if n := members(); n != 75 {
			t.Fatalf("a quarantined run removed members: %d left", n)
		}
		ok(t, cli(t, db, "", "runs", decision, fmt.Sprint(held.ID)))
		var after usersync.Run
		json.Unmarshal([]byte(ok(t, cli(t, db, "", "-o", "json", "runs", "show", fmt.Sprint(held.ID))).stdout), &after)
		want, left := usersync.RunRemovalsRejected, 75
		if decision == "allow-removals" {
			want, left = usersync.RunRemovalsAllowed, 45
		}
		if after.Outcome != want || members() != left {
			t.Fatalf("after %s: run %s, %d members; want %s and %d", decision, after.Outcome, members(), want, left)
		}
		fails(t, cli(t, db, "", "runs", decision, fmt.Sprint(held.ID)), 1, "not quarantined")
	}
	if r := lastRun(); r.Trigger != "allow-removals" || r.Outcome != usersync.RunSucceeded {
		t.Fatalf("the run that applied the removals: %+v", r)
	}
}

// A scheduled pull that leaves unresolved users (exit status 3) is
// recorded as failed with what is left, not as succeeded, and is not
// retried by the job (jobs.Unresolved): every try would end the same.
func TestScheduleUnresolvedRecorded(t *testing.T) {
	emu, base := emulator(t)
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, emuSecret+"\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	ok(t, cli(t, db, "", append([]string{"schedules", "create", "g3", "--cron", "*/40 * * * *", "--"}, append(append([]string{}, base...), "--auto-create", "all", "--full-read", "Group 3")...)...))
	ok(t, cli(t, db, "", "schedules", "run", "g3"))
	tenant := emu.Tenant()
	g := tenant.GroupsNamed("Group 3")[0]
	old, _ := tenant.User(g.Members[0])
	tenant.DeleteUser(old.ID)
	fresh := old
	fresh.ID = "00000000-0000-4000-8000-00000000cafe"
	tenant.AddUser(fresh)
	tenant.SetMembers(g.ID, append(tenant.GroupsNamed("Group 3")[0].Members, fresh.ID))
	cli(t, db, "", "schedules", "run", "g3")
	var rs []usersync.Run
	json.Unmarshal([]byte(ok(t, cli(t, db, "", "-o", "json", "runs", "list", "--limit", "1")).stdout), &rs)
	if len(rs) != 1 || rs[0].Outcome != usersync.RunFailed || !strings.Contains(rs[0].Error, "could not be synced") || !strings.Contains(rs[0].Output, old.UserPrincipalName) {
		t.Fatalf("the run that left an unresolved user: %+v", rs)
	}
}
