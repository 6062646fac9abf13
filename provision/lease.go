// Package provision is the engine shared by every outbound provisioner,
// whatever its target: one run at a time per provisioner (the lease), and
// what a provisioner keeps of each object it writes (links). Targets
// (target/entra) adapt it to their wire protocols; the rest of the engine
// (plans, approvals, guards, quarantine, the provisioning log) moves here
// from target/entra as a second target needs it.
package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usersync/usersync"
)

// LeaseTTL bounds how long a process that died keeps a provisioner from
// the others; a run renews its lease every third of it.
const LeaseTTL = time.Minute

// DefaultWait is how long a run started by hand (the command line, the
// API, the console) waits for a run that holds the lease to end.
const DefaultWait = 30 * time.Second

// ErrLeaseLost ends a run whose lease another process took (this one
// stalled for longer than LeaseTTL): it stops rather than run beside it.
var ErrLeaseLost = errors.New("lost the provisioner's lease to another process")

type heldKey struct{ name string }

var holds atomic.Int64

var host, _ = os.Hostname()

var process = func() string {
	b := make([]byte, 3)
	rand.Read(b)
	what := filepath.Base(os.Args[0])
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-") || len(what) > 40 {
			break
		}
		what += " " + a
	}
	return fmt.Sprintf("%s on %s, pid %d (%s)", what, host, os.Getpid(), hex.EncodeToString(b))
}()

// Holder names this process in leases, so that a run refused for another
// can say which process that is.
func Holder() string { return process }

// LeaseName is the lease of provisioner name.
func LeaseName(name string) string { return usersync.ProvisionerCursor(name) }

// Held reports whether ctx runs under provisioner name's lease.
func Held(ctx context.Context, name string) bool { return ctx.Value(heldKey{name}) != nil }

// Hold runs fn holding provisioner name's lease, so that no other run of
// it — another command, the API, a replica of serve — writes at the same
// time. When another process holds it, Hold waits up to wait for it to end
// (0: tries once), then refuses with ECONFLICT naming the holder. The lease
// is renewed while fn runs; fn's context ends with ErrLeaseLost if it is
// lost. Inside a Hold of the same name (ctx says so), fn just runs.
func Hold(ctx context.Context, dir usersync.LeaseService, name string, wait time.Duration, fn func(ctx context.Context) error) error {
	if Held(ctx, name) {
		return fn(ctx)
	}
	// Each hold is a holder of its own: two runs in one process (the
	// console and serve's worker) exclude each other too.
	lease, holder := LeaseName(name), fmt.Sprintf("%s, run %d", Holder(), holds.Add(1))
	deadline := time.Now().Add(wait)
	for {
		got, err := dir.TryLease(ctx, lease, holder, LeaseTTL)
		if err != nil {
			return err
		}
		if got {
			break
		}
		who, until, err := dir.LeaseHolder(ctx, lease)
		if err != nil {
			return err
		}
		switch {
		case who == "":
			continue // released just now: take it
		case deadHere(who):
			// Its process on this machine is gone (killed): a rerun of the
			// same command goes on at once rather than wait out the lease.
			// Only that holder's lease is released.
			if err := dir.ReleaseLease(ctx, lease, who); err != nil {
				return err
			}
			continue
		case !time.Now().Before(deadline):
			waited := ""
			if wait > 0 {
				waited = fmt.Sprintf(" (waited %s)", wait.Round(time.Second))
			}
			return usersync.Errorf(usersync.ECONFLICT, "provisioner %s is being run by %s%s; its lease ends by %s unless renewed. Try again when that run ends",
				name, who, waited, until.Local().Format(time.TimeOnly))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(200*time.Millisecond, time.Until(deadline)+time.Millisecond)):
		}
	}
	rctx, cancel := context.WithCancelCause(context.WithValue(ctx, heldKey{name}, holder))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if got, err := dir.TryLease(rctx, lease, holder, LeaseTTL); err == nil && !got {
					cancel(ErrLeaseLost)
					return
				}
			}
		}
	}()
	err := fn(rctx)
	lost := errors.Is(context.Cause(rctx), ErrLeaseLost)
	cancel(nil)
	<-done
	if !lost {
		dir.ReleaseLease(context.WithoutCancel(ctx), lease, holder)
	}
	if lost && (err == nil || errors.Is(err, context.Canceled)) {
		return usersync.Errorf(usersync.ECONFLICT, "provisioner %s: %v; the run stopped where it was and the next run goes on from there", name, ErrLeaseLost)
	}
	return err
}

// deadHere reports a holder that names a process on this machine that no
// longer runs.
func deadHere(holder string) bool {
	var pid int
	rest, ok := strings.CutPrefix(holder[strings.LastIndex(holder, " on ")+1:], "on "+host+", pid ")
	if strings.LastIndex(holder, " on ") < 0 || !ok {
		return false
	}
	if _, err := fmt.Sscanf(rest, "%d", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	err = p.Signal(syscall.Signal(0))
	return errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH)
}
