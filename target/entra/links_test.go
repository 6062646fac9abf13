package entra

import (
	"testing"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
)

// A member's Entra id is looked up once and kept (member links): later
// membership changes of that user cost no lookup, in later runs and
// processes too. A link holds only while the user's principal name is the
// one it was found by, a write that fails for its object drops it, and a
// reconcile looks every name up afresh; a write never reaches the object a
// stale link names.
func TestMemberLinks(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		e := newEnv(t, open(t), graphemu.Options{}, nil)
		e.mark("app")
		g := e.group("app:team", "alice", "bob")
		e.run()
		e.wantMembers("app:team", "alice", "bob")
		lookups := func() int { return e.emu.Requests()["user"] }
		before := lookups()
		for range 3 { // out and back in, each its own run
			if _, err := e.dir.RemoveMembers(ctx, g.ID, []int64{e.users["alice"].ID}); err != nil {
				t.Fatal(err)
			}
			e.run()
			if _, err := e.dir.AddMembers(ctx, g.ID, []int64{e.users["alice"].ID}); err != nil {
				t.Fatal(err)
			}
			e.run()
		}
		e.wantMembers("app:team", "alice", "bob")
		if n := lookups() - before; n != 0 {
			t.Fatalf("%d user lookups for a member resolved before", n)
		}

		// The directory user is renamed: its principal name is another
		// Entra user's, and that is who the next write reaches.
		e.tenant.AddUser(graphemu.User{ID: "id-alice2", UserPrincipalName: "alice2@contoso.com", AccountEnabled: true})
		name := "alice2@contoso.com"
		if _, err := e.dir.UpdateUser(ctx, e.users["alice"].ID, usersync.UserUpdate{Username: &name}, 0); err != nil {
			t.Fatal(err)
		}
		e.dir.RemoveMembers(ctx, g.ID, []int64{e.users["alice"].ID})
		e.run()
		e.dir.AddMembers(ctx, g.ID, []int64{e.users["alice"].ID})
		e.run()
		e.wantMembers("app:team", "alice2", "bob")

		// bob's Entra user is deleted: the write fails, the link is dropped,
		// and the next run looks the name up again.
		e.dir.RemoveMembers(ctx, g.ID, []int64{e.users["bob"].ID})
		e.run()
		e.tenant.DeleteUser("id-bob")
		e.dir.AddMembers(ctx, g.ID, []int64{e.users["bob"].ID})
		r := e.run()
		if r.Counts[FailMember] != 1 {
			t.Fatalf("adding a deleted Entra user: %v", r.Counts)
		}
		if links, _ := e.dir.MemberLinks(ctx, e.p.Name, []int64{e.users["bob"].ID}); len(links) != 0 {
			t.Fatalf("the link to a deleted Entra user stayed: %+v", links)
		}
		before = lookups()
		e.reconcile(e.opts())
		if lookups() == before {
			t.Fatal("a reconcile trusted the member links")
		}
	})
}
