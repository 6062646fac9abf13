package storetest

import (
	"slices"
	"testing"

	"github.com/usersync/usersync"
)

// testNestedGroups: groups inside groups, the effective members they give,
// cycles refused, and the change log naming the group that joined.
func testNestedGroups(t *testing.T, d usersync.Directory) {
	users := map[string]int64{}
	for _, n := range []string{"ann", "bob", "cid"} {
		users[n] = mustCreateUser(t, d, n).ID
	}
	groups := map[string]*usersync.Group{}
	for _, n := range []string{"Parent", "Child", "Grandchild"} {
		groups[n] = mustCreateGroup(t, d, n)
	}
	p, c, gc := groups["Parent"], groups["Child"], groups["Grandchild"]
	seq := lastSeq(t, d)
	change := func(g *usersync.Group, ch usersync.GroupChange) error {
		_, err := d.ChangeGroup(ctx, g.ID, ch, 0)
		return err
	}
	for _, step := range []struct {
		g  *usersync.Group
		ch usersync.GroupChange
	}{
		{p, usersync.GroupChange{Add: []int64{users["ann"]}, AddGroups: []int64{c.ID}}},
		{c, usersync.GroupChange{Add: []int64{users["bob"]}, AddGroups: []int64{gc.ID}}},
		{gc, usersync.GroupChange{Add: []int64{users["cid"], users["bob"]}}},
	} {
		if err := change(step.g, step.ch); err != nil {
			t.Fatalf("nest into %s: %v", step.g.Name, err)
		}
	}
	effective := func(g *usersync.Group) []string {
		t.Helper()
		us, total, err := d.EffectiveMembers(ctx, g.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if total != len(us) {
			t.Fatalf("effective members of %s: total %d, %d listed", g.Name, total, len(us))
		}
		return names(us)
	}
	if got := effective(p); !slices.Equal(got, []string{"ann", "bob", "cid"}) {
		t.Fatalf("effective members of Parent: %v (bob is in two nested groups and must appear once)", got)
	}
	if us, total, _ := d.EffectiveMembers(ctx, p.ID, 1, 1); total != 3 || len(us) != 1 || us[0].Username != "bob" {
		t.Fatalf("paged effective members: total %d, %v", total, names(us))
	}
	// Direct members stay users only.
	if us, total, _ := d.Members(ctx, p.ID, 0, 0); total != 1 || len(us) != 1 || us[0].Username != "ann" {
		t.Fatalf("direct members of Parent: %d %v", total, names(us))
	}
	if n, _ := d.CountMembers(ctx, p.ID); n != 1 {
		t.Fatalf("CountMembers counts %d, want the one user member", n)
	}
	if gs, err := d.MemberGroups(ctx, p.ID); err != nil || len(gs) != 1 || gs[0].ID != c.ID {
		t.Fatalf("member groups of Parent: %v %v", gs, err)
	}

	// The log says which group joined which, typed as a group.
	var joined []string
	for _, e := range changesSince(t, d, seq) {
		if e.Kind == usersync.MemberAdded && e.Member.Type == usersync.ObjectGroup {
			joined = append(joined, e.Member.Name+" in "+e.Object.Name)
		}
	}
	if !slices.Equal(joined, []string{"Child in Parent", "Grandchild in Child"}) {
		t.Fatalf("group joins in the log: %v", joined)
	}

	// Cycles are refused, directly or through others, and nothing of the
	// change stays (the user added beside it is not added).
	before := lastSeq(t, d)
	for _, bad := range []struct {
		g  *usersync.Group
		in int64
	}{{gc, p.ID}, {c, p.ID}, {p, p.ID}, {gc, gc.ID}} {
		err := change(bad.g, usersync.GroupChange{Add: []int64{users["ann"]}, AddGroups: []int64{bad.in}})
		wantCode(t, err, usersync.EINVALID)
	}
	if lastSeq(t, d) != before {
		t.Fatalf("a refused cycle logged %d events", lastSeq(t, d)-before)
	}
	if got := effective(gc); !slices.Equal(got, []string{"bob", "cid"}) {
		t.Fatalf("a refused change was half applied: Grandchild has %v", got)
	}

	// A user's id given as a group is not a group: never read as the user.
	ghost := users["cid"]
	for ghost == p.ID || ghost == c.ID || ghost == gc.ID {
		ghost += 1000
	}
	err := change(p, usersync.GroupChange{AddGroups: []int64{ghost}})
	wantCode(t, err, usersync.ENOTFOUND)

	// The groups a user is in, directly and through nesting.
	ms, err := d.MembershipsOf(ctx, []int64{users["bob"], users["cid"], users["ann"]})
	if err != nil {
		t.Fatal(err)
	}
	describe := func(list []usersync.Membership) []string {
		var out []string
		for _, m := range list {
			kind := "indirect"
			if m.Direct {
				kind = "direct"
			}
			out = append(out, m.GroupName+" "+kind)
		}
		return out
	}
	for user, want := range map[string][]string{
		"ann": {"Parent direct"},
		"bob": {"Child direct", "Grandchild direct", "Parent indirect"},
		"cid": {"Child indirect", "Grandchild direct", "Parent indirect"},
	} {
		if got := describe(ms[users[user]]); !slices.Equal(got, want) {
			t.Fatalf("groups of %s: %v, want %v", user, got, want)
		}
	}

	// A listing reads the same memberships along with the users.
	listed, _, err := d.FindUsers(ctx, usersync.UserFilter{WithMemberships: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range listed {
		want := ms[u.ID]
		if len(want) == 0 {
			want = nil
		}
		got := u.Memberships
		if len(got) == 0 {
			got = nil
		}
		if !slices.Equal(describe(got), describe(want)) {
			t.Fatalf("listing: groups of %s %v, MembershipsOf %v", u.Username, describe(got), describe(want))
		}
	}
	if plain, _ := d.FindUserByID(ctx, users["bob"]); plain.Memberships != nil {
		t.Fatal("memberships read without being asked for")
	}

	// Replacing the members replaces the nested groups too.
	if err := change(c, usersync.GroupChange{Add: []int64{users["bob"]}, ReplaceMembers: true}); err != nil {
		t.Fatal(err)
	}
	if got := effective(p); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Fatalf("after replacing Child's members: Parent has %v", got)
	}
	if err := change(c, usersync.GroupChange{AddGroups: []int64{gc.ID}}); err != nil {
		t.Fatal(err)
	}

	// A deleted group leaves the groups it was in, and the log says so.
	vBefore, _ := d.FindGroupByID(ctx, c.ID)
	before = lastSeq(t, d)
	if err := d.DeleteGroup(ctx, gc.ID, 0); err != nil {
		t.Fatal(err)
	}
	left := false
	for _, e := range changesSince(t, d, before) {
		left = left || (e.Kind == usersync.MemberRemoved && e.Object.ID == c.ID && e.Member.Type == usersync.ObjectGroup && e.Member.ID == gc.ID)
	}
	if !left {
		t.Fatal("deleting Grandchild logged no member.removed on Child")
	}
	if vAfter, _ := d.FindGroupByID(ctx, c.ID); vAfter.Version == vBefore.Version {
		t.Fatal("Child's version did not move when a group in it was deleted")
	}
	if got := effective(p); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Fatalf("after deleting Grandchild: Parent has %v", got)
	}

	// Created with a group inside, in one transaction.
	top := &usersync.Group{Name: "Top"}
	if err := d.CreateGroupWith(ctx, top, usersync.GroupChange{Add: []int64{users["cid"]}, AddGroups: []int64{p.ID}}); err != nil {
		t.Fatal(err)
	}
	if got := effective(top); !slices.Equal(got, []string{"ann", "bob", "cid"}) {
		t.Fatalf("Top has %v", got)
	}
	err = d.CreateGroupWith(ctx, &usersync.Group{Name: "Broken"}, usersync.GroupChange{Add: []int64{users["cid"]}, AddGroups: []int64{ghost}})
	wantCode(t, err, usersync.ENOTFOUND)
	if _, err := d.FindGroupByName(ctx, "Broken"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("a failed create left the group: %v", err)
	}
}
