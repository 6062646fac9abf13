package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/usersync/usersync"
)

// Renames of one batch may exchange names: two users who swap usernames,
// and a chain where each takes the name the next one leaves, apply as one
// change, each name landing on the user it was planned for. A rename to a
// name that stays taken is refused with nothing written.
func testBatchSwapsNames(t *testing.T, d usersync.Directory) {
	mk := func(name, sid string) *usersync.User {
		u := &usersync.User{Username: name, Source: "o365:t", SourceID: sid, Enabled: true}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	ann, bob := mk("ann@x.example", "s-ann"), mk("bob@x.example", "s-bob")
	c1, c2, c3 := mk("c1@x.example", "s-c1"), mk("c2@x.example", "s-c2"), mk("c3@x.example", "s-c3")
	mustCreateGroup(t, d, "Swap")
	rename := func(u *usersync.User, to string) usersync.UserUpsert {
		return usersync.UserUpsert{ID: u.ID, User: usersync.User{Username: to, Source: "o365:t", SourceID: u.SourceID, Enabled: true}, Update: usersync.FieldUsername}
	}
	before := lastSeq(t, d)
	res, err := d.ApplyBatch(ctx, &usersync.Batch{
		Users: []usersync.UserUpsert{
			rename(ann, "bob@x.example"), rename(bob, "ann@x.example"), // a swap
			rename(c1, "c2@x.example"), rename(c2, "c3@x.example"), rename(c3, "c4@x.example"), // a chain, in its worst order
			{Create: true, User: usersync.User{Username: "c1@x.example", Source: "o365:t", SourceID: "s-new", Enabled: true}}, // takes the name c1 leaves
		},
		Members: []usersync.MemberChange{{Group: "Swap", Username: "ann@x.example"}}, // by the name as it is after the batch: bob
	})
	if err != nil || res.UsersUpdated != 5 || res.UsersCreated != 1 || res.MembersAdded != 1 {
		t.Fatalf("swap and chain: %+v %v", res, err)
	}
	for u, want := range map[*usersync.User]string{ann: "bob@x.example", bob: "ann@x.example", c1: "c2@x.example", c2: "c3@x.example", c3: "c4@x.example"} {
		got, err := d.FindUserByID(ctx, u.ID)
		if err != nil || got.Username != want || got.SourceID != u.SourceID {
			t.Fatalf("user %d (%s) after the batch: %+v %v; want %s", u.ID, u.SourceID, got, err, want)
		}
	}
	if got := mustFind(t, d, "c1@x.example"); got.SourceID != "s-new" {
		t.Fatalf("c1@x.example is %+v, want the new user", got)
	}
	g, _ := d.FindGroupByName(ctx, "Swap")
	if ms, _, _ := d.Members(ctx, g.ID, 0, 0); len(ms) != 1 || ms[0].ID != bob.ID {
		t.Fatalf("member added by the new name: %+v, want bob (id %d)", ms, bob.ID)
	}
	// The change log records each rename once, from the old name to the
	// new: never the name a user was parked under.
	renames := 0
	for _, c := range changesSince(t, d, before) {
		if f, ok := c.Fields["username"]; ok && c.Kind == usersync.UserUpdated {
			renames++
			if f.From == "" || f.To == "" || f.From == f.To {
				t.Fatalf("rename recorded as %+v", f)
			}
		}
	}
	if renames != 5 {
		t.Fatalf("%d renames recorded, want 5", renames)
	}
	// A membership named by id reaches that user whatever name it has now:
	// "ann@x.example" is bob since the swap, and bob is not the one meant.
	res, err = d.ApplyBatch(ctx, &usersync.Batch{Members: []usersync.MemberChange{
		{Group: "Swap", Username: "ann@x.example", UserID: ann.ID},               // ann, by her id (her name is bob's now)
		{Group: "Swap", Username: "ann@x.example", UserID: bob.ID, Remove: true}, // bob, by his id
	}})
	if err != nil || res.MembersAdded != 1 || res.MembersRemoved != 1 {
		t.Fatalf("members by id: %+v %v", res, err)
	}
	if ms, _, _ := d.Members(ctx, g.ID, 0, 0); len(ms) != 1 || ms[0].ID != ann.ID {
		t.Fatalf("members by id: %+v, want ann (id %d) only", ms, ann.ID)
	}
	_, err = d.ApplyBatch(ctx, &usersync.Batch{Members: []usersync.MemberChange{{Group: "Swap", Username: "gone", UserID: 1 << 40}}})
	wantCode(t, err, usersync.ENOTFOUND)
	// A rename to a name that nobody leaves fails whole.
	_, err = d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{rename(ann, "c9@x.example"), rename(c3, "ann@x.example")}})
	wantCode(t, err, usersync.ECONFLICT)
	if got, _ := d.FindUserByID(ctx, ann.ID); got.Username != "bob@x.example" {
		t.Fatalf("a refused batch renamed %+v", got)
	}
}

// A source renamed (one tenant first known by its domain, then by its id)
// keeps everything it owns: users, groups, sync states and the source
// groups that brought each membership, with a change event per object.
func testRenameSource(t *testing.T, d usersync.Directory) {
	const from, to = "o365:contoso.example", "o365:0e8f5c2a-1111-4222-8333-444455556666"
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{{Create: true, Group: usersync.Group{Name: "Sales", Source: from, SourceID: "g1"}}}}
	for i, name := range []string{"ann@x.example", "bob@x.example"} {
		b.Users = append(b.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Source: from, SourceID: fmt.Sprint("u", i), Enabled: true}})
		b.Members = append(b.Members, usersync.MemberChange{Group: "Sales", Username: name, Via: from + "/g1"})
	}
	if _, err := d.ApplyBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ApplyBatch(ctx, &usersync.Batch{Members: []usersync.MemberChange{{Group: "Sales", Username: "ann@x.example", Via: "okta:o/g2"}}}); err != nil {
		t.Fatal(err)
	}
	other := &usersync.User{Username: "local@x.example", Source: usersync.SourceLocal}
	if err := d.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, st := range []usersync.SyncState{{Source: from, Key: "g1", Value: "old-1"}, {Source: from, Key: "g3", Value: "old-3"}, {Source: to, Key: "g3", Value: "new-3"}} {
		if err := d.SaveSyncState(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := d.Sources(ctx)
	if err != nil || !slices.Contains(srcs, from) || !slices.Contains(srcs, to) || !slices.Contains(srcs, usersync.SourceLocal) {
		t.Fatalf("Sources: %v %v", srcs, err)
	}
	before := lastSeq(t, d)
	moved, err := d.RenameSource(ctx, from, to)
	if err != nil || moved != (usersync.SourceRenamed{Users: 2, Groups: 1, SyncStates: 1}) {
		t.Fatalf("RenameSource: %+v %v", moved, err)
	}
	for _, name := range []string{"ann@x.example", "bob@x.example"} {
		if u := mustFind(t, d, name); u.Source != to || u.Version != 2 {
			t.Fatalf("%s after the rename: %+v", name, u)
		}
	}
	if u := mustFind(t, d, "local@x.example"); u.Source != usersync.SourceLocal {
		t.Fatalf("another source's user moved: %+v", u)
	}
	g, _ := d.FindGroupByName(ctx, "Sales")
	if g.Source != to || g.SourceID != "g1" {
		t.Fatalf("group after the rename: %+v", g)
	}
	if st, err := d.SyncState(ctx, to, "g1"); err != nil || st.Value != "old-1" {
		t.Fatalf("moved sync state: %+v %v", st, err)
	}
	if st, err := d.SyncState(ctx, to, "g3"); err != nil || st.Value != "new-3" {
		t.Fatalf("the state kept under the new name must win: %+v %v", st, err)
	}
	if _, err := d.SyncState(ctx, from, "g3"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("a state is left under the old name: %v", err)
	}
	refs, err := d.MemberRefsOf(ctx, g.ID, usersync.MemberQuery{Source: to, SourceIDs: []string{"u0", "u1"}})
	if err != nil || len(refs) != 2 {
		t.Fatalf("members by the new source: %+v %v", refs, err)
	}
	for _, r := range refs {
		want := []string{to + "/g1"}
		if r.Username == "ann@x.example" {
			want = []string{to + "/g1", "okta:o/g2"}
		}
		got := slices.Clone(r.Via)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s is a member via %v, want %v", r.Username, got, want)
		}
	}
	events := 0
	for _, c := range changesSince(t, d, before) {
		if f := c.Fields["source"]; f.From == from && f.To == to {
			events++
		}
	}
	if events != 3 {
		t.Fatalf("%d change events name the rename, want 3 (2 users, 1 group)", events)
	}
	if srcs, _ := d.Sources(ctx); slices.Contains(srcs, from) {
		t.Fatalf("the old name is still a source: %v", srcs)
	}
	_, err = d.RenameSource(ctx, to, to)
	wantCode(t, err, usersync.EINVALID)
}

// A group named as a source spells it (Flat) keeps its name exactly, ':'
// and white space inside it included, sits in no folder and makes none,
// through renames and batches too; a folder path is still checked as one.
func testFlatGroupNames(t *testing.T, d usersync.Directory) {
	for _, name := range []string{"Project: Apollo", "Sales:EMEA", "a::b", ":lead"} {
		g := &usersync.Group{Name: name, Source: "scim", Flat: true}
		if err := d.CreateGroup(ctx, g); err != nil {
			t.Fatalf("flat %q: %v", name, err)
		}
		got, err := d.FindGroupByName(ctx, name)
		if err != nil || got.Name != name || !got.Flat || got.Folder() != "" {
			t.Fatalf("flat %q read back as %+v %v", name, got, err)
		}
	}
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{{Create: true, Group: usersync.Group{Name: "Ops: Night shift", Source: "o365:t", Flat: true}}}}
	if _, err := d.ApplyBatch(ctx, b); err != nil {
		t.Fatalf("flat group in a batch: %v", err)
	}
	if fs, _ := d.FindFolders(ctx, ""); len(fs) != 0 {
		t.Fatalf("flat names made folders: %+v", fs)
	}
	root := ""
	if gs, _, _ := d.FindGroups(ctx, usersync.GroupFilter{Folder: &root}); len(gs) < 5 {
		t.Fatalf("flat groups are not at the root: %d there", len(gs))
	}
	g, _ := d.FindGroupByName(ctx, "Sales:EMEA")
	name := "Sales:EMEA: North"
	if _, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: &name}, 0); err != nil {
		t.Fatalf("renaming a flat group: %v", err)
	}
	if got, _ := d.FindGroupByName(ctx, name); got == nil || !got.Flat {
		t.Fatalf("renamed flat group: %+v", got)
	}
	if fs, _ := d.FindFolders(ctx, ""); len(fs) != 0 {
		t.Fatalf("a flat rename made folders: %+v", fs)
	}
	// Names made by hand are folder paths, as before.
	err := d.CreateGroup(ctx, &usersync.Group{Name: "Project: Apollo 2"})
	wantCode(t, err, usersync.EINVALID)
	mustCreateGroup(t, d, "Sales:EMEA2")
	if f, err := d.FindFolder(ctx, "Sales"); err != nil || f.Path != "Sales" {
		t.Fatalf("a path name makes its folder: %+v %v", f, err)
	}
	err = d.CreateGroup(ctx, &usersync.Group{Name: " padded", Flat: true})
	wantCode(t, err, usersync.EINVALID)
}
