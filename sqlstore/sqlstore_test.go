package sqlstore

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv("USERSYNC_KILL_HELPER") != "" {
		killHelper() // never returns
	}
	os.Exit(pgtest.Main(m))
}

// backends returns a fresh-database DSN maker for each backend.
func backends() map[string]func(t testing.TB) string {
	return map[string]func(t testing.TB) string{
		"sqlite":   func(t testing.TB) string { return filepath.Join(t.TempDir(), "dir.db") },
		"postgres": func(t testing.TB) string { return pgtest.NewDatabase(t) },
	}
}

func openDB(t testing.TB, dsn string) *DB {
	t.Helper()
	d, err := OpenWith(context.Background(), dsn, testOptions(dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// testOptions gives PostgreSQL directories the test key for secrets.
func testOptions(dsn string) Options {
	if strings.HasPrefix(dsn, "postgres") {
		return Options{SecretKey: pgtest.SecretKey}
	}
	return Options{}
}

func TestConformance(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) usersync.Directory { return openDB(t, dsn(t)) })
		})
	}
}

// TestChangeLogNoSkip makes writers commit out of the order in which naive
// sequence numbers would be handed out: each holds its transaction open for
// a random while after numbering its events. A consumer following the log
// must still see every event, each once.
func TestChangeLogNoSkip(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := openDB(t, dsn(t))
			d.hookBeforeCommit = func() { time.Sleep(time.Duration(rand.Intn(3000)) * time.Microsecond) }
			ctx := context.Background()
			start, _ := d.LastChangeSeq(ctx)
			const writers, each = 8, 30
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < each; i++ {
						if err := d.CreateUser(ctx, &usersync.User{Username: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
							t.Error(err)
							return
						}
					}
				}(w)
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			seen, cursor, finished := map[int64]int{}, start, false
			for {
				select {
				case <-done:
					finished = true
				default:
				}
				cs, err := d.ChangesAfter(ctx, cursor, 5)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					seen[c.Seq]++
					cursor = c.Seq
				}
				if finished && len(cs) == 0 {
					break
				}
			}
			last, _ := d.LastChangeSeq(ctx)
			if last-start != writers*each {
				t.Fatalf("%d events logged, want %d", last-start, writers*each)
			}
			for s := start + 1; s <= last; s++ {
				if seen[s] != 1 {
					t.Fatalf("the consumer saw event %d %d times", s, seen[s])
				}
			}
		})
	}
}

func TestMigrateInPlace(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			ctx := context.Background()
			old, err := open(ctx, url, 1, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := old.SchemaVersion(ctx); v != 1 {
				t.Fatalf("version %d, want 1", v)
			}
			// Rows as version 1 wrote them: a user, and a user soft-deleted
			// over SCIM (disabled, named with the default prefix).
			for _, u := range [][]any{{"kept", "kept", true, "local"}, {"deleted_gone", "deleted_gone", false, "scim"}, {"Ｋａｒｌ", "ｋａｒｌ", true, "local"}} {
				if _, err := old.db.Exec(old.q(`INSERT INTO users (username, username_key, user_type, enabled, auth_method, source, created_at, updated_at, version)
					VALUES (?, ?, 'regular', ?, 'sso', ?, 0, 0, 1)`), u...); err != nil {
					t.Fatal(err)
				}
			}
			old.Close()
			d := openDB(t, url)
			if v, _ := d.SchemaVersion(ctx); v != len(migrations(d.dialect)) {
				t.Fatalf("not upgraded: version %d", v)
			}
			if _, err := d.FindUserByUsername(ctx, "kept"); err != nil {
				t.Fatalf("data lost in upgrade: %v", err)
			}
			// Migration 6: the soft-deleted user is marked so (by its prefix).
			if u, err := d.FindUserByUsername(ctx, "deleted_gone"); err != nil || !u.SoftDeleted {
				t.Fatalf("soft-deleted user after upgrade: %+v, %v", u, err)
			}
			// Migration 7: the fullwidth name is found by its ASCII form.
			if u, err := d.FindUserByUsername(ctx, "karl"); err != nil || u.Username != "Ｋａｒｌ" {
				t.Fatalf("fullwidth username not rekeyed: %+v, %v", u, err)
			}
			if err := d.SetCursor(ctx, "c", 1); err != nil {
				t.Fatalf("new table missing: %v", err)
			}
			// Re-opening an up-to-date database changes nothing.
			d2 := openDB(t, url)
			if _, n, _ := d2.FindGroups(ctx, usersync.GroupFilter{}); n != 1 {
				t.Fatalf("groups after reopen: %d", n)
			}
			// A database from a newer usersync is refused, not damaged.
			d2.db.Exec(d2.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`), 999)
			_, err = Open(ctx, url)
			if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), "newer") {
				t.Fatalf("newer schema: %v", err)
			}
		})
	}
}

// Opening an up-to-date directory does not ask River about its tables
// again; the River schema version usersync migrated to is recorded, and a
// record that is not this River's latest (an older usersync's, or none)
// makes the next open migrate River's tables again.
func TestRiverMigrationRecorded(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			ctx := context.Background()
			d := openDB(t, url)
			m, err := d.riverMigrator()
			if err != nil {
				t.Fatal(err)
			}
			all := m.AllVersions()
			latest := strconv.Itoa(all[len(all)-1].Version)
			if v, err := d.Meta(ctx, riverMetaKey); err != nil || v != latest {
				t.Fatalf("recorded River version %q (%v), want %q", v, err, latest)
			}
			// An older record: the next open asks River to migrate (its
			// tables are at its latest already: nothing to do) and records
			// the version again.
			if _, err := d.db.ExecContext(ctx, `UPDATE directory_meta SET value = '1' WHERE key = '`+riverMetaKey+`'`); err != nil {
				t.Fatal(err)
			}
			d2 := openDB(t, url)
			if v, _ := d2.Meta(ctx, riverMetaKey); v != latest {
				t.Fatalf("recorded River version after reopening %q, want %q", v, latest)
			}
			var n int
			if err := d2.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job`).Scan(&n); err != nil {
				t.Fatalf("River's tables after reopening: %v", err)
			}
		})
	}
}

func TestTokensStoredHashed(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			d := openDB(t, dsn(t))
			ctx := context.Background()
			u := &usersync.User{Username: "admin", Type: usersync.UserAdministrator, Enabled: true}
			d.CreateUser(ctx, u)
			clear, _, err := d.CreateToken(ctx, u.ID, "x")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := d.db.Query(`SELECT * FROM api_tokens`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				rows.Scan(ptrs...)
				for i, v := range vals {
					s := fmt.Sprint(v)
					if b, ok := v.([]byte); ok {
						s = string(b)
					}
					if strings.Contains(s, clear[len(usersync.TokenPrefix):len(clear)-4]) {
						t.Fatalf("column %s holds the clear token", cols[i])
					}
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 100)), 0o644)
	cases := []struct{ dsn, code, says string }{
		{"mysql://localhost/x", usersync.EINVALID, `unsupported scheme "mysql"`},
		{"postgres://user:hunter2@[::1/x", usersync.EINVALID, "malformed"},
		{filepath.Join(t.TempDir(), "missing", "dir.db"), usersync.EINVALID, "does not exist"},
		{notDB, usersync.EINVALID, "not a usersync SQLite database"},
		{"postgres://user:hunter2@127.0.0.1:1/x?connect_timeout=2", usersync.EUNAVAILABLE, "cannot connect"},
	}
	for _, c := range cases {
		_, err := Open(ctx, c.dsn)
		if usersync.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Open(%q) = %v, want %s saying %q", c.dsn, err, c.code, c.says)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", c.dsn, err)
		}
	}
}

// TestKillDuringBatch kills a process in the middle of a large batch and
// checks that the database holds either none or all of the batch.
func TestKillDuringBatch(t *testing.T) {
	const users = 20000
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			openDB(t, url).Close() // migrate first, so the kill lands in the batch
			for round, delay := range []time.Duration{150 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond} {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "USERSYNC_KILL_HELPER="+url, fmt.Sprintf("USERSYNC_KILL_USERS=%d", users), fmt.Sprintf("USERSYNC_KILL_ROUND=%d", round))
				out, _ := cmd.StdoutPipe()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 16)
				out.Read(buf) // "applying\n": the batch has begun
				time.Sleep(delay)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()

				d := openDB(t, url)
				ctx := context.Background()
				_, n, err := d.FindUsers(ctx, usersync.UserFilter{Search: fmt.Sprintf("r%d-", round)})
				if err != nil {
					t.Fatal(err)
				}
				g, gerr := d.FindGroupByName(ctx, fmt.Sprintf("Round %d", round))
				created := 0 // the change log must be all-or-nothing too
				for after := int64(0); ; {
					cs, err := d.ChangesAfter(ctx, after, 5000)
					if err != nil {
						t.Fatal(err)
					}
					if len(cs) == 0 {
						break
					}
					for _, c := range cs {
						if c.Kind == usersync.UserCreated && strings.HasPrefix(c.Object.Name, fmt.Sprintf("r%d-", round)) {
							created++
						}
					}
					after = cs[len(cs)-1].Seq
				}
				if created != n {
					t.Fatalf("round %d: %d users but %d user.created events", round, n, created)
				}
				switch n {
				case 0:
					if gerr == nil {
						t.Fatalf("round %d: no users but the group exists", round)
					}
				case users:
					if gerr != nil {
						t.Fatalf("round %d: users without their group", round)
					}
					if _, m, _ := d.Members(ctx, g.ID, 0, 1); m != users {
						t.Fatalf("round %d: %d of %d memberships", round, m, users)
					}
				default:
					t.Fatalf("round %d (killed after %v): %d of %d users — half-applied", round, delay, n, users)
				}
				t.Logf("round %d killed after %v: %d users present", round, delay, n)
				d.Close()
			}
		})
	}
}

func killHelper() {
	url := os.Getenv("USERSYNC_KILL_HELPER")
	var n, round int
	fmt.Sscan(os.Getenv("USERSYNC_KILL_USERS"), &n)
	fmt.Sscan(os.Getenv("USERSYNC_KILL_ROUND"), &round)
	d, err := Open(context.Background(), url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	group := fmt.Sprintf("Round %d", round)
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{{Group: usersync.Group{Name: group}, Create: true}}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("r%d-%06d", round, i)
		b.Users = append(b.Users, usersync.UserUpsert{User: usersync.User{Username: name, Enabled: true}, Create: true})
		b.Members = append(b.Members, usersync.MemberChange{Group: group, Username: name})
	}
	fmt.Println("applying")
	if _, err := d.ApplyBatch(context.Background(), b); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	time.Sleep(time.Hour) // finished before the kill: wait for it
	os.Exit(0)
}

// Usernames that only the Unicode-normalised key makes equal stop the
// upgrade with both names; neither user is merged or renamed.
func TestMigrateRefusesNormalisationClash(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			ctx := context.Background()
			old, err := open(ctx, url, 6, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range [][]any{{"alice", "alice"}, {"ａlice", "ａlice"}} { // fullwidth a
				if _, err := old.db.Exec(old.q(`INSERT INTO users (username, username_key, user_type, enabled, auth_method, source, created_at, updated_at, version)
					VALUES (?, ?, 'regular', TRUE, 'sso', 'local', 0, 0, 1)`), u...); err != nil {
					t.Fatal(err)
				}
			}
			old.Close()
			_, err = Open(ctx, url)
			if usersync.ErrorCode(err) != usersync.ECONFLICT || !strings.Contains(err.Error(), `"alice"`) || !strings.Contains(err.Error(), `"ａlice"`) {
				t.Fatalf("clash not reported: %v", err)
			}
			again, err := open(ctx, url, 6, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			var n int
			again.db.QueryRow(`SELECT COUNT(*) FROM users WHERE username IN ('alice', 'ａlice')`).Scan(&n)
			if v, _ := again.SchemaVersion(ctx); v != 6 || n != 2 {
				t.Fatalf("after the refused upgrade: version %d, %d users", v, n)
			}
		})
	}
}

// Secret settings are stored sealed with a key kept outside the database;
// a missing or wrong key is a clear error, never an empty value. A new
// SQLite file, its WAL and the key file are the owner's only.
func TestSecretsSealed(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := dsn(t)
			d := openDB(t, url)
			const secret = "client-s3cret-value"
			if _, err := d.SetSetting(ctx, "O365_USERSYNC_CLIENT_SECRET", secret); err != nil {
				t.Fatal(err)
			}
			var raw string
			d.db.QueryRow(`SELECT value FROM settings WHERE key = 'O365_USERSYNC_CLIENT_SECRET'`).Scan(&raw)
			if strings.Contains(raw, secret) || !strings.HasPrefix(raw, sealedPrefix) {
				t.Fatalf("stored as %q", raw)
			}
			if s, err := d.Setting(ctx, "O365_USERSYNC_CLIENT_SECRET"); err != nil || s.Value != secret {
				t.Fatalf("read back: %+v %v", s, err)
			}
			other := Options{SecretKey: "b3RoZXIta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXMhISE="}
			d2, err := OpenWith(ctx, url, other)
			if err != nil {
				t.Fatal(err)
			}
			defer d2.Close()
			_, err = d2.Setting(ctx, "O365_USERSYNC_CLIENT_SECRET")
			if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), "another secret key") {
				t.Fatalf("wrong key: %v", err)
			}
			all, err := d2.Settings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range all {
				if s.Key == "O365_USERSYNC_CLIENT_SECRET" && (!s.IsSet || s.Value != "" || s.Unreadable == "" || s.Shown() != "********") {
					t.Fatalf("listed with the wrong key: %+v", s)
				}
			}
			// A value stored in clear (by an older usersync) is sealed when
			// the directory is next opened for writing.
			d.db.Exec(d.q(`UPDATE settings SET value = ? WHERE key = 'O365_USERSYNC_CLIENT_SECRET'`), "old-clear")
			d3 := openDB(t, url)
			d3.db.QueryRow(`SELECT value FROM settings WHERE key = 'O365_USERSYNC_CLIENT_SECRET'`).Scan(&raw)
			if s, err := d3.Setting(ctx, "O365_USERSYNC_CLIENT_SECRET"); err != nil || s.Value != "old-clear" || !strings.HasPrefix(raw, sealedPrefix) {
				t.Fatalf("clear value after reopening: %q stored %q, %v", s.Value, raw, err)
			}
			if name != "sqlite" {
				return
			}
			for _, f := range []string{url, url + "-wal", url + ".key"} {
				if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v %v", f, st.Mode(), err)
				}
			}
			os.Rename(url+".key", url+".key.moved")
			d4 := openDB(t, url)
			if _, err := d4.Setting(ctx, "O365_USERSYNC_CLIENT_SECRET"); usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), "not available") {
				t.Fatalf("missing key file: %v", err)
			}
		})
	}
}

// Opening an existing directory only never makes one.
func TestOpenExistingMakesNothing(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			o := testOptions(url)
			o.Existing = true
			_, err := OpenWith(context.Background(), url, o)
			if usersync.ErrorCode(err) != usersync.ENOTFOUND || !strings.Contains(err.Error(), "usersync init") {
				t.Fatalf("missing directory: %v", err)
			}
			if name == "sqlite" {
				if _, err := os.Stat(url); !os.IsNotExist(err) {
					t.Fatalf("the file was made: %v", err)
				}
				return
			}
			d := openDB(t, url) // makes it
			d.Close()
			if d, err := OpenWith(context.Background(), url, o); err != nil {
				t.Fatalf("existing directory: %v", err)
			} else {
				d.Close()
			}
		})
	}
}

// A directory that cannot be written says so (EUNAVAILABLE, naming the
// cause), never "internal error"; CheckWritable tells it before a write.
func TestReadOnlyDirectory(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ro.db")
		openDB(t, path).CreateUser(ctx, &usersync.User{Username: "before"})
		sqliteMode = "ro"
		t.Cleanup(func() { sqliteMode = "rw" })
		d := openDB(t, path)
		checkReadOnly(t, d, "read-only")
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		d := openDB(t, url)
		name, _, _ := strings.Cut(url[strings.LastIndex(url, "/")+1:], "?")
		if _, err := d.db.Exec(`ALTER DATABASE "` + name + `" SET default_transaction_read_only = on`); err != nil {
			t.Fatal(err)
		}
		d.Close()
		checkReadOnly(t, openDB(t, url), "accepts no writes")
	})
}

func checkReadOnly(t *testing.T, d *DB, says string) {
	t.Helper()
	ctx := context.Background()
	for what, err := range map[string]error{
		"check":  d.CheckWritable(ctx),
		"create": d.CreateUser(ctx, &usersync.User{Username: "after"}),
		"batch": func() error {
			_, err := d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{{User: usersync.User{Username: "b"}, Create: true}}})
			return err
		}(),
	} {
		if usersync.ErrorCode(err) != usersync.EUNAVAILABLE || !strings.Contains(usersync.ErrorMessage(err), says) {
			t.Fatalf("%s: %v (code %s)", what, err, usersync.ErrorCode(err))
		}
	}
	if _, err := d.FindUserByUsername(ctx, "before"); err != nil && usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("reads still work: %v", err)
	}
}

// A provisioner's client secret is sealed like the secret settings, and
// bound to its provisioner: copied onto another row, it does not open.
func TestProvisionerSecretSealed(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := openDB(t, dsn(t))
			const secret = "prov-s3cret-value"
			for _, n := range []string{"a", "b"} {
				p := &usersync.Provisioner{Name: n, Kind: usersync.ProvisionerGroups, Config: usersync.ProvisionerConfig{TenantID: "t", ClientID: "c"}}
				if err := d.CreateProvisioner(ctx, p, secret+n); err != nil {
					t.Fatal(err)
				}
			}
			var raw, config string
			d.db.QueryRow(`SELECT secret, config FROM provisioners WHERE name = 'a'`).Scan(&raw, &config)
			if strings.Contains(raw, secret) || !strings.HasPrefix(raw, sealedPrefix) || strings.Contains(config, secret) {
				t.Fatalf("stored as %q (config %s)", raw, config)
			}
			d.db.Exec(d.q(`UPDATE provisioners SET secret = ? WHERE name = 'b'`), raw)
			if s, err := d.ProvisionerSecret(ctx, "b"); err == nil {
				t.Fatalf("a's sealed secret opened as b's: %q", s)
			}
		})
	}
}

// The job queue's tables are made by the same migrations as the rest, on
// both backends.
func TestJobQueueTablesMigrated(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			d := openDB(t, dsn(t))
			var n int
			if err := d.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM river_job`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("river_job: %d %v", n, err)
			}
			if n, err := d.JobQueueDepth(context.Background()); err != nil || n != 0 {
				t.Fatalf("queue depth: %d %v", n, err)
			}
		})
	}
}

// Several processes opening a new SQLite file at once all migrate it: the
// one that loses a race tries again from where the other got (it once
// failed with "table schema_migrations already exists").
func TestConcurrentFirstOpens(t *testing.T) {
	for round := 0; round < 5; round++ {
		path := filepath.Join(t.TempDir(), "d.db")
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			go func() {
				d, err := Open(context.Background(), path)
				if err == nil {
					d.Close()
				}
				errs <- err
			}()
		}
		for i := 0; i < 4; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: a concurrent first open failed: %v", round, err)
			}
		}
	}
}

// Migration 14 rebuilds SQLite's tables so ids are never reused: rows,
// tokens, sessions, memberships and roles held survive, and an id deleted
// before the upgrade (the newest user's, which plain rowids hand out again)
// is not handed out after it.
func TestMigrateIDsNeverReused(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			ctx := context.Background()
			old, err := open(ctx, url, 13, Options{})
			if err != nil {
				t.Fatal(err)
			}
			keep := &usersync.User{Username: "keep", Enabled: true}
			gone := &usersync.User{Username: "zed", Enabled: true}
			for _, u := range []*usersync.User{keep, gone} {
				if err := old.CreateUser(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			// The group as version 13 wrote it (the store's code writes
			// columns of later versions).
			g := &usersync.Group{Name: "apps:team"}
			if err := old.db.QueryRowContext(ctx, old.q(`INSERT INTO groups (name, name_key, folder_key, source, created_at, updated_at, version) VALUES ('apps:team', 'apps:team', 'apps', 'local', 0, 0, 1) RETURNING id`)).Scan(&g.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := old.db.ExecContext(ctx, old.q(`INSERT INTO memberships (group_id, member_type, member_id, created_at) VALUES (?, 'user', ?, 0)`), g.ID, keep.ID); err != nil {
				t.Fatal(err)
			}
			clear, _, err := old.CreateToken(ctx, keep.ID, "t")
			if err != nil {
				t.Fatal(err)
			}
			if err := old.DeleteUser(ctx, gone.ID, 0); err != nil {
				t.Fatal(err)
			}
			old.Close()

			d := openDB(t, url)
			if u, err := d.Authenticate(ctx, clear); err != nil || u.ID != keep.ID {
				t.Fatalf("token after upgrade: %+v %v", u, err)
			}
			if members, n, err := d.Members(ctx, g.ID, 0, 10); err != nil || n != 1 || members[0].ID != keep.ID {
				t.Fatalf("members after upgrade: %v %d %v", members, n, err)
			}
			next := &usersync.User{Username: "yolanda", Enabled: true}
			if err := d.CreateUser(ctx, next); err != nil {
				t.Fatal(err)
			}
			if next.ID <= gone.ID {
				t.Fatalf("after the upgrade a new user got id %d; %d was deleted before it", next.ID, gone.ID)
			}
			// Deleting the user still deletes its tokens (foreign keys are on again).
			if err := d.DeleteUser(ctx, keep.ID, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Authenticate(ctx, clear); usersync.ErrorCode(err) != usersync.EUNAUTHORIZED {
				t.Fatalf("a deleted user's token: %v", err)
			}
		})
	}
}

// Migration 15: approvals approved before it were used again for every
// later action of the same plan; they count as used after the upgrade.
func TestMigrateApprovedAreUsed(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			ctx := context.Background()
			old, err := open(ctx, url, 14, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := old.db.Exec(`INSERT INTO provisioners (name, kind, config, secret, created_at, updated_at, version) VALUES ('o365u', 'users', '{}', '', 0, 0, 1)`); err != nil {
				t.Fatal(err)
			}
			if _, err := old.db.Exec(old.q(`INSERT INTO approvals (provisioner, user_id, username, action, reason, detail, plan_key, status, created_at, decided_by, decided_at)
				VALUES ('o365u', 1, 'a', 'create', '', '', 'k', 'approved', 0, 'admin', 0), ('o365u', 2, 'b', 'create', '', '', 'k', 'pending', 0, '', 0)`)); err != nil {
				t.Fatal(err)
			}
			old.Close()
			d := openDB(t, url)
			list, err := d.FindApprovals(ctx, "o365u", "")
			if err != nil || len(list) != 2 || list[0].Status != usersync.ApprovalUsed || list[1].Status != usersync.ApprovalPending {
				t.Fatalf("after the upgrade: %+v %v", list, err)
			}
		})
	}
}
