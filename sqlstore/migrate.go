package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/usersync/usersync"
)

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's embedded migrations in version order.
// Files are named NNNN_description.sql.
func migrations(dl dialect) []migration {
	dir := path.Join("migrations", dl.name)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		panic(err) // embedded at build time; cannot fail at run time
	}
	var out []migration
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			panic("migration file without version: " + e.Name())
		}
		b, _ := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out
}

// migrate applies the migrations the database lacks, up to version upTo,
// each in its own transaction together with its bookkeeping row. On
// PostgreSQL an advisory lock keeps replicas that start together from
// migrating twice.
func (d *DB) migrate(ctx context.Context, upTo int) error {
	if d.dialect.name == "postgres" {
		return d.migrateOnce(ctx, upTo)
	}
	// SQLite has no advisory lock: two processes opening a new file at once
	// both migrate it, and the one that loses a race fails its step (its
	// transaction rolls back whole). It tries again from the version the
	// other reached, for up to about 3 s; an error that is no race (a
	// schema newer than this usersync) is not retried.
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		if err = d.migrateOnce(ctx, upTo); err == nil || usersync.ErrorCode(err) == usersync.EINVALID || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (d *DB) migrateOnce(ctx context.Context, upTo int) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return d.wrapOpenErr(err)
	}
	defer conn.Close()
	if d.dialect.name == "postgres" {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7265636)`); err != nil {
			return fmt.Errorf("lock for migrations: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7265636)`)
	}
	// Created only when missing: a directory that is up to date opens for
	// reading even where it cannot be written.
	exists := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if d.dialect.name == "postgres" {
		exists = `SELECT COUNT(*) FROM pg_tables WHERE tablename = 'schema_migrations' AND schemaname = current_schema()`
	}
	var n int
	if err := conn.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return d.wrapOpenErr(err)
	}
	if n == 0 {
		if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
			return d.wrapOpenErr(err)
		}
	}
	var current int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return d.wrapOpenErr(err)
	}
	all := migrations(d.dialect)
	if latest := all[len(all)-1].version; current > latest {
		return usersync.Errorf(usersync.EINVALID, "database %s has schema version %d, newer than this usersync knows (%d): upgrade usersync", d.where, current, latest)
	}
	for _, m := range all {
		if m.version <= current || m.version > upTo {
			continue
		}
		if err := d.applyMigration(ctx, conn, m); err != nil {
			return err
		}
	}
	if upTo < all[len(all)-1].version {
		return nil // an older schema, for upgrade tests
	}
	return d.migrateRiver(ctx, conn) // still under the migration lock on PostgreSQL
}

// foreignKeysOff marks a SQLite migration that rebuilds tables others
// refer to: with foreign keys on, dropping the old table would cascade its
// delete into the tables that refer to it. They are turned off on the
// migration's connection (a pragma that cannot change inside a
// transaction), checked before the commit, and turned on again.
const foreignKeysOff = "-- usersync:foreign-keys-off"

// applyMigration applies one migration with its Go step and bookkeeping
// row in one transaction.
func (d *DB) applyMigration(ctx context.Context, conn *sql.Conn, m migration) error {
	if d.dialect.name == "sqlite" && strings.HasPrefix(m.sql, foreignKeysOff) {
		if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return d.wrapErr("apply migration "+m.name, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		tx.Rollback()
		return d.wrapErr("apply migration "+m.name, err)
	}
	if d.dialect.name == "sqlite" && strings.HasPrefix(m.sql, foreignKeysOff) {
		var table string
		switch err := tx.QueryRowContext(ctx, `SELECT "table" FROM pragma_foreign_key_check LIMIT 1`).Scan(&table); {
		case err == nil:
			tx.Rollback()
			return fmt.Errorf("apply migration %s: a row of table %s refers to a row that is gone", m.name, table)
		case !errors.Is(err, sql.ErrNoRows):
			tx.Rollback()
			return d.wrapErr("apply migration "+m.name, err)
		}
	}
	if step := goSteps[m.version]; step != nil {
		if err := step(ctx, d, tx); err != nil {
			tx.Rollback()
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), m.version, m.name, micros(now())); err != nil {
		tx.Rollback()
		return fmt.Errorf("record migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration %s: %w", m.name, err)
	}
	return nil
}

// riverMetaKey names the River schema version usersync last migrated to,
// in directory_meta.
const riverMetaKey = "river_schema_version"

// migrateRiver creates or upgrades the job queue's tables (River's own
// migrations, on its driver for the dialect), so that one migration path
// makes the whole schema. Once they are at the version this River knows,
// as recorded after the last migration, it asks nothing more of River:
// River's check took a connection of its own and a third of the time a
// no-op sync spent opening the directory.
func (d *DB) migrateRiver(ctx context.Context, conn *sql.Conn) error {
	m, err := d.riverMigrator()
	if err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	all := m.AllVersions()
	latest := strconv.Itoa(all[len(all)-1].Version)
	var have string
	switch err := conn.QueryRowContext(ctx, d.q(`SELECT value FROM directory_meta WHERE key = ?`), riverMetaKey).Scan(&have); {
	case err == nil && have == latest:
		return nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return d.wrapOpenErr(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return d.wrapErr("apply the job queue's migrations", err)
	}
	// Only a shortcut for the next open: a directory that cannot be
	// written (opened to read) still opens, and River is asked again.
	conn.ExecContext(ctx, d.q(`INSERT INTO directory_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`), riverMetaKey, latest)
	return nil
}

// riverMigrator is River's migrator on its driver for the dialect.
func (d *DB) riverMigrator() (*rivermigrate.Migrator[*sql.Tx], error) {
	if d.dialect.name == "sqlite" {
		return rivermigrate.New(riversqlite.New(d.db), nil)
	}
	return rivermigrate.New(riverdatabasesql.New(d.db), nil)
}

// goSteps are migration steps written in Go, run after the SQL file of the
// same version, in its transaction.
var goSteps = map[int]func(ctx context.Context, d *DB, tx *sql.Tx) error{
	7: rekeyUsernames,
}

// rekeyUsernames recomputes every username key with usersync.UsernameKey.
// Usernames that only the new key makes equal cannot both stay: the
// upgrade stops and names them, rather than merging or renaming anyone.
func rekeyUsernames(ctx context.Context, d *DB, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, username, username_key FROM users`)
	if err != nil {
		return fmt.Errorf("rekey usernames: %w", err)
	}
	type row struct {
		id        int64
		name, key string
	}
	var changed []row
	byKey := map[string][]string{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.name, &r.key); err != nil {
			rows.Close()
			return fmt.Errorf("rekey usernames: %w", err)
		}
		k := usersync.UsernameKey(r.name)
		byKey[k] = append(byKey[k], fmt.Sprintf("%q (id %d)", r.name, r.id))
		if k != r.key {
			r.key = k
			changed = append(changed, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rekey usernames: %w", err)
	}
	var clashes []string
	for _, names := range byKey {
		if len(names) > 1 {
			clashes = append(clashes, strings.Join(names, " and "))
		}
	}
	if len(clashes) > 0 {
		sort.Strings(clashes)
		return usersync.Errorf(usersync.ECONFLICT, "cannot upgrade database %s: usernames are now compared after Unicode normalisation, and these differ only in it (composed/decomposed letters, fullwidth forms): %s. Rename or delete one of each with the usersync version that made the database, then upgrade",
			d.where, strings.Join(clashes, "; "))
	}
	// Two passes, so that a key moving to a name another row is leaving
	// never trips the unique index on the way.
	for pass := 0; pass < 2; pass++ {
		for _, r := range changed {
			key := r.key
			if pass == 0 {
				key = fmt.Sprintf("\x01rekey-%d", r.id)
			}
			if _, err := tx.ExecContext(ctx, d.q(`UPDATE users SET username_key = ? WHERE id = ?`), key, r.id); err != nil {
				return fmt.Errorf("rekey user %d: %w", r.id, err)
			}
		}
	}
	return nil
}

// SchemaVersion returns the highest migration applied.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func (d *DB) ensureDefaultGroup(ctx context.Context, upTo int) error {
	var n int
	if err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM groups WHERE name_key = ?`), usersync.GroupNameKey(usersync.DefaultGroupName)).Scan(&n); err != nil {
		return d.wrapErr("find the Default Group", err)
	} else if n > 0 {
		return nil
	}
	g := &usersync.Group{Name: usersync.DefaultGroupName, Description: "Every user can be a member; built in", Source: "system"}
	if upTo < len(migrations(d.dialect)) {
		// A schema held back (by the migration tests): the columns of the
		// first version, which every later one keeps.
		_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO groups (name, name_key, description, source, created_at, updated_at, version) VALUES (?, ?, ?, ?, 0, 0, 1)`),
			g.Name, usersync.GroupNameKey(g.Name), g.Description, g.Source)
		return d.wrapErr("make the Default Group", err)
	}
	err := d.CreateGroup(usersync.WithActor(ctx, "system"), g)
	if usersync.ErrorCode(err) == usersync.ECONFLICT { // another replica made it first
		return nil
	}
	return err
}
