package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usersync/usersync"
)

// tx is a write transaction. Change events are collected while it runs and
// numbered and inserted at its very end (see flushChanges).
type tx struct {
	d      *DB
	sqlTx  *sql.Tx
	ctx    context.Context
	actor  string
	now    int64 // one timestamp for the whole transaction
	events []*usersync.Change
	// created holds the user of each user.created event among events: its
	// fields are made from the user as the event is written, on the
	// goroutine that makes the change log's rows (see insertRows).
	created map[*usersync.Change]*usersync.User
	rows    int64 // rows inserted, updated or deleted
	stmts   map[string]*sql.Stmt
	fresh   map[int64]bool // users created in this transaction: in no group yet
	// afterInsert, when set, sees the result of each multi-row INSERT
	// without RETURNING (rows start..end-1 of the call).
	afterInsert func(start, end int, res sql.Result) error
	committed   []func() // run once the transaction has committed
}

// onCommit runs fn after the transaction commits (not if it rolls back).
func (t *tx) onCommit(fn func()) { t.committed = append(t.committed, fn) }

// prepared returns query prepared for this transaction. Bulk statements of
// the same shape repeat hundreds of times in a batch and across batches;
// a statement with thousands of placeholders takes milliseconds to parse,
// so each shape is prepared once per connection (database/sql keeps the
// per-connection copies of a DB-level statement) and bound to the
// transaction.
//
// Only shapes marked share are kept across transactions (full-size chunks);
// the odd-sized last chunk of a batch is prepared for the transaction alone,
// so the cache stays a handful of statements.
func (t *tx) prepared(query string, share bool) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	if !share {
		st, err := t.sqlTx.PrepareContext(t.ctx, t.d.q(query))
		if err != nil {
			return nil, err
		}
		if t.stmts == nil {
			t.stmts = map[string]*sql.Stmt{}
		}
		t.stmts[query] = st
		return st, nil
	}
	shared, ok := t.d.stmts.Load(query)
	if !ok {
		st, err := t.d.db.PrepareContext(t.ctx, t.d.q(query))
		if err != nil {
			return nil, err
		}
		if prev, loaded := t.d.stmts.LoadOrStore(query, st); loaded {
			st.Close()
			shared = prev
		} else {
			shared = st
		}
	}
	st := t.sqlTx.StmtContext(t.ctx, shared.(*sql.Stmt))
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

// wrapErr turns a database failure into an error that says what failed.
func (d *DB) wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*usersync.Error); ok {
		return err
	}
	if err == context.Canceled || err == context.DeadlineExceeded {
		return usersync.Errorf(usersync.EUNAVAILABLE, "%s: %v", what, err)
	}
	if env := d.environmentErr(what, err); env != nil {
		return env
	}
	// Every boundary refuses NUL and invalid UTF-8 with the field's name;
	// this is the net under them: a value PostgreSQL cannot hold in text is
	// the caller's mistake, not the server's failure.
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05") {
		return usersync.Errorf(usersync.EINVALID, "%s: a value holds a NUL character or invalid UTF-8, which cannot be stored", what)
	}
	return fmt.Errorf("%s on %s database: %w", what, d.dialect.name, err)
}

// environmentErr names a failure of the database's environment — a
// read-only file, a full disk, a server that went away — as EUNAVAILABLE
// with what to check, or returns nil for anything else (a bug: internal).
func (d *DB) environmentErr(what string, err error) *usersync.Error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_READONLY:
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: the database %s is read-only; check the permissions of the file and of its folder (SQLite writes a -wal file beside it)", what, d.where)
		case sqlite3.SQLITE_FULL:
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: the disk holding %s is full", what, d.where)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: the database %s is locked by another process (usersync waits up to 10 s for a lock, less when SQLite sees the wait could not end); try again when that process is done", what, d.where)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_PERM:
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: cannot read or write the database %s: %v", what, d.where, err)
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return usersync.Errorf(usersync.EINVALID, "%s: the database %s is damaged or not a usersync SQLite database: %v", what, d.where, err)
		}
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "25006":
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: PostgreSQL %s accepts no writes (a standby, or default_transaction_read_only is on)", what, d.where)
		case strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P"):
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: PostgreSQL %s went away or refuses connections: %s", what, d.where, pe.Message)
		case strings.HasPrefix(pe.Code, "53"):
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: PostgreSQL %s is out of resources: %s", what, d.where, pe.Message)
		}
		return nil
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if d.dialect.name == "postgres" && (errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return usersync.Errorf(usersync.EUNAVAILABLE, "%s: cannot reach PostgreSQL %s: %v", what, d.where, err)
	}
	return nil
}

// stmt returns query prepared for this transaction from the DB's bounded
// statement cache: the same few statements run in every write, and parsing
// them each time was a tenth of a SCIM create.
func (t *tx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	shared, cached, err := t.d.readStmt(t.ctx, query)
	if err != nil {
		return nil, err
	}
	var st *sql.Stmt
	if cached {
		st = t.sqlTx.StmtContext(t.ctx, shared)
	} else { // the cache is full: prepare for this transaction alone
		shared.Close()
		if st, err = t.sqlTx.PrepareContext(t.ctx, t.d.q(query)); err != nil {
			return nil, err
		}
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

func (t *tx) exec(query string, args ...any) (int64, error) {
	st, err := t.stmt(query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(t.ctx, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	t.rows += n
	return n, nil
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	if t.sqlTx == nil { // a read outside any transaction
		return t.d.db.QueryContext(t.ctx, t.d.q(query), args...)
	}
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		return t.sqlTx.QueryRowContext(t.ctx, t.d.q(query), args...) // reports the same error on Scan
	}
	return st.QueryRowContext(t.ctx, args...)
}

// change records an event to be appended when the transaction commits.
func (t *tx) change(kind usersync.ChangeKind, obj usersync.ObjectRef, member *usersync.ObjectRef, fields map[string]usersync.FieldChange) {
	t.events = append(t.events, &usersync.Change{Kind: kind, Object: obj, Member: member, Fields: fields, Actor: t.actor})
}

// userCreated records u's user.created event; its fields are every field
// u has when the event is written, before the transaction commits.
func (t *tx) userCreated(u *usersync.User) {
	t.change(usersync.UserCreated, userRef(u), nil, nil)
	if t.created == nil {
		t.created = map[*usersync.Change]*usersync.User{}
	}
	t.created[t.events[len(t.events)-1]] = u
}

// flushChanges numbers the collected events and inserts them. The counter
// row is updated last thing before commit: on PostgreSQL its row lock is
// held until commit, so a transaction that takes numbers after another waits
// until that one has committed or rolled back. Sequence order is therefore
// commit order, a reader that has seen event N has seen every event below N,
// and a rolled-back transaction leaves no gap.
func (t *tx) flushChanges() error {
	n := len(t.events)
	if n == 0 {
		return nil
	}
	var last int64
	if err := t.queryRow(`UPDATE change_counter SET last = last + ? WHERE id = 1 RETURNING last`, n).Scan(&last); err != nil {
		return t.d.wrapErr("number change events", err)
	}
	t.rows++
	first := last - int64(n) + 1
	const cols = 11
	return t.insertRows("changes (seq, at, kind, object_type, object_id, object_name, member_type, member_id, member_name, fields, actor)", cols, n, "",
		func(i int, args []any) []any {
			e := t.events[i]
			e.Seq, e.At = first+int64(i), fromMicros(t.now)
			var mt, mn, fields any
			var mid any
			if e.Member != nil {
				mt, mid, mn = e.Member.Type, e.Member.ID, e.Member.Name
			}
			if u := t.created[e]; u != nil {
				e.Fields = createdFields(u)
			}
			if len(e.Fields) > 0 {
				fields = encodeFields(e.Fields)
			}
			return append(args, e.Seq, t.now, string(e.Kind), e.Object.Type, e.Object.ID, e.Object.Name, mt, mid, mn, fields, e.Actor)
		}, nil)
}

// insertRows inserts n rows with multi-row INSERT statements sized to the
// dialect's parameter limit. row appends row i's values to args. When
// returning is not empty, each returned row is passed to scan.
//
// When there is more than one statement, the next one's values are made on
// another goroutine while this one runs: making them (a created user's
// attributes and fields as JSON, every value boxed) is Go work that the
// one connection writing need not wait for. row is therefore called off
// the caller's goroutine, for rows after those already inserted; it must
// only read what it is given, and insertRows returns only once it has
// stopped.
func (t *tx) insertRows(table string, cols, n int, suffix string, row func(i int, args []any) []any, scan func(*sql.Rows) error) error {
	per := min(t.d.dialect.maxParams/cols, 500)
	if n == 0 {
		return nil
	}
	if n <= per {
		args := make([]any, 0, n*cols) // a single row is the common case: don't clear 500 rows' worth
		for i := 0; i < n; i++ {
			args = row(i, args)
		}
		return t.insertChunk(table, cols, 0, n, per, args, suffix, scan)
	}
	type chunk struct {
		start, end int
		args       []any
	}
	ready := make(chan chunk, 1)
	free := make(chan []any, 2) // two buffers: one being filled, one being inserted
	free <- make([]any, 0, per*cols)
	free <- make([]any, 0, per*cols)
	stop := make(chan struct{})
	var panicked any // a panic of row's, raised again on the caller's goroutine
	go func() {
		defer close(ready)
		defer func() { panicked = recover() }()
		for start := 0; start < n; start += per {
			var args []any
			select {
			case args = <-free:
			case <-stop:
				return
			}
			end := min(start+per, n)
			args = args[:0]
			for i := start; i < end; i++ {
				args = row(i, args)
			}
			select {
			case ready <- chunk{start, end, args}:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range ready { // wait for the maker to stop: row must not outlive the call
		}
	}()
	for c := range ready {
		if err := t.insertChunk(table, cols, c.start, c.end, per, c.args, suffix, scan); err != nil {
			return err
		}
		clear(c.args) // drop references to the rows inserted
		free <- c.args
	}
	if panicked != nil { // the rows stopped short: never report them written
		panic(panicked)
	}
	return nil
}

// insertChunk runs one INSERT of rows start..end-1, whose values are args.
func (t *tx) insertChunk(table string, cols, start, end, per int, args []any, suffix string, scan func(*sql.Rows) error) error {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	verb := t.d.dialect.insert
	if strings.Contains(suffix, "ON CONFLICT") {
		verb = "INSERT INTO " // an upsert resolves its conflicts itself
	}
	st, err := t.prepared(verb+table+" VALUES "+strings.TrimSuffix(strings.Repeat(one+",", end-start), ",")+suffix, end-start == per || end-start <= 8)
	if err != nil {
		return t.d.wrapErr("prepare insert into "+strings.Fields(table)[0], err)
	}
	if scan == nil {
		res, err := st.ExecContext(t.ctx, args...)
		if err != nil {
			return t.d.wrapErr("insert into "+strings.Fields(table)[0], err)
		}
		n, _ := res.RowsAffected()
		t.rows += n
		if t.afterInsert != nil {
			return t.afterInsert(start, end, res)
		}
		return nil
	}
	rows, err := st.QueryContext(t.ctx, args...)
	if err != nil {
		return t.d.wrapErr("insert into "+strings.Fields(table)[0], err)
	}
	for rows.Next() {
		t.rows++
		if err := scan(rows); err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return t.d.wrapErr("insert into "+strings.Fields(table)[0], err)
	}
	return nil
}

func encodeAttrs(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // keys are sorted, so equal maps encode equally
	return string(b)
}

func decodeAttrs(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" || s == "{}" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode attributes %q: %w", s, err)
	}
	return m, nil
}

// inClause returns "(?,?,…)" for n values.
func inClause(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

// inChunks runs query — which ends in "IN " — once for each chunk of up to
// 500 values (bound after fixed), and hands every row to scan. what names
// the read in errors.
func inChunks[T any](d *DB, run func(query string, args ...any) (*sql.Rows, error), what, query string, fixed []any, values []T, scan func(*sql.Rows) error) error {
	const chunk = 500
	args := make([]any, 0, len(fixed)+min(chunk, len(values)))
	for start := 0; start < len(values); start += chunk {
		part := values[start:min(start+chunk, len(values))]
		args = append(args[:0], fixed...)
		for _, v := range part {
			args = append(args, v)
		}
		rows, err := run(query+inClause(len(part)), args...)
		if err != nil {
			return d.wrapErr(what, err)
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return d.wrapErr(what, err)
			}
		}
		if err := rows.Close(); err != nil {
			return d.wrapErr(what, err)
		}
	}
	return nil
}

// poolQuery runs a read on the pool, outside any transaction.
func (d *DB) poolQuery(ctx context.Context) func(query string, args ...any) (*sql.Rows, error) {
	return func(query string, args ...any) (*sql.Rows, error) { return d.db.QueryContext(ctx, d.q(query), args...) }
}
