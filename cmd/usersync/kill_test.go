package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// TestMain runs the command itself when the test binary is re-executed as a
// child (for kill tests), and otherwise starts the PostgreSQL test server.
func TestMain(m *testing.M) {
	if args := os.Getenv("USERSYNC_CLI_CHILD"); args != "" {
		os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(pgtest.Main(m))
}

// TestKillDuringSync kills `usersync o365 provision` in the middle of a
// sync, then runs it again: the directory converges to the tenant, with no
// user or change-log event duplicated and none lost.
func TestKillDuringSync(t *testing.T) {
	const users = 6000
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "d.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			for round, delay := range []time.Duration{30 * time.Millisecond, 120 * time.Millisecond, 300 * time.Millisecond} {
				db := dsn(t)
				tenant := graphemu.Generate(int64(40+round), users, 2)
				emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret, Latency: 25 * time.Millisecond})
				var pages atomic.Int64
				started := make(chan struct{})
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					emu.ServeHTTP(w, r)
					if strings.Contains(r.URL.Path, "/transitiveMembers/microsoft.graph.user") && !strings.HasSuffix(r.URL.Path, "$count") && pages.Add(1) == 1 {
						close(started)
					}
				}))
				args := []string{"--db", db, "o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1", "--client-secret", emuSecret,
					"--authority-url", srv.URL, "--graph-url", srv.URL, "-a", "all", "-q", "All Users"}
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "USERSYNC_CLI_CHILD="+strings.Join(args, "\x1f"))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-started:
				case <-time.After(30 * time.Second):
					t.Fatal("the child never fetched a page")
				}
				time.Sleep(delay)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				killedAt := countUsers(t, db)

				ok(t, cli(t, db, "", args[2:]...)) // the next run, in-process
				d, err := sqlstore.Open(context.Background(), db)
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				g, err := d.FindGroupByName(ctx, "All Users")
				if err != nil {
					t.Fatal(err)
				}
				_, members, _ := d.Members(ctx, g.ID, 0, 1)
				created, added := map[string]int{}, 0
				for after := int64(0); ; {
					cs, err := d.ChangesAfter(ctx, after, 10000)
					if err != nil {
						t.Fatal(err)
					}
					if len(cs) == 0 {
						break
					}
					for _, c := range cs {
						if c.Kind == usersync.UserCreated {
							created[c.Object.Name]++
						}
						if c.Kind == usersync.MemberAdded && c.Object.Name == "All Users" {
							added++
						}
					}
					after = cs[len(cs)-1].Seq
				}
				d.Close()
				srv.Close()
				n := countUsers(t, db)
				t.Logf("round %d: killed %v after the first page with %d users written; after the re-run %d users, %d members", round, delay, killedAt, n, members)
				if n != users || members != users || len(created) != users || added != users {
					t.Fatalf("after the re-run: %d users, %d members, %d created events, %d member.added events; want %d each", n, members, len(created), added, users)
				}
				for name, k := range created {
					if k != 1 {
						t.Fatalf("user %s created %d times in the change log", name, k)
					}
				}
			}
		})
	}
}

func countUsers(t *testing.T, db string) int {
	d, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, n, err := d.FindUsers(context.Background(), usersync.UserFilter{})
	if err != nil {
		t.Fatal(fmt.Errorf("count users: %w", err))
	}
	return n
}
