package graph

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/pull"
)

// These tests run the whole pull — emulator over loopback HTTP, client,
// engine, directory — on both storage backends.

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

// snapshot describes a directory group's members and their profiles, to
// compare a directory with another or with the tenant.
func snapshot(t *testing.T, d usersync.Directory, group string) []string {
	t.Helper()
	ctx := context.Background()
	g, err := d.FindGroupByName(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	members, _, err := d.Members(ctx, g.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range members {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%v|%s", u.Username, u.Email, u.FirstName, u.LastName, u.Enabled, u.Source))
	}
	sort.Strings(out)
	return out
}

// tenantSnapshot is the same description, made from the tenant.
func tenantSnapshot(tenant *graphemu.Tenant, groupID, owner string) []string {
	var out []string
	g, _ := tenant.Group(groupID)
	for _, id := range g.Members {
		u, ok := tenant.User(id)
		if !ok {
			continue
		}
		mail := ""
		if u.Mail != nil {
			mail = *u.Mail
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%v|%s", u.UserPrincipalName, mail, u.GivenName, u.Surname, u.AccountEnabled, owner))
	}
	sort.Strings(out)
	return out
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		n := 0
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				n = i
				break
			}
		}
		t.Fatalf("%s: %d members, want %d; first difference at %d: %q vs %q", what, len(got), len(want), n, at(got, n), at(want, n))
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

func TestIncrementalSync(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		tenant := graphemu.Generate(21, 1200, 3)
		emu, cfg := start(t, tenant, graphemu.Options{})
		src := NewSource(newClient(t, cfg), Mapping{})
		d := open(t)
		opts := pull.Options{AutoCreate: pull.CreateAll}
		grp := tenant.GroupsNamed("Group 1")[0] // 600 members
		all := tenant.GroupsNamed("All Users")[0]

		r, err := pull.Sync(ctx, d, src, "Group 1", opts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Mode != pull.ModeFull || r.Written.UsersCreated != 600 || !strings.Contains(r.FullReason, "first run") {
			t.Fatalf("first run: %+v", r)
		}
		same(t, "after the full read", snapshot(t, d, "Group 1"), tenantSnapshot(tenant, grp.ID, src.Owner()))

		// A no-op incremental run: no writes.
		seq, _ := d.LastChangeSeq(ctx)
		if r, err = pull.Sync(ctx, d, src, "Group 1", opts); err != nil || r.Mode != pull.ModeIncremental || r.Written.RowsWritten != 0 {
			t.Fatalf("no-op run: %+v %v", r, err)
		}
		if s, _ := d.LastChangeSeq(ctx); s != seq {
			t.Fatal("a no-op incremental run logged changes")
		}

		// Joiners (existing tenant users, outside the group), leavers, profile
		// changes of members, a changed user outside the group and a new user.
		inGroup := map[string]bool{}
		for _, id := range grp.Members {
			inGroup[id] = true
		}
		var outside []string
		for _, id := range all.Members {
			if !inGroup[id] {
				outside = append(outside, id)
			}
		}
		for _, id := range outside[:30] {
			tenant.AddMember(grp.ID, id)
		}
		for _, id := range grp.Members[:20] {
			tenant.RemoveMember(grp.ID, id)
		}
		for _, id := range grp.Members[20:45] {
			tenant.UpdateUser(id, func(u *graphemu.User) { u.Surname += "-changed"; u.AccountEnabled = !u.AccountEnabled })
		}
		tenant.UpdateUser(outside[100], func(u *graphemu.User) { u.Surname = "Not a member" })
		mail := "new@contoso.example"
		tenant.AddUser(graphemu.User{ID: "00000000-0000-4000-8000-0000000000aa", UserPrincipalName: "new@contoso.example", Mail: &mail, AccountEnabled: true})
		tenant.AddMember(grp.ID, "00000000-0000-4000-8000-0000000000aa")

		before := emu.Requests()["http"]
		r, err = pull.Sync(ctx, d, src, "Group 1", opts)
		if err != nil {
			t.Fatal(err)
		}
		c := r.Counts
		if r.Mode != pull.ModeIncremental || c[pull.AddMember] != 31 || c[pull.RemoveMember] != 20 || c[pull.UpdateUser] != 25 || c[pull.CreateUser] != 31 {
			t.Fatalf("incremental run: %+v", r)
		}
		// group delta + users delta + find group + 2 $batch for 30 joiners.
		if n := emu.Requests()["http"] - before; n > 5 {
			t.Fatalf("incremental run made %d Graph requests", n)
		}
		same(t, "after the incremental run", snapshot(t, d, "Group 1"), tenantSnapshot(tenant, grp.ID, src.Owner()))
		if _, err := d.FindUserByUsername(ctx, "new@contoso.example"); err != nil {
			t.Fatal("the new user was not created")
		}

		// The same state in a fresh directory by a full read: identical.
		d2 := open(t)
		if _, err := pull.Sync(ctx, d2, src, "Group 1", opts); err != nil {
			t.Fatal(err)
		}
		same(t, "incremental vs full", snapshot(t, d, "Group 1"), snapshot(t, d2, "Group 1"))

		// --full reads everything again and changes nothing.
		o := opts
		o.Full = true
		if r, err = pull.Sync(ctx, d, src, "Group 1", o); err != nil || r.Mode != pull.ModeFull || r.Written.RowsWritten != 0 || r.FullReason != "--full-read" {
			t.Fatalf("--full: %+v %v", r, err)
		}
		// Other options: a full read.
		o = opts
		o.SkipDefaultGroup = true
		if r, err = pull.Sync(ctx, d, src, "Group 1", o); err != nil || r.Mode != pull.ModeFull || !strings.Contains(r.FullReason, "options") {
			t.Fatalf("changed options: %+v %v", r, err)
		}

		// An expired delta token: the run falls back to a full read by itself.
		tenant.ExpireDeltaTokens()
		tenant.RemoveMember(grp.ID, outside[0])
		r, err = pull.Sync(ctx, d, src, "Group 1", o)
		if err != nil || r.Mode != pull.ModeFull || !strings.Contains(r.FullReason, "expired") || r.Counts[pull.RemoveMember] != 1 {
			t.Fatalf("expired token: %+v %v", r, err)
		}
		if r, err = pull.Sync(ctx, d, src, "Group 1", o); err != nil || r.Mode != pull.ModeIncremental {
			t.Fatalf("after the fallback the next run is incremental again: %+v %v", r, err)
		}
		same(t, "after the fallback", snapshot(t, d, "Group 1"), tenantSnapshot(tenant, grp.ID, src.Owner()))
	})
}

func TestNestedGroupsAlwaysFull(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		tenant := graphemu.Generate(22, 40, 1)
		all := tenant.GroupsNamed("All Users")[0]
		tenant.AddGroup(graphemu.Group{ID: "11111111-0000-4000-8000-000000000001", DisplayName: "Inner", Members: all.Members[:5]})
		tenant.AddGroup(graphemu.Group{ID: "11111111-0000-4000-8000-000000000002", DisplayName: "Outer", Members: []string{all.Members[10], "11111111-0000-4000-8000-000000000001"}})
		_, cfg := start(t, tenant, graphemu.Options{})
		src := NewSource(newClient(t, cfg), Mapping{})
		d := open(t)
		opts := pull.Options{AutoCreate: pull.CreateAll}
		if r, err := pull.Sync(ctx, d, src, "Outer", opts); err != nil || r.Written.MembersAdded < 6 {
			t.Fatalf("first run: %+v %v", r, err)
		}
		// A change inside the nested group reaches the outer one on the next run.
		tenant.AddMember("11111111-0000-4000-8000-000000000001", all.Members[20])
		r, err := pull.Sync(ctx, d, src, "Outer", opts)
		if err != nil || r.Mode != pull.ModeFull || !strings.Contains(r.FullReason, "nested") || r.Counts[pull.AddMember] != 1 {
			t.Fatalf("nested change: %+v %v", r, err)
		}
	})
}

func TestSyncThroughFaults(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		tenant := graphemu.Generate(23, 3000, 2)
		// Throttled past 5 requests per 20 ms window, 30% of requests fail
		// with 503, and the access token expires after the second page.
		emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: secret, RequestBudget: 5, Window: 20 * time.Millisecond, FailRate: 0.3, Seed: 5})
		// Besides the emulator's own (timing-dependent) throttling, every
		// fourth Graph request is answered 429 here, so throttling always happens.
		pages, expired, graphCalls, throttled := 0, false, 0, 0
		var mu sync.Mutex // requests come concurrently (the count beside the delta start)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if strings.HasPrefix(r.URL.Path, "/v1.0/") {
				if graphCalls++; graphCalls%4 == 0 {
					throttled++
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					w.Write([]byte(`{"error":{"code":"TooManyRequests","message":"Too many requests."}}`))
					return
				}
			}
			if strings.Contains(r.URL.Path, "/transitiveMembers/") && !strings.HasSuffix(r.URL.Path, "$count") {
				if pages++; pages == 3 {
					emu.ExpireTokens()
					expired = true
				}
			}
			emu.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		cfg := msgraph.Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: tenant.ID, ClientID: "app-1", ClientSecret: secret, MaxRetries: 50,
			Sleep: func(ctx context.Context, d time.Duration) error { time.Sleep(time.Millisecond); return nil }}
		src := NewSource(newClient(t, cfg), Mapping{})
		d := open(t)
		opts := pull.Options{AutoCreate: pull.CreateAll, SyncUserLimit: 10000}
		r, err := pull.Sync(ctx, d, src, "All Users", opts)
		if err != nil {
			t.Fatal(err)
		}
		req := emu.Requests()
		mu.Lock()
		defer mu.Unlock()
		if throttled == 0 || req["503"] == 0 || req["token"] < 2 || !expired {
			t.Fatalf("the faults did not happen: %v", req)
		}
		if r.Written.UsersCreated != 3000 {
			t.Fatalf("created %d users", r.Written.UsersCreated)
		}
		all := tenant.GroupsNamed("All Users")[0]
		same(t, "through faults", snapshot(t, d, "All Users"), tenantSnapshot(tenant, all.ID, src.Owner()))
	})
}

// TestGraphURLChanged: delta links saved under one Graph URL are not
// followed when the run names another (they would carry the access token
// to the old host); the run reads in full and says why.
func TestGraphURLChanged(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) { testGraphURLChanged(t, open(t)) })
}

func testGraphURLChanged(t *testing.T, d usersync.Directory) {
	ctx := context.Background()
	tenant := graphemu.Generate(23, 60, 2)
	old, cfg := start(t, tenant, graphemu.Options{})
	opts := pull.Options{AutoCreate: pull.CreateAll}
	if _, err := pull.Sync(ctx, d, NewSource(newClient(t, cfg), Mapping{}), "Group 1", opts); err != nil {
		t.Fatal(err)
	}
	_, cfg2 := start(t, tenant, graphemu.Options{})
	before := old.Requests()["http"]
	r, err := pull.Sync(ctx, d, NewSource(newClient(t, cfg2), Mapping{}), "Group 1", opts)
	if err != nil || r.Mode != pull.ModeFull || !strings.Contains(r.FullReason, "Graph URL") {
		t.Fatalf("run against another Graph URL: %+v %v", r, err)
	}
	if n := old.Requests()["http"] - before; n != 0 {
		t.Fatalf("the old Graph URL got %d requests", n)
	}
	r, err = pull.Sync(ctx, d, NewSource(newClient(t, cfg2), Mapping{}), "Group 1", opts)
	if err != nil || r.Mode != pull.ModeIncremental {
		t.Fatalf("the next run is incremental under the new URL: %+v %v", r, err)
	}
}

// Changing or dropping an option that shapes results forces a full read
// that says which option changed, re-applies it, and removes what a
// dropped option had filled.
func TestOptionChangeForcesFullRead(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		tenant := graphemu.Generate(31, 60, 2)
		_, cfg := start(t, tenant, graphemu.Options{})
		client := newClient(t, cfg)
		d := open(t)
		opts := pull.Options{AutoCreate: pull.CreateAll}
		grp := tenant.GroupsNamed("Group 1")[0]
		first, _ := tenant.User(grp.Members[0])
		get := func() *usersync.User {
			u, err := d.FindUserByUsername(ctx, first.UserPrincipalName)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		tr, _ := ParseTransformations(`[{'attr_name': 'trusted_server_username', 'action': '^([^@]+)@'}]`)
		m := Mapping{TrustedServerUsernameAttr: "userPrincipalName", Transformations: tr}
		if _, err := pull.Sync(ctx, d, NewSource(client, m), "Group 1", opts); err != nil {
			t.Fatal(err)
		}
		local, _, _ := strings.Cut(first.UserPrincipalName, "@")
		if got := get().Attributes["trusted_server_username"]; got != local {
			t.Fatalf("transformed attribute: %q, want %q", got, local)
		}
		// Only the transformation changes: a full read that says so.
		m.Transformations, _ = ParseTransformations(`[{'attr_name': 'trusted_server_username', 'action': '^(.{3})'}]`)
		r, err := pull.Sync(ctx, d, NewSource(client, m), "Group 1", opts)
		if err != nil || r.Mode != pull.ModeFull || !strings.Contains(r.FullReason, "--attributes-transformation") || strings.Contains(r.FullReason, "expired") {
			t.Fatalf("changed transformation: %+v %v", r, err)
		}
		if got := get().Attributes["trusted_server_username"]; got != first.UserPrincipalName[:3] {
			t.Fatalf("re-applied transformation: %q", got)
		}
		// The option is dropped: the attribute it filled goes.
		r, err = pull.Sync(ctx, d, NewSource(client, Mapping{}), "Group 1", opts)
		if err != nil || !strings.Contains(r.FullReason, "--trusted-server-username-attr") {
			t.Fatalf("dropped option: %+v %v", r, err)
		}
		if _, has := get().Attributes["trusted_server_username"]; has {
			t.Fatalf("attribute of a dropped option kept: %v", get().Attributes)
		}
		if r, err = pull.Sync(ctx, d, NewSource(client, Mapping{}), "Group 1", opts); err != nil || r.Mode != pull.ModeIncremental || r.Written.RowsWritten != 0 {
			t.Fatalf("next run: %+v %v", r, err)
		}
	})
}

// Two Entra groups into one --target-group: incremental and full runs of
// the same command give the same union.
func TestTargetGroupUnionIncrementalEqualsFull(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		tenant := graphemu.Generate(32, 200, 4)
		_, cfg := start(t, tenant, graphemu.Options{})
		src := NewSource(newClient(t, cfg), Mapping{})
		g1, g2 := tenant.GroupsNamed("Group 1")[0], tenant.GroupsNamed("Group 2")[0]
		opts := pull.Options{AutoCreate: pull.CreateAll, TargetGroup: "T"}
		provision := func(d usersync.Directory, o pull.Options) {
			t.Helper()
			for _, g := range []string{"Group 1", "Group 2"} {
				if _, err := pull.Sync(ctx, d, src, g, o); err != nil {
					t.Fatal(err)
				}
			}
		}
		union := func() []string {
			seen := map[string]bool{}
			var out []string
			for _, g := range []string{g1.ID, g2.ID} {
				for _, line := range tenantSnapshot(tenant, g, src.Owner()) {
					if !seen[line] {
						seen[line] = true
						out = append(out, line)
					}
				}
			}
			sort.Strings(out)
			return out
		}
		inc, full := open(t), open(t)
		provision(inc, opts)
		same(t, "first runs", snapshot(t, inc, "T"), union())
		// Members leave one group, some of them still in the other.
		g1now, _ := tenant.Group(g1.ID)
		g2now, _ := tenant.Group(g2.ID)
		inBoth := 0
		for _, id := range g1now.Members {
			if contains(g2now.Members, id) && inBoth < 5 {
				tenant.RemoveMember(g1.ID, id)
				inBoth++
			}
		}
		tenant.RemoveMember(g2.ID, g2now.Members[len(g2now.Members)-1])
		tenant.AddMember(g1.ID, g2now.Members[0])
		if inBoth == 0 {
			t.Fatal("the generated groups share no member")
		}
		provision(inc, opts)
		o := opts
		o.Full = true
		provision(full, o)
		same(t, "incremental", snapshot(t, inc, "T"), union())
		same(t, "incremental vs full", snapshot(t, inc, "T"), snapshot(t, full, "T"))
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
