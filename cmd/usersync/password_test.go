package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/sqlstore"
)

// users set-password reads the password from standard input when it is no
// terminal, refuses a short one, stores only a bcrypt hash, and --clear
// removes it.
func TestSetPassword(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "users", "create", "--username", "root@example.com", "--type", "administrator"))
	fails(t, cli(t, db, "short\n", "users", "set-password", "root@example.com"), 1, "at least 12 characters")
	fails(t, cli(t, db, "", "users", "set-password", "root@example.com"), 1, "no password on standard input")
	fails(t, cli(t, db, "a long enough password\n", "users", "set-password", "nobody@example.com"), 1, "not found")
	if r := ok(t, cli(t, db, "a long enough password\n", "users", "set-password", "root@example.com")); !strings.Contains(r.stdout, "password set for root@example.com") {
		t.Fatalf("set: %s", r.stdout)
	}
	hash := func() string {
		d, err := sqlstore.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		_, st, err := d.SignInState(context.Background(), "root@example.com")
		if err != nil {
			t.Fatal(err)
		}
		return st.PasswordHash
	}
	if h := hash(); !strings.HasPrefix(h, "$2a$12$") || strings.Contains(h, "long enough") {
		t.Fatalf("stored password: %q", h)
	}
	// A new password, or none, ends the user's console sessions, and says so.
	session := func() string {
		d, err := sqlstore.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		u, _ := d.FindUserByUsername(context.Background(), "root@example.com")
		clear, _, err := d.CreateSession(context.Background(), u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return clear
	}
	live := func(clear string) bool {
		d, _ := sqlstore.Open(context.Background(), db)
		defer d.Close()
		_, err := d.FindSession(context.Background(), clear)
		return err == nil
	}
	s1, s2 := session(), session()
	if r := ok(t, cli(t, db, "another long password\n", "users", "set-password", "root@example.com")); !strings.Contains(r.stdout, "ended 2 console session(s) of root@example.com") {
		t.Fatalf("a new password: %s", r.stdout)
	}
	if live(s1) || live(s2) {
		t.Fatal("a session outlived the password change")
	}
	s3 := session()
	if r := ok(t, cli(t, db, "", "users", "set-password", "root@example.com", "--clear")); !strings.Contains(r.stdout, "ended 1 console session(s)") {
		t.Fatalf("--clear: %s", r.stdout)
	}
	if live(s3) {
		t.Fatal("a session outlived --clear")
	}
	if h := hash(); h != "" {
		t.Fatalf("after --clear: %q", h)
	}
}
