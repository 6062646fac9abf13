package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/usersync/usersync"
)

// BenchmarkBulkApply measures, in one run and on one database server:
//   - bare: a loop of prepared single-row INSERTs of the users and their
//     memberships in one transaction (the floor for the same driver);
//   - apply: ApplyBatch of the same users, each with one membership, into an
//     empty directory (change events included);
//   - reapply: the same batch again, which must write nothing.
//
// Run: go test ./sqlstore -run '^$' -bench BulkApply -benchtime 3x
func BenchmarkBulkApply(b *testing.B) {
	const n = 100_000
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var bare, apply, reapply time.Duration
			for i := 0; i < b.N; i++ {
				bare += timeBareInserts(b, backends()[name](b), n)
				d := openDB(b, backends()[name](b))
				batch := benchBatch(n)
				start := time.Now()
				res, err := d.ApplyBatch(context.Background(), batch)
				apply += time.Since(start)
				if err != nil || res.UsersCreated != n || res.MembersAdded != n {
					b.Fatalf("apply: %+v %v", res, err)
				}
				start = time.Now()
				res, err = d.ApplyBatch(context.Background(), benchBatch(n))
				reapply += time.Since(start)
				if err != nil || res.RowsWritten != 0 || res.UsersUnchanged != n {
					b.Fatalf("reapply wrote: %+v %v", res, err)
				}
				d.Close()
			}
			per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
			b.ReportMetric(per(bare), "bare-s")
			b.ReportMetric(per(apply), "apply-s")
			b.ReportMetric(per(reapply), "reapply-s")
			b.ReportMetric(float64(apply)/float64(bare), "apply/bare")
			b.ReportMetric(float64(reapply)/float64(apply), "reapply/apply")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func benchBatch(n int) *usersync.Batch {
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{{Group: usersync.Group{Name: "Bench", Source: "bench"}, Create: true}}}
	b.Users = make([]usersync.UserUpsert, n)
	b.Members = make([]usersync.MemberChange, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("user%06d@bench.example", i)
		b.Users[i] = usersync.UserUpsert{User: usersync.User{Username: name, Email: name, FirstName: "First", LastName: fmt.Sprint("Last", i),
			Enabled: true, Source: "bench", SourceID: fmt.Sprint("id-", i)}, Create: true, Update: usersync.ProfileFields}
		b.Members[i] = usersync.MemberChange{Group: "Bench", Username: name}
	}
	return b
}

// timeBareInserts inserts n users and n memberships with prepared
// single-row INSERTs in one transaction, as plainly as the driver allows.
func timeBareInserts(b *testing.B, dsn string, n int) time.Duration {
	d := openDB(b, dsn)
	defer d.Close()
	ctx := context.Background()
	g := &usersync.Group{Name: "Bench"}
	if err := d.CreateGroup(ctx, g); err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("user%06d@bench.example", i)
	}
	start := time.Now()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	users, err := tx.PrepareContext(ctx, d.q(`INSERT INTO users (id, username, username_key, email, first_name, last_name, user_type, enabled, auth_method, source, source_id, attributes, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		b.Fatal(err)
	}
	members, err := tx.PrepareContext(ctx, d.q(`INSERT INTO memberships (group_id, member_type, member_id, created_at) VALUES (?, ?, ?, ?)`))
	if err != nil {
		b.Fatal(err)
	}
	now := micros(time.Now())
	for i, name := range names {
		id := int64(1000 + i)
		if _, err := users.ExecContext(ctx, id, name, name, name, "First", fmt.Sprint("Last", i), "regular", true, "password", "bench", fmt.Sprint("id-", i), "{}", now, now, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := members.ExecContext(ctx, g.ID, "user", id, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
