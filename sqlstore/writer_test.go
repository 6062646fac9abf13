package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
)

// TestCombinedWrites runs many writes at once so that they share
// transactions, some of which fail: a taken username, and a write that
// inserts a user and then fails. Each failure must be rolled back alone,
// every other write must commit, and the change log must hold exactly the
// committed writes' events.
func TestCombinedWrites(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := openDB(t, dsn(t))
			var commits atomic.Int64
			d.hookBeforeCommit = func() {
				commits.Add(1)
				time.Sleep(2 * time.Millisecond) // let writes pile up behind a commit
			}
			ctx := context.Background()
			if err := d.CreateUser(ctx, &usersync.User{Username: "taken"}); err != nil {
				t.Fatal(err)
			}
			start, _ := d.LastChangeSeq(ctx)
			commits.Store(0)

			const writers = 200
			errBoom := errors.New("boom")
			results := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					switch i % 10 {
					case 3: // a username that exists: ECONFLICT
						results[i] = d.CreateUser(ctx, &usersync.User{Username: "TAKEN"})
					case 7: // writes, then fails: nothing of it may stay
						results[i] = d.update(ctx, func(t *tx) error {
							if err := t.createUsers([]*usersync.User{{Username: fmt.Sprintf("ghost%d", i)}}); err != nil {
								return err
							}
							return errBoom
						})
					default:
						results[i] = d.CreateUser(ctx, &usersync.User{Username: fmt.Sprintf("u%d", i)})
					}
				}()
			}
			wg.Wait()

			for i, err := range results {
				switch i % 10 {
				case 3:
					if usersync.ErrorCode(err) != usersync.ECONFLICT {
						t.Errorf("write %d: got %v, want ECONFLICT", i, err)
					}
				case 7:
					if !errors.Is(err, errBoom) {
						t.Errorf("write %d: got %v, want its own error", i, err)
					}
					if _, err := d.FindUserByUsername(ctx, fmt.Sprintf("ghost%d", i)); usersync.ErrorCode(err) != usersync.ENOTFOUND {
						t.Errorf("ghost%d of a failed write is stored (%v)", i, err)
					}
				default:
					if err != nil {
						t.Errorf("write %d: %v", i, err)
					} else if _, err := d.FindUserByUsername(ctx, fmt.Sprintf("u%d", i)); err != nil {
						t.Errorf("u%d: %v", i, err)
					}
				}
			}
			const good = writers * 8 / 10
			_, total, err := d.FindUsers(ctx, usersync.UserFilter{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want := good + 1; total != want { // + taken
				t.Errorf("%d users stored, want %d", total, want)
			}
			cs, err := d.ChangesAfter(ctx, start, 10*writers)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != good {
				t.Fatalf("%d change events, want %d", len(cs), good)
			}
			for i, c := range cs {
				if c.Seq != start+int64(i)+1 || c.Kind != usersync.UserCreated {
					t.Fatalf("event %d is %d %s, want %d user.created", i, c.Seq, c.Kind, start+int64(i)+1)
				}
			}
			if n := commits.Load(); n >= good {
				t.Errorf("%d commits for %d successful writes: nothing was combined", n, good)
			}
			t.Logf("%d writes in %d transactions", good, commits.Load())
		})
	}
}

// TestCombinedWriteCallerGone: a caller whose context ends while its write
// waits gets an error, and its write is not applied.
func TestCombinedWriteCallerGone(t *testing.T) {
	d := openDB(t, backends()["sqlite"](t))
	ctx := context.Background()
	hold, held := make(chan struct{}), make(chan struct{})
	go d.update(ctx, func(*tx) error { close(held); <-hold; return nil })
	<-held
	gone, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- d.CreateUser(gone, &usersync.User{Username: "late"}) }()
	waitPending(t, d, 1) // the write is queued behind the held lane
	cancel()
	close(hold)
	if err := <-errc; usersync.ErrorCode(err) != usersync.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE for a caller that went away", err)
	}
	if _, err := d.FindUserByUsername(ctx, "late"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("the abandoned write was applied (%v)", err)
	}
}

// TestCacheAcrossReplicas: a token revoked, or a setting changed, through
// one handle on the database is seen by another (a replica) within
// cacheTTL, and at once by the handle that made the change.
func TestCacheAcrossReplicas(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			where := dsn(t)
			a, b := openDB(t, where), openDB(t, where)
			ctx := context.Background()
			u := &usersync.User{Username: "scim", Type: usersync.UserAdministrator, Enabled: true}
			if err := a.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			clear, tok, err := a.CreateToken(ctx, u.ID, "entra")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Authenticate(ctx, clear); err != nil {
				t.Fatal(err)
			}
			if err := a.RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Authenticate(ctx, clear); usersync.ErrorCode(err) != usersync.EUNAUTHORIZED {
				t.Fatalf("the revoking handle: %v, want EUNAUTHORIZED", err)
			}
			// Settings likewise.
			if s, _ := b.Setting(ctx, "SCIM_SOFT_DELETE_PREFIX"); s.Value != "deleted_" {
				t.Fatalf("default prefix %q", s.Value)
			}
			if _, err := a.SetSetting(ctx, "SCIM_SOFT_DELETE_PREFIX", "gone_"); err != nil {
				t.Fatal(err)
			}
			if s, _ := a.Setting(ctx, "SCIM_SOFT_DELETE_PREFIX"); s.Value != "gone_" {
				t.Fatalf("the writing handle reads %q", s.Value)
			}
			time.Sleep(cacheTTL)
			if _, err := b.Authenticate(ctx, clear); usersync.ErrorCode(err) != usersync.EUNAUTHORIZED {
				t.Fatalf("the replica after %v: %v, want EUNAUTHORIZED", cacheTTL, err)
			}
			if s, _ := b.Setting(ctx, "SCIM_SOFT_DELETE_PREFIX"); s.Value != "gone_" {
				t.Fatalf("the replica after %v reads %q", cacheTTL, s.Value)
			}
		})
	}
}

// TestCombinedWritePanics: a write that panics fails alone; the writes it
// shared a transaction with commit, and later writes still run.
func TestCombinedWritePanics(t *testing.T) {
	d := openDB(t, backends()["sqlite"](t))
	ctx := context.Background()
	hold, held := make(chan struct{}), make(chan struct{})
	go d.update(ctx, func(*tx) error { close(held); <-hold; return nil })
	<-held
	errs := make(chan error, 3)
	go func() { errs <- d.CreateUser(ctx, &usersync.User{Username: "before"}) }()
	go func() { errs <- d.update(ctx, func(*tx) error { panic("a bug") }) }()
	go func() { errs <- d.CreateUser(ctx, &usersync.User{Username: "after"}) }()
	waitPending(t, d, 3) // all three queue behind the held lane, to share a batch
	close(hold)
	var panicked int
	for range 3 {
		if err := <-errs; err != nil {
			if !strings.Contains(err.Error(), "panic: a bug") {
				t.Fatalf("unexpected error: %v", err)
			}
			panicked++
		}
	}
	if panicked != 1 {
		t.Fatalf("%d writes failed, want the one that panicked", panicked)
	}
	for _, name := range []string{"before", "after"} {
		if _, err := d.FindUserByUsername(ctx, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := d.CreateUser(ctx, &usersync.User{Username: "later"}); err != nil {
		t.Fatalf("a write after the panic: %v", err)
	}
}

// TestInsertRowMakerPanics: a bulk insert's rows after the first statement
// are made on another goroutine; a panic there fails the write like a
// panic of the write itself, with none of its rows kept, and the process
// goes on.
func TestInsertRowMakerPanics(t *testing.T) {
	d := openDB(t, backends()["sqlite"](t))
	ctx := context.Background()
	g := &usersync.Group{Name: "g"}
	if err := d.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	err := d.update(ctx, func(t *tx) error {
		return t.insertRows("memberships (group_id, member_type, member_id, created_at, via)", 5, 2000, "", func(i int, args []any) []any {
			if i == 1700 { // in the fourth statement: made beside the third
				panic("a bug in a row")
			}
			return append(args, g.ID, usersync.ObjectUser, int64(i+1), t.now, "")
		}, nil)
	})
	if err == nil || !strings.Contains(err.Error(), "panic: a bug in a row") {
		t.Fatalf("error %v, want the row's panic", err)
	}
	if n, err := d.CountMembers(ctx, g.ID); err != nil || n != 0 {
		t.Fatalf("%d members kept (%v), want none", n, err)
	}
	if err := d.CreateUser(ctx, &usersync.User{Username: "later"}); err != nil {
		t.Fatalf("a write after the panic: %v", err)
	}
}

// TestDeadlockRetried: writes that deadlock with a writer of another
// process (another handle on the same PostgreSQL) run again. When the
// loser is a write of a combined transaction, it is rolled back to its
// savepoint, its batch commits, and it runs again alone; when it is a
// write alone, it runs again. Every write succeeds.
func TestDeadlockRetried(t *testing.T) {
	for _, loser := range []string{"combined", "alone"} {
		t.Run(loser, func(t *testing.T) { testDeadlockRetried(t, loser) })
	}
}

func testDeadlockRetried(t *testing.T, loser string) {
	// PostgreSQL aborts the transaction whose deadlock_timeout ends first;
	// the other side waits long.
	patient := `SET LOCAL deadlock_timeout = '10s'`
	where := backends()["postgres"](t)
	a, b := openDB(t, where), openDB(t, where)
	ctx := context.Background()
	x, y := &usersync.User{Username: "x"}, &usersync.User{Username: "y"}
	for _, u := range []*usersync.User{x, y} {
		if err := a.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	hold, held := make(chan struct{}), make(chan struct{})
	go a.update(ctx, func(*tx) error { close(held); <-hold; return nil })
	<-held

	name := "w1"
	errs := make(chan error, 3)
	go func() { _, err := a.UpdateUser(ctx, x.ID, usersync.UserUpdate{FirstName: &name}, 0); errs <- err }()
	waitPending(t, a, 1) // w1 first in the queue
	started, lockedY := make(chan struct{}), make(chan struct{})
	var triesA, triesB atomic.Int32
	go func() {
		errs <- a.update(ctx, func(t *tx) error { // w2: locks y after b has
			if triesA.Add(1) == 1 {
				if loser == "alone" {
					if _, err := t.exec(patient); err != nil {
						return err
					}
				}
				close(started)
				<-lockedY
				time.Sleep(200 * time.Millisecond) // b now waits for x, which w1 holds
			}
			old, err := t.lockUser(y.ID)
			if err != nil {
				return err
			}
			next := *old
			next.LastName = "w2"
			return t.saveUser(old, &next)
		})
	}()
	waitPending(t, a, 2) // w1 and w2 will share a batch
	close(hold)
	<-started
	go func() {
		errs <- b.update(ctx, func(t *tx) error {
			first := triesB.Add(1) == 1
			if loser == "combined" {
				if _, err := t.exec(patient); err != nil {
					return err
				}
			}
			if _, err := t.lockUser(y.ID); err != nil {
				return err
			}
			if first {
				close(lockedY)
			}
			_, err := t.lockUser(x.ID)
			return err
		})
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("a write failed: %v", err)
		}
	}
	// The loser runs again (more than once when, on a busy machine, its
	// retry takes y before the winner does and deadlocks anew); the winner
	// runs once.
	a1, b1 := triesA.Load(), triesB.Load()
	if loser == "combined" && (a1 < 2 || b1 != 1) || loser == "alone" && (a1 != 1 || b1 < 2) {
		t.Fatalf("w2 and b ran %d and %d times; the %s side should have run again and the other once", a1, b1, loser)
	}
	gx, _ := a.FindUserByID(ctx, x.ID)
	gy, _ := a.FindUserByID(ctx, y.ID)
	if gx.FirstName != "w1" || gy.LastName != "w2" {
		t.Fatalf("x %q, y %q: a write is lost", gx.FirstName, gy.LastName)
	}
}

// waitPending waits until n writes queue for d's writing lane.
func waitPending(t *testing.T, d *DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		d.writer.mu.Lock()
		queued := len(d.writer.pending)
		d.writer.mu.Unlock()
		if queued >= n {
			return
		}
	}
	t.Fatalf("%d writes never queued", n)
}

// TestBatchRacesAnotherProcess: a user changed by another process between
// a batch's read and its write (PostgreSQL, where a pull and a SCIM server
// write side by side) makes the batch run again on the stored state; the
// other process's change to a field the batch does not own stays.
func TestBatchRacesAnotherProcess(t *testing.T) {
	where := backends()["postgres"](t)
	a, b := openDB(t, where), openDB(t, where)
	ctx := context.Background()
	u := &usersync.User{Username: "ada@contoso.com", FirstName: "Ada", LastName: "Lovelace", Source: "o365:t"}
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int32
	a.hookBatchRead = func() {
		if reads.Add(1) == 1 { // between the first read and its write
			dept := "Engines"
			if _, err := b.UpdateUser(ctx, u.ID, usersync.UserUpdate{Attributes: map[string]*string{"department": &dept}}, 0); err != nil {
				t.Error(err)
			}
		}
	}
	res, err := a.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{{
		User:   usersync.User{Username: "ada@contoso.com", FirstName: "Augusta", Source: "o365:t"},
		Update: usersync.FieldFirstName,
	}}})
	if err != nil || res.UsersUpdated != 1 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	if n := reads.Load(); n != 2 {
		t.Fatalf("the batch read %d times, want 2", n)
	}
	got, _ := a.FindUserByID(ctx, u.ID)
	if got.FirstName != "Augusta" || got.Attributes["department"] != "Engines" {
		t.Fatalf("first name %q, department %q: want the batch's and the other process's", got.FirstName, got.Attributes["department"])
	}
}
