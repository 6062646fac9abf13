// Package sqlstore implements the usersync directory on SQL databases: an
// embedded SQLite file (pure Go, no cgo) and PostgreSQL. Both share one
// implementation; the few statements that differ are chosen by dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usersync/usersync"
)

// sqliteMode is how SQLite files are opened: rw (tests set ro to see a
// read-only database even when they run as root).
var sqliteMode = "rw"

// DefaultPath is the SQLite file used when no database is named.
const DefaultPath = "usersync.db"

// Ensure DB implements the whole directory.
var _ usersync.Directory = (*DB)(nil)

type dialect struct {
	name      string // "sqlite" or "postgres"
	dollar    bool   // placeholders are $1, $2, … instead of ?
	forUpdate string // row-locking suffix for SELECTs inside write transactions
	maxParams int    // bind parameters per statement
	// insert begins the multi-row INSERTs of bulk writes. On SQLite it is
	// INSERT OR FAIL: a multi-row INSERT that may abort makes SQLite copy
	// every index page it touches to a statement journal first (two small
	// writes per page to a temporary file), in case the statement must be
	// undone alone; that was a fifth of a 100,000-member first sync. With
	// OR FAIL a failed statement keeps the rows before the failing one,
	// which is safe here: a failed insert fails its whole transaction, or
	// its savepoint is rolled back (tryCreateUsers).
	insert string
	// fold wraps an SQL text expression so that it compares ignoring case,
	// Unicode-aware on both backends: SQLite's LOWER and LIKE know only
	// ASCII, and PostgreSQL's lower() follows the database's locale, which
	// is often C (ASCII only).
	fold func(expr string) string
}

var (
	sqliteDialect   = dialect{name: "sqlite", maxParams: 32766, insert: "INSERT OR FAIL INTO ", fold: func(e string) string { return "usersync_fold(" + e + ")" }}
	postgresDialect = dialect{name: "postgres", dollar: true, forUpdate: " FOR UPDATE", maxParams: 65535, insert: "INSERT INTO ", fold: pgFold("")}
)

// pgFold folds with lower() under collation (an ICU collation when the
// server has one: lower() then maps every Unicode letter).
func pgFold(collation string) func(string) string {
	if collation == "" {
		return func(e string) string { return "lower(" + e + ")" }
	}
	return func(e string) string { return "lower((" + e + ")::text COLLATE \"" + collation + "\")" }
}

// foldSQLite is usersync_fold, SQLite's Unicode-aware lower case: the
// same mapping Go's strings.ToLower applies.
func foldSQLite(ctx *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case string:
		return strings.ToLower(v), nil
	case []byte:
		return strings.ToLower(string(v)), nil
	default:
		return v, nil
	}
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("usersync_fold", 1, foldSQLite)
}

// DB is a directory stored in SQLite or PostgreSQL.
type DB struct {
	db      *sql.DB
	dialect dialect
	where   string // the database, for messages, without credentials

	// writer combines concurrent writes into shared transactions, one at
	// a time (on SQLite this also spares writers its busy-wait polling).
	writer   *writer
	wconn    *sql.Conn               // SQLite: the connection writes run on (see beginWrite)
	tokens   cache[usersync.User]    // recent Authenticate answers, by token hash
	settings cache[usersync.Setting] // recent Setting answers, by key

	secrets *secretKey // seals secret settings
	// viaNums and viaKeys cache source-group keys and their numbers in
	// memberships (see sourceGroupNum); entries are only added, after commit.
	viaNums, viaKeys sync.Map

	rebound   sync.Map // query with ? → query in the dialect's placeholders
	stmts     sync.Map // query → *sql.Stmt prepared on the pool (bulk statement shapes)
	reads     sync.Map // query → *sql.Stmt prepared on the pool (hot reads)
	readCount atomic.Int64

	// hookBeforeCommit, set by tests, runs after a write transaction has
	// numbered its change events and before it commits.
	hookBeforeCommit func()
	// hookBatchRead, set by tests, runs after a batch has read the users
	// it updates and before it writes them.
	hookBatchRead func()
}

// Options say how Open treats the database.
type Options struct {
	// Existing refuses to make a directory that does not exist yet (reads
	// and dry runs must not leave one behind): the error says how to make
	// it. An existing directory is still upgraded in place.
	Existing bool
	// SecretKey (32 bytes, base64) or SecretKeyFile seal secret settings;
	// without either, a SQLite directory keeps its key in a file beside it
	// (<path>.key, made 0600 when the first secret is stored).
	SecretKey     string
	SecretKeyFile string
}

// Open opens (creating if needed) the directory named by dsn and brings its
// schema up to date. dsn is a postgres:// or postgresql:// URL, or a SQLite
// file path (optionally prefixed sqlite:); "" means DefaultPath. A new
// SQLite file is readable by its owner only.
func Open(ctx context.Context, dsn string) (*DB, error) { return OpenWith(ctx, dsn, Options{}) }

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, o Options) (*DB, error) {
	return open(ctx, dsn, len(migrations(sqliteDialect)), o)
}

func open(ctx context.Context, dsn string, upTo int, o Options) (*DB, error) {
	d, err := connect(ctx, dsn, o.Existing)
	if err != nil {
		return nil, err
	}
	if d.secrets, err = newSecretKey(o, d.dialect, d.where); err != nil {
		d.db.Close()
		return nil, err
	}
	if err := d.migrate(ctx, upTo); err != nil {
		d.db.Close()
		return nil, err
	}
	if err := d.ensureDefaultGroup(ctx, upTo); err != nil {
		d.db.Close()
		return nil, err
	}
	if !o.Existing {
		if err := d.sealClearSecrets(ctx); err != nil {
			d.db.Close()
			return nil, err
		}
	}
	return d, nil
}

func connect(ctx context.Context, dsn string, existing bool) (*DB, error) {
	if dsn == "" {
		dsn = DefaultPath
	}
	scheme := ""
	if i := strings.Index(dsn, "://"); i > 0 {
		scheme = strings.ToLower(dsn[:i])
	}
	switch {
	case scheme == "postgres" || scheme == "postgresql":
		d, err := connectPostgres(ctx, dsn)
		if err == nil && existing {
			var found sql.NullString
			if err = d.db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations')::text`).Scan(&found); err == nil && !found.Valid {
				err = usersync.Errorf(usersync.ENOTFOUND, "PostgreSQL database %s holds no usersync directory yet; make it with `usersync init --db URL` (commands that write make it too)", d.where)
			}
			if err != nil {
				d.db.Close()
				return nil, d.wrapOpenErr(err)
			}
		}
		return d, err
	case scheme != "":
		return nil, usersync.Errorf(usersync.EINVALID, "database %q: unsupported scheme %q (give a SQLite file path or a postgres:// URL)", redactDSN(dsn), scheme)
	}
	return connectSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), existing)
}

func connectSQLite(ctx context.Context, path string, existing bool) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, usersync.Errorf(usersync.EINVALID, "database path %q is empty or contains ? or #", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, usersync.Errorf(usersync.EINVALID, "database %q: folder %q does not exist", path, dir)
		}
	}
	switch _, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist) && existing:
		return nil, usersync.Errorf(usersync.ENOTFOUND, "directory %s does not exist; make it with `usersync init --db %s` (commands that write make it too)", path, path)
	case errors.Is(err, fs.ErrNotExist):
		// Made here rather than by SQLite, so that it is the owner's alone:
		// it holds API token hashes and sealed secrets. SQLite gives its
		// -wal and -shm files the same permissions.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot create database %s: %v", path, err)
		}
		if f != nil {
			f.Close()
		}
	}
	q := url.Values{}
	// wal_autocheckpoint: checkpoint every 64 MiB of WAL rather than 4 MiB, so
	// a bulk sync copies pages back into the database file less often.
	// cache_size is the readers' (8 MiB); the writer's is larger (writerCache).
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)", "cache_size(-8192)", "wal_autocheckpoint(16384)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // take the write lock at BEGIN, so transactions never deadlock on upgrade
	q.Set("mode", sqliteMode)     // never create the file: see above
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "database %q: %v", path, err)
	}
	// Keep connections open: opening one runs the pragmas above, and
	// database/sql keeps only 2 idle by default, so a busy server would open
	// and close a connection per request. Writers queue on the write lock
	// anyway; 8 connections serve concurrent readers (WAL).
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	d := &DB{db: db, dialect: sqliteDialect, where: path, writer: newWriter()}
	// The first connection switches a new file to WAL, which needs the
	// file to itself: another process opening it at the same moment gets
	// SQLITE_BUSY at once, without the busy timeout. It tries again for up
	// to about 3 s, as migrate does.
	for attempt := 0; attempt < 30; attempt++ {
		if err = db.PingContext(ctx); err == nil || !isBusy(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		db.Close()
		return nil, d.wrapOpenErr(err)
	}
	return d, nil
}

// isBusy reports whether SQLite said another connection holds the lock.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED)
}

func connectPostgres(ctx context.Context, dsn string) (*DB, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "database URL %q is malformed: %v", redactDSN(dsn), stripDSN(err, dsn))
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "database URL %q: %v", redactDSN(dsn), stripDSN(err, dsn))
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	d := &DB{db: db, dialect: postgresDialect, where: redactDSN(dsn), writer: newWriter()}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot connect to PostgreSQL %s: %v", d.where, stripDSN(err, dsn))
	}
	// ICU's root collation makes lower() Unicode-aware whatever the
	// database's locale; servers built without ICU fall back to lower().
	var icu string
	if err := db.QueryRowContext(pctx, `SELECT collname FROM pg_collation WHERE collname = 'und-x-icu'`).Scan(&icu); err == nil {
		d.dialect.fold = pgFold(icu)
	}
	return d, nil
}

func (d *DB) wrapOpenErr(err error) error {
	if env := d.environmentErr("open", err); env != nil {
		return env
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_NOTADB || se.Code() == sqlite3.SQLITE_CORRUPT) {
		return usersync.Errorf(usersync.EINVALID, "database %q is not a usersync SQLite database (%v)", d.where, err)
	}
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CANTOPEN {
		return usersync.Errorf(usersync.EINVALID, "database %q cannot be opened: %v", d.where, err)
	}
	return fmt.Errorf("open database %q: %w", d.where, err)
}

// redactDSN hides the password of a database URL.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		if i := strings.LastIndex(dsn, "@"); i > 0 {
			if j := strings.Index(dsn, "://"); j > 0 && j < i {
				return dsn[:j+3] + "…@" + dsn[i+1:]
			}
		}
		return dsn
	}
	return u.Redacted()
}

// stripDSN removes the password from an error message, should a driver repeat it.
func stripDSN(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// Dialect reports "sqlite" or "postgres".
func (d *DB) Dialect() string { return d.dialect.name }

// Where names the database without credentials: a file path or a redacted URL.
func (d *DB) Where() string { return d.where }

// Close closes the database.
func (d *DB) Close() error {
	d.writer.lane <- struct{}{} // no write runs on wconn meanwhile
	if d.wconn != nil {
		d.wconn.Close()
		d.wconn = nil
	}
	<-d.writer.lane
	for _, m := range []*sync.Map{&d.stmts, &d.reads} {
		m.Range(func(_, st any) bool {
			st.(*sql.Stmt).Close()
			return true
		})
	}
	return d.db.Close()
}

// q returns query with its ? placeholders in the dialect's form.
func (d *DB) q(query string) string {
	if !d.dialect.dollar {
		return query
	}
	if v, ok := d.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	inStr := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inStr = !inStr
			b.WriteByte(c)
		case c == '?' && !inStr:
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if len(query) < 4096 { // multi-row statements vary in length; caching them all would grow without bound
		d.rebound.Store(query, out)
	}
	return out
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// maxCachedReads bounds the read statements kept prepared: queries are
// built from conditions, whose attribute names are literals, so the set of
// texts is open-ended.
const maxCachedReads = 256

// readStmt returns query prepared on the pool, kept for the next call:
// the per-request reads of a server (token lookup, userName filter) would
// otherwise be parsed on every request.
func (d *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, bool, error) {
	if st, ok := d.reads.Load(query); ok {
		return st.(*sql.Stmt), true, nil
	}
	st, err := d.db.PrepareContext(ctx, d.q(query))
	if err != nil {
		return nil, false, err
	}
	if d.readCount.Add(1) > maxCachedReads {
		d.readCount.Add(-1)
		return st, false, nil // the caller closes it
	}
	if prev, loaded := d.reads.LoadOrStore(query, st); loaded {
		st.Close()
		d.readCount.Add(-1)
		return prev.(*sql.Stmt), true, nil
	}
	return st, true, nil
}

// queryRows runs a read through readStmt.
func (d *DB) queryRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, cached, err := d.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if !cached {
		defer st.Close()
	}
	return rows, err
}

// CheckWritable reports whether the directory accepts writes now: a
// statement that would write, and matches no row, so it changes nothing
// and takes no lock a writer would wait for. A read-only SQLite file or a
// read-only PostgreSQL fails it with EUNAVAILABLE.
func (d *DB) CheckWritable(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, `UPDATE change_counter SET last = last WHERE id = 0`)
	return d.wrapErr("check that the directory can be written", err)
}

// Checkpoint copies the SQLite write-ahead log back into the database file
// without blocking writers (PASSIVE); long-running processes call it now
// and then so the WAL never grows to the autocheckpoint size on a request.
// It does nothing on PostgreSQL.
func (d *DB) Checkpoint(ctx context.Context) error {
	if d.dialect.name != "sqlite" {
		return nil
	}
	_, err := d.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	return d.wrapErr("checkpoint", err)
}

// SQLitePool is the pool of a SQLite directory, for the job queue, which
// shares the file; nil on PostgreSQL (the queue opens its own pool there).
func (d *DB) SQLitePool() *sql.DB {
	if d.dialect.name == "sqlite" {
		return d.db
	}
	return nil
}
