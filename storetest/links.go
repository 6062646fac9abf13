package storetest

import (
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
