package storetest

import (
	"strings"
	"testing"

	"github.com/usersync/usersync"
)

// A group provisioner's member links: saved, replaced, read for the users
// asked, forgotten by remote object or whole, and gone with their user or
// their provisioner.
func testMemberLinks(t *testing.T, d usersync.Directory) {
	for _, name := range []string{"o365", "other"} {
		if err := d.CreateProvisioner(ctx, sampleProvisioner(name), "s3cret"); err != nil {
			t.Fatal(err)
		}
	}
	ann, bob, cy := mustCreateUser(t, d, "ann"), mustCreateUser(t, d, "bob"), mustCreateUser(t, d, "cy")
	err := d.SaveMemberLinks(ctx, "o365", []usersync.MemberLink{
		{UserID: ann.ID, Principal: "ann@x.example", RemoteID: "e-ann"},
		{UserID: bob.ID, Principal: "bob@x.example", RemoteID: "e-bob"},
		{UserID: 1 << 40, Principal: "gone@x.example", RemoteID: "e-gone"}, // no such user: not kept
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveMemberLinks(ctx, "other", []usersync.MemberLink{{UserID: ann.ID, Principal: "ann@y.example", RemoteID: "y-ann"}}); err != nil {
		t.Fatal(err)
	}
	// Replaced: bob's principal name changed, and so did his object.
	if err := d.SaveMemberLinks(ctx, "o365", []usersync.MemberLink{{UserID: bob.ID, Principal: "robert@x.example", RemoteID: "e-bob2"}}); err != nil {
		t.Fatal(err)
	}
	got, err := d.MemberLinks(ctx, "o365", []int64{ann.ID, bob.ID, cy.ID, 1 << 40})
	if err != nil || len(got) != 2 || got[ann.ID].RemoteID != "e-ann" || got[bob.ID] != (usersync.MemberLink{UserID: bob.ID, Principal: "robert@x.example", RemoteID: "e-bob2"}) {
		t.Fatalf("links: %+v %v", got, err)
	}
	if err := d.ForgetMemberLinks(ctx, "o365", []string{"e-ann"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.MemberLinks(ctx, "o365", []int64{ann.ID, bob.ID}); len(got) != 1 || got[bob.ID].RemoteID != "e-bob2" {
		t.Fatalf("after forgetting e-ann: %+v", got)
	}
	if got, _ := d.MemberLinks(ctx, "other", []int64{ann.ID}); got[ann.ID].RemoteID != "y-ann" {
		t.Fatalf("another provisioner's link was forgotten: %+v", got)
	}
	if err := d.DeleteUser(ctx, bob.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.MemberLinks(ctx, "o365", []int64{bob.ID}); len(got) != 0 {
		t.Fatalf("a deleted user's link stayed: %+v", got)
	}
	if err := d.ForgetMemberLinks(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.MemberLinks(ctx, "other", []int64{ann.ID}); len(got) != 0 {
		t.Fatalf("forgetting all kept %+v", got)
	}
	d.SaveMemberLinks(ctx, "o365", []usersync.MemberLink{{UserID: ann.ID, Principal: "ann@x.example", RemoteID: "e-ann"}})
	if err := d.DeleteProvisioner(ctx, "o365"); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.MemberLinks(ctx, "o365", []int64{ann.ID}); len(got) != 0 {
		t.Fatalf("a deleted provisioner's link stayed: %+v", got)
	}
	err = d.SaveMemberLinks(ctx, "other", []usersync.MemberLink{{UserID: ann.ID, Principal: "a\x00b", RemoteID: "x"}})
	wantCode(t, err, usersync.EINVALID)
}

// Search finds every user whose username, email or full name holds the
// text, ignoring case, however the text is spelled and however long it
// is — as the index it is served from is kept by creates, renames and
// deletes.
func testUserSearch(t *testing.T, d usersync.Directory) {
	mk := func(name, email, first, last string) *usersync.User {
		u := &usersync.User{Username: name, Email: email, FirstName: first, LastName: last, Enabled: true}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	ada := mk("ada@x.example", "Ada.Lovelace@Example.com", "Ada", "Lovelace")
	mk("grace@x.example", "grace@example.com", "Grace", "Hopper")
	mk("Ｋａｒｌ", "karl@example.com", "Ádám", "Kovács") // a fullwidth username: its key is "karl"
	mk(`o"brien@x.example`, "ob@example.com", "Liam", "O'Brien")
	search := func(q string) []string {
		t.Helper()
		us, n, err := d.FindUsers(ctx, usersync.UserFilter{Search: q})
		if err != nil || n != len(us) {
			t.Fatalf("search %q: %d of %d, %v", q, len(us), n, err)
		}
		return names(us)
	}
	for q, want := range map[string]string{
		"ada":         "ada@x.example",
		"LOVELACE":    "ada@x.example",                 // the email and the name, in another case
		"ace@ex":      "ada@x.example grace@x.example", // across the email's parts
		"ada lov":     "ada@x.example",                 // across first and last name
		"KARL":        "Ｋａｒｌ",                          // the username key
		"ｋａｒ":         "Ｋａｒｌ",                          // fullwidth, as typed
		"kovács":      "Ｋａｒｌ",                          // a name with accents
		"ÁDÁ":         "Ｋａｒｌ",                          // in capitals
		`o"b`:         `o"brien@x.example`,             // a quote in the text
		"o'b":         `o"brien@x.example`,             // the name's apostrophe
		"ad":          "ada@x.example",                 // two letters: no index, the same answer
		"%":           "",                              // LIKE's wildcards are text
		"zzz":         "",
		"example.com": "ada@x.example grace@x.example Ｋａｒｌ o\"brien@x.example",
	} {
		got := strings.Join(search(q), " ")
		if got != want {
			t.Fatalf("search %q = %q, want %q", q, got, want)
		}
	}
	// Renamed, changed and deleted users are found as they are now.
	newName, newLast := "countess@x.example", "King"
	if _, err := d.UpdateUser(ctx, ada.ID, usersync.UserUpdate{Username: &newName, LastName: &newLast}, 0); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(search("countess"), " "); got != "countess@x.example" {
		t.Fatalf("after a rename: %q", got)
	}
	if got := search("ada king"); len(got) != 1 {
		t.Fatalf("after a name change: %q", got)
	}
	if got := search("ada lovelace"); len(got) != 0 {
		t.Fatalf("the old name is still found: %q", got)
	}
	if err := d.DeleteUser(ctx, ada.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got := search("countess"); len(got) != 0 {
		t.Fatalf("a deleted user is found: %q", got)
	}
}
