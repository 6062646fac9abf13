package storetest

import (
	"slices"
	"testing"

	"github.com/usersync/usersync"
)

// testOrderAndKeyset: listings sort by a field then id, and keyset pages
// (After) walk that order without skipping or repeating a row, equal
// values included, in both directions.
func testOrderAndKeyset(t *testing.T, d usersync.Directory) {
	for i, ln := range []string{"Ng", "Abe", "Ng", "Zu", "abe", "Ng", "Mo"} {
		u := &usersync.User{Username: string(rune('a'+i)) + "-user", LastName: ln}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []*usersync.Order{nil, {Field: "lastName"}, {Field: "lastName", Desc: true}, {Field: "id", Desc: true}, {Field: "createdAt"}, {Field: "username", Desc: true}} {
		all, total, err := d.FindUsers(ctx, usersync.UserFilter{Order: o})
		if err != nil {
			t.Fatal(err)
		}
		field := "username"
		if o != nil {
			field = o.Field
		}
		var walked []int64
		var after *usersync.Position
		for pages := 0; pages < 10; pages++ {
			page, n, err := d.FindUsers(ctx, usersync.UserFilter{Order: o, After: after, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			if n != total {
				t.Fatalf("order %+v: total %d on a keyset page, %d in all", o, n, total)
			}
			for _, u := range page {
				walked = append(walked, u.ID)
			}
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			after = &usersync.Position{Value: last.SortValue(field), ID: last.ID}
		}
		var want []int64
		for _, u := range all {
			want = append(want, u.ID)
		}
		if !slices.Equal(walked, want) {
			t.Fatalf("order %+v: keyset pages gave %v, the listing %v", o, walked, want)
		}
		if o != nil && o.Field == "lastName" {
			for i := 1; i < len(all); i++ {
				a, b := all[i-1], all[i]
				if a.LastName == b.LastName && (a.ID > b.ID) != o.Desc {
					t.Fatalf("equal last names out of id order: %v", want)
				}
			}
		}
	}
	_, _, err := d.FindUsers(ctx, usersync.UserFilter{Order: &usersync.Order{Field: "attributes.x"}})
	wantCode(t, err, usersync.EINVALID)
	// Groups too.
	for _, n := range []string{"b", "a", "c"} {
		mustCreateGroup(t, d, n)
	}
	gs, _, err := d.FindGroups(ctx, usersync.GroupFilter{Order: &usersync.Order{Field: "name", Desc: true}, After: &usersync.Position{Value: "c"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range gs {
		got = append(got, g.Name)
	}
	if !slices.Equal(got, []string{"b", "a"}) && !slices.Equal(got, []string{"Default Group", "b", "a"}) {
		t.Fatalf("groups after c, descending: %v", got)
	}
}
