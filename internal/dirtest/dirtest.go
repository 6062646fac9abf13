// Package dirtest runs tests above the directory against every storage
// backend: a SQLite file and a real PostgreSQL server (see pgtest).
package dirtest

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// Main starts the PostgreSQL test server; call it from TestMain:
// func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }.
func Main(m *testing.M) int { return pgtest.Main(m) }

// Opener returns a new, empty directory, closed when the test ends.
type Opener func(t *testing.T) usersync.Directory

// Backends runs fn once per backend, as subtests "sqlite" and "postgres".
func Backends(t *testing.T, fn func(t *testing.T, open Opener)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T) usersync.Directory { return open(t, filepath.Join(t.TempDir(), "d.db")) })
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, func(t *testing.T) usersync.Directory { return open(t, pgtest.NewDatabase(t)) })
	})
}

// dsns remembers where each opened directory lives, for Reopen.
var dsns sync.Map

func open(t testing.TB, dsn string) usersync.Directory {
	t.Helper()
	var o sqlstore.Options
	if strings.HasPrefix(dsn, "postgres") {
		o.SecretKey = pgtest.SecretKey
	}
	d, err := sqlstore.OpenWith(context.Background(), dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	dsns.Store(usersync.Directory(d), dsn)
	t.Cleanup(func() { d.Close(); dsns.Delete(usersync.Directory(d)) })
	return d
}

// Reopen opens a second handle on the directory d was opened on (a second
// connection pool, as another replica of the service would have).
func Reopen(t testing.TB, d usersync.Directory) usersync.Directory {
	t.Helper()
	dsn, ok := dsns.Load(d)
	if !ok {
		t.Fatal("dirtest.Reopen: the directory was not opened by dirtest")
	}
	return open(t, dsn.(string))
}

// SQLite opens a new, empty SQLite directory, for tests of behaviour that
// does not depend on the backend.
func SQLite(t testing.TB) usersync.Directory {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "d.db"))
}

// Postgres returns a new, empty directory on the shared PostgreSQL server
// (for fuzz targets, which cannot have subtests per backend).
func Postgres(t testing.TB) usersync.Directory { return open(t, pgtest.NewDatabase(t)) }
