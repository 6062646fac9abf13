// Package benchtest holds what the benchmarks share.
package benchtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
)

// PeakHeap samples the heap every 5 ms while fn runs and returns its peak
// above the heap before (what shares the process — an emulator — counts too).
func PeakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	fn()
	close(done)
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// Dir opens an empty SQLite directory for a benchmark, closed at its end.
func Dir(b *testing.B) *sqlstore.DB {
	d, err := sqlstore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// Users adds n users user000000@example.com, … (source "bench") to d in
// one batch: the directory the API and console benchmarks page through.
func Users(b *testing.B, d usersync.Directory, n int) {
	batch := &usersync.Batch{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("user%06d@example.com", i)
		batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Email: name, FirstName: "First", LastName: fmt.Sprint("Last", i), Enabled: true, Source: "bench", SourceID: name}})
	}
	if _, err := d.ApplyBatch(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
}

// MaxRSS is the process's peak resident set size (VmHWM), in bytes; 0 where
// /proc does not tell.
func MaxRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// CPUTime is the CPU time (user and system) the process has used so far:
// on a shared machine, a steadier measure of work than the wall clock.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
