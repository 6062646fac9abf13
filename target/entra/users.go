// User provisioning into an Entra tenant (Office 365; seed 004). A run
// compares the users in scope (holding a scope role, by hand or through a
// mapping) with what the provisioner keeps of each user it wrote, and
// writes the difference: create (or adopt an Entra user of the same UPN),
// one PATCH of the changed properties, licenses and groups by rules, and
// the deprovision policy for users that left scope. What it keeps of a
// user is saved after that user's Entra writes, and a user missing from it
// is looked up by UPN before it is created, so a crash anywhere replays
// without duplicates.

package entra

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/jexl"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/provision"
	"github.com/usersync/usersync/rules"
)

// User actions.
const (
	UserCreate    = "create"
	UserAdopt     = "adopt" // an Entra user with the UPN existed: taken over, not duplicated
	UserUpdate    = "update"
	UserLicenses  = "licenses"
	UserGroups    = "groups"
	UserSuspend   = "suspend"
	UserRestore   = "restore" // back in scope after a suspend
	UserDelete    = "delete"
	UserImmutable = "immutable-id" // Entra's onPremisesImmutableId copied into the directory
)

// Log statuses.
const (
	StatusDone     = "done"
	StatusFailed   = "failed"
	StatusPending  = "pending-approval"
	StatusHeld     = "held"
	StatusPlanned  = "planned"  // a dry run
	StatusRejected = "rejected" // an administrator rejected this plan
)

// UserAction is one action of a run on one user, and what came of it.
type UserAction struct {
	Kind     string                          `json:"action"`
	User     string                          `json:"user"`
	Reason   string                          `json:"reason"`
	Status   string                          `json:"status"`
	Code     string                          `json:"errorCode,omitempty"`
	Error    string                          `json:"error,omitempty"`
	Modified map[string]usersync.FieldChange `json:"modified,omitempty"`
	Approval int64                           `json:"approval,omitempty"`
}

// UserResult is what a user provisioner's run did or, dry, would do.
type UserResult struct {
	Provisioner string         `json:"provisioner"`
	Run         string         `json:"run"`
	DryRun      bool           `json:"dryRun"`
	InScope     int            `json:"inScope"`
	Counts      map[string]int `json:"counts"` // by action and status: "create:done"
	Actions     []UserAction   `json:"actions,omitempty"`
	Failed      int            `json:"failed"`
	Pending     int            `json:"pendingApproval"`
	Held        int            `json:"held"` // deprovisions held by the mass-deprovision guard
	HeldReason  string         `json:"heldReason,omitempty"`
	Requests    int            `json:"graphRequests"`
}

// UserOptions shape a run.
type UserOptions struct {
	DryRun      bool
	Force       bool // apply deprovisions beyond the mass-deprovision guard
	KeepActions bool
	OnAction    func(UserAction)
	Only        map[int64]bool // when set: only these users (approvals run at once)
	Now         func() time.Time
	// LeaseWait is how long a run waits for another run of the
	// provisioner to end (default provision.DefaultWait); a dry run writes
	// nothing and takes no lease.
	LeaseWait time.Duration
	// ReadBack reads every provisioned user back from Entra first (a
	// reconcile): an onPremisesImmutableId changed in Entra is copied into
	// the directory (seed 004: Entra's value wins), logged.
	ReadBack bool
}

// Users is a user provisioner over a directory and a Graph client.
type Users struct {
	dir    usersync.Directory
	client *msgraph.Client
	p      *usersync.Provisioner
	c      *usersync.UserProvisioning
	params map[string]*jexl.Program
	direct map[string]func(*usersync.User) string // parameters that only name a field: read without evaluating
	rules  []*rules.Condition
}

// directParam returns a reader for an expression that only names a user
// field or attribute ("user.email", "user.attributes.dept"), nil for
// anything else: 100,000 users' parameters cost a map lookup each, not an
// evaluation.
func directParam(src string) func(*usersync.User) string {
	src = strings.TrimSpace(src)
	if name, ok := strings.CutPrefix(src, "user.attributes."); ok && isIdent(name) {
		return func(u *usersync.User) string { return u.Attributes[name] }
	}
	switch src {
	case "user.username":
		return func(u *usersync.User) string { return u.Username }
	case "user.email":
		return func(u *usersync.User) string { return u.Email }
	case "user.firstName":
		return func(u *usersync.User) string { return u.FirstName }
	case "user.lastName":
		return func(u *usersync.User) string { return u.LastName }
	case "user.displayName":
		return func(u *usersync.User) string { return strings.TrimSpace(u.FirstName + " " + u.LastName) }
	case "user.mailNickname":
		return mailNickname
	}
	return nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// mailNickname is the default mailNickname: the email's local part (else
// the username's), with the characters Entra refuses as -.
func mailNickname(u *usersync.User) string {
	nick := u.Username
	if at := strings.IndexByte(u.Email, '@'); at > 0 {
		nick = u.Email[:at]
	} else if at := strings.IndexByte(nick, '@'); at > 0 {
		nick = nick[:at]
	}
	return SanitizeMailNickname(nick)
}

var userShapes = map[string]jexl.Shape{"user": {"username": nil, "email": nil, "firstName": nil, "lastName": nil, "displayName": nil,
	"mailNickname": nil, "type": nil, "source": nil, "attributes": nil}}

// CompileUsers checks a user provisioner's parameters and rules.
func CompileUsers(p *usersync.Provisioner) (map[string]*jexl.Program, []*rules.Condition, error) {
	c := p.Config.Users
	params := map[string]*jexl.Program{}
	for _, k := range usersync.UserParameters {
		src, ok := c.Parameters[k]
		if !ok {
			src, ok = usersync.DefaultUserParameters[k]
		}
		if !ok || strings.TrimSpace(src) == "" {
			continue
		}
		prog, err := jexl.CompileShaped(src, userShapes, "user")
		if err != nil {
			return nil, nil, usersync.Errorf(usersync.EINVALID, "provisioner %s: parameter %s: %v", p.Name, k, err)
		}
		params[k] = prog
	}
	if params["userPrincipalName"] == nil || params["mailNickname"] == nil || params["displayName"] == nil {
		return nil, nil, usersync.Errorf(usersync.EINVALID, "provisioner %s: the parameters userPrincipalName, displayName and mailNickname cannot be empty: Entra needs them", p.Name)
	}
	var rs []*rules.Condition
	for _, r := range c.Rules {
		cond, err := rules.Parse(r.Condition)
		if err != nil {
			return nil, nil, usersync.Errorf(usersync.EINVALID, "provisioner %s: rule %q: %s", p.Name, r.Name, usersync.ErrorMessage(err))
		}
		if err := checkEntitlements(p, r); err != nil {
			return nil, nil, err
		}
		rs = append(rs, cond)
	}
	return params, rs, nil
}

// checkEntitlements checks that a rule names licenses and groups the
// tenant has (as its last entitlements refresh saw them).
func checkEntitlements(p *usersync.Provisioner, r usersync.UserRule) error {
	e := p.Config.Users.Entitlements
	if e == nil {
		return usersync.Errorf(usersync.EINVALID, "provisioner %s: rule %q names licenses or groups, but the tenant's are not known yet: usersync provisioners entitlements %s --refresh", p.Name, r.Name, p.Name)
	}
	for _, l := range r.Licenses {
		sku := findSKU(e, l.SKU)
		if sku == nil {
			var names []string
			for _, s := range e.SKUs {
				names = append(names, s.PartNumber)
			}
			return usersync.Errorf(usersync.EINVALID, "provisioner %s: rule %q: the tenant has no license %q (it has %s)", p.Name, r.Name, l.SKU, strings.Join(names, ", "))
		}
		for _, plan := range l.DisabledPlans {
			if planID(sku, plan) == "" {
				return usersync.Errorf(usersync.EINVALID, "provisioner %s: rule %q: license %s has no service plan %q (it has %s)", p.Name, r.Name, sku.PartNumber, plan, strings.Join(sku.Plans, ", "))
			}
		}
	}
	for _, g := range r.Groups {
		if findGroup(e, g) == "" {
			return usersync.Errorf(usersync.EINVALID, "provisioner %s: rule %q: the tenant has no group %q (as of the last entitlements refresh)", p.Name, r.Name, g)
		}
	}
	return nil
}

func findSKU(e *usersync.Entitlements, name string) *usersync.SKU {
	for i := range e.SKUs {
		if strings.EqualFold(e.SKUs[i].PartNumber, name) || strings.EqualFold(e.SKUs[i].ID, name) {
			return &e.SKUs[i]
		}
	}
	return nil
}

func planID(s *usersync.SKU, name string) string {
	for i, p := range s.Plans {
		if strings.EqualFold(p, name) || strings.EqualFold(s.PlanIDs[i], name) {
			return s.PlanIDs[i]
		}
	}
	return ""
}

func findGroup(e *usersync.Entitlements, name string) string {
	for _, g := range e.Groups {
		if strings.EqualFold(g.Name, name) || strings.EqualFold(g.ID, name) {
			return g.ID
		}
	}
	return ""
}

// NewUsers returns the user provisioner p over dir, writing through client.
func NewUsers(dir usersync.Directory, client *msgraph.Client, p *usersync.Provisioner) (*Users, error) {
	if p.Kind != usersync.ProvisionerUsers || p.Config.Users == nil {
		return nil, usersync.Errorf(usersync.EINVALID, "provisioner %s is not a user provisioner", p.Name)
	}
	params, rs, err := CompileUsers(p)
	if err != nil {
		return nil, err
	}
	direct := map[string]func(*usersync.User) string{}
	for k, prog := range params {
		if get := directParam(prog.Source()); get != nil {
			direct[k] = get
		}
	}
	return &Users{dir: dir, client: client, p: p, c: p.Config.Users, params: params, direct: direct, rules: rs}, nil
}

// ScopeCondition is the condition of the users in a provisioner's scope:
// a scope role held by hand, or given by a mapping.
func ScopeCondition(ctx context.Context, dir usersync.RoleService, scopeRoles []string) (usersync.Cond, error) {
	ms, err := dir.FindMappings(ctx)
	if err != nil {
		return nil, err
	}
	var any usersync.Any
	for _, r := range scopeRoles {
		any = append(any, usersync.Match{Field: "role", Op: usersync.OpEq, Value: r})
	}
	return rules.ExpandRoles(any, ms)
}

// desired is what a user should be in Entra.
type desired struct {
	u        *usersync.User
	props    map[string]string
	enabled  bool
	licenses map[string]usersync.License // by SKU id
	groups   map[string]bool             // Entra group ids
	why      string                      // why in scope
	bad      string                      // why it cannot be provisioned
}

// userRun is one run's state.
type userRun struct {
	*Users
	ctx         context.Context
	o           UserOptions
	r           *UserResult
	state       map[int64]*usersync.Provisioned
	log         []usersync.LogEntry
	approved    map[int64][]*usersync.Approval // pending, approved and rejected, by user
	pending     map[int64]bool                 // approvals this run confirmed pending (the others are dropped)
	consuming   map[int64]int64                // by user: the approval that let an action through, used once it is done
	free        map[string]int                 // free seats by SKU id, read once a run
	addTo       map[string][]int64
	rmFrom      map[string][]int64
	licenses    []*licenseWork                   // queued license changes (flushLicenses)
	remoteOwner map[string]*usersync.Provisioned // by Entra id, built when a user is adopted
}

// userVars is what parameters see of a user.
func userVars(u *usersync.User) map[string]any {
	attrs := make(map[string]any, len(u.Attributes))
	for k, v := range u.Attributes {
		attrs[k] = v
	}
	return map[string]any{"user": map[string]any{"username": u.Username, "email": u.Email, "firstName": u.FirstName, "lastName": u.LastName,
		"displayName": strings.TrimSpace(u.FirstName + " " + u.LastName), "mailNickname": mailNickname(u), "type": string(u.Type),
		"source": u.Source, "attributes": attrs}}
}

// SanitizeMailNickname replaces the characters Entra refuses with -.
func SanitizeMailNickname(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c > 127 || c <= ' ' || strings.ContainsRune(`@()\[]";:<>,`, c) {
			b.WriteByte('-')
		} else {
			b.WriteRune(c)
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

// plan computes what u should be in Entra.
func (r *userRun) desire(u *usersync.User, matched []map[int64]bool) *desired {
	d := &desired{u: u, props: make(map[string]string, len(r.params)+1), enabled: u.Enabled, licenses: map[string]usersync.License{}, groups: map[string]bool{}}
	var vars map[string]any
	for k, prog := range r.params {
		if get := r.direct[k]; get != nil {
			d.props[k] = get(u)
			continue
		}
		if vars == nil {
			vars = userVars(u)
		}
		v, err := prog.Eval(vars)
		if err != nil {
			d.bad = fmt.Sprintf("parameter %s: %v", k, err)
			return d
		}
		d.props[k] = v
	}
	if d.props["displayName"] == "" {
		d.props["displayName"] = u.Username
	}
	if d.props["mailNickname"] == "" {
		d.props["mailNickname"] = SanitizeMailNickname(u.Username)
	}
	if id := u.Attributes[r.c.ImmutableID]; id != "" {
		d.props["onPremisesImmutableId"] = id
	}
	domain := r.p.Config.Domain
	for _, k := range []string{"userPrincipalName", "mail"} {
		v := d.props[k]
		if k == "mail" && v == "" {
			continue
		}
		if at := strings.LastIndexByte(v, '@'); at <= 0 || !strings.EqualFold(v[at+1:], domain) {
			d.bad = fmt.Sprintf("%s %q is not in the verified domain %s", k, v, domain)
			return d
		}
	}
	e := r.c.Entitlements
	for i, rule := range r.c.Rules {
		if matched[i] != nil && !matched[i][u.ID] {
			continue
		}
		for _, l := range rule.Licenses {
			sku := findSKU(e, l.SKU)
			if sku == nil {
				d.bad = fmt.Sprintf("rule %q: the tenant has no license %q", rule.Name, l.SKU)
				return d
			}
			lic := usersync.License{SKU: sku.ID}
			for _, p := range l.DisabledPlans {
				lic.DisabledPlans = append(lic.DisabledPlans, planID(sku, p))
			}
			sort.Strings(lic.DisabledPlans)
			d.licenses[sku.ID] = lic
		}
		for _, g := range rule.Groups {
			if id := findGroup(e, g); id != "" {
				d.groups[id] = true
			}
		}
	}
	if len(d.licenses) > 0 && d.props["usageLocation"] == "" {
		d.bad = "licenses need a usage location, and the usageLocation parameter is empty for this user"
	}
	return d
}

// planKey identifies a planned action and what it would send, so an
// approval given for one plan is not used for another.
func planKey(kind string, d *desired) string {
	h := sha256.New()
	fmt.Fprintln(h, kind)
	if d != nil {
		keys := make([]string, 0, len(d.props))
		for k := range d.props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%q\n", k, d.props[k])
		}
		fmt.Fprintln(h, d.enabled, sortedKeys(d.licenses), sortedKeys(d.groups))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Run provisions once: the users in scope, and the deprovision policy for
// those that left it.
func (x *Users) Run(ctx context.Context, o UserOptions) (res *UserResult, err error) {
	if o.DryRun {
		return x.run(ctx, o)
	}
	err = provision.Hold(ctx, x.dir, x.p.Name, leaseWait(o.LeaseWait), func(ctx context.Context) error {
		res, err = x.run(ctx, o)
		return err
	})
	if res == nil {
		res = &UserResult{Provisioner: x.p.Name, Counts: map[string]int{}}
	}
	return res, err
}

func (x *Users) run(ctx context.Context, o UserOptions) (*UserResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx = usersync.WithActor(ctx, usersync.ProvisionerCursor(x.p.Name))
	r := &userRun{Users: x, ctx: ctx, o: o, addTo: map[string][]int64{}, rmFrom: map[string][]int64{}, pending: map[int64]bool{},
		r: &UserResult{Provisioner: x.p.Name, DryRun: o.DryRun, Run: runName(o.Now()), Counts: map[string]int{}}}
	// The change counter before the run read anything: a full run has
	// acted on every change up to it (the cursor gives status its backlog
	// and lag; the run itself compares states, not events).
	seq, err := x.dir.LastChangeSeq(ctx)
	if err != nil {
		return r.r, err
	}
	err = r.run()
	if ferr := r.flushLog(); err == nil {
		err = ferr
	}
	if err == nil && !o.DryRun && o.Only == nil {
		err = x.dir.SetCursor(ctx, usersync.ProvisionerCursor(x.p.Name), seq)
	}
	return r.r, err
}

func (r *userRun) run() error {
	scope, err := ScopeCondition(r.ctx, r.dir, r.c.ScopeRoles)
	if err != nil {
		return err
	}
	users, _, err := r.dir.FindUsers(r.ctx, usersync.UserFilter{Where: scope, Unordered: true})
	if err != nil {
		return err
	}
	r.r.InScope = len(users)
	// What each rule holds for: ids only (the users in scope are read once).
	ms, err := r.dir.FindMappings(r.ctx)
	if err != nil {
		return err
	}
	matched := make([]map[int64]bool, len(r.rules))
	for i, rule := range r.rules {
		if always, ok := rule.Cond.(usersync.Always); ok && bool(always) {
			continue // nil: every user
		}
		cond, err := rules.ExpandRoles(rule.Cond, ms) // a role by hand or through a mapping
		if err != nil {
			return err
		}
		ids, err := r.dir.UserIDs(r.ctx, cond)
		if err != nil {
			return err
		}
		matched[i] = make(map[int64]bool, len(ids))
		for _, id := range ids {
			matched[i][id] = true
		}
	}
	if r.state, err = r.dir.ProvisionedUsers(r.ctx, r.p.Name); err != nil {
		return err
	}
	r.approved, r.consuming = map[int64][]*usersync.Approval{}, map[int64]int64{}
	for _, status := range []string{usersync.ApprovalApproved, usersync.ApprovalRejected, usersync.ApprovalPending} {
		list, err := r.dir.FindApprovals(r.ctx, r.p.Name, status)
		if err != nil {
			return err
		}
		for _, a := range list {
			r.approved[a.UserID] = append(r.approved[a.UserID], a)
		}
	}
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	if r.o.ReadBack {
		if err := r.readBack(users); err != nil {
			return err
		}
	}
	claims := r.claimUPNs(users)
	now := r.o.Now()
	inScope := map[int64]bool{}
	var creates []*desired
	var changes []*desired
	for _, u := range users {
		inScope[u.ID] = true
		if r.o.Only != nil && !r.o.Only[u.ID] {
			continue
		}
		st := r.state[u.ID]
		if st != nil && (st.Quarantined || (!r.o.DryRun && st.NextAttempt.After(now))) {
			continue
		}
		d := r.desire(u, matched)
		if owner := claims[strings.ToLower(d.props["userPrincipalName"])]; d.bad == "" && owner != nil && owner.ID != u.ID {
			// Two directory users would be one Entra account: neither is
			// merged into the other; the one that holds it keeps it.
			d.bad = fmt.Sprintf("userPrincipalName %s is %s's already (give one of them another email or UPN parameter)", d.props["userPrincipalName"], owner.Username)
		}
		if d.bad != "" {
			r.fail(u.ID, u.Username, UserCreate, "in scope", d.bad, "", nil)
			continue
		}
		switch {
		case st == nil || st.State == usersync.StateDeleted:
			if !d.enabled {
				continue // a disabled user is not created
			}
			creates = append(creates, d)
		default:
			changes = append(changes, d)
		}
	}
	// Deprovisions: provisioned users out of scope (or gone from the directory).
	var leaving []*usersync.Provisioned
	for id, st := range r.state {
		if inScope[id] || (r.o.Only != nil && !r.o.Only[id]) || st.State == usersync.StateDeleted || st.Quarantined {
			continue
		}
		if r.c.Deprovision == usersync.DeprovisionNothing || (r.c.Deprovision == usersync.DeprovisionSuspend && st.State == usersync.StateSuspended) {
			continue
		}
		leaving = append(leaving, st)
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i].UserID < leaving[j].UserID })
	active := 0
	for _, st := range r.state {
		if st.State == usersync.StateActive {
			active++
		}
	}
	if n := len(leaving); n > r.c.MassLimit && n*100 > r.c.MassShare*max(active, 1) && !r.o.Force {
		r.r.Held = n
		r.r.HeldReason = fmt.Sprintf("%d users would be deprovisioned (%s), more than %d and more than %d%% of the %d provisioned: held for an administrator (usersync provisioners hold %s allow|reject)",
			n, r.c.Deprovision, r.c.MassLimit, r.c.MassShare, active, r.p.Name)
		held := usersync.Hold{Provisioner: r.p.Name, What: HoldDeprovision, Count: n, Reason: r.r.HeldReason}
		for _, st := range leaving {
			held.Users = append(held.Users, st.Username)
			r.record(st.UserID, st.Username, UserAction{Kind: r.c.Deprovision, User: st.Username, Reason: "left scope", Status: StatusHeld, Error: r.r.HeldReason})
		}
		if !r.o.DryRun && r.o.Only == nil {
			if err := r.dir.SaveHold(r.ctx, held); err != nil { // shown by status, the API and the console until decided
				return err
			}
		}
		leaving = nil
	} else if !r.o.DryRun && r.o.Only == nil {
		// A read, not a write, on the runs (every change under serve)
		// that find nothing held.
		holds, err := r.dir.Holds(r.ctx, r.p.Name)
		if err != nil {
			return err
		}
		if len(holds) > 0 {
			if err := r.dir.ClearHold(r.ctx, r.p.Name, HoldDeprovision); err != nil {
				return err
			}
		}
	}
	if err := r.creates(creates); err != nil {
		return err
	}
	for _, d := range changes {
		if err := r.change(d); err != nil {
			return err
		}
	}
	for _, st := range leaving {
		if err := r.deprovision(st); err != nil {
			return err
		}
	}
	if err := r.flushLicenses(); err != nil {
		return err
	}
	if err := r.writeGroups(); err != nil {
		return err
	}
	return r.dropOvertaken()
}

// claimUPNs says which directory user each userPrincipalName belongs to
// in this run: a user already provisioned keeps its own; among the
// others, the first by id.
func (r *userRun) claimUPNs(users []*usersync.User) map[string]*usersync.User {
	prog, get := r.params["userPrincipalName"], r.direct["userPrincipalName"]
	upn := func(u *usersync.User) string {
		if get != nil {
			return strings.ToLower(get(u))
		}
		v, _ := prog.Eval(userVars(u))
		return strings.ToLower(v)
	}
	claims := make(map[string]*usersync.User, len(users))
	for pass := 0; pass < 2; pass++ {
		for _, u := range users {
			st := r.state[u.ID]
			if provisioned := st != nil && st.State != usersync.StateDeleted; provisioned != (pass == 0) {
				continue
			}
			k := upn(u)
			if k == "" {
				continue
			}
			if other := claims[k]; other == nil {
				claims[k] = u
			} else if pass == 0 && strings.EqualFold(r.state[u.ID].Props()["userPrincipalName"], k) {
				claims[k] = u // two provisioned users want it: the one that has it in Entra keeps it
			}
		}
	}
	return claims
}

// gate decides whether an action of kind may be sent now. An approval is
// for one action on one user with exactly the planned properties (planKey):
// an approved one lets that plan through once (it is marked used when the
// action is done) until it expires; a rejected one holds that plan back
// whether approvals are on or off, until an administrator reopens it; a
// pending one made while approvals were on keeps waiting when they are
// turned off, for an explicit decision. Without any of these, an action
// that needs approval waits as a new pending approval, logged once.
func (r *userRun) gate(kind string, userID int64, username, reason, detail string, d *desired) (bool, error) {
	key := planKey(kind, d)
	now, expiry := r.o.Now(), r.c.ApprovalExpiry()
	var pending *usersync.Approval
	for _, a := range r.approved[userID] {
		if a.Action != kind || a.Key != key {
			continue
		}
		switch a.Status {
		case usersync.ApprovalApproved:
			if now.Sub(a.DecidedAt) > expiry {
				if err := r.decide(a, usersync.ApprovalExpired, "expired: not sent within "+expiry.String()+" of its approval"); err != nil {
					return false, err
				}
				continue
			}
			r.consuming[userID] = a.ID
			return true, nil
		case usersync.ApprovalRejected:
			r.r.Counts[kind+":"+StatusRejected]++ // an administrator said no to this very plan
			return false, nil
		case usersync.ApprovalPending:
			if now.Sub(a.CreatedAt) > expiry {
				if err := r.decide(a, usersync.ApprovalExpired, "expired: nobody decided within "+expiry.String()); err != nil {
					return false, err
				}
				continue
			}
			pending = a
		}
	}
	if !r.c.NeedsApproval(kind) {
		if pending == nil {
			return true, nil
		}
		// Asked for while approvals were on: turning them off is no decision.
		r.pending[pending.ID] = true
		r.r.Pending++
		return false, nil
	}
	if r.o.DryRun {
		r.r.Pending++
		r.record(userID, username, UserAction{Kind: kind, User: username, Reason: reason, Status: StatusPending, Error: "needs an administrator's approval"})
		return false, nil
	}
	a, err := r.dir.CreateApproval(r.ctx, &usersync.Approval{Provisioner: r.p.Name, UserID: userID, Username: username, Action: kind, Reason: reason, Detail: detail, Key: key})
	if err != nil {
		return false, err
	}
	if a.Status == usersync.ApprovalRejected {
		r.r.Counts[kind+":"+StatusRejected]++ // counted, not logged again every run
		return false, nil
	}
	r.pending[a.ID] = true
	r.r.Pending++
	if a.New { // logged once; later runs move its last-seen time
		r.record(userID, username, UserAction{Kind: kind, User: username, Reason: reason, Status: StatusPending, Approval: a.ID})
	} else {
		r.r.Counts[kind+":"+StatusPending]++
		if r.o.KeepActions {
			r.r.Actions = append(r.r.Actions, UserAction{Kind: kind, User: username, Reason: reason, Status: StatusPending, Approval: a.ID})
		}
	}
	return false, nil
}

// decide moves an approval on as usersync, in a run that writes.
func (r *userRun) decide(a *usersync.Approval, status, why string) error {
	if r.o.DryRun {
		return nil
	}
	_, err := r.dir.DecideApproval(usersync.WithActor(r.ctx, "usersync: "+why), a.ID, status)
	if usersync.ErrorCode(err) == usersync.ECONFLICT {
		return nil // decided meanwhile
	}
	return err
}

// dropOvertaken drops the pending approvals of this provisioner that this
// run did not ask for again: the state moved on, they would be stale.
func (r *userRun) dropOvertaken() error {
	if r.o.DryRun || r.o.Only != nil {
		return nil
	}
	pending, err := r.dir.FindApprovals(r.ctx, r.p.Name, usersync.ApprovalPending)
	if err != nil {
		return err
	}
	ctx := usersync.WithActor(r.ctx, "usersync: overtaken (the plan changed before anyone decided)")
	for _, a := range pending {
		if r.pending[a.ID] {
			continue
		}
		if _, err := r.dir.DecideApproval(ctx, a.ID, usersync.ApprovalDropped); err != nil && usersync.ErrorCode(err) != usersync.ECONFLICT {
			return err
		}
	}
	return nil
}

func describe(d *desired) string {
	var parts []string
	for _, k := range sortedKeys(d.props) {
		if d.props[k] != "" {
			parts = append(parts, k+"="+d.props[k])
		}
	}
	if len(d.licenses) > 0 {
		parts = append(parts, fmt.Sprintf("licenses=%d", len(d.licenses)))
	}
	if len(d.groups) > 0 {
		parts = append(parts, fmt.Sprintf("groups=%d", len(d.groups)))
	}
	return strings.Join(parts, " ")
}

// creates creates (or adopts) the users entering scope: one $batch
// lookup by UPN for twenty, then a POST for those Entra lacks.
func (r *userRun) creates(list []*desired) error {
	if len(list) == 0 {
		return nil
	}
	upns := make([]string, len(list))
	for i, d := range list {
		upns[i] = d.props["userPrincipalName"]
	}
	// The properties the provisioner writes are read too: an adoption
	// logs the values it overwrites.
	props := slices.Clone(msgraph.UserProps)
	for _, k := range usersync.UserParameters {
		if !slices.Contains(props, k) {
			props = append(props, k)
		}
	}
	existing, err := r.client.UsersByUPN(r.ctx, upns, props)
	if err != nil {
		return err
	}
	for _, d := range list {
		if err := r.create(d, existing[strings.ToLower(d.props["userPrincipalName"])]); err != nil {
			return err
		}
	}
	return nil
}

func (r *userRun) create(d *desired, found msgraph.User) error {
	u := d.u
	reason := "entered scope: holds a scope role (" + strings.Join(r.c.ScopeRoles, ", ") + ")"
	kind, detail := UserCreate, describe(d)
	if found != nil {
		// Taking over an Entra user that exists is an action of its own,
		// shown and approved as such, with the values it overwrites.
		kind, detail = UserAdopt, "take over Entra user "+found.ID()+": "+detail
	}
	if ok, err := r.gate(kind, u.ID, u.Username, reason, detail, d); err != nil || !ok {
		return err
	}
	mod := map[string]usersync.FieldChange{}
	for _, k := range sortedKeys(d.props) {
		if d.props[k] != "" {
			var from string
			if found != nil {
				from = found.String(k)
			}
			if from != d.props[k] {
				mod[k] = usersync.FieldChange{From: from, To: d.props[k]}
			}
		}
	}
	if found != nil && !found.Bool("accountEnabled") {
		mod["accountEnabled"] = usersync.FieldChange{From: "false", To: "true"}
	}
	st := &usersync.Provisioned{Provisioner: r.p.Name, UserID: u.ID, Username: u.Username, State: usersync.StateActive}
	if prev := r.state[u.ID]; prev != nil {
		st.Failures = prev.Failures
	}
	if found != nil {
		if r.remoteOwner == nil {
			r.remoteOwner = make(map[string]*usersync.Provisioned, len(r.state))
			for _, st := range r.state {
				if st.RemoteID != "" && st.State != usersync.StateDeleted {
					r.remoteOwner[st.RemoteID] = st
				}
			}
		}
		if other := r.remoteOwner[found.ID()]; other != nil && other.UserID != u.ID {
			r.fail(u.ID, u.Username, UserAdopt, reason, fmt.Sprintf("the Entra user %s is provisioned for %s already: not taken over for a second directory user", d.props["userPrincipalName"], other.Username), "", nil)
			return nil
		}
		// Adopt: the Entra user with this UPN is this user (it is in scope).
		if imm := found.String("onPremisesImmutableId"); imm != "" && imm != d.props["onPremisesImmutableId"] {
			if err := r.copyImmutableID(u, d.props["onPremisesImmutableId"], imm); err != nil {
				return err
			}
			d.props["onPremisesImmutableId"] = imm
		}
		st.RemoteID = found.ID()
		st.Licenses = found.Licenses()
		if r.o.DryRun {
			r.record(u.ID, u.Username, UserAction{Kind: UserAdopt, User: u.Username, Reason: reason + "; Entra has a user with this UPN", Status: StatusPlanned, Modified: mod})
			return nil
		}
		on := true
		if err := r.client.UpdateUser(r.ctx, st.RemoteID, withoutEmpty(d.props), &on); err != nil {
			return r.failed(st, UserAdopt, reason, err)
		}
		r.record(u.ID, u.Username, UserAction{Kind: UserAdopt, User: u.Username, Reason: reason + "; Entra had a user with this UPN: taken over, not duplicated", Status: StatusDone, Modified: mod})
	} else {
		if r.o.DryRun {
			r.record(u.ID, u.Username, UserAction{Kind: UserCreate, User: u.Username, Reason: reason, Status: StatusPlanned, Modified: mod})
			r.plannedEntitlements(d, st)
			return nil
		}
		created, err := r.client.CreateUser(r.ctx, d.props, true, newPassword())
		if err != nil {
			return r.failed(st, UserCreate, reason, err)
		}
		st.RemoteID = created.ID()
		r.record(u.ID, u.Username, UserAction{Kind: UserCreate, User: u.Username, Reason: reason, Status: StatusDone, Modified: mod})
	}
	st.Sent = d.props
	st.Failures, st.LastError, st.NextAttempt = 0, "", time.Time{}
	if err := r.dir.SaveProvisioned(r.ctx, st); err != nil {
		return err
	}
	r.state[u.ID] = st
	return r.entitle(d, st)
}

func withoutEmpty(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// newPassword is a random initial password Entra's complexity rules take;
// it is sent once and kept nowhere (the user signs in through SSO or resets it).
func newPassword() string { return usersync.NewSecret("") + "-Aa1" }

// readBack reads the provisioned users among users from Entra and copies
// an onPremisesImmutableId that differs into the directory (Entra's wins),
// so that what is sent next carries it too.
func (r *userRun) readBack(users []*usersync.User) error {
	byID := make(map[int64]*usersync.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	owner := map[string]*usersync.Provisioned{}
	var ids []string
	for _, st := range r.state {
		if st.RemoteID != "" && st.State != usersync.StateDeleted && byID[st.UserID] != nil {
			owner[st.RemoteID] = st
			ids = append(ids, st.RemoteID)
		}
	}
	sort.Strings(ids)
	found, err := r.client.UsersByID(r.ctx, ids, []string{"onPremisesImmutableId"})
	if err != nil {
		return err
	}
	for _, eu := range found {
		st := owner[eu.ID()]
		if st == nil {
			continue
		}
		u := byID[st.UserID]
		ours, theirs := u.Attributes[r.c.ImmutableID], eu.String("onPremisesImmutableId")
		if theirs == "" || theirs == ours {
			continue
		}
		if err := r.copyImmutableID(u, ours, theirs); err != nil {
			return err
		}
		if u.Attributes == nil {
			u.Attributes = map[string]string{}
		}
		u.Attributes[r.c.ImmutableID] = theirs
		if st.Sent != nil && !r.o.DryRun {
			st.Sent["onPremisesImmutableId"] = theirs // Entra has it: nothing to send
			if err := r.dir.SaveProvisioned(r.ctx, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyImmutableID writes Entra's onPremisesImmutableId into the user's
// ImmutableID attribute: Entra's value wins (seed 004).
func (r *userRun) copyImmutableID(u *usersync.User, ours, theirs string) error {
	reason := "Entra has onPremisesImmutableId " + theirs
	if ours != "" {
		reason = fmt.Sprintf("Entra's onPremisesImmutableId %s differs from the directory's %s: Entra's wins", theirs, ours)
	}
	a := UserAction{Kind: UserImmutable, User: u.Username, Reason: reason, Status: StatusPlanned,
		Modified: map[string]usersync.FieldChange{"attributes." + r.c.ImmutableID: {From: ours, To: theirs}}}
	if !r.o.DryRun {
		attr := r.c.ImmutableID
		if _, err := r.dir.UpdateUser(r.ctx, u.ID, usersync.UserUpdate{Attributes: map[string]*string{attr: &theirs}}, u.Version); err != nil {
			return err
		}
		a.Status = StatusDone
	}
	r.record(u.ID, u.Username, a)
	return nil
}

// change brings a provisioned user in line: restore, one PATCH of what
// changed, licenses and groups.
func (r *userRun) change(d *desired) error {
	u, st := d.u, r.state[d.u.ID]
	changed := map[string]string{}
	mod := map[string]usersync.FieldChange{}
	if st.SentKey == "" || st.SentKey != usersync.PropsKey(d.props) { // else unchanged: nothing to decode
		sent := st.Props()
		for _, k := range sortedKeys(d.props) {
			if sent[k] != d.props[k] {
				changed[k], mod[k] = d.props[k], usersync.FieldChange{From: sent[k], To: d.props[k]}
			}
		}
		for k, v := range sent {
			if _, ok := d.props[k]; !ok && v != "" {
				changed[k], mod[k] = "", usersync.FieldChange{From: v}
			}
		}
	}
	var enabled *bool
	kind, reason := UserUpdate, "the user's properties changed"
	switch {
	case st.State == usersync.StateSuspended && d.enabled:
		on := true
		enabled, kind, reason = &on, UserRestore, "back in scope after a suspend"
		mod["accountEnabled"] = usersync.FieldChange{From: "false", To: "true"}
	case st.State == usersync.StateActive && !d.enabled:
		off := false
		enabled, kind, reason = &off, UserSuspend, "the user is disabled in the directory"
		mod["accountEnabled"] = usersync.FieldChange{From: "true", To: "false"}
	}
	if len(changed) > 0 || enabled != nil {
		gateKind := kind
		if kind == UserRestore {
			gateKind = UserUpdate
		}
		if ok, err := r.gate(gateKind, u.ID, u.Username, reason, describe(d), d); err != nil || !ok {
			return err
		}
		if r.o.DryRun {
			r.record(u.ID, u.Username, UserAction{Kind: kind, User: u.Username, Reason: reason, Status: StatusPlanned, Modified: mod})
		} else {
			if err := r.client.UpdateUser(r.ctx, st.RemoteID, changed, enabled); err != nil {
				return r.failed(st, kind, reason, err)
			}
			next := *st
			next.Sent = d.props
			if enabled != nil {
				next.State = map[bool]string{true: usersync.StateActive, false: usersync.StateSuspended}[*enabled]
			}
			next.Failures, next.LastError, next.NextAttempt = 0, "", time.Time{}
			if err := r.dir.SaveProvisioned(r.ctx, &next); err != nil {
				return err
			}
			*st = next
			r.record(u.ID, u.Username, UserAction{Kind: kind, User: u.Username, Reason: reason, Status: StatusDone, Modified: mod})
		}
	}
	if st.State == usersync.StateSuspended {
		return nil
	}
	return r.entitle(d, st)
}

// plannedEntitlements records, in a dry run, the licenses and groups a new
// user would get.
func (r *userRun) plannedEntitlements(d *desired, st *usersync.Provisioned) {
	if len(d.licenses) > 0 {
		r.record(d.u.ID, d.u.Username, UserAction{Kind: UserLicenses, User: d.u.Username, Reason: "rules", Status: StatusPlanned,
			Modified: map[string]usersync.FieldChange{"assignedLicenses": {To: r.skuNames(sortedKeys(d.licenses))}}})
	}
	if len(d.groups) > 0 {
		r.record(d.u.ID, d.u.Username, UserAction{Kind: UserGroups, User: d.u.Username, Reason: "rules", Status: StatusPlanned,
			Modified: map[string]usersync.FieldChange{"memberOf": {To: r.groupNames(sortedKeys(d.groups))}}})
	}
}

func (r *userRun) skuNames(ids []string) string {
	var out []string
	for _, id := range ids {
		if s := findSKU(r.c.Entitlements, id); s != nil {
			out = append(out, s.PartNumber)
		} else {
			out = append(out, id)
		}
	}
	return strings.Join(out, ", ")
}

func (r *userRun) groupNames(ids []string) string {
	var out []string
	for _, id := range ids {
		name := id
		if r.c.Entitlements != nil {
			for _, g := range r.c.Entitlements.Groups {
				if g.ID == id {
					name = g.Name
				}
			}
		}
		out = append(out, name)
	}
	return strings.Join(out, ", ")
}

// entitle moves licenses (one assignLicense with adds and removes) and
// queues group changes (written together at the end of the run). Only the
// licenses and groups this provisioner gave are removed.
func (r *userRun) entitle(d *desired, st *usersync.Provisioned) error {
	held := map[string]bool{}
	for _, l := range st.Licenses {
		held[l] = true
	}
	var add []msgraph.LicenseChange
	var remove []string
	for _, id := range sortedKeys(d.licenses) {
		if !held[id] {
			add = append(add, msgraph.LicenseChange{SKUID: id, DisabledPlans: d.licenses[id].DisabledPlans})
		}
	}
	for _, id := range st.Licenses {
		if _, ok := d.licenses[id]; !ok {
			remove = append(remove, id)
		}
	}
	u := d.u
	if len(add) > 0 || len(remove) > 0 {
		var addIDs []string
		for _, a := range add {
			addIDs = append(addIDs, a.SKUID)
		}
		mod := map[string]usersync.FieldChange{"assignedLicenses": {From: r.skuNames(st.Licenses), To: r.skuNames(sortedKeys(d.licenses))}}
		reason := "rules give " + orNone(r.skuNames(sortedKeys(d.licenses)))
		if r.o.DryRun {
			r.record(u.ID, u.Username, UserAction{Kind: UserLicenses, User: u.Username, Reason: reason, Status: StatusPlanned, Modified: mod})
		} else if short := r.seatsShort(addIDs); short != "" && !r.holdsAlready(st, addIDs) {
			r.fail(u.ID, u.Username, UserLicenses, reason, short, "noFreeSeat", mod)
		} else if short != "" {
			// Entra has them already (a run stopped after assignLicense,
			// before it saved): record, write nothing, take no seat.
			next := *st
			next.Licenses = sortedKeys(d.licenses)
			if err := r.dir.SaveProvisioned(r.ctx, &next); err != nil {
				return err
			}
			*st = next
		} else {
			// Queued: sent twenty to a $batch (flushLicenses); the seats
			// are taken now, and given back if Graph refuses.
			if r.free != nil {
				for _, id := range addIDs {
					r.free[id]--
				}
				for _, id := range remove {
					r.free[id]++
				}
			}
			r.licenses = append(r.licenses, &licenseWork{st: st, set: msgraph.LicenseSet{Add: add, Remove: remove}, want: sortedKeys(d.licenses), addIDs: addIDs, reason: reason, mod: mod})
			if len(r.licenses) >= licenseChunk {
				if err := r.flushLicenses(); err != nil {
					return err
				}
			}
		}
	}
	inState := map[string]bool{}
	for _, g := range st.Groups {
		inState[g] = true
		if !d.groups[g] {
			r.rmFrom[g] = append(r.rmFrom[g], u.ID)
		}
	}
	for _, g := range sortedKeys(d.groups) {
		if !inState[g] {
			r.addTo[g] = append(r.addTo[g], u.ID)
		}
	}
	return nil
}

// licenseWork is a queued license change of one user.
type licenseWork struct {
	st     *usersync.Provisioned
	set    msgraph.LicenseSet
	want   []string
	addIDs []string
	reason string
	mod    map[string]usersync.FieldChange
}

// licenseChunk is how many users' license changes are sent before what
// was done is saved (ten $batch requests).
var licenseChunk = 200 // a variable for tests

// flushLicenses sends the queued license changes and saves, in one
// transaction, what each user holds after.
func (r *userRun) flushLicenses() error {
	if len(r.licenses) == 0 {
		return nil
	}
	queue := r.licenses
	r.licenses = nil
	changes := make(map[string]msgraph.LicenseSet, len(queue))
	for _, w := range queue {
		changes[w.st.RemoteID] = w.set
	}
	failed, err := r.client.AssignLicenses(r.ctx, changes)
	if err != nil {
		return err
	}
	var saved []*usersync.Provisioned
	for _, w := range queue {
		if e, bad := failed[w.st.RemoteID]; bad {
			if r.free != nil {
				for _, id := range w.addIDs {
					r.free[id]++
				}
			}
			if err := r.failed(w.st, UserLicenses, w.reason, e); err != nil {
				return err
			}
			continue
		}
		next := *w.st
		next.Licenses = w.want
		saved = append(saved, &next)
	}
	if err := r.dir.SaveProvisioned(r.ctx, saved...); err != nil {
		return err
	}
	i := 0
	for _, w := range queue {
		if _, bad := failed[w.st.RemoteID]; bad {
			continue
		}
		*w.st = *saved[i]
		i++
		r.record(w.st.UserID, w.st.Username, UserAction{Kind: UserLicenses, User: w.st.Username, Reason: w.reason, Status: StatusDone, Modified: w.mod})
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no licenses"
	}
	return s
}

// seatsShort says which SKU has no free seat for one more user ("" when
// all have), reading the tenant's seats once a run.
func (r *userRun) seatsShort(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	if r.free == nil {
		skus, err := r.client.SubscribedSKUs(r.ctx)
		if err != nil {
			return "reading the tenant's free seats failed: " + usersync.ErrorMessage(err)
		}
		r.free = map[string]int{}
		for _, s := range skus {
			r.free[s.ID] = s.Free()
		}
	}
	for _, id := range ids {
		if r.free[id] <= 0 {
			return fmt.Sprintf("license %s has no free seat left: not assigned (buy seats or change the rules)", r.skuNames([]string{id}))
		}
	}
	return ""
}

// holdsAlready reads whether the Entra user holds every SKU of ids: only
// asked when seats look short, since a seat it holds is no new seat.
func (r *userRun) holdsAlready(st *usersync.Provisioned, ids []string) bool {
	u, err := r.client.FindUser(r.ctx, st.RemoteID, []string{"assignedLicenses"})
	if err != nil {
		return false
	}
	held := map[string]bool{}
	for _, l := range u.Licenses() {
		held[l] = true
	}
	for _, id := range ids {
		if !held[id] {
			return false
		}
	}
	return true
}

// writeGroups sends the queued group changes, twenty members a request.
func (r *userRun) writeGroups() error {
	for _, g := range sortedKeys(r.addTo) {
		if err := r.groupChange(g, r.addTo[g], true); err != nil {
			return err
		}
	}
	for _, g := range sortedKeys(r.rmFrom) {
		if err := r.groupChange(g, r.rmFrom[g], false); err != nil {
			return err
		}
	}
	return nil
}

func (r *userRun) groupChange(group string, users []int64, add bool) error {
	kind, verb := UserGroups, "added to"
	if !add {
		verb = "removed from"
	}
	name := r.groupNames([]string{group})
	ids := make([]string, 0, len(users))
	byRemote := map[string]int64{}
	for _, u := range users {
		st := r.state[u]
		ids = append(ids, st.RemoteID)
		byRemote[st.RemoteID] = u
	}
	mod := func(u int64) map[string]usersync.FieldChange {
		if add {
			return map[string]usersync.FieldChange{"memberOf": {To: name}}
		}
		return map[string]usersync.FieldChange{"memberOf": {From: name}}
	}
	reason := "rules: " + verb + " group " + name
	if r.o.DryRun {
		for _, u := range users {
			r.record(u, r.state[u].Username, UserAction{Kind: kind, User: r.state[u].Username, Reason: reason, Status: StatusPlanned, Modified: mod(u)})
		}
		return nil
	}
	var failed msgraph.ItemErrors
	var err error
	if add {
		failed, err = r.client.AddMembers(r.ctx, group, ids)
	} else {
		failed, err = r.client.RemoveMembers(r.ctx, group, ids)
	}
	if err != nil && failed == nil {
		return err
	}
	for _, id := range ids {
		u := byRemote[id]
		st := r.state[u]
		if e, bad := failed[id]; bad || err != nil {
			if e == nil {
				e = err
			}
			r.fail(u, st.Username, kind, reason, usersync.ErrorMessage(e), graphCode(e), mod(u))
			continue
		}
		next := *st
		if add {
			next.Groups = append(append([]string(nil), st.Groups...), group)
		} else {
			next.Groups = nil
			for _, g := range st.Groups {
				if g != group {
					next.Groups = append(next.Groups, g)
				}
			}
		}
		sort.Strings(next.Groups)
		if err := r.dir.SaveProvisioned(r.ctx, &next); err != nil {
			return err
		}
		*st = next
		r.record(u, st.Username, UserAction{Kind: kind, User: st.Username, Reason: reason, Status: StatusDone, Modified: mod(u)})
	}
	return err
}

// deprovision applies the policy to a user that left scope.
func (r *userRun) deprovision(st *usersync.Provisioned) error {
	kind := r.c.Deprovision
	reason := "left scope (holds no scope role, or left the directory): the policy is " + kind
	if ok, err := r.gate(kind, st.UserID, st.Username, reason, kind+" "+st.Username, &desired{props: map[string]string{"remoteId": st.RemoteID}}); err != nil || !ok {
		return err
	}
	mod := map[string]usersync.FieldChange{"accountEnabled": {From: "true", To: "false"}}
	if kind == usersync.DeprovisionDelete {
		mod = map[string]usersync.FieldChange{"user": {From: st.RemoteID}}
	}
	if r.o.DryRun {
		r.record(st.UserID, st.Username, UserAction{Kind: kind, User: st.Username, Reason: reason, Status: StatusPlanned, Modified: mod})
		return nil
	}
	var err error
	next := *st
	if kind == usersync.DeprovisionDelete {
		err = r.client.DeleteUser(r.ctx, st.RemoteID)
		next.State, next.Licenses, next.Groups = usersync.StateDeleted, nil, nil
	} else {
		off := false
		err = r.client.UpdateUser(r.ctx, st.RemoteID, nil, &off)
		next.State = usersync.StateSuspended
	}
	if err != nil {
		return r.failed(st, kind, reason, err)
	}
	next.Failures, next.LastError, next.NextAttempt = 0, "", time.Time{}
	if err := r.dir.SaveProvisioned(r.ctx, &next); err != nil {
		return err
	}
	*st = next
	r.record(st.UserID, st.Username, UserAction{Kind: kind, User: st.Username, Reason: reason, Status: StatusDone, Modified: mod})
	return nil
}

// failed records a Graph write that failed for one user: counted, backed
// off, quarantined after maxFailures. An error that is no refusal of this
// user (Graph unreachable, the credentials) ends the run instead.
func (r *userRun) failed(st *usersync.Provisioned, kind, reason string, err error) error {
	var ae *msgraph.APIError
	if !errors.As(err, &ae) {
		return err
	}
	next := *st
	next.Failures++
	next.LastError = usersync.ErrorMessage(err)
	next.NextAttempt = r.o.Now().Add(min(time.Minute<<min(next.Failures-1, 6), time.Hour))
	next.Quarantined = next.Failures >= max(r.p.Config.MaxFailures, 1)
	if next.RemoteID == "" || next.State == "" {
		next.State = usersync.StateDeleted // never created: a create (or adopt) is tried again
	}
	if err := r.dir.SaveProvisioned(r.ctx, &next); err != nil {
		return err
	}
	r.state[st.UserID] = &next
	r.fail(st.UserID, st.Username, kind, reason, next.LastError, ae.Code, nil)
	return nil
}

func graphCode(err error) string {
	var ae *msgraph.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func (r *userRun) fail(userID int64, username, kind, reason, msg, code string, mod map[string]usersync.FieldChange) {
	r.r.Failed++
	r.record(userID, username, UserAction{Kind: kind, User: username, Reason: reason, Status: StatusFailed, Error: msg, Code: code, Modified: mod})
}

// record counts an action, tells the caller, and logs it.
func (r *userRun) record(userID int64, username string, a UserAction) {
	if id := r.consuming[userID]; id != 0 && a.Status == StatusDone && !r.o.DryRun {
		// The approved action was sent: its approval is used, never again.
		delete(r.consuming, userID)
		if _, err := r.dir.DecideApproval(usersync.WithActor(r.ctx, "usersync: sent"), id, usersync.ApprovalUsed); err != nil && usersync.ErrorCode(err) != usersync.ECONFLICT {
			a.Error = "the action was sent, but its approval could not be marked used: " + usersync.ErrorMessage(err)
		}
	}
	r.r.Counts[a.Kind+":"+a.Status]++
	if r.o.KeepActions {
		r.r.Actions = append(r.r.Actions, a)
	}
	if r.o.OnAction != nil {
		r.o.OnAction(a)
	}
	if r.o.DryRun {
		return
	}
	r.log = append(r.log, usersync.LogEntry{Provisioner: r.p.Name, Run: r.r.Run, UserID: userID, Username: username, Action: a.Kind, Reason: a.Reason,
		Status: a.Status, ErrorCode: a.Code, Error: a.Error, Modified: a.Modified, At: r.o.Now()})
	if len(r.log) >= 200 {
		r.flushLog()
	}
}

func (r *userRun) flushLog() error {
	if len(r.log) == 0 {
		return nil
	}
	err := r.dir.AppendLog(context.WithoutCancel(r.ctx), r.log)
	r.log = r.log[:0]
	return err
}

// RefreshEntitlements reads the tenant's licenses and groups into the
// provisioner, so that rules can name them.
func RefreshEntitlements(ctx context.Context, client *msgraph.Client) (*usersync.Entitlements, error) {
	skus, err := client.SubscribedSKUs(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := client.AllGroups(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(skus, func(i, j int) bool { return skus[i].PartNumber < skus[j].PartNumber })
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	return &usersync.Entitlements{RefreshedAt: time.Now().UTC(), SKUs: skus, Groups: groups}, nil
}

// CheckRule answers, for each named user, whether rule number i of p
// holds (Will be mapped) and which part of its condition, or the scope,
// decided it: the seed's "Check rule with users".
func CheckRule(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner, i int, usernames []string) ([]rules.Verdict, error) {
	rule := p.Config.Users.Rules[i]
	cond, err := rules.Parse(rule.Condition)
	if err != nil {
		return nil, err
	}
	found, err := dir.UsersByUsername(ctx, usernames)
	if err != nil {
		return nil, err
	}
	var list []*usersync.User
	var missing []string
	for _, n := range usernames {
		u := found[usersync.UsernameKey(n)]
		if u == nil {
			missing = append(missing, n)
			continue
		}
		list = append(list, u)
	}
	if len(missing) > 0 {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "no user named %s", strings.Join(missing, ", "))
	}
	scope, err := ScopeCondition(ctx, dir, p.Config.Users.ScopeRoles)
	if err != nil {
		return nil, err
	}
	ids := make(usersync.IDIn, len(list))
	for i, u := range list {
		ids[i] = u.ID
	}
	in, err := dir.UserIDs(ctx, usersync.All{ids, scope})
	if err != nil {
		return nil, err
	}
	inScope := map[int64]bool{}
	for _, id := range in {
		inScope[id] = true
	}
	ms, err := dir.FindMappings(ctx)
	if err != nil {
		return nil, err
	}
	v, err := cond.Check(ctx, dir, list, ms)
	if err != nil {
		return nil, err
	}
	for i, u := range list {
		if !inScope[u.ID] {
			v[i].Because = fmt.Sprintf("not in scope: holds no role %s (by hand or through a mapping); the condition alone: %s", strings.Join(p.Config.Users.ScopeRoles, ", "), v[i].Because)
			v[i].Holds = false
		}
	}
	return v, nil
}

// asResult is a user run as serve reports runs: counts by action and
// status, a failure per failed user.
func (r *UserResult) asResult() *Result {
	if r == nil {
		return nil
	}
	out := &Result{Provisioner: r.Provisioner, DryRun: r.DryRun, Groups: r.InScope, Counts: map[ActionKind]int{}}
	for k, n := range r.Counts {
		out.Counts[ActionKind(k)] = n
	}
	for _, a := range r.Actions {
		if a.Status == StatusFailed {
			out.Failures = append(out.Failures, Failure{Group: a.User, Error: a.Error})
		}
	}
	return out
}

// HoldDeprovision names the hold of a mass deprovision.
const HoldDeprovision = "deprovision"

// DecideHold decides what a user provisioner's mass-deprovision guard
// holds: allow runs it now with the guard lifted for this run (under the
// provisioner's lease); reject keeps every held user as it is in Entra —
// each is quarantined with the reason (provisioners retry resumes one) —
// and forgets the hold.
func DecideHold(ctx context.Context, dir usersync.Directory, client *msgraph.Client, p *usersync.Provisioner, allow bool) (*UserResult, error) {
	holds, err := dir.Holds(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var h *usersync.Hold
	for i := range holds {
		if holds[i].What == HoldDeprovision {
			h = &holds[i]
		}
	}
	if h == nil {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "provisioner %s holds nothing back", p.Name)
	}
	if allow {
		x, err := NewUsers(dir, client, p)
		if err != nil {
			return nil, err
		}
		return x.Run(ctx, UserOptions{Force: true, KeepActions: true})
	}
	err = provision.Hold(ctx, dir, p.Name, provision.DefaultWait, func(ctx context.Context) error {
		state, err := dir.ProvisionedUsers(ctx, p.Name)
		if err != nil {
			return err
		}
		names := map[string]bool{}
		for _, u := range h.Users {
			names[strings.ToLower(u)] = true
		}
		var kept []*usersync.Provisioned
		for _, st := range state {
			if names[strings.ToLower(st.Username)] {
				st.Quarantined, st.LastError = true, "its deprovision was held and rejected by "+usersync.ActorFrom(ctx)+": kept as it is in Entra (provisioners retry resumes it)"
				kept = append(kept, st)
			}
		}
		if err := dir.SaveProvisioned(ctx, kept...); err != nil {
			return err
		}
		return dir.ClearHold(ctx, p.Name, HoldDeprovision)
	})
	return nil, err
}

// RetryUser clears a user's failures or quarantine and provisions that
// user now; a user gone from the directory is found by the name it was
// provisioned under (its deprovision may be what failed).
func RetryUser(ctx context.Context, dir usersync.Directory, client *msgraph.Client, p *usersync.Provisioner, username string) (res *UserResult, err error) {
	err = provision.Hold(ctx, dir, p.Name, provision.DefaultWait, func(ctx context.Context) error {
		res, err = retryUser(ctx, dir, client, p, username)
		return err
	})
	return res, err
}

func retryUser(ctx context.Context, dir usersync.Directory, client *msgraph.Client, p *usersync.Provisioner, username string) (*UserResult, error) {
	state, err := dir.ProvisionedUsers(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var id int64
	if u, err := dir.FindUserByUsername(ctx, username); err == nil {
		id = u.ID
	} else {
		for _, st := range state {
			if strings.EqualFold(st.Username, username) {
				id = st.UserID
			}
		}
		if id == 0 {
			return nil, err
		}
	}
	if st := state[id]; st != nil {
		st.Failures, st.LastError, st.NextAttempt, st.Quarantined = 0, "", time.Time{}, false
		if err := dir.SaveProvisioned(ctx, st); err != nil {
			return nil, err
		}
	}
	x, err := NewUsers(dir, client, p)
	if err != nil {
		return nil, err
	}
	return x.Run(ctx, UserOptions{Only: map[int64]bool{id: true}, KeepActions: true})
}

// runName names a run in the provisioning log: when it started, and a few
// random characters, so that two runs in one millisecond stay apart.
func runName(at time.Time) string {
	return at.UTC().Format("20060102T150405.000Z") + "-" + strings.ToLower(usersync.NewSecret("")[:4])
}
