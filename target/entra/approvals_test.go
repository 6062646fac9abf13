package entra

import (
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
)

// pendingOf returns the pending approval of a user's action, failing the
// test when there is none.
func (e *userEnv) pendingOf(user, action string) *usersync.Approval {
	e.t.Helper()
	list, err := e.dir.FindApprovals(ctx, e.p.Name, usersync.ApprovalPending)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range list {
		if a.Username == user && a.Action == action {
			return a
		}
	}
	e.t.Fatalf("no pending %s of %s among %+v", action, user, list)
	return nil
}

func (e *userEnv) setApprove(actions ...string) {
	e.t.Helper()
	p, err := e.dir.FindProvisioner(ctx, e.p.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	p.Config.Users.Approve = actions
	if err := e.dir.UpdateProvisioner(ctx, p, nil); err != nil {
		e.t.Fatal(err)
	}
}

var admin = usersync.WithActor(ctx, "admin:root")

// Issue "Writes into a tenant that can never hit the wrong object", item 5:
// an approval is for one action with the properties shown, used once.
// Josh's approved create, once sent, was reused for every later create of
// him (deleted and back in scope): now the second create asks again.
func TestApprovalUsedOnce(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) {
			c.Approve, c.Deprovision = []string{"create"}, usersync.DeprovisionDelete
		})
		e.members(false, "ann", "bo")
		e.run(UserOptions{})
		a := e.pendingOf("josh@contoso.com", "create")
		if _, err := d.DecideApproval(admin, a.ID, usersync.ApprovalApproved); err != nil {
			t.Fatal(err)
		}
		if r := e.run(UserOptions{}); r.Counts["create:done"] != 1 {
			t.Fatalf("the approved create: %+v", r.Counts)
		}
		if used, _ := d.FindApproval(ctx, a.ID); used.Status != usersync.ApprovalUsed {
			t.Fatalf("after it was sent the approval is %s, want used", used.Status)
		}
		e.members(false, "josh")
		if r := e.run(UserOptions{}); r.Counts["delete:done"] != 1 {
			t.Fatalf("josh leaves scope: %+v", r.Counts)
		}
		e.members(true, "josh")
		r := e.run(UserOptions{})
		if r.Counts["create:done"] != 0 || r.Pending != 1 {
			t.Fatalf("josh back in scope was created again without asking: %+v", r.Counts)
		}
		if _, ok := e.tenant.UserByUPN("josh@contoso.com"); ok {
			t.Fatal("josh is in Entra again without a new approval")
		}
	})
}

// A rejected action was never sent again — even when approvals were
// turned off, which sent every rejected action at once (a delete of an
// account usersync had adopted among them). Now turning approvals off
// sends nothing that an administrator rejected or has not decided; a
// rejection can be reopened, and approved.
func TestApprovalsOffSendsNoRejectedOrPending(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) {
			c.Deprovision = usersync.DeprovisionDelete
		})
		e.run(UserOptions{})
		e.setApprove("delete", "update")
		e.members(false, "josh", "ann")
		e.run(UserOptions{})
		if _, err := d.DecideApproval(admin, e.pendingOf("josh@contoso.com", "delete").ID, usersync.ApprovalRejected); err != nil {
			t.Fatal(err)
		}
		annDelete := e.pendingOf("ann@contoso.com", "delete")
		e.setApprove() // approvals off: an empty --approve
		r := e.run(UserOptions{})
		for _, who := range []string{"josh", "ann"} {
			if _, ok := e.tenant.UserByUPN(who + "@contoso.com"); !ok {
				t.Fatalf("%s was deleted when approvals were turned off: %+v", who, r.Counts)
			}
		}
		if r.Counts["delete:"+StatusRejected] != 1 || r.Pending != 1 {
			t.Fatalf("counts with approvals off: %+v (pending %d)", r.Counts, r.Pending)
		}
		if still, _ := d.FindApproval(ctx, annDelete.ID); still.Status != usersync.ApprovalPending {
			t.Fatalf("ann's undecided delete is %s, want still pending", still.Status)
		}
		// Reopened and approved: sent.
		rejected, _ := d.FindApprovals(ctx, e.p.Name, usersync.ApprovalRejected)
		if len(rejected) != 1 {
			t.Fatalf("rejected: %+v", rejected)
		}
		if _, err := d.DecideApproval(admin, rejected[0].ID, usersync.ApprovalPending); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if _, err := d.DecideApproval(admin, rejected[0].ID, usersync.ApprovalApproved); err != nil {
			t.Fatal(err)
		}
		if r := e.run(UserOptions{}); r.Counts["delete:done"] != 1 {
			t.Fatalf("the reopened and approved delete: %+v", r.Counts)
		}
		if _, ok := e.tenant.UserByUPN("josh@contoso.com"); ok {
			t.Fatal("josh's approved delete was not sent")
		}
	})
}

// A pending action was written to the provisioning log on every run (1,012
// identical rows in 13 minutes): it is logged once, and later runs move its
// last-seen time. An approval nobody decides within the expiry expires and
// is asked for again.
func TestPendingLoggedOnceAndExpires(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.Approve, c.ApprovalExpiryHours = []string{"create"}, 24 })
		e.members(false, "ann", "bo")
		for i := 0; i < 4; i++ {
			e.now = e.now.Add(time.Minute)
			e.run(UserOptions{})
		}
		log, err := d.FindLog(ctx, usersync.LogFilter{Provisioner: e.p.Name, Username: "josh@contoso.com"})
		if err != nil || len(log) != 1 || log[0].Status != StatusPending {
			t.Fatalf("log after four runs: %+v %v", log, err)
		}
		first := e.pendingOf("josh@contoso.com", "create")
		if !first.LastSeen.After(first.CreatedAt) {
			t.Fatalf("last seen %v, created %v", first.LastSeen, first.CreatedAt)
		}
		e.now = first.CreatedAt.Add(25 * time.Hour)
		e.run(UserOptions{})
		if old, _ := d.FindApproval(ctx, first.ID); old.Status != usersync.ApprovalExpired {
			t.Fatalf("after 25 hours the approval is %s, want expired", old.Status)
		}
		if again := e.pendingOf("josh@contoso.com", "create"); again.ID == first.ID {
			t.Fatal("no new approval after the expiry")
		}
	})
}

// Item 9: taking over an Entra user that has the UPN is an action of its
// own ("adopt"), approved as such, and logs the values it overwrites (the
// log said displayName "" → "Ann Lee" while Entra had "Ann (old)").
func TestAdoptIsItsOwnAction(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.Approve = []string{"create"} })
		e.tenant.AddUser(graphemu.User{ID: "pre-ann", UserPrincipalName: "ann@contoso.com", DisplayName: "Ann (old)", GivenName: "Annie", AccountEnabled: false})
		e.members(false, "josh", "bo")
		e.run(UserOptions{})
		a := e.pendingOf("ann@contoso.com", "adopt")
		if _, err := d.DecideApproval(admin, a.ID, usersync.ApprovalApproved); err != nil {
			t.Fatal(err)
		}
		r := e.run(UserOptions{})
		if r.Counts["adopt:done"] != 1 || e.emu.Writes()["POST /users"] != 0 {
			t.Fatalf("adopt: %+v %v", r.Counts, e.emu.Writes())
		}
		var m map[string]usersync.FieldChange
		for _, x := range r.Actions {
			if x.Kind == UserAdopt {
				m = x.Modified
			}
		}
		if m["displayName"].From != "Ann (old)" || m["displayName"].To != "Ann Lee" || m["givenName"].From != "Annie" || m["accountEnabled"].From != "false" {
			t.Fatalf("the adoption's modified values: %+v", m)
		}
		if _, ok := m["userPrincipalName"]; ok {
			t.Fatalf("an unchanged property is listed: %+v", m)
		}
	})
}

// Item 6: a rule on role saw only roles given by hand. The seed's users
// hold "Office 365" through its mapping: a rule `role eq "Office 365"`
// licenses them, and Check rule says it holds.
func TestRuleOnRoleSeesMappedRoles(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.addRule(usersync.UserRule{Name: "by role", Condition: `role eq "office 365" and firstName eq "Ann"`, Licenses: []usersync.License{{SKU: "YAMMER_ENTERPRISE"}}})
		r := e.run(UserOptions{})
		if r.Counts["licenses:done"] != 1 || licenseIDs(e.entra("ann")) != "sku-yammer" {
			t.Fatalf("the rule on a mapped role: %+v", r.Counts)
		}
		p, _ := d.FindProvisioner(ctx, e.p.Name)
		v, err := CheckRule(ctx, d, p, 0, []string{"ann@contoso.com", "bo@contoso.com"})
		if err != nil || !v[0].Holds || v[1].Holds || !strings.Contains(v[0].Because, `role eq "office 365" holds`) {
			t.Fatalf("check rule: %+v %v", v, err)
		}
	})
}

// Item 7: a held mass deprovision was invisible (status said 0 pending, no
// failing user). It is a hold the directory keeps — listed with its users
// until decided — and allow or reject decide it.
func TestHeldDeprovisionsShownAndDecided(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.MassLimit, c.MassShare = 1, 50 })
		e.run(UserOptions{})
		e.members(false, "josh", "ann")
		e.run(UserOptions{})
		holds, err := d.Holds(ctx, e.p.Name)
		if err != nil || len(holds) != 1 || holds[0].Count != 2 || strings.Join(holds[0].Users, ",") != "josh@contoso.com,ann@contoso.com" {
			t.Fatalf("holds: %+v %v", holds, err)
		}
		p, _ := d.FindProvisioner(ctx, e.p.Name)
		client := e.provisioner().client
		if _, err := DecideHold(admin, d, client, p, false); err != nil {
			t.Fatal(err)
		}
		if holds, _ := d.Holds(ctx, e.p.Name); len(holds) != 0 {
			t.Fatalf("after reject: %+v", holds)
		}
		r := e.run(UserOptions{})
		if r.Held != 0 || !e.entra("josh").AccountEnabled || !e.entra("ann").AccountEnabled {
			t.Fatalf("rejected deprovisions were sent: %+v", r.Counts)
		}
		state, _ := d.ProvisionedUsers(ctx, e.p.Name)
		if st := state[e.names["josh"].ID]; !st.Quarantined || !strings.Contains(st.LastError, "rejected by admin:root") {
			t.Fatalf("josh after the reject: %+v", st)
		}

		e.members(false, "bo")
		if r := e.run(UserOptions{}); r.Held != 0 || r.Counts["suspend:done"] != 1 {
			t.Fatalf("bo alone is within the guard: %+v", r.Counts)
		}
		if _, err := DecideHold(admin, d, client, p, true); usersync.ErrorCode(err) != usersync.ENOTFOUND {
			t.Fatalf("allow with nothing held: %v", err)
		}
	})
}

// Allow runs the held deprovisions now and forgets the hold.
func TestHeldDeprovisionsAllowed(t *testing.T) {
	d := dirtest.SQLite(t)
	e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.MassLimit, c.MassShare = 1, 50 })
	e.run(UserOptions{})
	e.members(false, "josh", "ann")
	e.run(UserOptions{})
	p, _ := d.FindProvisioner(ctx, e.p.Name)
	r, err := DecideHold(admin, d, e.provisioner().client, p, true)
	if err != nil || r.Counts["suspend:done"] != 2 || e.entra("josh").AccountEnabled {
		t.Fatalf("allow: %+v %v", r, err)
	}
	if holds, _ := d.Holds(ctx, e.p.Name); len(holds) != 0 {
		t.Fatalf("after allow: %+v", holds)
	}
}

// Item 10: an onPremisesImmutableId changed in Entra after the user was
// provisioned was never read back. A reconcile reads every provisioned
// user: Entra's value wins, and the change is logged.
func TestImmutableIDReadBack(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.run(UserOptions{})
		ann := e.entra("ann")
		ann.OnPremisesImmutableID = "imm-set-in-entra"
		e.tenant.AddUser(ann)
		if r := e.run(UserOptions{}); r.Counts["immutable-id:done"] != 0 {
			t.Fatalf("a run that reads no user: %+v", r.Counts)
		}
		r := e.run(UserOptions{ReadBack: true})
		if r.Counts["immutable-id:done"] != 1 {
			t.Fatalf("reconcile: %+v", r.Counts)
		}
		u, _ := d.FindUserByID(ctx, e.names["ann"].ID)
		if u.Attributes["ImmutableID"] != "imm-set-in-entra" {
			t.Fatalf("ann's ImmutableID: %q", u.Attributes["ImmutableID"])
		}
		before := e.emu.Writes()["PATCH /users/{id}"]
		if r := e.run(UserOptions{}); len(r.Actions) != 0 || e.emu.Writes()["PATCH /users/{id}"] != before {
			t.Fatalf("the value Entra has was sent back: %+v", r.Actions)
		}
		if e.entra("ann").OnPremisesImmutableID != "imm-set-in-entra" {
			t.Fatal("Entra's value was overwritten")
		}
	})
}
