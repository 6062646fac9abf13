package scim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/server"
	"github.com/usersync/usersync/sqlstore"
)

// BenchmarkCreateUser: POST /Users from 32 concurrent clients over
// loopback to a server on a SQLite file, in one process (for profiles; the
// figures in BENCHMARKS.md come from `usersync bench scim`, whose load runs
// in another process).
//
//	go test ./scim -run '^$' -bench CreateUser -cpuprofile cpu.out
func BenchmarkCreateUser(b *testing.B) {
	_, url, token := benchServer(b, nil)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	b.SetParallelism(16) // 32 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bench%d@x.example","externalId":"ext-%d",`+
				`"active":true,"name":{"givenName":"Bench","familyName":"User %d"},"emails":[{"type":"work","primary":true,"value":"bench%d@x.example"}]}`, i, i, i, i)
			req, _ := http.NewRequest("POST", url+server.SCIMPath+"/Users", bytes.NewReader([]byte(body)))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/scim+json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("POST /Users: %s", resp.Status)
				return
			}
		}
	})
}

// BenchmarkFilterUser: GET /Users?filter=userName eq "…" from 32 clients
// over loopback, in one process (for profiles), on 10,000 users.
//
//	go test ./scim -run '^$' -bench FilterUser -cpuprofile cpu.out
func BenchmarkFilterUser(b *testing.B) {
	const users int64 = 10000
	_, url, token := benchServer(b, func(d *sqlstore.DB) {
		batch := &usersync.Batch{Groups: []usersync.GroupUpsert{{Create: true, Group: usersync.Group{Name: "g"}}}}
		for i := int64(0); i < users; i++ {
			name := fmt.Sprintf("u%05d@x.example", i)
			batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Email: name, Enabled: true, Source: "scim", SourceID: name}})
			batch.Members = append(batch.Members, usersync.MemberChange{Group: "g", Username: name})
		}
		if _, err := d.ApplyBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, query := range []string{"", "&excludedAttributes=groups"} {
		b.Run("query="+query, func(b *testing.B) { benchFilter(b, hc, url, token, users, query) })
	}
}

// BenchmarkGetUser: GET /Users/{id} from 32 clients over loopback, in one
// process, on 10,000 users.
//
//	go test ./scim -run '^$' -bench GetUser -cpuprofile cpu.out
func BenchmarkGetUser(b *testing.B) {
	const users int64 = 10000
	d, url, token := benchServer(b, func(d *sqlstore.DB) {
		batch := &usersync.Batch{}
		for i := int64(0); i < users; i++ {
			name := fmt.Sprintf("u%05d@x.example", i)
			batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Email: name, Enabled: true, Source: "scim", SourceID: name}})
		}
		if _, err := d.ApplyBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	})
	first, err := d.FindUserByUsername(context.Background(), "u00000@x.example")
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := first.ID + n.Add(7919)%users
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s/Users/%d", url, server.SCIMPath, id), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("GET: %s", resp.Status)
				return
			}
		}
	})
}

func benchFilter(b *testing.B, hc *http.Client, url, token string, users int64, query string) {
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(7919) % users
			req, _ := http.NewRequest("GET", url+server.SCIMPath+fmt.Sprintf("/Users?filter=userName%%20eq%%20%%22u%05d%%40x.example%%22", i)+query, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"totalResults":1`)) {
				b.Errorf("GET: %s %s", resp.Status, body)
				return
			}
		}
	})
}

// benchServer serves SCIM over a fresh SQLite file with an administrator's
// token, after seed (if any) has filled the directory.
func benchServer(b *testing.B, seed func(*sqlstore.DB)) (*sqlstore.DB, string, string) {
	ctx := context.Background()
	d, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	admin := &usersync.User{Username: "scim-admin", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); err != nil {
		b.Fatal(err)
	}
	token, _, err := d.CreateToken(ctx, admin.ID, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if seed != nil {
		seed(d)
	}
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{}))
	b.Cleanup(srv.Close)
	return d, srv.URL, token
}

// BenchmarkPatchGroupMember: what Entra and Okta send for a membership
// change, PATCH /Groups/{id} adding one member, on groups of 10 and 10,000
// members, one client at a time (they send a group's changes in order).
//
//	go test ./scim -run '^$' -bench PatchGroupMember
func BenchmarkPatchGroupMember(b *testing.B) {
	for _, size := range []int{10, 10000} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			const spare = 20000 // users to add, more than any b.N run here
			d, url, token := benchServer(b, func(d *sqlstore.DB) {
				batch := &usersync.Batch{Groups: []usersync.GroupUpsert{{Create: true, Group: usersync.Group{Name: "g"}}}}
				for i := 0; i < size+spare; i++ {
					name := fmt.Sprintf("u%05d@x.example", i)
					batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Email: name, Enabled: true, Source: "scim", SourceID: name}})
					if i < size {
						batch.Members = append(batch.Members, usersync.MemberChange{Group: "g", Username: name})
					}
				}
				if _, err := d.ApplyBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			})
			g, err := d.FindGroupByName(context.Background(), "g")
			if err != nil {
				b.Fatal(err)
			}
			first, err := d.FindUserByUsername(context.Background(), fmt.Sprintf("u%05d@x.example", size))
			if err != nil {
				b.Fatal(err)
			}
			hc := &http.Client{}
			b.ResetTimer()
			for i := 0; i < b.N && i < spare; i++ {
				body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"%d"}]}]}`, first.ID+int64(i))
				req, _ := http.NewRequest("PATCH", fmt.Sprintf("%s%s/Groups/%d", url, server.SCIMPath, g.ID), bytes.NewReader([]byte(body)))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					b.Fatalf("PATCH: %s", resp.Status)
				}
			}
		})
	}
}

// BenchmarkGetLargeGroup: GET /Groups/{id} of a group of 10,000 members,
// one client over loopback (an Entra or Okta reconcile reads it so).
//
//	go test ./scim -run '^$' -bench GetLargeGroup -cpuprofile cpu.out
func BenchmarkGetLargeGroup(b *testing.B) {
	const users = 10000
	d, url, token := benchServer(b, func(d *sqlstore.DB) {
		batch := &usersync.Batch{Groups: []usersync.GroupUpsert{{Create: true, Group: usersync.Group{Name: "big"}}}}
		for i := 0; i < users; i++ {
			name := fmt.Sprintf("u%05d@x.example", i)
			batch.Users = append(batch.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Email: name, Enabled: true, Source: "scim", SourceID: name}})
			batch.Members = append(batch.Members, usersync.MemberChange{Group: "big", Username: name})
		}
		if _, err := d.ApplyBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	})
	g, err := d.FindGroupByName(context.Background(), "big")
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{}
	var size int64
	for b.Loop() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s/Groups/g%d", url, server.SCIMPath, g.ID), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		size, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET group: %s", resp.Status)
		}
	}
	b.ReportMetric(float64(size)/1e6, "MB")
}
