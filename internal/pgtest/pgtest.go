// Package pgtest runs a throwaway PostgreSQL server for tests, so that the
// storage suite always runs against a real server and a green run means
// both backends passed. Call Main from TestMain and NewDatabase from tests.
//
// When USERSYNC_TEST_POSTGRES_URL is set, that server is used instead of
// starting one.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// Server is a running PostgreSQL server.
type Server struct {
	URL  string // superuser URL of the maintenance database
	dir  string
	cmd  *exec.Cmd
	next atomic.Int64
}

var shared *Server

// Main starts a server (unless USERSYNC_TEST_POSTGRES_URL names one), runs
// the tests, stops the server and returns the exit code for os.Exit.
func Main(m *testing.M) int {
	if url := os.Getenv("USERSYNC_TEST_POSTGRES_URL"); url != "" {
		shared = &Server{URL: url}
		return m.Run()
	}
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	shared = s
	// Processes this one starts share the server: a fuzz target's workers
	// are copies of this test binary and would each start one of their own.
	os.Setenv("USERSYNC_TEST_POSTGRES_URL", s.URL)
	code := m.Run()
	s.Stop()
	return code
}

// SecretKey is a key for sealing secret settings in test directories on
// PostgreSQL, which have no key file of their own (see sqlstore.Options).
const SecretKey = "dGVzdC1vbmx5LXNlY3JldC1rZXktMzItYnl0ZXMhISE="

// NewDatabase creates an empty database on the shared server, dropped when
// the test ends, and returns its URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	if shared == nil {
		tb.Fatal("pgtest: no server; call pgtest.Main from TestMain")
	}
	url, drop, err := shared.NewDatabase()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(drop)
	return url
}

// NewDatabase creates an empty database and returns its URL and a function
// that drops it.
func (s *Server) NewDatabase() (string, func(), error) {
	name := fmt.Sprintf("usersync_test_%d_%d", os.Getpid(), s.next.Add(1))
	admin, err := sql.Open("pgx", s.URL)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database: %w", err)
	}
	u := withDatabase(s.URL, name)
	drop := func() {
		admin, err := sql.Open("pgx", s.URL)
		if err == nil {
			admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
			admin.Close()
		}
	}
	return u, drop, nil
}

func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic("pgtest: server URL " + dsn + ": " + err.Error()) // ours, or the caller's env: a setup mistake
	}
	u.Path = "/" + name
	return u.String()
}

// Start initialises a data directory in a temporary folder and starts a
// server on a free loopback port. PostgreSQL refuses to run as root, so as
// root it runs as the "postgres" user.
func Start() (*Server, error) {
	initdb, err := findBinary("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := findBinary("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "usersync-pg-")
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		pu, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(pu.Uid)
		gid, _ := strconv.Atoi(pu.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		log, _ := os.Create(filepath.Join(dir, "postgres.log"))
		cmd = exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
			// A test server: durability across power loss is not under test
			// (process kills are, and they need no fsync).
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
		cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, dir
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		s := &Server{URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), dir: dir, cmd: cmd}
		if err := s.waitReady(30 * time.Second); err == nil {
			return s, nil
		} else if attempt == 2 {
			s.Stop()
			return nil, err
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
}

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		db, err := sql.Open("pgx", s.URL)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			logText, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres did not accept connections within %v: %v\n%s", limit, err, logText)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down fast and removes its files.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT) // "fast" shutdown
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}

func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", errors.New(name + " not found: install PostgreSQL (scripts/test does: apt-get install postgresql)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
