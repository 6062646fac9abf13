package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync"
)

// Concurrent writes are combined into one database transaction (group
// commit). Each commit writes every page it dirtied (users, their indexes,
// the change log, the change counter) to the WAL, and writers wait for the
// one before them: with 32 SCIM clients on SQLite, combining took creates
// from about 3,700/s to 5,100/s and their p99 from 33–68 ms to about 20 ms
// (BENCHMARKS.md). Whichever writer finds the lane free takes every write
// waiting at that moment and runs them in one transaction, each inside its
// own savepoint, so a write that fails is rolled back alone and the others
// commit. On PostgreSQL the change counter's row lock is taken once per
// batch instead of once per write.
//
// Each write still sees every write before it (they run one after another),
// and a write is reported done only after its batch has committed.

// maxCombined bounds the writes in one transaction, so that a batch's
// latency stays a few milliseconds.
const maxCombined = 64

// write is one call of update waiting for, or in, a batch.
type write struct {
	ctx  context.Context
	fn   func(*tx) error
	done chan error // buffered: the batch never waits for the caller
}

// writer queues writes and hands them out in batches, one batch at a time.
// SQLite has one writer per file anyway. On PostgreSQL two batches at a
// time measured no faster (they queue on the change counter at commit) and
// can deadlock on each other's row locks: a membership insert holds a key
// lock on its user that a PATCH of that user waits for.
type writer struct {
	lane    chan struct{} // held by the goroutine running a batch
	mu      sync.Mutex
	pending []*write
}

func newWriter() *writer {
	return &writer{lane: make(chan struct{}, 1)}
}

// take removes up to maxCombined waiting writes.
func (w *writer) take() []*write {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.pending), maxCombined)
	batch := w.pending[:n:n]
	w.pending = w.pending[n:]
	if len(w.pending) == 0 {
		w.pending = nil
	}
	return batch
}

// update runs fn in a write transaction, possibly together with other
// writes, and returns once that transaction has committed (nil) or fn's
// error. fn may run on another goroutine; it must only touch the tx and its
// own values.
func (d *DB) update(ctx context.Context, fn func(*tx) error) error {
	if err := ctx.Err(); err != nil {
		return d.wrapErr("write", err)
	}
	me := &write{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w := d.writer
	w.mu.Lock()
	w.pending = append(w.pending, me)
	w.mu.Unlock()
	for {
		select {
		case err := <-me.done:
			return d.wrapErr("write", err)
		case w.lane <- struct{}{}:
			batch := w.take()
			if len(batch) > 0 {
				d.runBatch(batch)
			}
			<-w.lane
			if len(batch) == 0 { // the batch before took mine
				return d.wrapErr("write", <-me.done)
			}
		}
	}
}

// run runs the write's function. A panic becomes its error: it would
// otherwise leave the other writes of its batch, and every later one,
// waiting for a lane that is never given back.
func (wr *write) run(t *tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write failed: panic: %v\n%s", p, debug.Stack())
		}
	}()
	return wr.fn(t)
}

// runBatch runs writes in one transaction and reports to each. A write
// that fails for a reason of its own (a taken name, a stale version) is
// rolled back to its savepoint; a write that lost a deadlock, and every
// write of a batch whose transaction failed as a whole, runs again alone.
func (d *DB) runBatch(batch []*write) {
	var alone []*write
	if len(batch) == 1 {
		batch[0].done <- d.runTx(batch[0], false)
		return
	}
	// The transaction outlives any one caller: a caller that goes away must
	// not roll back the others' writes (on SQLite an interrupted statement
	// rolls back the whole transaction), so statements run without the
	// callers' cancellation and a caller already gone is skipped.
	sqlTx, err := d.beginWrite()
	if err != nil {
		err = d.wrapErr("begin transaction", err)
		for _, wr := range batch {
			wr.done <- err
		}
		return
	}
	stmts := map[string]*sql.Stmt{}
	var ok []*write
	var events []*usersync.Change
	var created map[*usersync.Change]*usersync.User
	var committed []func()
	var failed error
	for i, wr := range batch {
		if err := wr.ctx.Err(); err != nil {
			wr.done <- d.wrapErr("write", err)
			continue
		}
		if _, err := sqlTx.Exec("SAVEPOINT w"); err != nil {
			failed = err
			alone = append(alone, batch[i:]...)
			break
		}
		t := d.newTx(wr.ctx, sqlTx, stmts)
		if err := wr.run(t); err != nil {
			if _, rerr := sqlTx.Exec("ROLLBACK TO SAVEPOINT w"); rerr != nil {
				// The transaction is gone (SQLite rolls back the whole
				// transaction on some errors): what it did is lost.
				failed = rerr
				alone = append(alone, batch[i:]...)
				break
			}
			if retryable(err) {
				alone = append(alone, wr)
			} else {
				wr.done <- err
			}
			continue
		}
		if _, err := sqlTx.Exec("RELEASE SAVEPOINT w"); err != nil {
			failed = err
			alone = append(alone, batch[i:]...)
			break
		}
		ok = append(ok, wr)
		events = append(events, t.events...)
		for e, u := range t.created {
			if created == nil {
				created = map[*usersync.Change]*usersync.User{}
			}
			created[e] = u
		}
		committed = append(committed, t.committed...)
	}
	if failed == nil {
		t := d.newTx(context.Background(), sqlTx, stmts)
		t.events, t.created = events, created
		failed = t.flushChanges()
		if failed == nil && d.hookBeforeCommit != nil && len(events) > 0 {
			d.hookBeforeCommit()
		}
		if failed == nil {
			failed = sqlTx.Commit()
		}
	}
	if failed != nil {
		sqlTx.Rollback()
		alone = append(ok, alone...)
	} else {
		for _, fn := range committed {
			fn()
		}
		for _, wr := range ok {
			wr.done <- nil
		}
	}
	for _, wr := range alone {
		wr.done <- d.runTx(wr, true)
	}
}

// deadlockTries bounds how often a write that keeps losing deadlocks (to
// writers of other processes on the same PostgreSQL) is run.
const deadlockTries = 3

// runTx runs one write in a transaction of its own, again when it lost a
// deadlock.
func (d *DB) runTx(wr *write, again bool) error {
	for try := 1; ; try++ {
		err := d.runTxOnce(wr, again)
		if !retryable(err) || try == deadlockTries {
			return err
		}
	}
}

func (d *DB) runTxOnce(wr *write, again bool) error {
	if err := wr.ctx.Err(); err != nil {
		return d.wrapErr("write", err)
	}
	sqlTx, err := d.beginWrite()
	if err != nil {
		return d.wrapErr("begin transaction", err)
	}
	t := d.newTx(wr.ctx, sqlTx, nil)
	if err := wr.run(t); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := t.flushChanges(); err != nil {
		sqlTx.Rollback()
		return err
	}
	if d.hookBeforeCommit != nil && len(t.events) > 0 {
		d.hookBeforeCommit()
	}
	if err := sqlTx.Commit(); err != nil {
		what := "commit"
		if again {
			what = "commit (alone, after its combined transaction failed)"
		}
		return d.wrapErr(what, err)
	}
	for _, fn := range t.committed {
		fn()
	}
	return nil
}

func (d *DB) newTx(ctx context.Context, sqlTx *sql.Tx, stmts map[string]*sql.Stmt) *tx {
	if stmts == nil {
		stmts = map[string]*sql.Stmt{}
	}
	return &tx{d: d, sqlTx: sqlTx, ctx: context.WithoutCancel(ctx), actor: usersync.ActorFrom(ctx), now: micros(now()), stmts: stmts}
}

// retryable reports a failure caused by concurrent transactions rather
// than by the write itself: PostgreSQL's deadlock and serialization
// failures. Such a write runs again alone, after its batch.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// writerCache is the page cache of the connection that writes on SQLite,
// in KiB; readers keep the DSN's smaller one. A bulk write dirties
// randomly placed index pages, which a large cache keeps from being read
// back and written again; a reader's cache is dropped whenever another
// connection has written, so a large one would only hold memory (eight of
// them held memory a reader never reuses: a 100,000-member pull's peak
// resident set went from 297 to 173 MiB with every cache at 16 MiB).
const writerCache = 64 << 10

// beginWrite starts a write transaction. On SQLite, which has one writer
// at a time anyway, writes run on a connection of their own, the one with
// the large page cache; it is only ever used inside the writer's lane.
func (d *DB) beginWrite() (*sql.Tx, error) {
	if d.dialect.name != "sqlite" {
		return d.db.BeginTx(context.Background(), nil)
	}
	for try := 0; ; try++ {
		if d.wconn == nil {
			c, err := d.db.Conn(context.Background())
			if err != nil {
				return nil, err
			}
			if _, err := c.ExecContext(context.Background(), fmt.Sprintf("PRAGMA cache_size = -%d", writerCache)); err != nil {
				c.Close()
				return nil, err
			}
			d.wconn = c
		}
		tx, err := d.wconn.BeginTx(context.Background(), nil)
		if err == nil || try == 1 {
			return tx, err
		}
		d.wconn.Close() // a broken connection: take another once
		d.wconn = nil
	}
}
