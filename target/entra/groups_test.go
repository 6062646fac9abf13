package entra

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
)

// A group under a marked folder is created in Entra with its members and
// followed: member changes, a rename, a description, its deletion.
func TestGroupLifecycle(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, nil)
		e.mark("app:test")
		e.group("app:test:g1", "alice", "bob")
		e.group("app:other:g2", "alice") // not covered
		r := e.run()
		if r.Counts[CreateGroup] != 1 || e.remoteCount() != 1 {
			t.Fatalf("created %d groups (%d in Entra), want 1: %+v", r.Counts[CreateGroup], e.remoteCount(), r.Actions)
		}
		g := e.remote("app:test:g1")
		if g.DisplayName != "app:test:g1" || g.MailNickname != "app-test-g1" || g.MailEnabled || g.SecurityEnabled == nil || !*g.SecurityEnabled || len(g.GroupTypes) != 0 {
			t.Fatalf("Entra group: %+v", g)
		}
		e.wantMembers("app:test:g1", "alice", "bob")
		if w := e.emu.Writes(); w["PATCH /groups(uniqueName)"] != 1 || len(w) != 1 {
			t.Fatalf("two members are bound at creation, with no other write: %v", w)
		}

		e.addMembers("app:test:g1", "carol", "dave")
		e.removeMembers("app:test:g1", "alice")
		r = e.run()
		e.wantMembers("app:test:g1", "bob", "carol", "dave")
		if r.Counts[AddMember] != 2 || r.Counts[RemoveMember] != 1 {
			t.Fatalf("counts: %v", r.Counts)
		}

		before := e.emu.Writes()
		if r := e.run(); r.Events != 0 || !mapsEqual(e.emu.Writes(), before) {
			t.Fatalf("a run with nothing to do wrote: %+v %v", r, e.emu.Writes())
		}

		grp := e.find("app:test:g1")
		if _, err := e.dir.UpdateGroup(ctx, grp.ID, usersync.GroupUpdate{Name: ptr("app:test:g1-renamed"), Description: ptr("Testing of Azure Security Groups")}, 0); err != nil {
			t.Fatal(err)
		}
		r = e.run()
		g = e.remote("app:test:g1-renamed")
		if r.Counts[UpdateGroup] != 1 || g.DisplayName != "app:test:g1-renamed" || g.Description != "Testing of Azure Security Groups" || g.MailNickname != "app-test-g1-renamed" {
			t.Fatalf("after rename: %+v %v", g, r.Counts)
		}
		if e.remoteCount() != 1 {
			t.Fatal("a rename made a second Entra group")
		}

		remoteID := g.ID
		if err := e.dir.DeleteGroup(ctx, grp.ID, 0); err != nil {
			t.Fatal(err)
		}
		r = e.run()
		if _, ok := e.tenant.Group(remoteID); ok || r.Counts[DeleteGroup] != 1 {
			t.Fatalf("deleted in the directory, still in Entra: %v", r.Counts)
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Removing the marker stops the sync and keeps the Entra group; marking
// again reconciles what changed meanwhile. A group deleted while unmarked
// keeps its Entra group too.
func TestUnmarkAndMarkAgain(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, nil)
		marker := e.p.Config.SyncAttribute
		e.group("app:g1", "alice")
		e.setGroupAttr("app:g1", marker, ptr("yes"))
		e.run()
		e.wantMembers("app:g1", "alice")

		e.setGroupAttr("app:g1", marker, nil)
		e.addMembers("app:g1", "bob")
		r := e.run()
		if len(kinds(r, StopGroup)) != 1 || r.Counts[AddMember] != 0 {
			t.Fatalf("after unmarking: %+v", r.Actions)
		}
		e.wantMembers("app:g1", "alice")

		e.setGroupAttr("app:g1", marker, ptr("yes"))
		r = e.run()
		if r.Counts[CreateGroup] != 0 || e.remoteCount() != 1 {
			t.Fatalf("marked again: made a new group: %+v", r.Actions)
		}
		e.wantMembers("app:g1", "alice", "bob")

		// A folder's marker: removing it stops every group below.
		e.mark("app:f")
		e.group("app:f:g2", "carol")
		e.run()
		v := e.remote("app:f:g2").ID
		if _, err := e.dir.SetFolderAttributes(ctx, "app:f", map[string]*string{marker: nil}); err != nil {
			t.Fatal(err)
		}
		if r := e.run(); len(kinds(r, StopGroup)) != 1 {
			t.Fatalf("folder unmarked: %+v", r.Actions)
		}
		if err := e.dir.DeleteGroup(ctx, e.find("app:f:g2").ID, 0); err != nil {
			t.Fatal(err)
		}
		if r := e.run(); r.Counts[DeleteGroup] != 0 {
			t.Fatalf("an unmarked group's deletion deleted its Entra group: %+v", r.Actions)
		}
		if _, ok := e.tenant.Group(v); !ok {
			t.Fatal("the Entra group of an unmarked group is gone")
		}
	})
}

// The seed's marker race: whatever order the group's creation, its members
// and the marker arrive in, and whether a run falls between them, the
// group ends up in Entra with all its members, once.
func TestMarkerRace(t *testing.T) {
	steps := map[string]func(e *env){
		"create":  func(e *env) { e.group("app:race:g", "alice") },
		"members": func(e *env) { e.addMembers("app:race:g", "bob", "carol") },
		"mark":    func(e *env) { e.mark("app:race") },
		"markGroup": func(e *env) {
			e.setGroupAttr("app:race:g", e.p.Config.SyncAttribute, ptr("x"))
		},
	}
	orders := [][]string{
		{"create", "members", "mark"},
		{"create", "mark", "members"},
		{"mark", "create", "members"},
		{"create", "markGroup", "members"},
		{"create", "members", "markGroup"},
	}
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		for _, order := range orders {
			for _, between := range []bool{false, true} {
				name := strings.Join(order, ",")
				if between {
					name += "/run-between"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, open(t), graphemu.Options{}, nil)
					for _, s := range order {
						steps[s](e)
						if between {
							e.run()
						}
					}
					e.run()
					e.wantMembers("app:race:g", "alice", "bob", "carol")
					if e.remoteCount() != 1 {
						t.Fatalf("%d Entra groups, want 1", e.remoteCount())
					}
				})
			}
		}
	})
}

// Two provisioners side by side, each with its own marker, settings,
// tenant and remote id attribute: a group under both is pushed to both.
func TestTwoProvisioners(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		sec := newEnv(t, open(t), graphemu.Options{}, nil)
		uni := sec.another(t, "uni", func(c *usersync.ProvisionerConfig) {
			c.SyncAttribute, c.GroupType, c.Visibility = "etc:attribute:office365:unifiedSync", "Unified", "Private"
			c.MailNicknameJexl = `group.extension`
		})
		sec.mark("app:sec")
		uni.mark("app:uni")
		sec.mark("app:both")
		uni.mark("app:both")
		sec.group("app:sec:s1", "alice")
		sec.group("app:uni:u1", "bob")
		sec.group("app:both:b1", "carol")
		sec.run()
		uni.run()

		names := func(e *env) []string {
			var out []string
			for _, g := range e.tenant.Groups() {
				out = append(out, g.DisplayName)
			}
			slices.Sort(out)
			return out
		}
		if got := names(sec); !slices.Equal(got, []string{"app:both:b1", "app:sec:s1"}) {
			t.Fatalf("security tenant holds %v", got)
		}
		if got := names(uni); !slices.Equal(got, []string{"app:both:b1", "app:uni:u1"}) {
			t.Fatalf("unified tenant holds %v", got)
		}
		u := uni.remote("app:uni:u1")
		if !slices.Equal(u.GroupTypes, []string{"Unified"}) || !u.MailEnabled || u.SecurityEnabled == nil || *u.SecurityEnabled || u.Visibility != "Private" || u.MailNickname != "u1" {
			t.Fatalf("Unified group: %+v", u)
		}
		b := sec.find("app:both:b1")
		if b.Attributes[usersync.DefaultRemoteIDAttr] == "" || b.Attributes[usersync.DefaultRemoteIDAttr+":uni"] == "" ||
			b.Attributes[usersync.DefaultRemoteIDAttr] == b.Attributes[usersync.DefaultRemoteIDAttr+":uni"] {
			t.Fatalf("remote ids on the group pushed twice: %v", b.Attributes)
		}
		sec.addMembers("app:both:b1", "dave")
		sec.run()
		uni.run()
		sec.wantMembers("app:both:b1", "carol", "dave")
		uni.wantMembers("app:both:b1", "carol", "dave")
	})
}

// another is a second provisioner named name over the same directory and
// its own emulated tenant.
func (e *env) another(t *testing.T, name string, setup func(*usersync.ProvisionerConfig)) *env {
	t.Helper()
	o := newEnvTenant(t, graphemu.Options{})
	o.dir, o.users, o.now = e.dir, e.users, e.now
	p := &usersync.Provisioner{Name: name, Kind: usersync.ProvisionerGroups,
		Config: usersync.ProvisionerConfig{TenantID: tenantID, ClientID: "app-1", Domain: "contoso.com", RetryOnError: true}}
	setup(&p.Config)
	if err := e.dir.CreateProvisioner(ctx, p, secret); err != nil {
		t.Fatal(err)
	}
	o.p = p
	return o
}

// A member's principal name: upnAttribute as it is, else the subject
// expression, else idAttribute@domain; a member with none, or one that is
// no user in the tenant, fails alone with its reason.
func TestPrincipalNames(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, func(c *usersync.ProvisionerConfig) {
			c.UPNAttribute = "azurePrincipal"
			c.SubjectJexl = `subjectIdValue + '@' + ({'WGA': 'wga.example.edu', 'WGR': 'wgr.example.edu'}.get(subject.getAttributeValue('school')) ?: 'contoso.com')`
		})
		e.tenant.AddUser(graphemu.User{ID: "id-asmith", UserPrincipalName: "a.smith@contoso.com"})
		e.tenant.AddUser(graphemu.User{ID: "id-bob-wga", UserPrincipalName: "bob@wga.example.edu"})
		e.setUserAttr("alice", "azurePrincipal", "A.Smith@contoso.com")
		e.setUserAttr("bob", "school", "WGA")
		e.mark("app")
		e.group("app:g", "alice", "bob", "carol", "erin")
		r := e.run()
		e.wantMembers("app:g", "asmith", "bob-wga", "carol")
		failed := kinds(r, FailMember)
		if len(failed) != 1 || failed[0].Member != "erin@contoso.com" || !strings.Contains(failed[0].Reason, "not a user in tenant") {
			t.Fatalf("failed members: %+v", failed)
		}
		if len(r.Failures) != 0 {
			t.Fatalf("a failed member failed its group: %+v", r.Failures)
		}

		// idAttribute from a custom attribute: a user without it has no name.
		e2 := e.another(t, "byid", func(c *usersync.ProvisionerConfig) {
			c.SyncAttribute, c.IDAttribute = "etc:attribute:byIdSync", "employeeNumber"
		})
		e2.tenant.AddUser(graphemu.User{ID: "id-e42", UserPrincipalName: "e42@contoso.com"})
		e.setUserAttr("dave", "employeeNumber", "e42")
		e2.mark("app2")
		e2.group("app2:g", "dave", "carol")
		r = e2.run()
		e2.wantMembers("app2:g", "e42")
		failed = kinds(r, FailMember)
		if len(failed) != 1 || failed[0].Member != "carol@contoso.com" || !strings.Contains(failed[0].Reason, "all blank") {
			t.Fatalf("failed members: %+v", failed)
		}
	})
}

func (e *env) setUserAttr(uid, attr, v string) {
	e.t.Helper()
	if _, err := e.dir.UpdateUser(ctx, e.users[uid].ID, usersync.UserUpdate{Attributes: map[string]*string{attr: &v}}, 0); err != nil {
		e.t.Fatal(err)
	}
}

// Graph's limits are checked before any call: a group whose name or
// description does not fit fails alone, with a message saying which limit.
func TestLimitsCheckedFirst(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, func(c *usersync.ProvisionerConfig) {
			c.GroupJexl = `group.extension == 'long' ? group.description + group.description : group.name`
			c.MailNicknameJexl = `group.extension == 'nick' ? 'has space' : group.extension`
		})
		e.mark("app")
		long := strings.Repeat("d", 200)
		e.group("app:long")
		e.dir.UpdateGroup(ctx, e.find("app:long").ID, usersync.GroupUpdate{Description: &long}, 0)
		e.group("app:nick")
		e.group("app:desc")
		desc := strings.Repeat("x", 1025)
		e.dir.UpdateGroup(ctx, e.find("app:desc").ID, usersync.GroupUpdate{Description: &desc}, 0)
		e.group("app:fine", "alice")
		r := e.run()
		want := map[string]string{"app:long": "more than Entra's 256", "app:nick": `the character ' '`, "app:desc": "more than Entra's 1,024"}
		if len(r.Failures) != len(want) {
			t.Fatalf("failures: %+v", r.Failures)
		}
		for _, f := range r.Failures {
			if !strings.Contains(f.Error, want[f.Group]) {
				t.Fatalf("%s: %q does not say %q", f.Group, f.Error, want[f.Group])
			}
		}
		if n := e.emu.Requests()["http"]; e.remoteCount() != 1 || e.emu.Writes()["PATCH /groups(uniqueName)"] != 1 {
			t.Fatalf("only app:fine should reach Entra (%d requests): %v", n, e.emu.Writes())
		}
		e.wantMembers("app:fine", "alice")
	})
}

// With retryOnError a failing group is retried with backoff while the
// others go on, quarantined after maxFailures, listed with its last error,
// and cleared by a reconcile that succeeds. A 429 is waited out.
func TestRetryAndQuarantine(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		var failing atomic.Bool
		failing.Store(true)
		var throttleOnce atomic.Bool
		fault := func(r *http.Request) int {
			if isCreate(r) {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(b))
				if failing.Load() && bytes.Contains(b, []byte(`"app:bad"`)) {
					return http.StatusServiceUnavailable
				}
				if bytes.Contains(b, []byte(`"app:slow"`)) && throttleOnce.CompareAndSwap(false, true) {
					return http.StatusTooManyRequests
				}
			}
			return 0
		}
		e := newEnv(t, open(t), graphemu.Options{Fault: fault}, func(c *usersync.ProvisionerConfig) { c.MaxFailures = 3 })
		e.mark("app")
		e.group("app:bad", "alice")
		e.group("app:good", "bob")
		e.group("app:slow", "carol")
		r := e.run()
		if len(r.Failures) != 1 || r.Failures[0].Group != "app:bad" || !strings.Contains(r.Failures[0].Error, "503") {
			t.Fatalf("failures: %+v", r.Failures)
		}
		e.wantMembers("app:good", "bob")
		e.wantMembers("app:slow", "carol")
		if !slices.Contains(*e.waits, time.Second) {
			t.Fatalf("the 429's Retry-After: 1 was not waited: %v", *e.waits)
		}

		posts := func() int { return e.emu.Requests()["503"] }
		item := func() usersync.ProvisionerItem {
			items, err := e.dir.ProvisionerItems(ctx, "o365")
			if err != nil || len(items) != 1 {
				t.Fatalf("items: %+v %v", items, err)
			}
			return items[0]
		}
		if it := item(); it.Failures != 1 || it.Quarantined || !it.NextAttempt.Equal(e.now.Add(5*time.Second)) {
			t.Fatalf("after one failure: %+v", it)
		}
		n := posts()
		e.run() // not due yet
		if posts() != n {
			t.Fatal("retried before its next attempt")
		}
		e.now = e.now.Add(6 * time.Second)
		e.run()
		perAttempt := 1 + e.cfg.MaxRetries // an upsert is safe to send again after a 503
		if it := item(); it.Failures != 2 || posts() != n+perAttempt {
			t.Fatalf("after the second attempt: %+v", it)
		}
		e.now = e.now.Add(11 * time.Second)
		e.run()
		if it := item(); it.Failures != 3 || !it.Quarantined || !strings.Contains(it.LastError, "503") {
			t.Fatalf("after the third failure: %+v", it)
		}
		e.now = e.now.Add(time.Hour)
		e.run()
		if posts() != n+2*perAttempt {
			t.Fatal("a quarantined group was retried")
		}

		failing.Store(false)
		r = e.reconcile(e.opts())
		if len(r.Failures) != 0 {
			t.Fatalf("reconcile: %+v", r.Failures)
		}
		e.wantMembers("app:bad", "alice")
		if items, _ := e.dir.ProvisionerItems(ctx, "o365"); len(items) != 0 {
			t.Fatalf("still quarantined after a reconcile: %+v", items)
		}
	})
}

// Without retryOnError the failing event is recorded and passed: the
// cursor moves on and the group is not tried again by later runs.
func TestNoRetryOnError(t *testing.T) {
	e := newEnv(t, dirtest.SQLite(t), graphemu.Options{Fault: func(r *http.Request) int {
		if isCreate(r) {
			return http.StatusServiceUnavailable
		}
		return 0
	}}, func(c *usersync.ProvisionerConfig) { c.RetryOnError = false })
	e.mark("app")
	e.group("app:g", "alice")
	r := e.run()
	if len(r.Failures) != 1 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	cursor, _ := e.dir.Cursor(ctx, usersync.ProvisionerCursor("o365"))
	last, _ := e.dir.LastChangeSeq(ctx)
	if cursor != last {
		t.Fatalf("cursor %d, last change %d: the failed event was not passed", cursor, last)
	}
	e.now = e.now.Add(24 * time.Hour)
	n := e.emu.Requests()["503"]
	e.run()
	if e.emu.Requests()["503"] != n {
		t.Fatal("retried without retryOnError")
	}
	if items, _ := e.dir.ProvisionerItems(ctx, "o365"); len(items) != 1 || items[0].LastError == "" {
		t.Fatalf("the failure is not kept for status: %+v", items)
	}
}

// Reconcile reads each covered group's members from Entra and repairs drift
// both ways; --dry-run shows the plan with reasons and writes nothing; a
// group deleted in Entra by hand is made again; removals beyond the guard
// need Force.
func TestReconcileRepairsDrift(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, nil)
		e.mark("app")
		e.group("app:g", "alice", "bob")
		e.run()
		g := e.remote("app:g")
		e.tenant.AddMember(g.ID, "id-carol")
		e.tenant.RemoveMember(g.ID, "id-alice")
		before := e.emu.Writes()

		o := e.opts()
		o.DryRun = true
		plan := e.reconcile(o)
		adds, removes := kinds(plan, AddMember), kinds(plan, RemoveMember)
		if len(adds) != 1 || adds[0].Member != "alice@contoso.com" || adds[0].Reason != "in the directory group" ||
			len(removes) != 1 || removes[0].Member != "id-carol" || removes[0].Reason != "not in the directory group" {
			t.Fatalf("plan: %+v", plan.Actions)
		}
		if !mapsEqual(e.emu.Writes(), before) {
			t.Fatal("a dry run wrote to Entra")
		}
		e.reconcile(e.opts())
		e.wantMembers("app:g", "alice", "bob")

		// Deleted in Entra by hand: made again, the new id stored.
		e.tenant.AddGroup(graphemu.Group{ID: "unrelated", DisplayName: "x"})
		old := g.ID
		deleteRemote(t, e, old)
		e.reconcile(e.opts())
		if n := e.remote("app:g"); n.ID == old || !slices.Equal(members(n), []string{"alice", "bob"}) {
			t.Fatalf("after a deletion by hand: %+v", n)
		}

		// Many members added by hand: removing them all needs --force.
		big := e.remote("app:g")
		for i := 0; i < 30; i++ {
			id := "id-extra" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			e.tenant.AddUser(graphemu.User{ID: id, UserPrincipalName: id + "@contoso.com"})
			e.tenant.AddMember(big.ID, id)
		}
		r := e.reconcile(e.opts())
		if len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "--force") {
			t.Fatalf("mass removal was not refused: %+v", r.Failures)
		}
		if len(e.remote("app:g").Members) != 32 {
			t.Fatal("a refused reconcile removed members")
		}
		o = e.opts()
		o.Force = true
		e.reconcile(o)
		e.wantMembers("app:g", "alice", "bob")
	})
}

func deleteRemote(t *testing.T, e *env, id string) {
	t.Helper()
	c := e.provisioner().client
	if err := c.DeleteGroup(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// A crash after the Entra group was made but before its id was stored (or
// the cursor moved) replays without a second Entra group: the group is
// found by its mailNickname and adopted.
func TestReplayAfterCrashAdopts(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, nil)
		e.mark("app")
		start, _ := e.dir.LastChangeSeq(ctx)
		e.group("app:g", "alice")
		e.run()
		// As if killed between the create and storing its id: the id is
		// not on the group and the cursor is back before the events.
		e.setGroupAttr("app:g", e.p.Config.RemoteIDAttribute, nil)
		e.dir.SetCursor(ctx, usersync.ProvisionerCursor("o365"), start)
		e.addMembers("app:g", "bob")
		r := e.run()
		if r.Counts[AdoptGroup] != 1 || r.Counts[CreateGroup] != 0 || e.remoteCount() != 1 {
			t.Fatalf("replay: %+v (%d Entra groups)", r.Actions, e.remoteCount())
		}
		e.wantMembers("app:g", "alice", "bob")
	})
}

// A group created moments ago answers 404 until it has replicated: the
// writes that follow the create are retried, not failed.
func TestReplicationLag(t *testing.T) {
	e := newEnv(t, dirtest.SQLite(t), graphemu.Options{ReplicationLag: 1500 * time.Millisecond}, nil)
	e.cfg.Sleep = nil // wait for real
	var uids []string
	for i := 0; i < 25; i++ {
		uid := "u" + string(rune('a'+i))
		e.tenant.AddUser(graphemu.User{ID: "id-" + uid, UserPrincipalName: uid + "@contoso.com"})
		u := &usersync.User{Username: uid + "@contoso.com"}
		if err := e.dir.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		e.users[uid] = u
		uids = append(uids, uid)
	}
	e.mark("app")
	e.group("app:g", uids...)
	r := e.run()
	if len(r.Failures) != 0 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	slices.Sort(uids)
	e.wantMembers("app:g", uids...)
}

// Membership changes are coalesced: 1,000 adds to one group are 50 bound
// PATCHes plus the user lookups, 1,000 removals 50 $batch requests.
func TestMembershipWritesCoalesced(t *testing.T) {
	e := newEnv(t, dirtest.SQLite(t), graphemu.Options{}, nil)
	const n = 1000
	users := make([]*usersync.User, n)
	ids := make([]int64, n)
	for i := range users {
		uid := "m" + strconv.Itoa(i)
		e.tenant.AddUser(graphemu.User{ID: "id-" + uid, UserPrincipalName: uid + "@contoso.com"})
		users[i] = &usersync.User{Username: uid + "@contoso.com"}
		if err := e.dir.CreateUser(ctx, users[i]); err != nil {
			t.Fatal(err)
		}
		ids[i] = users[i].ID
	}
	e.mark("app")
	g := e.group("app:g")
	e.run()
	base := e.emu.Requests()["http"]
	if _, err := e.dir.AddMembers(ctx, g.ID, ids); err != nil {
		t.Fatal(err)
	}
	e.run()
	adds := e.emu.Requests()["http"] - base
	if got := len(e.remote("app:g").Members); got != n {
		t.Fatalf("%d members in Entra, want %d", got, n)
	}
	if per := float64(adds) / n; per > 0.06 {
		t.Fatalf("%d requests for %d adds: %.3f per change, want ≤ 0.06", adds, n, per)
	}
	base = e.emu.Requests()["http"]
	if _, err := e.dir.RemoveMembers(ctx, g.ID, ids); err != nil {
		t.Fatal(err)
	}
	e.run()
	removes := e.emu.Requests()["http"] - base
	if got := len(e.remote("app:g").Members); got != 0 {
		t.Fatalf("%d members left in Entra", got)
	}
	if per := float64(removes) / n; per > 0.06 {
		t.Fatalf("%d requests for %d removals: %.3f per change, want ≤ 0.06", removes, n, per)
	}
}

// The seed's expressions over the directory's naming model (folders with
// display extensions, a group with a display extension and description)
// give the seed's results, and the group is created with them.
func TestSeedExpressionsOnTheNamingModel(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, func(c *usersync.ProvisionerConfig) {
			c.GroupJexl = `group.parentStem.parentStem.displayExtension + " - " + group.parentStem.displayExtension + " - " + group.displayExtension + (group.description ? ": " + group.description : "")`
			c.MailNicknameJexl = `(group.name.length() <= 64 + 11) ? "GROUPER-SECURITY-" + group.name.replaceAll("^app:test:grp-2607:provision:", "").replaceAll(":", "-") : group.id`
			c.DescriptionJexl = `group.name.replaceAll("^app:test:grp-2607:provision:", "").replaceAll(":", " / ")`
		})
		const name = "app:test:grp-2607:provision:groupTypes:o365Sync:group5"
		g := e.group(name, "alice")
		for path, display := range map[string]string{"app:test:grp-2607:provision:groupTypes": "Group Types", "app:test:grp-2607:provision:groupTypes:o365Sync": "Security Groups"} {
			if _, err := e.dir.SetFolderAttributes(ctx, path, map[string]*string{usersync.AttrDisplayExtension: ptr(display)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.dir.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Description: ptr("Testing of Azure Security Groups"),
			Attributes: map[string]*string{usersync.AttrDisplayExtension: ptr("Group 5")}}, 0); err != nil {
			t.Fatal(err)
		}
		e.mark("app:test:grp-2607:provision:groupTypes:o365Sync")
		if r := e.run(); len(r.Failures) != 0 {
			t.Fatalf("failures: %+v", r.Failures)
		}
		got := e.remote(name)
		if got.DisplayName != "Group Types - Security Groups - Group 5: Testing of Azure Security Groups" ||
			got.MailNickname != "GROUPER-SECURITY-groupTypes-o365Sync-group5" || got.Description != "groupTypes / o365Sync / group5" {
			t.Fatalf("Entra group: %q %q %q", got.DisplayName, got.MailNickname, got.Description)
		}
		// A folder's display extension changed: the names below follow,
		// and only the names: the members are not read again.
		if _, err := e.dir.SetFolderAttributes(ctx, "app:test:grp-2607:provision:groupTypes", map[string]*string{usersync.AttrDisplayExtension: ptr("Types")}); err != nil {
			t.Fatal(err)
		}
		before := e.emu.Requests()["members"]
		e.run()
		if got := e.remote(name).DisplayName; got != "Types - Security Groups - Group 5: Testing of Azure Security Groups" {
			t.Fatalf("after the folder's rename: %q", got)
		}
		if n := e.emu.Requests()["members"] - before; n != 0 {
			t.Fatalf("a folder's new display name read the group's members %d times", n)
		}
	})
}

// Wrong credentials or a Graph that cannot be reached stop the run: no
// group is blamed, the cursor stays, and the next run does the work.
func TestRunStopsWhenGraphCannotBeUsed(t *testing.T) {
	e := newEnv(t, dirtest.SQLite(t), graphemu.Options{}, nil)
	e.mark("app")
	e.group("app:g", "alice")
	good := e.cfg
	for name, cfg := range map[string]func(){
		"wrong secret": func() { e.cfg.ClientSecret = "wrong" },
		"unreachable":  func() { e.cfg.GraphURL, e.cfg.AuthorityURL = "http://127.0.0.1:1", "http://127.0.0.1:1" },
	} {
		e.cfg = good
		cfg()
		_, err := e.provisioner().Run(ctx, e.opts())
		if err == nil {
			t.Fatalf("%s: the run did not fail", name)
		}
		if items, _ := e.dir.ProvisionerItems(ctx, "o365"); len(items) != 0 {
			t.Fatalf("%s: a group was blamed: %+v", name, items)
		}
		if c, _ := e.dir.Cursor(ctx, usersync.ProvisionerCursor("o365")); c != 0 {
			t.Fatalf("%s: the cursor moved to %d", name, c)
		}
	}
	e.cfg = good
	e.run()
	e.wantMembers("app:g", "alice")
}

// A group renamed out of the marked folder is no longer followed, and the
// run says so; its Entra group stays.
func TestRenamedOutOfMarkedFolder(t *testing.T) {
	e := newEnv(t, dirtest.SQLite(t), graphemu.Options{}, nil)
	e.mark("app:f")
	g := e.group("app:f:g", "alice")
	e.run()
	id := e.remote("app:f:g").ID
	if _, err := e.dir.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: ptr("app:other:g")}, 0); err != nil {
		t.Fatal(err)
	}
	e.addMembers("app:other:g", "bob")
	r := e.run()
	stops := kinds(r, StopGroup)
	if len(stops) != 1 || !strings.Contains(stops[0].Reason, "renamed out of the marked folder") || r.Counts[AddMember] != 0 {
		t.Fatalf("run: %+v", r.Actions)
	}
	if rg, ok := e.tenant.Group(id); !ok || len(rg.Members) != 1 {
		t.Fatalf("the Entra group changed or went: %+v %v", rg, ok)
	}
}

// A group provisioner's actions are in the provisioning log per group and
// per member: what was done, and a member that could not be written as
// failed with why.
func TestGroupProvisioningLog(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, nil)
		e.mark("app:test")
		e.group("app:test:g1", "alice", "bob")
		e.run()
		e.addMembers("app:test:g1", "erin") // in the directory only: not a user of the tenant
		e.removeMembers("app:test:g1", "alice")
		e.run()
		log, err := e.dir.FindLog(ctx, usersync.LogFilter{Provisioner: e.p.Name, Group: "APP:TEST:G1"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range log {
			got = append(got, l.Action+" "+l.Username+" "+l.Status)
		}
		want := []string{"remove-member alice@contoso.com done", "member-failed erin@contoso.com failed",
			"add-member bob@contoso.com done", "add-member alice@contoso.com done", "create-group  done"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if log[0].Modified["members"].From != "alice@contoso.com" || !strings.Contains(log[1].Error, "not a user in tenant") || log[0].Run == log[4].Run {
			t.Fatalf("entries: %+v", log)
		}
		if member, _ := e.dir.FindLog(ctx, usersync.LogFilter{Provisioner: e.p.Name, Username: "bob@contoso.com"}); len(member) != 1 {
			t.Fatalf("by member: %+v", member)
		}
	})
}

// isCreate reports a request that creates a group: Graph's upsert by
// uniqueName.
func isCreate(r *http.Request) bool {
	return r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/v1.0/groups(uniqueName=")
}
