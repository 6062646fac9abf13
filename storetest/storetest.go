// Package storetest is the conformance suite every directory backend must
// pass. A backend's own test calls Run with a function that opens a fresh,
// empty directory; the suite exercises it only through usersync.Directory.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
)

// Opener returns a new, empty directory; it is closed when the test ends.
type Opener func(t *testing.T) usersync.Directory

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, usersync.Directory)
	}{
		{"Users", testUsers},
		{"UserValidation", testUserValidation},
		{"UserUpdate", testUserUpdate},
		{"UserList", testUserList},
		{"Groups", testGroups},
		{"DefaultGroup", testDefaultGroup},
		{"Members", testMembers},
		{"ChangeGroup", testChangeGroup},
		{"Folders", testFolders},
		{"Tokens", testTokens},
		{"Settings", testSettings},
		{"ChangeLog", testChangeLog},
		{"Cursors", testCursors},
		{"Batch", testBatch},
		{"BatchIdempotent", testBatchIdempotent},
		{"BatchAllOrNothing", testBatchAllOrNothing},
		{"BatchUpdateFields", testBatchUpdateFields},
		{"BatchCreatesSomeExisting", testBatchCreatesSomeExisting},
		{"BatchReaddsMissingMembers", testBatchReaddsMissingMembers},
		{"ConcurrentWriters", testConcurrentWriters},
		{"SyncState", testSyncState},
		{"UserConditions", testUserConditions},
		{"GroupConditions", testGroupConditions},
		{"UnicodeFolding", testUnicodeFolding},
		{"UsernameNormalisation", testUsernameNormalisation},
		{"TextRefused", testTextRefused},
		{"MembershipSources", testMembershipSources},
		{"UpsertByID", testUpsertByID},
		{"BatchSwapsNames", testBatchSwapsNames},
		{"RenameSource", testRenameSource},
		{"FlatGroupNames", testFlatGroupNames},
		{"MemberLinks", testMemberLinks},
		{"UserSearch", testUserSearch},
		{"SoftDeletedState", testSoftDeletedState},
		{"Provisioners", testProvisioners},
		{"Leases", testLeases},
		{"NestedGroups", testNestedGroups},
		{"Profiles", testProfiles},
		{"ProfileConditions", testProfileConditions},
		{"OrderAndKeyset", testOrderAndKeyset},
		{"Schedules", testSchedules},
		{"DeleteAtVersion", testDeleteAtVersion},
		{"SignIn", testSignIn},
		{"RolesAndMappings", testRolesAndMappings},
		{"ApprovalsAndLog", testApprovalsAndLog},
		{"IDsNeverReused", testIDsNeverReused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctxAs(actor string) context.Context { return usersync.WithActor(context.Background(), actor) }

var ctx = ctxAs("test")

func mustCreateUser(t *testing.T, d usersync.Directory, name string) *usersync.User {
	t.Helper()
	u := &usersync.User{Username: name, Email: strings.ToLower(name) + "@example.com", FirstName: "F" + name, LastName: "L" + name, Enabled: true}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func mustCreateGroup(t *testing.T, d usersync.Directory, name string) *usersync.Group {
	t.Helper()
	g := &usersync.Group{Name: name}
	if err := d.CreateGroup(ctx, g); err != nil {
		t.Fatalf("create group %s: %v", name, err)
	}
	return g
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := usersync.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func lastSeq(t *testing.T, d usersync.Directory) int64 {
	t.Helper()
	n, err := d.LastChangeSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func changesSince(t *testing.T, d usersync.Directory, after int64) []*usersync.Change {
	t.Helper()
	var out []*usersync.Change
	for {
		cs, err := d.ChangesAfter(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			return out
		}
		out = append(out, cs...)
		after = cs[len(cs)-1].Seq
	}
}

func testUsers(t *testing.T, d usersync.Directory) {
	u := &usersync.User{Username: "Alice@Example.com", Email: "alice@example.com", FirstName: "Alice", LastName: "Liddell", Enabled: true,
		Attributes: map[string]string{"department": "Sales"}}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Version != 1 || u.CreatedAt.IsZero() {
		t.Fatalf("created user lacks id, version or time: %+v", u)
	}
	if u.Type != usersync.UserRegular || u.AuthMethod != usersync.AuthPassword || u.Source != usersync.SourceLocal {
		t.Fatalf("defaults not filled: %+v", u)
	}
	got, err := d.FindUserByUsername(ctx, "alice@EXAMPLE.com")
	if err != nil {
		t.Fatalf("lookup is not case-insensitive: %v", err)
	}
	if got.ID != u.ID || got.Username != "Alice@Example.com" || got.Attributes["department"] != "Sales" || got.LastName != "Liddell" || !got.Enabled {
		t.Fatalf("found %+v, want %+v", got, u)
	}
	if byID, err := d.FindUserByID(ctx, u.ID); err != nil || byID.Username != u.Username || !byID.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("by id: %+v, %v", byID, err)
	}
	before := lastSeq(t, d)
	err = d.CreateUser(ctx, &usersync.User{Username: "ALICE@example.COM"})
	wantCode(t, err, usersync.ECONFLICT)
	if !strings.Contains(err.Error(), "ALICE@example.COM") {
		t.Fatalf("conflict message does not name the user: %v", err)
	}
	if lastSeq(t, d) != before {
		t.Fatal("a refused create appended a change event")
	}
	_, err = d.FindUserByUsername(ctx, "nobody")
	wantCode(t, err, usersync.ENOTFOUND)
	_, err = d.FindUserByID(ctx, 987654)
	wantCode(t, err, usersync.ENOTFOUND)

	g := mustCreateGroup(t, d, "Sales")
	if _, err := d.AddMembers(ctx, g.ID, []int64{u.ID}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.CreateToken(ctx, u.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteUser(ctx, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	_, err = d.FindUserByID(ctx, u.ID)
	wantCode(t, err, usersync.ENOTFOUND)
	if _, n, err := d.Members(ctx, g.ID, 0, 0); err != nil || n != 0 {
		t.Fatalf("members after user delete: %d, %v", n, err)
	}
	if toks, _ := d.FindTokens(ctx, 0); len(toks) != 0 {
		t.Fatalf("tokens survive their user: %+v", toks)
	}
	wantCode(t, d.DeleteUser(ctx, u.ID, 0), usersync.ENOTFOUND)
}

func testUserValidation(t *testing.T, d usersync.Directory) {
	bad := []usersync.User{
		{Username: ""},
		{Username: " padded"},
		{Username: "ctl\x01"},
		{Username: strings.Repeat("x", usersync.MaxUsernameLength+1)},
		{Username: "bob", Email: "not-an-email"},
		{Username: "bob", Type: "superuser"},
		{Username: "bob", AuthMethod: "kerberos"},
		{Username: "bob", Attributes: map[string]string{"": "x"}},
	}
	for _, u := range bad {
		u := u
		wantCode(t, d.CreateUser(ctx, &u), usersync.EINVALID)
	}
	if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 0 {
		t.Fatalf("invalid users were stored: %d", n)
	}
}

func testUserUpdate(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "bob")
	seq := lastSeq(t, d)
	email, enabled, typ := "robert@example.com", false, usersync.UserPowerUser
	dept := "R&D"
	got, err := d.UpdateUser(ctxAs("admin"), u.ID, usersync.UserUpdate{Email: &email, Enabled: &enabled, Type: &typ,
		Attributes: map[string]*string{"department": &dept}}, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != u.Version+1 || got.Email != email || got.Enabled || got.Type != typ || got.Attributes["department"] != dept || !got.UpdatedAt.After(u.CreatedAt) && !got.UpdatedAt.Equal(u.CreatedAt) {
		t.Fatalf("update not applied: %+v", got)
	}
	cs := changesSince(t, d, seq)
	if len(cs) != 1 || cs[0].Kind != usersync.UserUpdated || cs[0].Actor != "admin" || cs[0].Object.ID != u.ID {
		t.Fatalf("update events: %+v", cs)
	}
	f := cs[0].Fields
	if f["email"] != (usersync.FieldChange{From: "bob@example.com", To: email}) || f["enabled"] != (usersync.FieldChange{From: "true", To: "false"}) ||
		f["attributes.department"] != (usersync.FieldChange{To: dept}) || len(f) != 4 {
		t.Fatalf("changed fields: %+v", f)
	}
	// A stale version is refused and changes nothing.
	name := "x"
	_, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{FirstName: &name}, u.Version)
	wantCode(t, err, usersync.ESTALE)
	// An update to the same values writes nothing.
	seq = lastSeq(t, d)
	same, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Email: &email}, 0)
	if err != nil || same.Version != got.Version || lastSeq(t, d) != seq {
		t.Fatalf("no-op update bumped version or logged: %+v %v", same, err)
	}
	// Removing an attribute, renaming, and renaming onto another user.
	mustCreateUser(t, d, "carol")
	newName := "Bobby"
	got, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Username: &newName, Attributes: map[string]*string{"department": nil}}, 0)
	if err != nil || got.Username != "Bobby" || len(got.Attributes) != 0 {
		t.Fatalf("rename: %+v %v", got, err)
	}
	taken := "CAROL"
	_, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Username: &taken}, 0)
	wantCode(t, err, usersync.ECONFLICT)
	badEmail := "nope"
	_, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Email: &badEmail}, 0)
	wantCode(t, err, usersync.EINVALID)
	if cur, _ := d.FindUserByID(ctx, u.ID); cur.Email != email || cur.Username != "Bobby" {
		t.Fatalf("refused updates changed the user: %+v", cur)
	}
	_, err = d.UpdateUser(ctx, 424242, usersync.UserUpdate{Email: &email}, 0)
	wantCode(t, err, usersync.ENOTFOUND)
}

func testUserList(t *testing.T, d usersync.Directory) {
	for i := 0; i < 25; i++ {
		u := &usersync.User{Username: fmt.Sprintf("user%02d", i), Email: fmt.Sprintf("u%02d@example.com", i)}
		if i%5 == 0 {
			u.Source, u.SourceID = "okta:example.okta.com", fmt.Sprint("00u", i)
		}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	page, total, err := d.FindUsers(ctx, usersync.UserFilter{Offset: 10, Limit: 5})
	if err != nil || total != 25 || len(page) != 5 || page[0].Username != "user10" || page[4].Username != "user14" {
		t.Fatalf("page: total %d, %d users, %v", total, len(page), err)
	}
	tail, _, _ := d.FindUsers(ctx, usersync.UserFilter{Offset: 20})
	if len(tail) != 5 || tail[4].Username != "user24" {
		t.Fatalf("offset without limit: %d users", len(tail))
	}
	okta, total, _ := d.FindUsers(ctx, usersync.UserFilter{Source: "okta:example.okta.com"})
	if total != 5 || len(okta) != 5 {
		t.Fatalf("by source: %d", total)
	}
	// An existence check (NoCount) gets the page without the count; a
	// full page counts every match otherwise.
	for _, c := range []struct {
		noCount bool
		total   int
	}{{false, 5}, {true, 1}} {
		one, total, err := d.FindUsers(ctx, usersync.UserFilter{Source: "okta:example.okta.com", Limit: 1, Unordered: true, NoCount: c.noCount})
		if err != nil || len(one) != 1 || one[0].Source != "okta:example.okta.com" || total != c.total {
			t.Fatalf("NoCount %v: %d users, total %d (want %d), %v", c.noCount, len(one), total, c.total, err)
		}
	}
	byName, err := d.UsersByUsername(ctx, []string{"USER03", "user04", "nobody"})
	if err != nil || len(byName) != 2 || byName["user03"].Username != "user03" || byName["user04"] == nil {
		t.Fatalf("UsersByUsername: %v %v", byName, err)
	}
	found, total, _ := d.FindUsers(ctx, usersync.UserFilter{Search: "U07@EXAMPLE"})
	if total != 1 || found[0].Username != "user07" {
		t.Fatalf("search by email: %d", total)
	}
	if _, total, _ := d.FindUsers(ctx, usersync.UserFilter{Search: "%"}); total != 0 {
		t.Fatalf("search treats %% as a wildcard: %d", total)
	}
}

func testGroups(t *testing.T, d usersync.Directory) {
	g := &usersync.Group{Name: "app:test:group5", Description: "five", Alias: "0f1e", Attributes: map[string]string{"azure": "true"}}
	if err := d.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"app", "app:test"} {
		if _, err := d.FindFolder(ctx, p); err != nil {
			t.Fatalf("folder %s not made for group: %v", p, err)
		}
	}
	got, err := d.FindGroupByName(ctx, "APP:Test:Group5")
	if err != nil || got.ID != g.ID || got.Description != "five" || got.Alias != "0f1e" || got.Attributes["azure"] != "true" {
		t.Fatalf("find: %+v %v", got, err)
	}
	wantCode(t, d.CreateGroup(ctx, &usersync.Group{Name: "app:TEST:group5"}), usersync.ECONFLICT)
	for _, bad := range []string{"", "a::b", ":a", "a:", " a", "a\nb"} {
		wantCode(t, d.CreateGroup(ctx, &usersync.Group{Name: bad}), usersync.EINVALID)
	}
	folder := "app:test"
	in, n, err := d.FindGroups(ctx, usersync.GroupFilter{Folder: &folder})
	if err != nil || n != 1 || in[0].Name != g.Name {
		t.Fatalf("groups in folder: %d %v", n, err)
	}
	newName, desc := "app:prod:group5", "moved"
	upd, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: &newName, Description: &desc}, g.Version)
	if err != nil || upd.Name != newName || upd.Version != 2 {
		t.Fatalf("rename: %+v %v", upd, err)
	}
	if _, err := d.FindFolder(ctx, "app:prod"); err != nil {
		t.Fatalf("rename did not make the new folder: %v", err)
	}
	mustCreateGroup(t, d, "Other")
	taken := "other"
	_, err = d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: &taken}, 0)
	wantCode(t, err, usersync.ECONFLICT)
	_, err = d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: &desc}, 1)
	wantCode(t, err, usersync.ESTALE)
	u := mustCreateUser(t, d, "dave")
	d.AddMembers(ctx, g.ID, []int64{u.ID})
	seq := lastSeq(t, d)
	if err := d.DeleteGroup(ctx, g.ID, 0); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.DeleteGroup(ctx, g.ID, 0), usersync.ENOTFOUND)
	cs := changesSince(t, d, seq)
	if len(cs) != 2 || cs[0].Kind != usersync.MemberRemoved || cs[0].Member.Name != "dave" || cs[1].Kind != usersync.GroupDeleted || cs[1].Object.Name != newName {
		t.Fatalf("delete events: %+v", cs)
	}
	if gs, _ := d.GroupsOf(ctx, u.ID); len(gs) != 0 {
		t.Fatalf("membership survived group delete: %+v", gs)
	}
}

func testDefaultGroup(t *testing.T, d usersync.Directory) {
	g, err := d.FindGroupByName(ctx, usersync.DefaultGroupName)
	if err != nil {
		t.Fatalf("the Default Group is missing: %v", err)
	}
	wantCode(t, d.DeleteGroup(ctx, g.ID, 0), usersync.EFORBIDDEN)
	name := "Renamed"
	_, err = d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: &name}, 0)
	wantCode(t, err, usersync.EFORBIDDEN)
	desc := "everyone"
	if _, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Description: &desc}, 0); err != nil {
		t.Fatalf("the Default Group's description cannot change: %v", err)
	}
}

func testMembers(t *testing.T, d usersync.Directory) {
	g := mustCreateGroup(t, d, "Sales")
	var ids []int64
	for _, n := range []string{"zoe", "adam", "Mia"} {
		ids = append(ids, mustCreateUser(t, d, n).ID)
	}
	seq := lastSeq(t, d)
	n, err := d.AddMembers(ctxAs("sync"), g.ID, append(ids, ids[0]))
	if err != nil || n != 3 {
		t.Fatalf("add: %d %v", n, err)
	}
	if refs, err := d.MemberRefs(ctx, g.ID); err != nil || len(refs) != 3 || refs[0].Source != usersync.SourceLocal {
		t.Fatalf("member refs: %+v %v", refs, err)
	}
	if n, _ := d.AddMembers(ctx, g.ID, ids); n != 0 {
		t.Fatalf("adding members again added %d", n)
	}
	cs := changesSince(t, d, seq)
	if len(cs) != 3 {
		t.Fatalf("want 3 member.added events, got %d", len(cs))
	}
	for _, c := range cs {
		if c.Kind != usersync.MemberAdded || c.Object.ID != g.ID || c.Member == nil || c.Member.Type != usersync.ObjectUser || c.Actor != "sync" {
			t.Fatalf("bad event %+v", c)
		}
	}
	members, total, err := d.Members(ctx, g.ID, 0, 0)
	if err != nil || total != 3 || members[0].Username != "adam" || members[1].Username != "Mia" || members[2].Username != "zoe" {
		t.Fatalf("members: %d %v", total, err)
	}
	if page, _, _ := d.Members(ctx, g.ID, 1, 1); len(page) != 1 || page[0].Username != "Mia" {
		t.Fatalf("members page: %+v", page)
	}
	_, err = d.AddMembers(ctx, g.ID, []int64{ids[0], 999999})
	wantCode(t, err, usersync.ENOTFOUND)
	_, err = d.AddMembers(ctx, 999999, ids)
	wantCode(t, err, usersync.ENOTFOUND)
	if n, _ := d.RemoveMembers(ctx, g.ID, []int64{ids[1], 999999}); n != 1 {
		t.Fatalf("remove: %d", n)
	}
	if n, _ := d.RemoveMembers(ctx, g.ID, []int64{ids[1]}); n != 0 {
		t.Fatalf("removing a non-member removed %d", n)
	}
	gs, err := d.GroupsOf(ctx, ids[0])
	if err != nil || len(gs) != 1 || gs[0].Name != "Sales" {
		t.Fatalf("groups of: %+v %v", gs, err)
	}

	// A group created with its members: all in one transaction.
	seq = lastSeq(t, d)
	wantCode(t, d.CreateGroup(ctx, &usersync.Group{Name: "Team"}, ids[0], 999999), usersync.ENOTFOUND)
	if _, err := d.FindGroupByName(ctx, "Team"); usersync.ErrorCode(err) != usersync.ENOTFOUND || lastSeq(t, d) != seq {
		t.Fatalf("a failed create left the group (%v) or events", err)
	}
	team := &usersync.Group{Name: "Team"}
	if err := d.CreateGroup(ctx, team, ids[0], ids[2], ids[0]); err != nil {
		t.Fatal(err)
	}
	if refs, _ := d.MemberRefs(ctx, team.ID); len(refs) != 2 || team.Version != 1 || len(changesSince(t, d, seq)) != 3 {
		t.Fatalf("created with members: %d members, version %d, %d events", len(refs), team.Version, len(changesSince(t, d, seq)))
	}
}

// testChangeGroup: a rename with member changes is one all-or-nothing
// change, and the version moves once for it.
func testChangeGroup(t *testing.T, d usersync.Directory) {
	g := mustCreateGroup(t, d, "Team")
	mustCreateGroup(t, d, "Taken")
	var ids []int64
	for _, n := range []string{"ann", "bob", "cid"} {
		ids = append(ids, mustCreateUser(t, d, n).ID)
	}
	if _, err := d.AddMembers(ctx, g.ID, ids[:1]); err != nil {
		t.Fatal(err)
	}
	g, _ = d.FindGroupByID(ctx, g.ID)
	if g.Version != 2 {
		t.Fatalf("adding a member left the version at %d, want 2", g.Version)
	}
	seq := lastSeq(t, d)
	members := func() []string {
		refs, err := d.MemberRefs(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range refs {
			out = append(out, r.Username)
		}
		sort.Strings(out)
		return out
	}

	// Each fails on its last part; nothing of any may stay.
	renamed, taken := "Renamed", "TAKEN"
	for _, ch := range []usersync.GroupChange{
		{GroupUpdate: usersync.GroupUpdate{Name: &renamed}, Add: []int64{ids[1], 999999}},
		{GroupUpdate: usersync.GroupUpdate{Name: &taken}, Add: []int64{ids[1]}},
		{Add: []int64{ids[1]}, Remove: []int64{ids[0]}, GroupUpdate: usersync.GroupUpdate{Name: new(string)}},
	} {
		if _, err := d.ChangeGroup(ctx, g.ID, ch, 0); err == nil {
			t.Fatalf("change %+v succeeded", ch)
		}
	}
	if now, _ := d.FindGroupByID(ctx, g.ID); now.Name != "Team" || now.Version != 2 || !slices.Equal(members(), []string{"ann"}) || lastSeq(t, d) != seq {
		t.Fatalf("a failed change left %q v%d members %v, %d events", now.Name, now.Version, members(), lastSeq(t, d)-seq)
	}
	_, err := d.ChangeGroup(ctx, g.ID, usersync.GroupChange{Add: ids[1:2]}, 1)
	wantCode(t, err, usersync.ESTALE)

	got, err := d.ChangeGroup(ctx, g.ID, usersync.GroupChange{GroupUpdate: usersync.GroupUpdate{Name: &renamed}, Add: ids[1:3], Remove: ids[:1]}, 2)
	if err != nil || got.Name != "Renamed" || got.Version != 3 || !slices.Equal(members(), []string{"bob", "cid"}) {
		t.Fatalf("change: %+v %v, members %v", got, err, members())
	}
	cs := changesSince(t, d, seq)
	if len(cs) != 4 || cs[0].Kind != usersync.GroupUpdated {
		t.Fatalf("want group.updated and 3 member events, got %d", len(cs))
	}
	for _, c := range cs[1:] {
		if c.Object.Name != "Renamed" {
			t.Fatalf("a member event names the group %q, not its new name", c.Object.Name)
		}
	}
	got, err = d.ChangeGroup(ctx, g.ID, usersync.GroupChange{Add: ids[:1], ReplaceMembers: true, Remove: ids[:1]}, 0)
	if err != nil || got.Version != 4 || !slices.Equal(members(), []string{"ann"}) {
		t.Fatalf("replace: %+v %v, members %v", got, err, members())
	}
	if got, err = d.ChangeGroup(ctx, g.ID, usersync.GroupChange{Add: ids[:1]}, 0); err != nil || got.Version != 4 {
		t.Fatalf("a change that changes nothing moved the version: %+v %v", got, err)
	}
}

func testFolders(t *testing.T, d usersync.Directory) {
	f, err := d.CreateFolder(ctx, "corp:emea")
	if err != nil || f.Path != "corp:emea" {
		t.Fatalf("create: %+v %v", f, err)
	}
	_, err = d.CreateFolder(ctx, "CORP:emea")
	wantCode(t, err, usersync.ECONFLICT)
	_, err = d.CreateFolder(ctx, "corp::x")
	wantCode(t, err, usersync.EINVALID)
	v := "blue"
	f, err = d.SetFolderAttributes(ctx, "corp", map[string]*string{"color": &v})
	if err != nil || f.Attributes["color"] != "blue" || f.Version != 2 {
		t.Fatalf("set attr: %+v %v", f, err)
	}
	seq := lastSeq(t, d)
	if f2, _ := d.SetFolderAttributes(ctx, "corp", map[string]*string{"color": &v}); f2.Version != 2 || lastSeq(t, d) != seq {
		t.Fatal("setting the same attribute again wrote a change")
	}
	f, _ = d.SetFolderAttributes(ctx, "corp", map[string]*string{"color": nil})
	if len(f.Attributes) != 0 {
		t.Fatalf("unset attr: %+v", f.Attributes)
	}
	_, err = d.SetFolderAttributes(ctx, "nowhere", map[string]*string{"color": &v})
	wantCode(t, err, usersync.ENOTFOUND)
	mustCreateGroup(t, d, "corp:emea:Sales")
	mustCreateGroup(t, d, "corpx:Other")
	fs, _ := d.FindFolders(ctx, "corp")
	if len(fs) != 1 || fs[0].Path != "corp:emea" {
		t.Fatalf("folders under corp: %+v", fs)
	}
	all, _ := d.FindFolders(ctx, "")
	if len(all) != 3 {
		t.Fatalf("all folders: %d", len(all))
	}
	err = d.DeleteFolder(ctx, "corp")
	wantCode(t, err, usersync.ECONFLICT)
	if !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("message: %v", err)
	}
	wantCode(t, d.DeleteFolder(ctx, "corp:emea"), usersync.ECONFLICT)
	g, _ := d.FindGroupByName(ctx, "corp:emea:Sales")
	d.DeleteGroup(ctx, g.ID, 0)
	if err := d.DeleteFolder(ctx, "corp:emea"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteFolder(ctx, "corp"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.DeleteFolder(ctx, "corp"), usersync.ENOTFOUND)
}

func testTokens(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "admin")
	clear, tok, err := d.CreateToken(ctx, u.ID, "entra")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(clear, usersync.TokenPrefix) || len(clear) < 40 || tok.Hint != clear[len(clear)-4:] || tok.Username != "admin" {
		t.Fatalf("token %q %+v", clear, tok)
	}
	clear2, _, _ := d.CreateToken(ctx, u.ID, "okta")
	if clear2 == clear {
		t.Fatal("two tokens are equal")
	}
	got, err := d.Authenticate(ctx, clear)
	if err != nil || got.ID != u.ID {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	toks, _ := d.FindTokens(ctx, u.ID)
	if len(toks) != 2 || toks[0].LastUsedAt == nil || toks[1].LastUsedAt != nil {
		t.Fatalf("tokens: %+v", toks)
	}
	for _, bad := range []string{"", "ust_wrong", clear + "x", strings.TrimPrefix(clear, usersync.TokenPrefix)} {
		_, err := d.Authenticate(ctx, bad)
		wantCode(t, err, usersync.EUNAUTHORIZED)
	}
	if err := d.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = d.Authenticate(ctx, clear)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	wantCode(t, d.RevokeToken(ctx, tok.ID), usersync.ENOTFOUND)
	// Answers may be cached: every change below must show at once.
	if got, err := d.Authenticate(ctx, clear2); err != nil || got.Type != usersync.UserRegular {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	admin := usersync.UserAdministrator
	d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Type: &admin}, 0)
	if got, err := d.Authenticate(ctx, clear2); err != nil || got.Type != usersync.UserAdministrator {
		t.Fatalf("authenticate after promotion: %+v %v", got, err)
	}
	off := false
	d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Enabled: &off}, 0)
	_, err = d.Authenticate(ctx, clear2)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	v := mustCreateUser(t, d, "leaver")
	clear3, _, _ := d.CreateToken(ctx, v.ID, "x")
	if _, err := d.Authenticate(ctx, clear3); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteUser(ctx, v.ID, 0); err != nil {
		t.Fatal(err)
	}
	_, err = d.Authenticate(ctx, clear3)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	_, _, err = d.CreateToken(ctx, 999999, "x")
	wantCode(t, err, usersync.ENOTFOUND)
}

func testSettings(t *testing.T, d usersync.Directory) {
	s, err := d.Setting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE")
	if err != nil || s.Value != "N" || s.IsSet || s.Bool() {
		t.Fatalf("default: %+v %v", s, err)
	}
	s, err = d.SetSetting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE", "yes")
	if err != nil || s.Value != "Y" || !s.IsSet || !s.Bool() {
		t.Fatalf("set: %+v %v", s, err)
	}
	_, err = d.SetSetting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE", "maybe")
	wantCode(t, err, usersync.EINVALID)
	if s, _ := d.Setting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE"); s.Value != "Y" {
		t.Fatalf("a refused value changed the setting to %q", s.Value)
	}
	_, err = d.SetSetting(ctx, "SCIM_REMOVE_USER_ON_SOFTDELETE", "Y")
	wantCode(t, err, usersync.EINVALID)
	_, err = d.Setting(ctx, "NOPE")
	wantCode(t, err, usersync.EINVALID)
	if _, err := d.SetSetting(ctx, "O365_USERSYNC_CLIENT_SECRET", "s3cret"); err != nil {
		t.Fatal(err)
	}
	all, err := d.Settings(ctx)
	if err != nil || len(all) != len(usersync.SettingDefs) {
		t.Fatalf("settings: %d %v", len(all), err)
	}
	for _, s := range all {
		if s.Key == "O365_USERSYNC_CLIENT_SECRET" && (s.Value != "s3cret" || s.Shown() == "s3cret") {
			t.Fatalf("secret setting: value %q shown %q", s.Value, s.Shown())
		}
	}
	if err := d.ResetSetting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE"); err != nil {
		t.Fatal(err)
	}
	if s, _ := d.Setting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE"); s.Value != "N" || s.IsSet {
		t.Fatalf("reset: %+v", s)
	}
}

func testChangeLog(t *testing.T, d usersync.Directory) {
	start := lastSeq(t, d)
	u := mustCreateUser(t, d, "erin")
	g := mustCreateGroup(t, d, "ops:oncall")
	d.AddMembers(ctxAs("cli"), g.ID, []int64{u.ID})
	d.RemoveMembers(ctxAs("cli"), g.ID, []int64{u.ID})
	d.DeleteUser(ctxAs("scim"), u.ID, 0)
	cs := changesSince(t, d, start)
	var kinds []string
	for i, c := range cs {
		kinds = append(kinds, string(c.Kind))
		if c.Seq != start+int64(i)+1 {
			t.Fatalf("sequence is not contiguous: event %d has seq %d", i, c.Seq)
		}
		if c.At.IsZero() {
			t.Fatalf("event %d has no time", c.Seq)
		}
	}
	want := "user.created folder.created group.created member.added member.removed user.deleted"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("kinds = %s, want %s", strings.Join(kinds, " "), want)
	}
	if cs[0].Fields["username"].To != "erin" || cs[0].Fields["email"].To != "erin@example.com" || cs[0].Actor != "test" {
		t.Fatalf("create event: %+v", cs[0])
	}
	if cs[3].Actor != "cli" || cs[3].Member.Name != "erin" || cs[3].Object.Name != "ops:oncall" {
		t.Fatalf("member event: %+v", cs[3])
	}
	if cs[5].Actor != "scim" || cs[5].Fields["username"].From != "erin" || cs[5].Fields["username"].To != "" {
		t.Fatalf("delete event: %+v", cs[5])
	}
	page, _ := d.ChangesAfter(ctx, start, 2)
	if len(page) != 2 || page[1].Seq != start+2 {
		t.Fatalf("limit: %d", len(page))
	}
	if lastSeq(t, d) != cs[len(cs)-1].Seq {
		t.Fatal("LastChangeSeq is not the last event")
	}
}

func testCursors(t *testing.T, d usersync.Directory) {
	if n, err := d.Cursor(ctx, "entra-groups"); err != nil || n != 0 {
		t.Fatalf("new cursor: %d %v", n, err)
	}
	d.SetCursor(ctx, "entra-groups", 42)
	d.SetCursor(ctx, "entra-groups", 57)
	if n, _ := d.Cursor(ctx, "entra-groups"); n != 57 {
		t.Fatalf("cursor = %d", n)
	}
	wantCode(t, d.SetCursor(ctx, "", 1), usersync.EINVALID)
}

func sampleBatch(n int) *usersync.Batch {
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{
		{Group: usersync.Group{Name: "o365:Engineering", Alias: "g-1", Source: "o365:t"}, Create: true, Update: usersync.FieldAlias},
	}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("eng%04d@contoso.com", i)
		b.Users = append(b.Users, usersync.UserUpsert{
			User:   usersync.User{Username: name, Email: name, FirstName: "Eng", LastName: fmt.Sprint(i), Enabled: true, Source: "o365:t", SourceID: fmt.Sprint("id-", i)},
			Create: true, Update: usersync.ProfileFields,
		})
		b.Members = append(b.Members, usersync.MemberChange{Group: "o365:Engineering", Username: name},
			usersync.MemberChange{Group: usersync.DefaultGroupName, Username: name})
	}
	return b
}

func testBatch(t *testing.T, d usersync.Directory) {
	seq := lastSeq(t, d)
	res, err := d.ApplyBatch(ctxAs("o365:t"), sampleBatch(1200))
	if err != nil {
		t.Fatal(err)
	}
	if res.UsersCreated != 1200 || res.GroupsCreated != 1 || res.MembersAdded != 2400 || res.RowsWritten == 0 {
		t.Fatalf("result: %+v", res)
	}
	g, _ := d.FindGroupByName(ctx, "o365:engineering")
	if _, n, _ := d.Members(ctx, g.ID, 0, 0); n != 1200 {
		t.Fatalf("members = %d", n)
	}
	u, err := d.FindUserByUsername(ctx, "ENG0042@contoso.com")
	if err != nil || u.SourceID != "id-42" || u.LastName != "42" || !u.Enabled {
		t.Fatalf("user: %+v %v", u, err)
	}
	cs := changesSince(t, d, seq)
	count := map[usersync.ChangeKind]int{}
	for _, c := range cs {
		count[c.Kind]++
		if c.Actor != "o365:t" {
			t.Fatalf("actor %q", c.Actor)
		}
	}
	if count[usersync.UserCreated] != 1200 || count[usersync.MemberAdded] != 2400 || count[usersync.GroupCreated] != 1 || count[usersync.FolderCreated] != 1 {
		t.Fatalf("events: %v", count)
	}
	// Removing members and skipping users that are not to be created.
	b := &usersync.Batch{
		Users: []usersync.UserUpsert{{User: usersync.User{Username: "new@contoso.com"}, Create: false}},
		Members: []usersync.MemberChange{
			{Group: "o365:Engineering", Username: "eng0001@contoso.com", Remove: true},
			{Group: "o365:Engineering", Username: "new@contoso.com"},
			{Group: "o365:Engineering", Username: "ghost@contoso.com", Remove: true},
		},
	}
	res, err = d.ApplyBatch(ctx, b)
	if err != nil || res.MembersRemoved != 1 || res.UsersSkipped != 1 || res.MembersAdded != 0 {
		t.Fatalf("second batch: %+v %v", res, err)
	}
	if _, err := d.FindUserByUsername(ctx, "new@contoso.com"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatal("a user with Create=false was created")
	}
}

func testBatchIdempotent(t *testing.T, d usersync.Directory) {
	if _, err := d.ApplyBatch(ctx, sampleBatch(700)); err != nil {
		t.Fatal(err)
	}
	seq := lastSeq(t, d)
	before, _ := d.FindUserByUsername(ctx, "eng0007@contoso.com")
	res, err := d.ApplyBatch(ctx, sampleBatch(700))
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsWritten != 0 || res.UsersUnchanged != 700 || res.UsersCreated+res.UsersUpdated+res.MembersAdded+res.GroupsCreated+res.GroupsUpdated != 0 || res.GroupsUnchanged != 1 {
		t.Fatalf("re-apply wrote: %+v", res)
	}
	if lastSeq(t, d) != seq {
		t.Fatalf("re-apply appended %d events", lastSeq(t, d)-seq)
	}
	after, _ := d.FindUserByUsername(ctx, "eng0007@contoso.com")
	if after.Version != before.Version || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatal("re-apply touched a user")
	}
}

func testBatchAllOrNothing(t *testing.T, d usersync.Directory) {
	seq := lastSeq(t, d)
	b := sampleBatch(300)
	b.Users[150].User.Email = "broken"
	_, err := d.ApplyBatch(ctx, b)
	wantCode(t, err, usersync.EINVALID)
	if !strings.Contains(err.Error(), "eng0150@contoso.com") {
		t.Fatalf("error does not name the user: %v", err)
	}
	// Fails only at the membership step, after users were written in the transaction.
	b = sampleBatch(300)
	b.Members = append(b.Members, usersync.MemberChange{Group: "o365:Engineering", Username: "stranger@contoso.com"})
	_, err = d.ApplyBatch(ctx, b)
	wantCode(t, err, usersync.ENOTFOUND)
	b = sampleBatch(300)
	b.Members = append(b.Members, usersync.MemberChange{Group: "No Such Group", Username: "eng0001@contoso.com"})
	_, err = d.ApplyBatch(ctx, b)
	wantCode(t, err, usersync.ENOTFOUND)
	b = sampleBatch(3)
	b.Users = append(b.Users, b.Users[0])
	b.Users[3].User.Username = "ENG0000@contoso.com"
	_, err = d.ApplyBatch(ctx, b)
	wantCode(t, err, usersync.EINVALID)
	if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 0 {
		t.Fatalf("failed batches left %d users", n)
	}
	if _, err := d.FindGroupByName(ctx, "o365:Engineering"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatal("failed batch left its group")
	}
	if lastSeq(t, d) != seq {
		t.Fatal("failed batches appended events")
	}
}

func testBatchUpdateFields(t *testing.T, d usersync.Directory) {
	manual := &usersync.User{Username: "pat@contoso.com", Email: "pat@home.example", FirstName: "Pat", Type: usersync.UserAdministrator,
		Attributes: map[string]string{"keep": "1", "drop": "2"}}
	if err := d.CreateUser(ctx, manual); err != nil {
		t.Fatal(err)
	}
	src := usersync.User{Username: "PAT@contoso.com", Email: "pat@contoso.com", FirstName: "Patricia", Type: usersync.UserRegular,
		Source: "o365:t", Attributes: map[string]string{"dept": "Ops", "drop": ""}}
	// Without fields to update the user is left alone.
	res, err := d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{{User: src, Create: true}}})
	if err != nil || res.UsersUnchanged != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{{User: src, Create: true, Update: usersync.FieldEmail | usersync.FieldAttributes}}})
	if err != nil || res.UsersUpdated != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	got, _ := d.FindUserByID(ctx, manual.ID)
	if got.Email != "pat@contoso.com" || got.FirstName != "Pat" || got.Type != usersync.UserAdministrator || got.Source != usersync.SourceLocal || got.Username != "pat@contoso.com" {
		t.Fatalf("fields outside the mask changed: %+v", got)
	}
	keys := make([]string, 0)
	for k, v := range got.Attributes {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "dept=Ops,keep=1" {
		t.Fatalf("attributes merged to %v", keys)
	}
}

// testBatchCreatesSomeExisting: creates by name of which some exist
// already (a backend may insert them optimistically) update those, create
// the rest, report the created ids and the found ones, and log one event
// per change: nothing
// created twice, nothing of a failed attempt left behind.
func testBatchCreatesSomeExisting(t *testing.T, d usersync.Directory) {
	old := &usersync.User{Username: "old2@contoso.com", Email: "before@contoso.com"}
	if err := d.CreateUser(ctx, old); err != nil {
		t.Fatal(err)
	}
	seq, _ := d.LastChangeSeq(ctx)
	var ups []usersync.UserUpsert
	for _, name := range []string{"new1@contoso.com", "OLD2@contoso.com", "new3@contoso.com"} {
		ups = append(ups, usersync.UserUpsert{User: usersync.User{Username: name, Email: "after@contoso.com"}, Create: true, Update: usersync.FieldEmail})
	}
	res, err := d.ApplyBatch(ctx, &usersync.Batch{Users: ups})
	if err != nil || res.UsersCreated != 2 || res.UsersUpdated != 1 || len(res.CreatedIDs) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	for i, name := range []string{"new1@contoso.com", "new3@contoso.com"} {
		u, err := d.FindUserByUsername(ctx, name)
		if err != nil || u.ID != res.CreatedIDs[i] {
			t.Fatalf("%s: %+v %v, created ids %v", name, u, err, res.CreatedIDs)
		}
	}
	if len(res.FoundIDs) != 1 || res.FoundIDs[0] != old.ID {
		t.Fatalf("found ids %v, want the existing user's %d", res.FoundIDs, old.ID)
	}
	if got, _ := d.FindUserByID(ctx, old.ID); got.Email != "after@contoso.com" || got.Username != "old2@contoso.com" {
		t.Fatalf("the existing user: %+v", got)
	}
	events, _ := d.ChangesAfter(ctx, seq, 100)
	kinds := map[usersync.ChangeKind]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	if len(events) != 3 || kinds[usersync.UserCreated] != 2 || kinds[usersync.UserUpdated] != 1 {
		t.Fatalf("events %v", kinds)
	}
	// The same in a batch of several INSERT statements, the name taken in
	// a later one: the statements before it are undone with it, and
	// nothing is created twice or lost.
	taken := &usersync.User{Username: "eng0900@contoso.com", Email: "before@contoso.com"}
	if err := d.CreateUser(ctx, taken); err != nil {
		t.Fatal(err)
	}
	seq, _ = d.LastChangeSeq(ctx)
	res, err = d.ApplyBatch(ctx, sampleBatch(1200))
	if err != nil || res.UsersCreated != 1199 || res.UsersUpdated != 1 || len(res.CreatedIDs) != 1199 || len(res.FoundIDs) != 1 || res.FoundIDs[0] != taken.ID {
		t.Fatalf("%+v %v", res, err)
	}
	if got, _ := d.FindUserByID(ctx, taken.ID); got.Email != "eng0900@contoso.com" || got.LastName != "900" {
		t.Fatalf("the existing user: %+v", got)
	}
	kinds = map[usersync.ChangeKind]int{}
	for _, e := range changesSince(t, d, seq) {
		kinds[e.Kind]++
		if e.Kind == usersync.UserCreated && (e.Fields["username"].To == "" || e.Fields["username"].To != e.Object.Name) {
			t.Fatalf("user.created event without its fields: %+v", e)
		}
	}
	if kinds[usersync.UserCreated] != 1199 || kinds[usersync.UserUpdated] != 1 || kinds[usersync.MemberAdded] != 2400 {
		t.Fatalf("events %v", kinds)
	}
}

// testBatchReaddsMissingMembers applies a batch again after some of its
// memberships were removed: exactly those come back, with an event each in
// the batch's order, whether the members asked about have neighbouring ids
// (the whole batch: one range read) or are spread out (every ninth user:
// read by key).
func testBatchReaddsMissingMembers(t *testing.T, d usersync.Directory) {
	const n = 800
	if _, err := d.ApplyBatch(ctx, sampleBatch(n)); err != nil {
		t.Fatal(err)
	}
	g, err := d.FindGroupByName(ctx, "o365:Engineering")
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("eng%04d@contoso.com", i) }
	removeEvery := func(step int) []string {
		var names []string
		b := &usersync.Batch{}
		for i := 3; i < n; i += step {
			names = append(names, name(i))
			b.Members = append(b.Members, usersync.MemberChange{Group: g.Name, Username: name(i), Remove: true})
		}
		if res, err := d.ApplyBatch(ctx, b); err != nil || res.MembersRemoved != len(names) {
			t.Fatalf("remove: %+v %v", res, err)
		}
		return names
	}
	check := func(what string, b *usersync.Batch, want []string, members int) {
		t.Helper()
		seq := lastSeq(t, d)
		res, err := d.ApplyBatch(ctx, b)
		if err != nil || res.MembersAdded != len(want) {
			t.Fatalf("%s: %+v %v, want %d members added", what, res, err, len(want))
		}
		var got []string
		for _, c := range changesSince(t, d, seq) {
			if c.Kind == usersync.MemberAdded && c.Object.ID == g.ID {
				got = append(got, c.Member.Name)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: member-added events for %v, want %v", what, got, want)
		}
		if c, _ := d.CountMembers(ctx, g.ID); c != members {
			t.Fatalf("%s: %d members, want %d", what, c, members)
		}
		for _, max := range []int{1, members, members + 1} {
			if c, err := d.CountMembersUpTo(ctx, g.ID, max); err != nil || c != min(members, max) {
				t.Fatalf("%s: %d members counting up to %d (%v), want %d", what, c, max, err, min(members, max))
			}
		}
	}
	check("whole batch again", sampleBatch(n), removeEvery(7), n)
	removed := removeEvery(5)
	sparse := &usersync.Batch{}
	var want []string
	for i := 0; i < n; i += 9 { // more than 64 users, spread over the group
		sparse.Members = append(sparse.Members, usersync.MemberChange{Group: g.Name, Username: name(i)})
		if slices.Contains(removed, name(i)) {
			want = append(want, name(i))
		}
	}
	if len(want) == 0 || len(sparse.Members) < 64 {
		t.Fatalf("the spread batch re-adds %d of %d", len(want), len(sparse.Members))
	}
	check("every ninth user", sparse, want, n-len(removed)+len(want))
}

// testConcurrentWriters runs writers side by side with a reader that follows
// the change log as a consumer would, and checks that the reader saw every
// event exactly once, in order.
func testConcurrentWriters(t *testing.T, d usersync.Directory) {
	const writers, each = 4, 25
	start := lastSeq(t, d)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := d.CreateUser(ctx, &usersync.User{Username: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]bool{}
	cursor := start
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		cs, err := d.ChangesAfter(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Seq != cursor+1 {
				t.Fatalf("reader at %d got %d next", cursor, c.Seq)
			}
			seen[c.Seq], cursor = true, c.Seq
		}
		if finished && len(cs) == 0 {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("reader saw %d events, want %d", len(seen), writers*each)
	}
}

func testSyncState(t *testing.T, d usersync.Directory) {
	ctx := context.Background()
	if _, err := d.SyncState(ctx, "o365:t", "g1"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("missing state: %v", err)
	}
	full := time.Now().Add(-time.Hour).Truncate(time.Microsecond).UTC()
	if err := d.SaveSyncState(ctx, usersync.SyncState{Source: "o365:t", Key: "g1", Value: `{"a":1}`, FullAt: full}); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveSyncState(ctx, usersync.SyncState{Source: "okta:h", Key: "g1", Value: "other"}); err != nil {
		t.Fatal(err)
	}
	got, err := d.SyncState(ctx, "o365:t", "g1")
	if err != nil || got.Value != `{"a":1}` || !got.FullAt.Equal(full) || got.UpdatedAt.IsZero() {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if err := d.SaveSyncState(ctx, usersync.SyncState{Source: "o365:t", Key: "g1", Value: "v2", FullAt: full}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.SyncState(ctx, "o365:t", "g1"); got.Value != "v2" {
		t.Fatalf("replace: %+v", got)
	}
	if err := d.SaveSyncState(ctx, usersync.SyncState{Key: "g1"}); usersync.ErrorCode(err) != usersync.EINVALID {
		t.Fatalf("state without source: %v", err)
	}
	d.SaveSyncState(ctx, usersync.SyncState{Source: "o365:t", Key: "g0", Value: "v0"})
	if list, err := d.SyncStates(ctx, "o365:t"); err != nil || len(list) != 2 || list[0].Key != "g0" || list[1].Value != "v2" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := d.DeleteSyncState(ctx, "o365:t", "g1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SyncState(ctx, "o365:t", "g1"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("deleted state: %v", err)
	}
	if got, err := d.SyncState(ctx, "okta:h", "g1"); err != nil || got.Value != "other" {
		t.Fatalf("another source's state was touched: %+v %v", got, err)
	}
}

func testUserConditions(t *testing.T, d usersync.Directory) {
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)
	alice := &usersync.User{Username: "alice@example.com", Email: "Alice@Example.com", FirstName: "Alice", LastName: "Smith", Enabled: true,
		Source: "scim", SourceID: "ext-A", Attributes: map[string]string{"dept": "IT", "cost center": "C'1"}}
	bob := &usersync.User{Username: "bob", Email: "bob@corp.example", FirstName: "Bob", LastName: "O'Brien", Attributes: map[string]string{"dept": "Sales"}}
	carol := &usersync.User{Username: "carol_x%", FirstName: "Carol", LastName: "Smith", Enabled: true, Type: usersync.UserAdministrator}
	for _, u := range []*usersync.User{alice, bob, carol} {
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	m := func(field string, op usersync.MatchOp, v any) usersync.Match {
		return usersync.Match{Field: field, Op: op, Value: v}
	}
	exact := func(c usersync.Match) usersync.Match { c.CaseExact = true; return c }
	cases := []struct {
		name string
		cond usersync.Cond
		want string
	}{
		{"username eq ignores case", m("username", usersync.OpEq, "ALICE@example.com"), "alice@example.com"},
		{"username sw", m("username", usersync.OpSw, "B"), "bob"},
		{"LIKE metacharacters are literal", m("username", usersync.OpCo, "_x%"), "carol_x%"},
		{"co", m("username", usersync.OpCo, "x"), "alice@example.com carol_x%"},
		{"ew ignores case", m("email", usersync.OpEw, "@EXAMPLE.com"), "alice@example.com"},
		{"ew exact", exact(m("email", usersync.OpEw, "@Example.com")), "alice@example.com"},
		{"ew exact, other case", exact(m("email", usersync.OpEw, "@example.com")), ""},
		{"sw exact", exact(m("email", usersync.OpSw, "Alice@")), "alice@example.com"},
		{"co exact", exact(m("email", usersync.OpCo, "corp")), "bob"},
		{"pr", m("email", usersync.OpPresent, nil), "alice@example.com bob"},
		{"not pr", usersync.Not{Cond: m("email", usersync.OpPresent, nil)}, "carol_x%"},
		{"bool", m("enabled", usersync.OpEq, false), "bob"},
		{"quote in value", m("lastName", usersync.OpEq, "o'brien"), "bob"},
		{"attribute eq", m("attributes.dept", usersync.OpEq, "it"), "alice@example.com"},
		{"attribute name with a space and a quote value", m("attributes.cost center", usersync.OpEq, "c'1"), "alice@example.com"},
		{"attribute pr", m("attributes.dept", usersync.OpPresent, nil), "alice@example.com bob"},
		{"missing attribute reads as empty", m("attributes.dept", usersync.OpNe, "IT"), "bob carol_x%"},
		{"and", usersync.All{m("lastName", usersync.OpEq, "smith"), m("enabled", usersync.OpEq, true)}, "alice@example.com carol_x%"},
		{"or", usersync.Any{m("attributes.dept", usersync.OpEq, "Sales"), m("type", usersync.OpEq, "administrator")}, "bob carol_x%"},
		{"sourceId exact", exact(m("sourceId", usersync.OpEq, "ext-A")), "alice@example.com"},
		{"sourceId exact, other case", exact(m("sourceId", usersync.OpEq, "EXT-A")), ""},
		{"time", m("createdAt", usersync.OpGt, before), "alice@example.com bob carol_x%"},
		{"id", m("id", usersync.OpEq, float64(bob.ID)), "bob"},
		{"gt string", m("firstName", usersync.OpGt, "bob"), "carol_x%"},
		{"never", usersync.Always(false), ""},
		{"empty any", usersync.Any{}, ""},
	}
	for _, tc := range cases {
		users, n, err := d.FindUsers(ctx, usersync.UserFilter{Where: tc.cond})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, u := range users {
			got = append(got, u.Username)
		}
		if strings.Join(got, " ") != tc.want || n != len(got) {
			t.Errorf("%s: got %q (total %d), want %q", tc.name, strings.Join(got, " "), n, tc.want)
		}
	}
	for _, bad := range []usersync.Cond{m("nope", usersync.OpEq, "x"), m("enabled", usersync.OpCo, "x"), m("username", usersync.OpEq, true), m("attributes.", usersync.OpEq, "x")} {
		if _, _, err := d.FindUsers(ctx, usersync.UserFilter{Where: bad}); usersync.ErrorCode(err) != usersync.EINVALID {
			t.Errorf("%+v: %v; want an invalid-condition error", bad, err)
		}
	}
}

func testGroupConditions(t *testing.T, d usersync.Directory) {
	ctx := context.Background()
	var groups []*usersync.Group
	for _, g := range []*usersync.Group{{Name: "Sales", Alias: "ext-S", Description: "sells"}, {Name: "app:crm:Sales Ops", Alias: "ext-O"}, {Name: "Finance"}} {
		if err := d.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	ann, bob := mustCreateUser(t, d, "ann"), mustCreateUser(t, d, "bob")
	d.AddMembers(ctx, groups[0].ID, []int64{ann.ID, bob.ID})
	d.AddMembers(ctx, groups[2].ID, []int64{bob.ID})
	m := func(field string, op usersync.MatchOp, v any) usersync.Match {
		return usersync.Match{Field: field, Op: op, Value: v}
	}
	for _, tc := range []struct {
		cond usersync.Cond
		want string
	}{
		{m("name", usersync.OpEq, "SALES"), "Sales"},
		{usersync.Match{Field: "alias", Op: usersync.OpEq, Value: "ext-O", CaseExact: true}, "app:crm:Sales Ops"},
		{m("name", usersync.OpCo, "sales"), "app:crm:Sales Ops Sales"},
		{usersync.Not{Cond: m("alias", usersync.OpPresent, nil)}, "Default Group Finance"},
		{usersync.All{m("description", usersync.OpEq, "Sells"), m("name", usersync.OpSw, "s")}, "Sales"},
		{m("member", usersync.OpEq, float64(ann.ID)), "Sales"},
		{m("member", usersync.OpEq, float64(bob.ID)), "Finance Sales"},
		{usersync.All{m("member", usersync.OpEq, float64(bob.ID)), usersync.Not{Cond: m("member", usersync.OpEq, float64(ann.ID))}}, "Finance"},
		{usersync.Not{Cond: m("member", usersync.OpPresent, nil)}, "app:crm:Sales Ops Default Group"},
	} {
		gs, n, err := d.FindGroups(ctx, usersync.GroupFilter{Where: tc.cond})
		var got []string
		for _, g := range gs {
			got = append(got, g.Name)
		}
		if err != nil || strings.Join(got, " ") != tc.want || n != len(got) {
			t.Errorf("%+v: %q (%d) %v, want %q", tc.cond, strings.Join(got, " "), n, err, tc.want)
		}
	}
	if _, _, err := d.FindGroups(ctx, usersync.GroupFilter{Where: m("username", usersync.OpEq, "x")}); usersync.ErrorCode(err) != usersync.EINVALID {
		t.Errorf("a user field on groups: %v", err)
	}
	if _, _, err := d.FindGroups(ctx, usersync.GroupFilter{Where: m("member", usersync.OpGt, float64(1))}); usersync.ErrorCode(err) != usersync.EINVALID {
		t.Errorf("member gt: %v", err)
	}
}

// Case-insensitive comparison is Unicode-aware and the same on every
// backend: a stored "Åsa" is found by "Åsa", "åsa" and "ÅSA" (SQLite's own
// LOWER and LIKE fold only ASCII).
func testUnicodeFolding(t *testing.T, d usersync.Directory) {
	asa := &usersync.User{Username: "asa@example.com", FirstName: "Åsa", LastName: "Øster", Email: "asa@example.com", Attributes: map[string]string{"city": "MÜNCHEN"}}
	other := &usersync.User{Username: "bo@example.com", FirstName: "Bo", LastName: "Ek"}
	for _, u := range []*usersync.User{asa, other} {
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []usersync.Cond{
		usersync.Match{Field: "firstName", Op: usersync.OpEq, Value: "Åsa"},
		usersync.Match{Field: "firstName", Op: usersync.OpEq, Value: "åsa"},
		usersync.Match{Field: "firstName", Op: usersync.OpEq, Value: "ÅSA"},
		usersync.Match{Field: "lastName", Op: usersync.OpSw, Value: "øs"},
		usersync.Match{Field: "attributes.city", Op: usersync.OpEq, Value: "münchen"},
		usersync.Match{Field: "attributes.city", Op: usersync.OpCo, Value: "Ünc"},
	} {
		got, _, err := d.FindUsers(ctx, usersync.UserFilter{Where: c})
		if err != nil || len(got) != 1 || got[0].ID != asa.ID {
			t.Fatalf("%+v: %v %v", c, names(got), err)
		}
	}
	exact := usersync.Match{Field: "firstName", Op: usersync.OpEq, Value: "åsa", CaseExact: true}
	if got, _, _ := d.FindUsers(ctx, usersync.UserFilter{Where: exact}); len(got) != 0 {
		t.Fatalf("case-exact eq matched another case: %v", names(got))
	}
	if got, _, _ := d.FindUsers(ctx, usersync.UserFilter{Search: "øSTER"}); len(got) != 1 {
		t.Fatalf("search ignoring case: %v", names(got))
	}
}

func names(users []*usersync.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Username)
	}
	return out
}

// Usernames that differ only in Unicode normalisation or width are one
// name: the second is refused as taken, and either form finds the first.
func testUsernameNormalisation(t *testing.T, d usersync.Directory) {
	nfc := "Jos\u00e9@example.com"  // é as one code point
	nfd := "Jose\u0301@example.com" // e + combining acute
	if err := d.CreateUser(ctx, &usersync.User{Username: nfc}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.CreateUser(ctx, &usersync.User{Username: nfd}), usersync.ECONFLICT)
	wantCode(t, d.CreateUser(ctx, &usersync.User{Username: "ＪＯＳÉ@example.com"}), usersync.ECONFLICT) // fullwidth
	if u, err := d.FindUserByUsername(ctx, nfd); err != nil || u.Username != nfc {
		t.Fatalf("find by the decomposed form: %+v %v", u, err)
	}
	got, _, err := d.FindUsers(ctx, usersync.UserFilter{Where: usersync.Match{Field: "username", Op: usersync.OpEq, Value: nfd}})
	if err != nil || len(got) != 1 {
		t.Fatalf("filter by the decomposed form: %v %v", names(got), err)
	}
	res, err := d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{{User: usersync.User{Username: nfd, FirstName: "José"}, Create: true, Update: usersync.FieldFirstName}}})
	if err != nil || res.UsersCreated != 0 || res.UsersUpdated != 1 {
		t.Fatalf("batch with the decomposed form: %+v %v", res, err)
	}
}

// NUL characters and invalid UTF-8 are refused with EINVALID on every
// write path, never stored altered (and never a database error).
func testTextRefused(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "clean")
	bad := []string{"a\x00b", "caf\xe9"}
	for _, v := range bad {
		wantCode(t, d.CreateUser(ctx, &usersync.User{Username: "x", FirstName: v}), usersync.EINVALID)
		wantCode(t, d.CreateUser(ctx, &usersync.User{Username: v}), usersync.EINVALID)
		wantCode(t, d.CreateUser(ctx, &usersync.User{Username: "y", Attributes: map[string]string{"k": v}}), usersync.EINVALID)
		_, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{LastName: &v}, 0)
		wantCode(t, err, usersync.EINVALID)
		_, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Attributes: map[string]*string{"dept": &v}}, 0)
		wantCode(t, err, usersync.EINVALID)
		wantCode(t, d.CreateGroup(ctx, &usersync.Group{Name: "g", Description: v}), usersync.EINVALID)
		_, err = d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{{User: usersync.User{Username: "z", Email: "z@example.com", LastName: v}, Create: true}}})
		wantCode(t, err, usersync.EINVALID)
	}
	// Nothing half-written: the user is as it was, and filters on
	// attributes still work.
	got, err := d.FindUserByID(ctx, u.ID)
	if err != nil || got.Version != u.Version {
		t.Fatalf("user changed by refused writes: %+v %v", got, err)
	}
	if _, _, err := d.FindUsers(ctx, usersync.UserFilter{Where: usersync.Match{Field: "attributes.dept", Op: usersync.OpEq, Value: "x"}}); err != nil {
		t.Fatal(err)
	}
}

// A directory group fed by several source groups keeps a member while any
// of them holds it (usersync.MemberChange.Via).
func testMembershipSources(t *testing.T, d usersync.Directory) {
	for _, n := range []string{"ann", "ben", "cat", "dan"} {
		mustCreateUser(t, d, n)
	}
	g := mustCreateGroup(t, d, "T")
	add := func(via string, users ...string) *usersync.BatchResult {
		t.Helper()
		b := &usersync.Batch{}
		for _, u := range users {
			b.Members = append(b.Members, usersync.MemberChange{Group: "T", Username: u, Via: via})
		}
		res, err := d.ApplyBatch(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	remove := func(via string, users ...string) *usersync.BatchResult {
		t.Helper()
		b := &usersync.Batch{}
		for _, u := range users {
			b.Members = append(b.Members, usersync.MemberChange{Group: "T", Username: u, Via: via, Remove: true})
		}
		res, err := d.ApplyBatch(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	members := func() string {
		t.Helper()
		refs, err := d.MemberRefs(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range refs {
			out = append(out, r.Username+"="+strings.Join(r.Via, "+"))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	if _, err := d.AddMembers(ctx, g.ID, []int64{mustFind(t, d, "dan").ID}); err != nil { // by hand: no source group
		t.Fatal(err)
	}
	if r := add("src/G10", "ann", "ben"); r.MembersAdded != 2 {
		t.Fatalf("first adds: %+v", r)
	}
	if r := add("src/G11", "ben", "cat"); r.MembersAdded != 1 {
		t.Fatalf("ben is already a member; only cat is added: %+v", r)
	}
	if got := members(); got != "ann=src/G10 ben=src/G10+src/G11 cat=src/G11 dan=" {
		t.Fatalf("members: %s", got)
	}
	seq := lastSeq(t, d)
	if r := add("src/G11", "ben", "cat"); r.MembersAdded != 0 || r.RowsWritten != 0 || lastSeq(t, d) != seq {
		t.Fatalf("repeated adds wrote: %+v", r)
	}
	// G10 drops ben: G11 still holds him. G10 drops ann: gone. G10 drops
	// dan (added by hand, held by no source group): gone, as a mirror does.
	if r := remove("src/G10", "ben", "ann", "dan"); r.MembersRemoved != 2 {
		t.Fatalf("removals via G10: %+v", r)
	}
	if got := members(); got != "ben=src/G11 cat=src/G11" {
		t.Fatalf("members after G10's removals: %s", got)
	}
	// A removal via a group that does not hold the member changes nothing.
	if r := remove("src/G10", "cat"); r.MembersRemoved != 0 {
		t.Fatalf("removal via a group that does not hold cat: %+v", r)
	}
	// A removal without a source group removes outright.
	if r := remove("", "ben"); r.MembersRemoved != 1 {
		t.Fatalf("plain removal: %+v", r)
	}
	if got := members(); got != "cat=src/G11" {
		t.Fatalf("members at the end: %s", got)
	}
	cat, ann := mustFind(t, d, "cat"), mustFind(t, d, "ann")
	in, err := d.MemberRefsOf(ctx, g.ID, usersync.MemberQuery{UserIDs: []int64{cat.ID, ann.ID}})
	if err != nil || len(in) != 1 || in[0].UserID != cat.ID || strings.Join(in[0].Via, " ") != "src/G11" {
		t.Fatalf("MemberRefsOf by id: %+v %v", in, err)
	}
	d.UpdateUser(ctx, cat.ID, usersync.UserUpdate{Source: ptr("o365:t"), SourceID: ptr("obj-cat")}, 0)
	in, err = d.MemberRefsOf(ctx, g.ID, usersync.MemberQuery{Source: "o365:t", SourceIDs: []string{"obj-cat", "obj-none"}})
	if err != nil || len(in) != 1 || in[0].UserID != cat.ID {
		t.Fatalf("MemberRefsOf by source id: %+v %v", in, err)
	}
	if n, err := d.CountMembers(ctx, g.ID); err != nil || n != 1 {
		t.Fatalf("CountMembers: %d %v", n, err)
	}
	if other, err := d.HasMembersNotFrom(ctx, g.ID, "o365:t"); err != nil || other {
		t.Fatalf("HasMembersNotFrom(the only member's source): %v %v", other, err)
	}
	if other, err := d.HasMembersNotFrom(ctx, g.ID, "okta:x"); err != nil || !other {
		t.Fatalf("HasMembersNotFrom(another source): %v %v", other, err)
	}
	seen := 0
	if err := d.ScanMemberRefs(ctx, g.ID, func(usersync.MemberRef) error { seen++; return nil }); err != nil || seen != 1 {
		t.Fatalf("ScanMemberRefs: %d %v", seen, err)
	}
}

func mustFind(t *testing.T, d usersync.Directory, name string) *usersync.User {
	t.Helper()
	u, err := d.FindUserByUsername(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// An upsert by ID renames the user (FieldUsername) and keeps its id and
// memberships; UsersBySource finds users by their id at the source.
func testUpsertByID(t *testing.T, d usersync.Directory) {
	u := &usersync.User{Username: "old@x.example", Source: "o365:t", SourceID: "obj-1", SoftDeleted: true}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	g := mustCreateGroup(t, d, "G")
	d.AddMembers(ctx, g.ID, []int64{u.ID})
	found, err := d.UsersBySource(ctx, "o365:t", []string{"obj-1", "obj-2"})
	if err != nil || len(found) != 1 || found["obj-1"].ID != u.ID {
		t.Fatalf("UsersBySource: %v %v", found, err)
	}
	if other, _ := d.UsersBySource(ctx, "okta:x", []string{"obj-1"}); len(other) != 0 {
		t.Fatalf("UsersBySource matched another source: %v", other)
	}
	res, err := d.ApplyBatch(ctx, &usersync.Batch{
		Users:   []usersync.UserUpsert{{ID: u.ID, User: usersync.User{Username: "new@x.example", FirstName: "N"}, Update: usersync.FieldUsername | usersync.FieldFirstName}},
		Members: []usersync.MemberChange{{Group: "G", Username: "new@x.example"}},
	})
	if err != nil || res.UsersUpdated != 1 || res.MembersAdded != 0 {
		t.Fatalf("rename: %+v %v", res, err)
	}
	got, err := d.FindUserByID(ctx, u.ID)
	if err != nil || got.Username != "new@x.example" || got.FirstName != "N" || got.SoftDeleted {
		t.Fatalf("renamed user: %+v %v", got, err)
	}
	if _, n, _ := d.Members(ctx, g.ID, 0, 0); n != 1 {
		t.Fatalf("membership lost in the rename: %d members", n)
	}
	// An upsert by ID of a user that is gone is skipped, with its memberships.
	d.DeleteUser(ctx, u.ID, 0)
	res, err = d.ApplyBatch(ctx, &usersync.Batch{
		Users:   []usersync.UserUpsert{{ID: u.ID, User: usersync.User{Username: "new@x.example"}, Update: usersync.FieldUsername, Create: true}},
		Members: []usersync.MemberChange{{Group: "G", Username: "new@x.example"}},
	})
	if err != nil || res.UsersSkipped != 1 || res.UsersCreated != 0 {
		t.Fatalf("upsert of a deleted id: %+v %v", res, err)
	}
}

// SoftDeleted is stored and changed only when asked for.
func testSoftDeletedState(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "sd")
	disabled := false
	got, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Enabled: &disabled}, 0)
	if err != nil || got.SoftDeleted {
		t.Fatalf("disabling set the soft-delete mark: %+v %v", got, err)
	}
	yes := true
	if got, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{SoftDeleted: &yes}, 0); err != nil || !got.SoftDeleted {
		t.Fatalf("set soft-deleted: %+v %v", got, err)
	}
	if again, _ := d.FindUserByID(ctx, u.ID); !again.SoftDeleted {
		t.Fatal("soft-deleted mark not stored")
	}
}

func ptr[T any](v T) *T { return &v }

func sampleProvisioner(name string) *usersync.Provisioner {
	return &usersync.Provisioner{Name: name, Kind: usersync.ProvisionerGroups,
		Config: usersync.ProvisionerConfig{TenantID: "contoso.onmicrosoft.com", ClientID: "app-1", Domain: "contoso.com"}}
}

// Provisioners are stored with the seed's defaults filled in, their secret
// apart; items (failing groups) go with their provisioner.
func testProvisioners(t *testing.T, d usersync.Directory) {
	p := sampleProvisioner("o365")
	if err := d.CreateProvisioner(ctx, p, "s3cret"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.CreateProvisioner(ctx, sampleProvisioner("o365"), "x"), usersync.ECONFLICT)
	wantCode(t, d.CreateProvisioner(ctx, sampleProvisioner("has space"), "x"), usersync.EINVALID)
	bad := sampleProvisioner("bad")
	bad.Config.TenantID = "@o365.tenantId@"
	wantCode(t, d.CreateProvisioner(ctx, bad, "x"), usersync.EINVALID)
	if _, err := d.FindProvisioner(ctx, "bad"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("a refused provisioner was stored: %v", err)
	}

	got, err := d.FindProvisioner(ctx, "o365")
	if err != nil {
		t.Fatal(err)
	}
	c := got.Config
	if c.SyncAttribute != usersync.DefaultSyncAttribute || c.IDAttribute != "uid" || c.GroupType != "Security" ||
		c.RemoteIDAttribute != usersync.DefaultRemoteIDAttr || c.QuartzCron != usersync.DefaultQuartzCron || c.Domain != "contoso.com" || got.Version != 1 {
		t.Fatalf("stored config: %+v", got)
	}
	if s, err := d.ProvisionerSecret(ctx, "o365"); err != nil || s != "s3cret" {
		t.Fatalf("secret = %q, %v", s, err)
	}

	second := sampleProvisioner("uni")
	second.Config.GroupType = "Unified"
	if err := d.CreateProvisioner(ctx, second, "other"); err != nil {
		t.Fatal(err)
	}
	if second.Config.RemoteIDAttribute != usersync.DefaultRemoteIDAttr+":uni" || second.Config.Visibility != "Public" {
		t.Fatalf("second provisioner's defaults: %+v", second.Config)
	}
	all, err := d.FindProvisioners(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "o365" || all[1].Name != "uni" {
		t.Fatalf("list: %v %v", all, err)
	}

	got.Config.GroupJexl = "group.name"
	if err := d.UpdateProvisioner(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	again, _ := d.FindProvisioner(ctx, "o365")
	if again.Config.GroupJexl != "group.name" || again.Version != 2 {
		t.Fatalf("after update: %+v", again)
	}
	if s, _ := d.ProvisionerSecret(ctx, "o365"); s != "s3cret" {
		t.Fatalf("an update without a secret changed it to %q", s)
	}
	newSecret := "n3w"
	if err := d.UpdateProvisioner(ctx, again, &newSecret); err != nil {
		t.Fatal(err)
	}
	if s, _ := d.ProvisionerSecret(ctx, "o365"); s != "n3w" {
		t.Fatalf("secret after replacing = %q", s)
	}
	wantCode(t, d.UpdateProvisioner(ctx, sampleProvisioner("nobody"), nil), usersync.ENOTFOUND)

	next := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	it := usersync.ProvisionerItem{Provisioner: "o365", GroupID: 7, GroupName: "app:g7", Failures: 2, LastError: "Graph answered 503", NextAttempt: next}
	if err := d.SaveProvisionerItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	it.Failures, it.Quarantined = 5, true
	if err := d.SaveProvisionerItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	d.SaveProvisionerItem(ctx, usersync.ProvisionerItem{Provisioner: "uni", GroupID: 7, GroupName: "app:g7", Failures: 1, LastError: "x", NextAttempt: next})
	items, err := d.ProvisionerItems(ctx, "o365")
	if err != nil || len(items) != 1 || items[0].Failures != 5 || !items[0].Quarantined || !items[0].NextAttempt.Equal(next) || items[0].LastError != "Graph answered 503" {
		t.Fatalf("items: %+v %v", items, err)
	}
	if err := d.DeleteProvisionerItem(ctx, "o365", 7); err != nil {
		t.Fatal(err)
	}
	if items, _ := d.ProvisionerItems(ctx, "o365"); len(items) != 0 {
		t.Fatalf("item not deleted: %+v", items)
	}
	if items, _ := d.ProvisionerItems(ctx, "uni"); len(items) != 1 {
		t.Fatalf("deleting one provisioner's item touched another's: %+v", items)
	}

	d.SetCursor(ctx, usersync.ProvisionerCursor("uni"), 9)
	if err := d.DeleteProvisioner(ctx, "uni"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.DeleteProvisioner(ctx, "uni"), usersync.ENOTFOUND)
	if items, _ := d.ProvisionerItems(ctx, "uni"); len(items) != 0 {
		t.Fatalf("items outlived their provisioner: %+v", items)
	}
	if n, _ := d.Cursor(ctx, usersync.ProvisionerCursor("uni")); n != 0 {
		t.Fatalf("cursor outlived its provisioner: %d", n)
	}
	_, err = d.ProvisionerSecret(ctx, "uni")
	wantCode(t, err, usersync.ENOTFOUND)
}

// One holder at a time: a lease is renewed by its holder, refused to
// another until it expires or is released.
func testLeases(t *testing.T, d usersync.Directory) {
	take := func(holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := d.TryLease(ctx, "provisioner:o365", holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("a", time.Minute) || !take("a", time.Minute) {
		t.Fatal("a could not take or renew a free lease")
	}
	if take("b", time.Minute) {
		t.Fatal("b took a's unexpired lease")
	}
	if h, until, err := d.LeaseHolder(ctx, "provisioner:o365"); err != nil || h != "a" || time.Until(until) <= 0 || time.Until(until) > time.Minute+time.Second {
		t.Fatalf("holder: %q until %v, %v", h, until, err)
	}
	if h, _, err := d.LeaseHolder(ctx, "nobody's"); err != nil || h != "" {
		t.Fatalf("holder of a free lease: %q %v", h, err)
	}
	if ok, _ := d.TryLease(ctx, "other", "b", time.Minute); !ok {
		t.Fatal("leases of other names are separate")
	}
	d.ReleaseLease(ctx, "provisioner:o365", "b") // not b's: no effect
	if take("b", time.Minute) {
		t.Fatal("b released a's lease")
	}
	d.ReleaseLease(ctx, "provisioner:o365", "a")
	if !take("b", 50*time.Millisecond) {
		t.Fatal("b could not take a released lease")
	}
	time.Sleep(80 * time.Millisecond)
	if !take("a", time.Minute) {
		t.Fatal("a could not take b's expired lease")
	}
	_, err := d.TryLease(ctx, "", "a", time.Minute)
	wantCode(t, err, usersync.EINVALID)
}

// A delete that names the version it read fails when the object moved on
// meanwhile, and deletes nothing: the check is inside the delete, so an
// If-Match checked before it cannot race a change.
func testDeleteAtVersion(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "ann")
	g := mustCreateGroup(t, d, "app:staff")
	read := u.Version
	if _, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{FirstName: ptr("Anne")}, 0); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.DeleteUser(ctx, u.ID, read), usersync.ESTALE)
	if _, err := d.FindUserByID(ctx, u.ID); err != nil {
		t.Fatalf("a stale delete removed the user: %v", err)
	}
	cur, _ := d.FindUserByID(ctx, u.ID)
	if err := d.DeleteUser(ctx, u.ID, cur.Version); err != nil {
		t.Fatalf("delete at the current version: %v", err)
	}

	gread := g.Version
	if _, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Description: ptr("moved on")}, 0); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.DeleteGroup(ctx, g.ID, gread), usersync.ESTALE)
	gcur, err := d.FindGroupByID(ctx, g.ID)
	if err != nil {
		t.Fatalf("a stale delete removed the group: %v", err)
	}
	if err := d.DeleteGroup(ctx, g.ID, gcur.Version); err != nil {
		t.Fatalf("delete at the current version: %v", err)
	}
	wantCode(t, d.DeleteGroup(ctx, g.ID, gcur.Version), usersync.ENOTFOUND)
}

// Passwords, failed attempts that lock, and console sessions stored only
// as hashes, ended by sign-out, expiry, or the user losing the right.
func testSignIn(t *testing.T, d usersync.Directory) {
	admin := &usersync.User{Username: "root@example.com", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if _, st, err := d.SignInState(ctx, "ROOT@example.com"); err != nil || st.PasswordHash != "" || st.Failures != 0 {
		t.Fatalf("a new user's sign-in state: %+v %v", st, err)
	}
	if _, err := d.SetPasswordHash(ctx, admin.ID, "$2a$10$hash"); err != nil {
		t.Fatal(err)
	}
	_, err := d.SetPasswordHash(ctx, 987654, "x")
	wantCode(t, err, usersync.ENOTFOUND)
	_, _, err = d.BeginSignIn(ctx, "nobody@example.com", 3, time.Minute)
	wantCode(t, err, usersync.ENOTFOUND)
	for i := 0; i < 3; i++ {
		if _, st, err := d.BeginSignIn(ctx, "root@example.com", 3, time.Minute); err != nil || !st.Allowed || st.PasswordHash != "$2a$10$hash" {
			t.Fatalf("attempt %d before the lock: %+v %v", i+1, st, err)
		}
	}
	u, st, err := d.BeginSignIn(ctx, "Root@example.com", 3, time.Minute)
	if err != nil || u.ID != admin.ID || st.Allowed || st.Failures != 3 || time.Until(st.LockedUntil) < 50*time.Second {
		t.Fatalf("the attempt after three: %+v %v", st, err)
	}
	if err := d.SignInSucceeded(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := d.SignInState(ctx, "root@example.com"); st.Failures != 0 || !st.LockedUntil.IsZero() {
		t.Fatalf("a success forgets failures: %+v", st)
	}
	// Attempts at once: exactly lockAfter of them may check a password
	// (RecordSignIn after the check let every attempt that read the state
	// before the fifth failure was written be checked).
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, st, err := d.BeginSignIn(ctx, "root@example.com", 5, time.Minute)
			if err != nil {
				t.Error(err)
			} else if st.Allowed {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("24 attempts at once with a lock after 5: %d were let through", n)
	}
	d.SignInSucceeded(ctx, admin.ID)

	clear, s, err := d.CreateSession(ctx, admin.ID, time.Hour)
	if err != nil || !strings.HasPrefix(clear, usersync.SessionPrefix) || s.CSRF == "" || s.Username != admin.Username {
		t.Fatalf("create session: %q %+v %v", clear, s, err)
	}
	got, err := d.FindSession(ctx, clear)
	if err != nil || got.ID != s.ID || got.CSRF != s.CSRF {
		t.Fatalf("find session: %+v %v", got, err)
	}
	_, err = d.FindSession(ctx, clear+"x")
	wantCode(t, err, usersync.EUNAUTHORIZED)
	short, _, _ := d.CreateSession(ctx, admin.ID, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	_, err = d.FindSession(ctx, short)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	// No longer an administrator: the session no longer signs in.
	regular := usersync.UserRegular
	if _, err := d.UpdateUser(ctx, admin.ID, usersync.UserUpdate{Type: &regular}, 0); err != nil {
		t.Fatal(err)
	}
	_, err = d.FindSession(ctx, clear)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	adm := usersync.UserAdministrator
	d.UpdateUser(ctx, admin.ID, usersync.UserUpdate{Type: &adm}, 0)
	if err := d.DeleteSession(ctx, clear); err != nil {
		t.Fatal(err)
	}
	_, err = d.FindSession(ctx, clear)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	// A new or cleared password ends every session of the user.
	one, _, _ := d.CreateSession(ctx, admin.ID, time.Hour)
	two, _, _ := d.CreateSession(ctx, admin.ID, time.Hour)
	if n, err := d.SetPasswordHash(ctx, admin.ID, "$2a$10$other"); err != nil || n != 2 {
		t.Fatalf("a new password ended %d sessions (%v), want 2", n, err)
	}
	for _, c := range []string{one, two} {
		_, err = d.FindSession(ctx, c)
		wantCode(t, err, usersync.EUNAUTHORIZED)
	}
	three, _, _ := d.CreateSession(ctx, admin.ID, time.Hour)
	if n, err := d.SetPasswordHash(ctx, admin.ID, ""); err != nil || n != 1 {
		t.Fatalf("clearing the password ended %d sessions (%v), want 1", n, err)
	}
	_, err = d.FindSession(ctx, three)
	wantCode(t, err, usersync.EUNAUTHORIZED)
	again, _, _ := d.CreateSession(ctx, admin.ID, time.Hour)
	if err := d.DeleteUser(ctx, admin.ID, 0); err != nil {
		t.Fatal(err)
	}
	_, err = d.FindSession(ctx, again)
	wantCode(t, err, usersync.EUNAUTHORIZED)
}

// Ids are never handed out twice: state kept by id elsewhere (a
// provisioner's link to the Entra user, a SCIM client's URL, an approval)
// must never reach the object created after the one it was for. Deleting
// the newest object is the case SQLite's plain rowid reused.
func testIDsNeverReused(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "zed")
	if err := d.DeleteUser(ctx, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	again := mustCreateUser(t, d, "yolanda")
	batch := &usersync.Batch{Users: []usersync.UserUpsert{{User: usersync.User{Username: "xavier", Enabled: true, Source: "o365:t", SourceID: "x"}, Create: true}}}
	if _, err := d.ApplyBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	bulk := mustFind(t, d, "xavier")
	if again.ID == u.ID || bulk.ID == u.ID || bulk.ID <= again.ID {
		t.Fatalf("user ids: deleted %d, then %d and (bulk) %d: an id was handed out again", u.ID, again.ID, bulk.ID)
	}
	if _, err := d.FindUserByID(ctx, u.ID); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("the deleted user's id finds %v", err)
	}

	g := mustCreateGroup(t, d, "apps:old")
	if err := d.DeleteGroup(ctx, g.ID, 0); err != nil {
		t.Fatal(err)
	}
	if g2 := mustCreateGroup(t, d, "apps:new"); g2.ID == g.ID {
		t.Fatalf("group id %d handed out again", g.ID)
	}

	f, err := d.CreateFolder(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteFolder(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if f2, err := d.CreateFolder(ctx, "other"); err != nil || f2.ID == f.ID {
		t.Fatalf("folder id %d handed out again (%v)", f.ID, err)
	}

	_, tok, err := d.CreateToken(ctx, again.ID, "one")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, tok2, err := d.CreateToken(ctx, again.ID, "two"); err != nil || tok2.ID == tok.ID {
		t.Fatalf("token id %d handed out again (%v)", tok.ID, err)
	}
}
