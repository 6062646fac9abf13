package provision

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
)

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

// One run at a time, across backends: a second Hold waits for the first
// and then runs; a Hold inside a Hold of the same name just runs; one that
// cannot wait long enough is refused with the holder's name, and its fn
// never runs.
func TestHold(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		ctx := context.Background()
		var inside, most atomic.Int32
		run := func(ctx context.Context) error {
			n := inside.Add(1)
			defer inside.Add(-1)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(50 * time.Millisecond)
			return Hold(ctx, d, "p", 0, func(context.Context) error { return nil }) // nested: runs at once
		}
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			go func() { errs <- Hold(ctx, d, "p", 5*time.Second, run) }()
		}
		for i := 0; i < 4; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if most.Load() != 1 {
			t.Fatalf("%d runs at once", most.Load())
		}
		if ok, err := d.TryLease(ctx, LeaseName("p"), "usersync serve on other, pid 9", time.Minute); !ok || err != nil {
			t.Fatalf("the lease was not released: %v %v", ok, err)
		}
		ran := false
		err := Hold(ctx, d, "p", 100*time.Millisecond, func(context.Context) error { ran = true; return nil })
		if ran || usersync.ErrorCode(err) != usersync.ECONFLICT || !strings.Contains(err.Error(), "usersync serve on other, pid 9") {
			t.Fatalf("refused: ran %v, %v", ran, err)
		}
		if err := Hold(ctx, d, "q", 0, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("another provisioner's lease: %v", err)
		}
	})
}

// A holder that names a process of this machine that has ended (a run
// killed with SIGKILL keeps its lease until it expires) is taken over at
// once; one that names a live process, or another machine, is not.
func TestHoldTakesOverFromDeadProcess(t *testing.T) {
	d := dirtest.SQLite(t)
	ctx := context.Background()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dead := fmt.Sprintf("usersync provisioners run on %s, pid %d (abc), run 1", host, cmd.Process.Pid)
	if ok, err := d.TryLease(ctx, LeaseName("p"), dead, time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	start := time.Now()
	if err := Hold(ctx, d, "p", 30*time.Second, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("a dead process's lease: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a dead process's lease was waited out (%s), not taken over at once", took)
	}
	for _, alive := range []string{
		fmt.Sprintf("usersync serve on %s, pid %d (abc), run 1", host, os.Getppid()),
		fmt.Sprintf("usersync serve on other-%s, pid %d (abc), run 1", host, cmd.Process.Pid),
	} {
		if ok, err := d.TryLease(ctx, LeaseName("q"), alive, time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := Hold(ctx, d, "q", 0, func(context.Context) error { return nil }); usersync.ErrorCode(err) != usersync.ECONFLICT {
			t.Fatalf("%s: %v", alive, err)
		}
		d.ReleaseLease(ctx, LeaseName("q"), alive)
	}
}
