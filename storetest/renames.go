package storetest

import (
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
	// A rename to a name that nobody leaves fails whole.
	_, err = d.ApplyBatch(ctx, &usersync.Batch{Users: []usersync.UserUpsert{rename(ann, "c9@x.example"), rename(c3, "ann@x.example")}})
	wantCode(t, err, usersync.ECONFLICT)
	if got, _ := d.FindUserByID(ctx, ann.ID); got.Username != "bob@x.example" {
		t.Fatalf("a refused batch renamed %+v", got)
	}
}
