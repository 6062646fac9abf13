package sqlstore

import (
	"context"
	"fmt"
	"slices"
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

// BenchmarkEffectiveMembers: a group of 100 nested groups of 1,000 users
// each (100,000 effective members); one op counts them and reads the first
// page of 100, each one recursive query; direct-members for comparison on
// a plain group of the same 100,000 users.
//
// Run: go test ./sqlstore -run '^$' -bench EffectiveMembers -benchtime 20x
func BenchmarkEffectiveMembers(b *testing.B) {
	const groups, each = 100, 1000
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			d := openDB(b, backends()[name](b))
			defer d.Close()
			batch := &usersync.Batch{Groups: []usersync.GroupUpsert{{Group: usersync.Group{Name: "Flat", Source: "bench"}, Create: true}}}
			for g := 0; g < groups; g++ {
				batch.Groups = append(batch.Groups, usersync.GroupUpsert{Group: usersync.Group{Name: fmt.Sprint("Part ", g), Source: "bench"}, Create: true})
				for i := 0; i < each; i++ {
					name := fmt.Sprintf("u%03d-%04d@bench.example", g, i)
					batch.Users = append(batch.Users, usersync.UserUpsert{User: usersync.User{Username: name, Enabled: true, Source: "bench", SourceID: name}, Create: true})
					batch.Members = append(batch.Members, usersync.MemberChange{Group: fmt.Sprint("Part ", g), Username: name}, usersync.MemberChange{Group: "Flat", Username: name})
				}
			}
			if _, err := d.ApplyBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			top := &usersync.Group{Name: "Top"}
			var parts []int64
			for g := 0; g < groups; g++ {
				p, _ := d.FindGroupByName(ctx, fmt.Sprint("Part ", g))
				parts = append(parts, p.ID)
			}
			if err := d.CreateGroupWith(ctx, top, usersync.GroupChange{AddGroups: parts}); err != nil {
				b.Fatal(err)
			}
			flat, _ := d.FindGroupByName(ctx, "Flat")
			for _, c := range []struct {
				name string
				list func(context.Context, int64, int, int) ([]*usersync.User, int, error)
				id   int64
			}{{"effective", d.EffectiveMembers, top.ID}, {"direct", d.Members, flat.ID}} {
				b.Run(c.name, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						users, total, err := c.list(ctx, c.id, 0, 100)
						if err != nil || total != groups*each || len(users) != 100 {
							b.Fatalf("%d of %d: %v", len(users), total, err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkUserSearch: the console's and the API's search box over 100,000
// users — a one-hit search, a search of a common part of the email (a page
// of 50 with the total), and a two-letter one (no index) — on both
// backends; p99 over the iterations.
//
//	go test ./sqlstore -run '^$' -bench BenchmarkUserSearch -benchtime 200x
func BenchmarkUserSearch(b *testing.B) {
	const n = 100_000
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			d := openDB(b, backends()[name](b))
			ctx := context.Background()
			for start := 0; start < n; start += 5000 {
				batch := &usersync.Batch{}
				for i := start; i < start+5000; i++ {
					batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: fmt.Sprintf("user%06d@corp.example", i),
						Email: fmt.Sprintf("first%d.last%d@mail.example", i%997, i), FirstName: fmt.Sprintf("First%d", i%997), LastName: fmt.Sprintf("Last%d", i), Enabled: true}})
				}
				if _, err := d.ApplyBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			for _, c := range []struct {
				name, q string
				hits    int
			}{{"one-hit", "user054321", 1}, {"page", "first42.", 101}, {"two-letters", "zq", 0}} {
				b.Run(c.name, func(b *testing.B) {
					lat := make([]time.Duration, 0, b.N)
					for b.Loop() {
						start := time.Now()
						us, total, err := d.FindUsers(ctx, usersync.UserFilter{Search: c.q, Limit: 50})
						lat = append(lat, time.Since(start))
						if err != nil || total != c.hits || len(us) != min(c.hits, 50) {
							b.Fatalf("search %q: %d of %d, %v", c.q, len(us), total, err)
						}
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}

// BenchmarkSources: the owners of 100,000 users, as every pull asks
// (pull.Adopt) before it starts.
//
//	go test ./sqlstore -run '^$' -bench BenchmarkSources
func BenchmarkSources(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			d := openDB(b, backends()[name](b))
			ctx := context.Background()
			for start := 0; start < 100_000; start += 5000 {
				batch := &usersync.Batch{}
				for i := start; i < start+5000; i++ {
					batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: fmt.Sprintf("u%06d@x.example", i),
						Source: fmt.Sprintf("o365:tenant-%d", i%3), SourceID: fmt.Sprint(i), Enabled: true}})
				}
				if _, err := d.ApplyBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if s, err := d.Sources(ctx); err != nil || len(s) != 4 {
					b.Fatalf("%v %v", s, err)
				}
			}
		})
	}
}
