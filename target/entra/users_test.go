package entra

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/rules"
)

// Seed 004's licenses: Yammer, Office Web Apps, Office Professional.
var seedSKUs = []graphemu.SKU{
	{ID: "sku-yammer", PartNumber: "YAMMER_ENTERPRISE", Enabled: 10, Plans: []graphemu.Plan{{ID: "plan-yam", Name: "YAMMER_ENTERPRISE"}}},
	{ID: "sku-owa", PartNumber: "SHAREPOINTWAC", Enabled: 10, Plans: []graphemu.Plan{{ID: "plan-owa", Name: "SHAREPOINTWAC"}}},
	{ID: "sku-pro", PartNumber: "OFFICESUBSCRIPTION", Enabled: 1, Plans: []graphemu.Plan{{ID: "plan-pro", Name: "OFFICESUBSCRIPTION"}, {ID: "plan-onedrive", Name: "ONEDRIVESTANDARD"}}},
}

// userEnv is a directory with the seed's group, role and mapping, an
// emulated tenant with verified domain contoso.com and the seed's
// licenses, and a user provisioner between them.
type userEnv struct {
	*env
	group *usersync.Group
	names map[string]*usersync.User
}

func newUserEnv(t *testing.T, d usersync.Directory, setup func(*usersync.UserProvisioning)) *userEnv {
	t.Helper()
	return newUserEnvWith(t, d, graphemu.Options{}, setup)
}

func newUserEnvWith(t *testing.T, d usersync.Directory, o graphemu.Options, setup func(*usersync.UserProvisioning)) *userEnv {
	t.Helper()
	e := newEnvTenant(t, o)
	e.dir, e.now = d, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	e.tenant.SetDomains("contoso.com", tenantID)
	for _, s := range seedSKUs {
		e.tenant.AddSKU(s)
	}
	e.tenant.AddGroup(graphemu.Group{ID: "grp-sales", DisplayName: "Sales"})
	ue := &userEnv{env: e, names: map[string]*usersync.User{}}
	for _, n := range [][2]string{{"Josh", "Ames"}, {"Ann", "Lee"}, {"Bo", "Chen"}} {
		u := &usersync.User{Username: strings.ToLower(n[0]) + "@contoso.com", Email: strings.ToLower(n[0]) + "@contoso.com", FirstName: n[0], LastName: n[1], Enabled: true,
			Attributes: map[string]string{"usageLocation": "US"}}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		ue.names[strings.ToLower(n[0])] = u
	}
	g := &usersync.Group{Name: "Office 365"}
	if err := d.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	ue.group = g
	ue.members(true, "josh", "ann", "bo")
	if err := d.CreateRole(ctx, &usersync.Role{Name: "Office 365"}); err != nil {
		t.Fatal(err)
	}
	// The seed's mapping: member of contains "Office 365" → set role Office 365.
	if err := d.CreateMapping(ctx, &usersync.Mapping{Name: "Office 365 Mapping", Condition: `memberOf co "Office 365"`, Roles: []string{"office 365"}}); err != nil {
		t.Fatal(err)
	}
	up := &usersync.UserProvisioning{ScopeRoles: []string{"Office 365"}}
	if setup != nil {
		setup(up)
	}
	p := &usersync.Provisioner{Name: "o365users", Kind: usersync.ProvisionerUsers,
		Config: usersync.ProvisionerConfig{TenantID: tenantID, ClientID: "app-1", Domain: "contoso.com", Users: up}}
	c, err := msgraph.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if up.Entitlements, err = RefreshEntitlements(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateProvisioner(ctx, p, secret); err != nil {
		t.Fatal(err)
	}
	e.p = p
	return ue
}

func (e *userEnv) members(add bool, names ...string) {
	e.t.Helper()
	var ids []int64
	for _, n := range names {
		ids = append(ids, e.names[n].ID)
	}
	var err error
	if add {
		_, err = e.dir.AddMembers(ctx, e.group.ID, ids)
	} else {
		_, err = e.dir.RemoveMembers(ctx, e.group.ID, ids)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *userEnv) provisioner() *Users {
	e.t.Helper()
	p, err := e.dir.FindProvisioner(ctx, e.p.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := msgraph.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	x, err := NewUsers(e.dir, c, p)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

func (e *userEnv) run(o UserOptions) *UserResult {
	e.t.Helper()
	o.KeepActions, o.Now = true, func() time.Time { return e.now }
	r, err := e.provisioner().Run(ctx, o)
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return r
}

func (e *userEnv) entra(name string) graphemu.User {
	e.t.Helper()
	u, ok := e.tenant.UserByUPN(name + "@contoso.com")
	if !ok {
		e.t.Fatalf("Entra has no user %s@contoso.com", name)
	}
	return u
}

func (e *userEnv) addRule(r usersync.UserRule) {
	e.t.Helper()
	p, err := e.dir.FindProvisioner(ctx, e.p.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	p.Config.Users.Rules = append(p.Config.Users.Rules, r)
	if _, _, err := CompileUsers(p); err != nil {
		e.t.Fatal(err)
	}
	if err := e.dir.UpdateProvisioner(ctx, p, nil); err != nil {
		e.t.Fatal(err)
	}
}

func licenseIDs(u graphemu.User) string {
	var ids []string
	for _, l := range u.Licenses {
		ids = append(ids, l.SkuID)
	}
	return strings.Join(ids, ",")
}

// The seed's flow: a mapping gives the role to the Office 365 group's
// members, they are created in Entra, and the rule "display name equals
// Josh Ames → Yammer / Office Web Apps / Office Professional" licenses Josh.
func TestUserProvisioningSeedFlow(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.addRule(usersync.UserRule{Name: "Josh", Condition: `displayName eq "Josh Ames"`, Licenses: []usersync.License{{SKU: "YAMMER_ENTERPRISE"}, {SKU: "SHAREPOINTWAC"}, {SKU: "OFFICESUBSCRIPTION"}}})
		r := e.run(UserOptions{})
		if r.InScope != 3 || r.Counts["create:done"] != 3 || r.Counts["licenses:done"] != 1 || r.Failed != 0 {
			t.Fatalf("first run: %+v", r)
		}
		josh := e.entra("josh")
		if licenseIDs(josh) != "sku-owa,sku-pro,sku-yammer" || josh.UsageLocation != "US" || !josh.AccountEnabled || josh.DisplayName != "Josh Ames" || josh.MailNickname != "josh" {
			t.Fatalf("josh in Entra: %+v", josh)
		}
		if ann := e.entra("ann"); len(ann.Licenses) != 0 {
			t.Fatalf("ann has licenses no rule gives: %+v", ann.Licenses)
		}
		// Requests: one lookup $batch, three POSTs, one assignLicense.
		w := e.emu.Writes()
		if w["POST /users"] != 3 || w["POST /users/{id}/assignLicense"] != 1 {
			t.Fatalf("writes: %v", w)
		}
		// A second run writes nothing.
		before := e.emu.Requests()["http"]
		if r := e.run(UserOptions{}); len(r.Actions) != 0 {
			t.Fatalf("second run acted: %+v", r.Actions)
		}
		if after := e.emu.Requests()["http"]; after != before {
			t.Fatalf("second run sent %d requests", after-before)
		}
		// An attribute change sends one PATCH with just that property.
		last := "Ames-Smith"
		if _, err := d.UpdateUser(ctx, e.names["josh"].ID, usersync.UserUpdate{LastName: &last}, e.names["josh"].Version); err != nil {
			t.Fatal(err)
		}
		r = e.run(UserOptions{})
		if r.Counts["update:done"] != 1 || len(r.Actions) != 2 { // update, and the rule no longer holds: licenses removed
			t.Fatalf("after a rename: %+v", r.Actions)
		}
		if m := r.Actions[0].Modified; len(m) != 2 || m["surname"].To != "Ames-Smith" || m["displayName"].To != "Josh Ames-Smith" {
			t.Fatalf("update modified %v, want surname and displayName only", m)
		}
		if got := licenseIDs(e.entra("josh")); got != "" {
			t.Fatalf("the rule no longer holds for Josh Ames-Smith, yet he keeps %s", got)
		}
		// The provisioning log has each action with what it modified.
		log, err := d.FindLog(ctx, usersync.LogFilter{Provisioner: e.p.Name, Username: "josh@contoso.com"})
		if err != nil || len(log) != 4 || log[1].Action != UserUpdate || log[1].Modified["surname"].From != "Ames" {
			t.Fatalf("log: %v %+v", err, log)
		}
	})
}

// A user already in Entra with the UPN is adopted, not duplicated, and
// its onPremisesImmutableId is copied into the directory; when the two
// differ, Entra's wins and the change is logged.
func TestUserProvisioningAdoptAndImmutableID(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.tenant.AddUser(graphemu.User{ID: "pre-ann", UserPrincipalName: "ann@contoso.com", DisplayName: "Ann (old)", OnPremisesImmutableID: "imm-ann", AccountEnabled: false})
		e.tenant.AddUser(graphemu.User{ID: "pre-bo", UserPrincipalName: "bo@contoso.com", DisplayName: "Bo", OnPremisesImmutableID: "imm-entra"})
		imm := "imm-directory"
		bo := e.names["bo"]
		if _, err := d.UpdateUser(ctx, bo.ID, usersync.UserUpdate{Attributes: map[string]*string{"ImmutableID": &imm}}, bo.Version); err != nil {
			t.Fatal(err)
		}
		r := e.run(UserOptions{})
		if r.Counts["adopt:done"] != 2 || r.Counts["create:done"] != 1 || r.Counts["immutable-id:done"] != 2 {
			t.Fatalf("run: %+v", r.Counts)
		}
		if e.emu.Writes()["POST /users"] != 1 {
			t.Fatalf("adopted users were created again: %v", e.emu.Writes())
		}
		if ann := e.entra("ann"); ann.ID != "pre-ann" || ann.DisplayName != "Ann Lee" || !ann.AccountEnabled {
			t.Fatalf("ann not taken over: %+v", ann)
		}
		for name, want := range map[string]string{"ann": "imm-ann", "bo": "imm-entra"} {
			u, _ := d.FindUserByID(ctx, e.names[name].ID)
			if u.Attributes["ImmutableID"] != want {
				t.Fatalf("%s: ImmutableID %q, want Entra's %q", name, u.Attributes["ImmutableID"], want)
			}
		}
		log, _ := d.FindLog(ctx, usersync.LogFilter{Provisioner: e.p.Name, Username: "bo@contoso.com"})
		found := false
		for _, l := range log {
			found = found || (l.Action == UserImmutable && l.Modified["attributes.ImmutableID"].From == "imm-directory" && strings.Contains(l.Reason, "Entra's wins"))
		}
		if !found {
			t.Fatalf("the ImmutableID change is not logged: %+v", log)
		}
		// The user created by usersync carries no ImmutableID: nothing to copy.
		josh := e.entra("josh")
		if josh.OnPremisesImmutableID != "" {
			t.Fatalf("josh: %+v", josh)
		}
	})
}

func TestUserProvisioningDeprovisionPolicies(t *testing.T) {
	for _, policy := range []string{usersync.DeprovisionSuspend, usersync.DeprovisionDelete, usersync.DeprovisionNothing} {
		t.Run(policy, func(t *testing.T) {
			dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
				d := open(t)
				e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.Deprovision = policy })
				e.run(UserOptions{})
				id := e.entra("bo").ID
				e.members(false, "bo")
				r := e.run(UserOptions{})
				switch policy {
				case usersync.DeprovisionSuspend:
					if r.Counts["suspend:done"] != 1 || e.entra("bo").AccountEnabled {
						t.Fatalf("suspend: %+v %+v", r.Counts, e.entra("bo"))
					}
					e.members(true, "bo") // coming back undoes the suspend
					r = e.run(UserOptions{})
					if r.Counts["restore:done"] != 1 || !e.entra("bo").AccountEnabled || e.entra("bo").ID != id {
						t.Fatalf("restore: %+v", r.Counts)
					}
				case usersync.DeprovisionDelete:
					if r.Counts["delete:done"] != 1 || !e.tenant.Deleted(id) {
						t.Fatalf("delete: %+v", r.Counts)
					}
					if _, ok := e.tenant.UserByUPN("bo@contoso.com"); ok {
						t.Fatal("bo is still in Entra")
					}
				case usersync.DeprovisionNothing:
					if len(r.Actions) != 0 || !e.entra("bo").AccountEnabled {
						t.Fatalf("nothing: %+v", r.Actions)
					}
				}
			})
		})
	}
}

func TestUserProvisioningApprovals(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.Approve = []string{"create", "suspend"} })
		r := e.run(UserOptions{})
		if r.Pending != 3 || e.emu.Writes()["POST /users"] != 0 {
			t.Fatalf("creates were sent without approval: %+v %v", r, e.emu.Writes())
		}
		// Running again keeps the same three pending, not six.
		e.run(UserOptions{})
		pending, _ := d.FindApprovals(ctx, e.p.Name, usersync.ApprovalPending)
		if len(pending) != 3 {
			t.Fatalf("%d pending after two runs, want 3", len(pending))
		}
		byUser := map[string]*usersync.Approval{}
		for _, a := range pending {
			byUser[a.Username] = a
		}
		// Approve josh: sent at once (a run for that user only).
		admin := usersync.WithActor(ctx, "admin:root")
		a, err := d.DecideApproval(admin, byUser["josh@contoso.com"].ID, usersync.ApprovalApproved)
		if err != nil || a.DecidedBy != "admin:root" || a.DecidedAt.IsZero() {
			t.Fatalf("approve: %v %+v", err, a)
		}
		r = e.run(UserOptions{Only: map[int64]bool{a.UserID: true}})
		if r.Counts["create:done"] != 1 || e.emu.Writes()["POST /users"] != 1 {
			t.Fatalf("approved create not sent: %+v", r.Counts)
		}
		// Reject ann: not sent, and the reject stands while the plan is the same.
		if _, err := d.DecideApproval(admin, byUser["ann@contoso.com"].ID, usersync.ApprovalRejected); err != nil {
			t.Fatal(err)
		}
		if _, err := d.DecideApproval(admin, byUser["ann@contoso.com"].ID, usersync.ApprovalApproved); usersync.ErrorCode(err) != usersync.ECONFLICT {
			t.Fatalf("deciding twice: %v", err)
		}
		// Bo leaves scope before anyone decides: his pending create is
		// dropped, never sent stale.
		e.members(false, "bo")
		e.run(UserOptions{})
		bo, _ := d.FindApproval(ctx, byUser["bo@contoso.com"].ID)
		if bo.Status != usersync.ApprovalDropped {
			t.Fatalf("bo's create is %s, want dropped", bo.Status)
		}
		if _, ok := e.tenant.UserByUPN("bo@contoso.com"); ok {
			t.Fatal("bo was created after leaving scope")
		}
		// Ann's rejection stands for the same plan: no new pending approval.
		if p, _ := d.FindApprovals(ctx, e.p.Name, usersync.ApprovalPending); len(p) != 0 {
			t.Fatalf("pending after reject and drop: %+v", p[0])
		}
		if _, ok := e.tenant.UserByUPN("ann@contoso.com"); ok {
			t.Fatal("ann was created after her create was rejected")
		}
		// A new plan for ann (a new surname) asks again.
		last := "Lee-Park"
		if _, err := d.UpdateUser(ctx, e.names["ann"].ID, usersync.UserUpdate{LastName: &last}, e.names["ann"].Version); err != nil {
			t.Fatal(err)
		}
		if r := e.run(UserOptions{}); r.Pending != 1 {
			t.Fatalf("a changed plan after a reject: %+v", r.Counts)
		}
		if _, err := d.DecideApproval(admin, 9999, usersync.ApprovalApproved); usersync.ErrorCode(err) != usersync.ENOTFOUND {
			t.Fatalf("unknown approval: %v", err)
		}
	})
}

// Licenses are never assigned beyond the free seats: a clear failed item.
func TestUserProvisioningSeatsRunOut(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.addRule(usersync.UserRule{Name: "Pro for all", Condition: `memberOf eq "Office 365"`, Licenses: []usersync.License{{SKU: "OFFICESUBSCRIPTION", DisabledPlans: []string{"ONEDRIVESTANDARD"}}}})
		r := e.run(UserOptions{})
		if r.Counts["licenses:done"] != 1 || r.Counts["licenses:failed"] != 2 || e.tenant.Consumed("OFFICESUBSCRIPTION") != 1 {
			t.Fatalf("one seat, three users: %+v", r.Counts)
		}
		var failed []UserAction
		for _, a := range r.Actions {
			if a.Status == StatusFailed {
				failed = append(failed, a)
			}
		}
		if !strings.Contains(failed[0].Error, "no free seat") || failed[0].Code != "noFreeSeat" {
			t.Fatalf("failure: %+v", failed[0])
		}
		if e.emu.Writes()["POST /users/{id}/assignLicense"] != 1 {
			t.Fatalf("assignLicense sent beyond the seats: %v", e.emu.Writes())
		}
		for _, u := range []string{"josh", "ann", "bo"} {
			if l := e.entra(u).Licenses; len(l) == 1 && (len(l[0].DisabledPlans) != 1 || l[0].DisabledPlans[0] != "plan-onedrive") {
				t.Fatalf("%s: disabled plans %v", u, l[0].DisabledPlans)
			}
		}
	})
}

// A run that would deprovision more than the limit and share holds them.
func TestUserProvisioningMassDeprovisionHold(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, func(c *usersync.UserProvisioning) { c.MassLimit, c.MassShare = 1, 50 })
		e.run(UserOptions{})
		e.members(false, "josh", "ann")
		r := e.run(UserOptions{})
		if r.Held != 2 || r.Counts["suspend:done"] != 0 || !e.entra("josh").AccountEnabled {
			t.Fatalf("not held: %+v", r)
		}
		if !strings.Contains(r.HeldReason, "2 users would be deprovisioned") {
			t.Fatalf("reason: %s", r.HeldReason)
		}
		r = e.run(UserOptions{Force: true})
		if r.Counts["suspend:done"] != 2 || e.entra("josh").AccountEnabled {
			t.Fatalf("force: %+v", r.Counts)
		}
	})
}

// A UPN outside the verified domain is refused with the reason; nothing is sent.
func TestUserProvisioningDomain(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		other := "ann@fabrikam.com"
		ann := e.names["ann"]
		if _, err := d.UpdateUser(ctx, ann.ID, usersync.UserUpdate{Email: &other}, ann.Version); err != nil {
			t.Fatal(err)
		}
		r := e.run(UserOptions{})
		if r.Failed != 1 || r.Counts["create:done"] != 2 {
			t.Fatalf("%+v", r.Counts)
		}
		for _, a := range r.Actions {
			if a.Status == StatusFailed && !strings.Contains(a.Error, `"ann@fabrikam.com" is not in the verified domain contoso.com`) {
				t.Fatalf("reason: %s", a.Error)
			}
		}
	})
}

// Check rule with users: each user is Will be mapped or not, with the part
// of the condition that decided it.
func TestRuleCheck(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		c, err := rules.Parse(`displayName eq "Josh Ames" or (memberOf co "365" and not (firstName sw "B"))`)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Check(ctx, d, []*usersync.User{e.names["josh"], e.names["ann"], e.names["bo"]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`true displayName eq "Josh Ames" holds`, `true memberOf co "365" holds and firstName sw "B" does not hold`, `false displayName eq "Josh Ames" does not hold and firstName sw "B" holds`}
		for i, w := range want {
			if got := strings.TrimSpace(strings.Replace(boolText(v[i].Holds)+" "+v[i].Because, "  ", " ", -1)); got != w {
				t.Errorf("user %s: %q, want %q", v[i].Username, got, w)
			}
		}
	})
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// License changes are sent in chunks; a user whose license change ends a
// chunk still gets its groups (a first version skipped them).
func TestUserProvisioningChunks(t *testing.T) {
	defer func(n int) { licenseChunk = n }(licenseChunk)
	licenseChunk = 2
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.tenant.AddGroup(graphemu.Group{ID: "grp-all", DisplayName: "All Staff", MailNickname: "allstaff"})
		c, _ := msgraph.New(e.cfg)
		p, _ := d.FindProvisioner(ctx, e.p.Name)
		p.Config.Users.Entitlements, _ = RefreshEntitlements(ctx, c)
		if err := d.UpdateProvisioner(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
		e.addRule(usersync.UserRule{Name: "all", Licenses: []usersync.License{{SKU: "YAMMER_ENTERPRISE"}}, Groups: []string{"All Staff"}})
		r := e.run(UserOptions{})
		if r.Counts["licenses:done"] != 3 || r.Counts["groups:done"] != 3 {
			t.Fatalf("%+v", r.Counts)
		}
		if g, _ := e.tenant.Group("grp-all"); len(g.Members) != 3 {
			t.Fatalf("All Staff has %d members, want 3", len(g.Members))
		}
		if e.tenant.Consumed("YAMMER_ENTERPRISE") != 3 {
			t.Fatal("licenses")
		}
	})
}

// A user Graph refuses is a failed item, tried again after a backoff and
// quarantined after maxFailures; the others are provisioned. Clearing the
// quarantine (what "provisioners retry" does) provisions it.
func TestUserProvisioningFailuresAndQuarantine(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		var refuse atomic.Bool
		refuse.Store(true)
		e := newUserEnvWith(t, d, graphemu.Options{Fault: func(r *http.Request) int {
			if r.Method != http.MethodPost || r.URL.Path != "/v1.0/users" || !refuse.Load() {
				return 0
			}
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if bytes.Contains(b, []byte("bo@contoso.com")) {
				return http.StatusBadRequest
			}
			return 0
		}}, nil)
		p, _ := d.FindProvisioner(ctx, e.p.Name)
		p.Config.MaxFailures = 2
		if err := d.UpdateProvisioner(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
		r := e.run(UserOptions{})
		if r.Failed != 1 || r.Counts["create:done"] != 2 {
			t.Fatalf("first run: %+v", r.Counts)
		}
		bo := e.names["bo"].ID
		state := func() *usersync.Provisioned {
			all, err := d.ProvisionedUsers(ctx, e.p.Name)
			if err != nil {
				t.Fatal(err)
			}
			return all[bo]
		}
		if st := state(); st.Failures != 1 || st.Quarantined || !st.NextAttempt.After(e.now) || !strings.Contains(st.LastError, "injectedFault") {
			t.Fatalf("after one failure: %+v", st)
		}
		if r := e.run(UserOptions{}); len(r.Actions) != 0 {
			t.Fatalf("tried again before the backoff ended: %+v", r.Actions)
		}
		e.now = e.now.Add(2 * time.Minute)
		if r := e.run(UserOptions{}); r.Failed != 1 {
			t.Fatalf("after the backoff: %+v", r.Counts)
		}
		if st := state(); st.Failures != 2 || !st.Quarantined {
			t.Fatalf("after maxFailures: %+v", st)
		}
		e.now = e.now.Add(time.Hour)
		if r := e.run(UserOptions{}); len(r.Actions) != 0 {
			t.Fatalf("a quarantined user was tried: %+v", r.Actions)
		}
		log, _ := d.FindLog(ctx, usersync.LogFilter{Provisioner: e.p.Name, Status: StatusFailed})
		if len(log) != 2 || log[0].ErrorCode != "injectedFault" || log[0].Username != "bo@contoso.com" {
			t.Fatalf("failed log: %+v", log)
		}
		refuse.Store(false)
		st := state()
		st.Failures, st.Quarantined, st.NextAttempt = 0, false, time.Time{}
		if err := d.SaveProvisioned(ctx, st); err != nil {
			t.Fatal(err)
		}
		if r := e.run(UserOptions{Only: map[int64]bool{bo: true}}); r.Counts["create:done"] != 1 || r.InScope != 3 {
			t.Fatalf("retry: %+v", r.Counts)
		}
		if _, ok := e.tenant.UserByUPN("bo@contoso.com"); !ok {
			t.Fatal("bo not created after the retry")
		}
	})
}

// Two directory users who would be one Entra account are never merged:
// the one provisioned keeps it, the other is a failed item that says why;
// nor is an Entra user another directory user holds taken over.
func TestUserProvisioningSameUPN(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		e := newUserEnv(t, d, nil)
		e.run(UserOptions{})
		twin := &usersync.User{Username: "josh.twin", Email: "josh@contoso.com", FirstName: "Josh", LastName: "Twin", Enabled: true, Attributes: map[string]string{"usageLocation": "US"}}
		if err := d.CreateUser(ctx, twin); err != nil {
			t.Fatal(err)
		}
		e.names["twin"] = twin
		e.members(true, "twin")
		r := e.run(UserOptions{})
		if r.Failed != 1 || len(r.Actions) != 1 || !strings.Contains(r.Actions[0].Error, "userPrincipalName josh@contoso.com is josh@contoso.com's already") {
			t.Fatalf("the twin: %+v", r.Actions)
		}
		if u := e.entra("josh"); u.DisplayName != "Josh Ames" {
			t.Fatalf("josh's Entra account changed: %+v", u)
		}
		// Two new users with one email: the first by id gets it.
		a := &usersync.User{Username: "dana", Email: "dana@contoso.com", FirstName: "Dana", Enabled: true, Attributes: map[string]string{"usageLocation": "US"}}
		b := &usersync.User{Username: "dana2", Email: "DANA@contoso.com", FirstName: "Dana", LastName: "Two", Enabled: true, Attributes: map[string]string{"usageLocation": "US"}}
		for _, u := range []*usersync.User{a, b} {
			if err := d.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		e.names["dana"], e.names["dana2"] = a, b
		e.members(true, "dana", "dana2")
		r = e.run(UserOptions{})
		if r.Counts["create:done"] != 1 || r.Failed != 2 { // dana2 and, again, the twin
			t.Fatalf("two new users, one email: %+v", r.Counts)
		}
		if u := e.entra("dana"); u.DisplayName != "Dana" {
			t.Fatalf("dana: %+v", u)
		}
		// Ann (provisioned before Bo) takes Bo's email: Bo, who has that UPN
		// in Entra, keeps it; Ann's change fails with why.
		ann, bo := e.names["ann"], e.names["bo"]
		boMail := "bo@contoso.com"
		if ann.ID > bo.ID {
			t.Fatal("the test needs Ann before Bo")
		}
		annNow, _ := d.FindUserByID(ctx, ann.ID)
		if _, err := d.UpdateUser(ctx, ann.ID, usersync.UserUpdate{Email: &boMail}, annNow.Version); err != nil {
			t.Fatal(err)
		}
		r = e.run(UserOptions{})
		var annErr, boErr string
		for _, a := range r.Actions {
			switch a.User {
			case ann.Username:
				annErr = a.Error
			case bo.Username:
				boErr = a.Error
			}
		}
		if !strings.Contains(annErr, "userPrincipalName bo@contoso.com is bo@contoso.com's already") || boErr != "" {
			t.Fatalf("ann takes bo's email: ann %q, bo %q", annErr, boErr)
		}
		annMail := "ann@contoso.com"
		annNow, _ = d.FindUserByID(ctx, ann.ID)
		if _, err := d.UpdateUser(ctx, ann.ID, usersync.UserUpdate{Email: &annMail}, annNow.Version); err != nil {
			t.Fatal(err)
		}
		// Josh leaves scope (suspended, his Entra user kept): the twin, who
		// now has the UPN to himself in the directory, is still not put
		// onto Josh's Entra account.
		e.members(false, "josh")
		r = e.run(UserOptions{})
		var twinErr string
		for _, a := range r.Actions {
			if a.User == "josh.twin" {
				twinErr = a.Error
			}
		}
		if r.Counts["suspend:done"] != 1 || !strings.Contains(twinErr, "the Entra user josh@contoso.com is provisioned for josh@contoso.com already") {
			t.Fatalf("after josh left: %+v", r.Actions)
		}
		if n := len(e.tenant.UsersByUPN()); n != 8 { // alice, bob, carol, dave (the tenant's own), josh, ann, bo, dana
			t.Fatalf("%d Entra users, want 8", n)
		}
		if u := e.entra("josh"); u.AccountEnabled || u.Surname != "Ames" {
			t.Fatalf("josh's Entra account: %+v", u)
		}
	})
}
