package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

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
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return d.wrapOpenErr(err)
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
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), m.version, m.name, micros(now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %s: %w", m.name, err)
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

func (d *DB) ensureDefaultGroup(ctx context.Context) error {
	if _, err := d.FindGroupByName(ctx, usersync.DefaultGroupName); err == nil {
		return nil
	} else if usersync.ErrorCode(err) != usersync.ENOTFOUND {
		return err
	}
	g := &usersync.Group{Name: usersync.DefaultGroupName, Description: "Every user can be a member; built in", Source: "system"}
	err := d.CreateGroup(usersync.WithActor(ctx, "system"), g)
	if usersync.ErrorCode(err) == usersync.ECONFLICT { // another replica made it first
		return nil
	}
	return err
}
