package benchtest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver sqlstore uses

	"github.com/usersync/usersync/sqlstore"
)

// BareInserts copies the rows of tables from the SQLite directory file
// from into an empty directory (the same schema) with one prepared
// single-row INSERT per row, in one transaction, through the same driver
// and with the pragmas that matter for writing: the floor for writing
// those rows, with no reads, no planning and nothing else. Only the
// inserts and the commit are timed. Users are copied in id order, as a
// sync created them; memberships user by user.
func BareInserts(b *testing.B, from string, tables ...string) time.Duration {
	ctx := context.Background()
	src, err := sql.Open("sqlite", "file:"+from+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	type table struct {
		name, insert string
		rows         [][]any
	}
	var copies []table
	for _, name := range tables {
		order := "rowid"
		if name == "memberships" {
			order = "member_id, group_id"
		}
		rows, err := src.QueryContext(ctx, "SELECT * FROM "+name+" ORDER BY "+order)
		if err != nil {
			b.Fatal(err)
		}
		cols, _ := rows.Columns()
		t := table{name: name, insert: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", name, strings.Join(cols, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			t.rows = append(t.rows, vals)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		copies = append(copies, t)
	}
	to := filepath.Join(b.TempDir(), "bare.db")
	d, err := sqlstore.Open(ctx, to) // the schema
	if err != nil {
		b.Fatal(err)
	}
	d.Close()
	dst, err := sql.Open("sqlite", "file:"+to+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=cache_size(-65536)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	dst.SetMaxOpenConns(1)
	// Rows the schema made (the Default Group) go first.
	if _, err := dst.ExecContext(ctx, "DELETE FROM memberships; DELETE FROM users; DELETE FROM groups; DELETE FROM changes"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range copies {
		st, err := tx.PrepareContext(ctx, t.insert)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range t.rows {
			if _, err := st.ExecContext(ctx, r...); err != nil {
				b.Fatalf("%s: %v", t.name, err)
			}
		}
		st.Close()
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
