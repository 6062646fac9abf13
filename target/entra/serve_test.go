package entra

import (
	"context"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/telemetry"
)

// serve runs Serve over dir until the test ends.
func (e *env) serve(t *testing.T, dir usersync.Directory, onRun func(string, *Result, error, time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, dir, ServeOptions{Poll: 20 * time.Millisecond, Reload: 50 * time.Millisecond, OnRun: onRun,
			NewClient: func(context.Context, *usersync.Provisioner) (*msgraph.Client, error) { return msgraph.New(e.cfg) }})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (e *env) remoteMembers(name string) []string {
	g, err := e.dir.FindGroupByName(ctx, name)
	if err != nil {
		return nil
	}
	r, ok := e.tenant.Group(g.Attributes[e.p.Config.RemoteIDAttribute])
	if !ok {
		return nil
	}
	return members(r)
}

// Serve follows the change log: a change reaches Entra without a run by
// hand. Two replicas over one directory never run a provisioner at the
// same time, and make each Entra group once.
func TestServeFollowsChanges(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{Latency: 2 * time.Millisecond}, nil)
		var running, overlaps, runs atomic.Int32
		var mu sync.Mutex
		set := telemetry.New()
		record := Metrics(set)
		onRun := func(name string, r *Result, err error, took time.Duration) { runs.Add(1); record(name, r, err, took) }
		// Each replica has its own connection pool on the same directory.
		for i := 0; i < 2; i++ {
			dir := dirtest.Reopen(t, e.dir)
			e.serve(t, &watched{Directory: dir, running: &running, overlaps: &overlaps, mu: &mu}, onRun)
		}
		e.mark("app")
		for _, name := range []string{"app:a", "app:b", "app:c"} {
			e.group(name, "alice")
		}
		waitFor(t, "three groups in Entra", func() bool { return len(e.remoteMembers("app:c")) == 1 && len(e.remoteMembers("app:a")) == 1 })
		e.addMembers("app:b", "bob", "carol")
		waitFor(t, "bob and carol in app:b", func() bool { return len(e.remoteMembers("app:b")) == 3 })
		e.removeMembers("app:b", "alice")
		waitFor(t, "alice out of app:b", func() bool { got := e.remoteMembers("app:b"); return len(got) == 2 && got[0] == "bob" })
		time.Sleep(100 * time.Millisecond) // let the last wake settle
		var names []string
		for _, g := range e.tenant.Groups() {
			names = append(names, g.DisplayName)
		}
		sort.Strings(names)
		if len(names) != 3 || names[0] != "app:a" || names[2] != "app:c" {
			t.Fatalf("Entra groups: %v", names)
		}
		if overlaps.Load() != 0 {
			t.Fatalf("%d runs overlapped another replica's", overlaps.Load())
		}
		if runs.Load() == 0 {
			t.Fatal("no run was reported")
		}
		out := httptest.NewRecorder()
		set.Handler().ServeHTTP(out, httptest.NewRequest("GET", "/metrics", nil))
		for _, want := range []string{`usersync_provisioner_actions_total{action="create-group",provisioner="o365"} 3`,
			`usersync_provisioner_actions_total{action="remove-member",provisioner="o365"} 1`, `usersync_provisioner_runs_total{provisioner="o365",result="ok"}`} {
			if !strings.Contains(out.Body.String(), want) {
				t.Fatalf("metrics lack %s:\n%s", want, out.Body.String())
			}
		}
	})
}

// watched counts runs (a run reads the provisioner's cursor first and
// writes it last) that overlap across replicas, through the lease calls.
type watched struct {
	usersync.Directory
	running, overlaps *atomic.Int32
	mu                *sync.Mutex
	held              bool
}

func (w *watched) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	got, err := w.Directory.TryLease(ctx, name, holder, ttl)
	w.mu.Lock()
	defer w.mu.Unlock()
	if got && !w.held {
		w.held = true
		if w.running.Add(1) > 1 {
			w.overlaps.Add(1)
		}
	}
	return got, err
}

func (w *watched) ReleaseLease(ctx context.Context, name, holder string) error {
	w.mu.Lock()
	if w.held {
		w.held = false
		w.running.Add(-1)
	}
	w.mu.Unlock()
	return w.Directory.ReleaseLease(ctx, name, holder)
}

// Item 4: serve runs a reconcile of its own (default daily, like Entra's
// periodic full cycle), so drift in the tenant — a member removed in Entra
// by hand — is repaired without anyone asking. The clock starts the first
// time serve sees the provisioner and is kept in the directory.
func TestServeReconcilesPeriodically(t *testing.T) {
	e := newEnv(t, dirtest.SQLite(t), graphemu.Options{}, func(c *usersync.ProvisionerConfig) { c.QuartzCron = "* * * * * ?" })
	e.mark("app")
	e.group("app:g", "alice", "bob")
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(sctx, e.dir, ServeOptions{Poll: 20 * time.Millisecond, Reload: 50 * time.Millisecond, ReconcileEvery: 1500 * time.Millisecond,
			NewClient: func(context.Context, *usersync.Provisioner) (*msgraph.Client, error) { return msgraph.New(e.cfg) }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the group in Entra", func() bool { return len(e.remoteMembers("app:g")) == 2 })
	g := e.remote("app:g")
	g.Members = []string{"id-bob"} // alice removed in Entra by hand: no directory change tells
	e.tenant.AddGroup(g)
	waitFor(t, "alice back by the periodic reconcile", func() bool { return len(e.remoteMembers("app:g")) == 2 })
	if last, _ := e.dir.Cursor(ctx, ReconcileMark("o365")); time.Since(time.Unix(last, 0)) > 5*time.Second {
		t.Fatalf("the last reconcile is not recorded: %d", last)
	}
}
