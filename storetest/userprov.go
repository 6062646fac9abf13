package storetest

import (
	"slices"
	"testing"

	"github.com/usersync/usersync"
)

// testRolesAndMappings: roles held by hand, mappings kept in order, a role
// a mapping sets cannot be deleted, and role/memberOf conditions (nested
// groups included) are evaluated by the store.
func testRolesAndMappings(t *testing.T, d usersync.Directory) {
	alice, bob, carol := mustCreateUser(t, d, "alice"), mustCreateUser(t, d, "bob"), mustCreateUser(t, d, "carol")
	for _, r := range []string{"Office 365", "Sales"} {
		if err := d.CreateRole(ctx, &usersync.Role{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, d.CreateRole(ctx, &usersync.Role{Name: "office 365"}), usersync.ECONFLICT)
	wantCode(t, d.CreateRole(ctx, &usersync.Role{Name: " padded"}), usersync.EINVALID)
	if err := d.AssignRole(ctx, alice.ID, "sales"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.AssignRole(ctx, alice.ID, "Sales"), usersync.ECONFLICT)
	wantCode(t, d.AssignRole(ctx, alice.ID, "Nope"), usersync.ENOTFOUND)
	wantCode(t, d.UnassignRole(ctx, bob.ID, "Sales"), usersync.ENOTFOUND)
	if got, _ := d.UserRoles(ctx, []int64{alice.ID, bob.ID}); !slices.Equal(got[alice.ID], []string{"Sales"}) || len(got[bob.ID]) != 0 {
		t.Fatalf("user roles: %v", got)
	}
	// memberOf reaches through nested groups; role reads hand-held roles.
	parent, child := mustCreateGroup(t, d, "Office 365"), mustCreateGroup(t, d, "Office 365 pilots")
	if _, err := d.AddMembers(ctx, child.ID, []int64{bob.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ChangeGroup(ctx, parent.ID, usersync.GroupChange{AddGroups: []int64{child.ID}}, 0); err != nil {
		t.Fatal(err)
	}
	for cond, want := range map[string]usersync.Cond{
		"bob":         usersync.Match{Field: "memberOf", Op: usersync.OpEq, Value: "office 365"},
		"bob ":        usersync.Match{Field: "memberOf", Op: usersync.OpCo, Value: "pilots"},
		"alice":       usersync.Match{Field: "role", Op: usersync.OpEq, Value: "SALES"},
		"alice carol": usersync.Match{Field: "memberOf", Op: usersync.OpNe, Value: "Office 365"},
		"alice bob":   usersync.Any{usersync.Match{Field: "role", Op: usersync.OpPresent}, usersync.Match{Field: "memberOf", Op: usersync.OpPresent}},
		"carol":       usersync.IDIn{carol.ID, 99999},
	} {
		ids, err := d.UserIDs(ctx, want)
		if err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		var names []string
		for _, id := range ids {
			names = append(names, map[int64]string{alice.ID: "alice", bob.ID: "bob", carol.ID: "carol"}[id])
		}
		slices.Sort(names)
		if got := slices.Compact(names); !slices.Equal(got, slices.DeleteFunc(splitWords(cond), func(s string) bool { return s == "" })) {
			t.Errorf("%+v: %v, want %s", want, got, cond)
		}
	}
	// Mappings: in order, inserted at a position, moved, and their roles checked.
	for i, name := range []string{"first", "second", "third"} {
		m := &usersync.Mapping{Name: name, Condition: `email pr`, Roles: []string{"office 365"}}
		if err := d.CreateMapping(ctx, m); err != nil || m.Position != i+1 || m.Roles[0] != "Office 365" {
			t.Fatalf("create %s: %v %+v", name, err, m)
		}
	}
	wantCode(t, d.CreateMapping(ctx, &usersync.Mapping{Name: "Second", Condition: "", Roles: []string{"Sales"}}), usersync.ECONFLICT)
	wantCode(t, d.CreateMapping(ctx, &usersync.Mapping{Name: "x", Roles: []string{"Nope"}}), usersync.ENOTFOUND)
	wantCode(t, d.CreateMapping(ctx, &usersync.Mapping{Name: "x"}), usersync.EINVALID)
	if err := d.CreateMapping(ctx, &usersync.Mapping{Name: "zero", Roles: []string{"Sales"}, Position: 1}); err != nil {
		t.Fatal(err)
	}
	order := func() []string {
		ms, err := d.FindMappings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, m := range ms {
			if m.Position != i+1 {
				t.Fatalf("positions have a gap: %+v", ms)
			}
			out = append(out, m.Name)
		}
		return out
	}
	if got := order(); !slices.Equal(got, []string{"zero", "first", "second", "third"}) {
		t.Fatalf("order: %v", got)
	}
	ms, _ := d.FindMappings(ctx)
	third := ms[3]
	stale := *third
	third.Position = 1
	if err := d.UpdateMapping(ctx, third); err != nil || third.Version != 2 {
		t.Fatal(err, third.Version)
	}
	wantCode(t, d.UpdateMapping(ctx, &stale), usersync.ESTALE) // at the version read before
	if got := order(); !slices.Equal(got, []string{"third", "zero", "first", "second"}) {
		t.Fatalf("after a move: %v", got)
	}
	wantCode(t, d.DeleteRole(ctx, "Sales"), usersync.ECONFLICT) // mapping "zero" sets it
	if err := d.DeleteMapping(ctx, "ZERO"); err != nil {
		t.Fatal(err)
	}
	if got := order(); !slices.Equal(got, []string{"third", "first", "second"}) {
		t.Fatalf("after a delete: %v", got)
	}
	if err := d.DeleteRole(ctx, "Sales"); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.UserRoles(ctx, []int64{alice.ID}); len(got[alice.ID]) != 0 {
		t.Fatalf("a deleted role is still held: %v", got)
	}
	// Every write is in the change log with its actor.
	kinds := map[usersync.ChangeKind]int{}
	for _, c := range changesSince(t, d, 0) {
		if (c.Object.Type == usersync.ObjectRole || c.Object.Type == usersync.ObjectMapping) && c.Actor != "test" {
			t.Fatalf("actor %q of %s %+v", c.Actor, c.Kind, c.Object)
		}
		kinds[c.Kind]++
	}
	if kinds[usersync.RoleCreated] != 2 || kinds[usersync.RoleAssigned] != 1 || kinds[usersync.MappingCreated] != 4 || kinds[usersync.MappingUpdated] != 1 ||
		kinds[usersync.MappingDeleted] != 1 || kinds[usersync.RoleDeleted] != 1 {
		t.Fatalf("change log: %v", kinds)
	}
}

func splitWords(s string) []string {
	var out []string
	word := ""
	for _, c := range s + " " {
		if c == ' ' {
			out = append(out, word)
			word = ""
		} else {
			word += string(c)
		}
	}
	return out
}

// testApprovalsAndLog: one pending approval per plan, a rejection stands
// for its plan, a new plan drops the pending one, decisions happen once,
// and the provisioning log filters.
func testApprovalsAndLog(t *testing.T, d usersync.Directory) {
	u := mustCreateUser(t, d, "alice")
	p := &usersync.Provisioner{Name: "o365u", Kind: usersync.ProvisionerUsers, Config: usersync.ProvisionerConfig{TenantID: "t", ClientID: "c", Domain: "example.com",
		Users: &usersync.UserProvisioning{ScopeRoles: []string{"x"}}}}
	if err := d.CreateProvisioner(ctx, p, "s3cret"); err != nil {
		t.Fatal(err)
	}
	ask := func(key string) *usersync.Approval {
		a, err := d.CreateApproval(ctx, &usersync.Approval{Provisioner: "o365u", UserID: u.ID, Username: u.Username, Action: "create", Reason: "entered scope", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a1 := ask("plan-1")
	if again := ask("plan-1"); again.ID != a1.ID || again.Status != usersync.ApprovalPending {
		t.Fatalf("the same plan asked twice made %+v", again)
	}
	a2 := ask("plan-2") // a new plan overtakes the first
	if got, _ := d.FindApproval(ctx, a1.ID); got.Status != usersync.ApprovalDropped || a2.ID == a1.ID {
		t.Fatalf("the first plan is %s", got.Status)
	}
	admin := ctxAs("admin:root")
	if got, err := d.DecideApproval(admin, a2.ID, usersync.ApprovalRejected); err != nil || got.DecidedBy != "admin:root" || got.DecidedAt.IsZero() {
		t.Fatalf("reject: %v %+v", err, got)
	}
	_, err := d.DecideApproval(admin, a2.ID, usersync.ApprovalApproved)
	wantCode(t, err, usersync.ECONFLICT)
	_, err = d.DecideApproval(admin, 424242, usersync.ApprovalApproved)
	wantCode(t, err, usersync.ENOTFOUND)
	_, err = d.DecideApproval(admin, a2.ID, "maybe")
	wantCode(t, err, usersync.EINVALID)
	if again := ask("plan-2"); again.ID != a2.ID || again.Status != usersync.ApprovalRejected {
		t.Fatalf("a rejected plan asked again: %+v", again)
	}
	if pending, _ := d.FindApprovals(ctx, "o365u", usersync.ApprovalPending); len(pending) != 0 {
		t.Fatalf("pending: %+v", pending)
	}
	// The provisioned state round-trips, several users in one transaction.
	st := &usersync.Provisioned{Provisioner: "o365u", UserID: u.ID, Username: u.Username, RemoteID: "r1", State: usersync.StateActive,
		Sent: map[string]string{"displayName": "Alice"}, Licenses: []string{"sku-a", "sku-b"}, Groups: []string{"g1"}}
	gone := &usersync.Provisioned{Provisioner: "o365u", UserID: 777, Username: "gone@example.com", RemoteID: "r2", State: usersync.StateSuspended}
	if err := d.SaveProvisioned(ctx, st, gone); err != nil {
		t.Fatal(err)
	}
	all, err := d.ProvisionedUsers(ctx, "o365u")
	if err != nil || len(all) != 2 || all[u.ID].Props()["displayName"] != "Alice" || all[u.ID].SentKey != usersync.PropsKey(st.Sent) ||
		!slices.Equal(all[u.ID].Licenses, []string{"sku-a", "sku-b"}) || all[777].State != usersync.StateSuspended || len(all[777].Licenses) != 0 {
		t.Fatalf("provisioned: %v %+v", err, all)
	}
	// The log, newest first, by user, run and status.
	entries := []usersync.LogEntry{
		{Provisioner: "o365u", Run: "r1", UserID: u.ID, Username: u.Username, Action: "create", Status: "done", Modified: map[string]usersync.FieldChange{"displayName": {To: "Alice"}}},
		{Provisioner: "o365u", Run: "r1", UserID: 777, Username: "gone@example.com", Action: "suspend", Status: "failed", ErrorCode: "Request_BadRequest", Error: "no"},
		{Provisioner: "o365u", Run: "r2", UserID: u.ID, Username: u.Username, Action: "licenses", Status: "done"},
	}
	if err := d.AppendLog(ctx, entries); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[usersync.LogFilter][]string{
		{Provisioner: "o365u"}:                    {"licenses", "suspend", "create"},
		{Provisioner: "o365u", Username: "ALICE"}: {"licenses", "create"},
		{Provisioner: "o365u", Run: "r1"}:         {"suspend", "create"},
		{Provisioner: "o365u", Status: "failed"}:  {"suspend"},
		{Provisioner: "other"}:                    nil,
	} {
		got, err := d.FindLog(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range got {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, want) {
			t.Errorf("%+v: %v, want %v", f, actions, want)
		}
	}
	got, _ := d.FindLog(ctx, usersync.LogFilter{Provisioner: "o365u", Run: "r1", Status: "done"})
	if len(got) != 1 || got[0].Modified["displayName"].To != "Alice" {
		t.Fatalf("modified: %+v", got)
	}
	// Deleting the provisioner takes its state, approvals and log with it.
	if err := d.DeleteProvisioner(ctx, "o365u"); err != nil {
		t.Fatal(err)
	}
	if all, _ := d.ProvisionedUsers(ctx, "o365u"); len(all) != 0 {
		t.Fatalf("state outlived its provisioner: %v", all)
	}
	if list, _ := d.FindApprovals(ctx, "o365u", ""); len(list) != 0 {
		t.Fatalf("approvals outlived their provisioner: %v", list)
	}
}
