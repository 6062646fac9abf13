package adminui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/target/entra"
)

// office365 seeds the console's directory with the seed 004 flow: users
// in group "Office 365", the role and mapping, and a user provisioner
// (creates need approval) against an emulated tenant, with the seed's rule
// for Josh Ames; one run leaves three creates pending.
func office365(t *testing.T, d usersync.Directory) *graphemu.Tenant {
	t.Helper()
	ctx := usersync.WithActor(context.Background(), "test")
	tenant := graphemu.NewTenant("contoso.com")
	tenant.SetDomains("contoso.com")
	tenant.AddSKU(graphemu.SKU{ID: "sku-yam", PartNumber: "YAMMER_ENTERPRISE", Enabled: 10})
	tenant.AddSKU(graphemu.SKU{ID: "sku-pro", PartNumber: "OFFICESUBSCRIPTION", Enabled: 10})
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app", ClientSecret: "s3cret-value-1234"})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	g := &usersync.Group{Name: "Office 365"}
	if err := d.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, n := range [][2]string{{"Josh", "Ames"}, {"Ann", "Lee"}, {"Bo", "Chen"}} {
		name := strings.ToLower(n[0]) + "@contoso.com"
		u := &usersync.User{Username: name, Email: name, FirstName: n[0], LastName: n[1], Enabled: true, Attributes: map[string]string{"usageLocation": "US"}}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if _, err := d.AddMembers(ctx, g.ID, ids); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateRole(ctx, &usersync.Role{Name: "Office 365"}); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateMapping(ctx, &usersync.Mapping{Name: "Office 365 Mapping", Condition: `memberOf co "Office 365"`, Roles: []string{"Office 365"}}); err != nil {
		t.Fatal(err)
	}
	p := &usersync.Provisioner{Name: "o365u", Kind: usersync.ProvisionerUsers, Config: usersync.ProvisionerConfig{TenantID: "contoso.com", ClientID: "app",
		Domain: "contoso.com", AuthorityURL: srv.URL, GraphURL: srv.URL, Users: &usersync.UserProvisioning{ScopeRoles: []string{"Office 365"}, Approve: []string{"create"}}}}
	c, err := msgraph.New(msgraph.Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: "contoso.com", ClientID: "app", ClientSecret: "s3cret-value-1234", WritesPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.Users.Entitlements, err = entra.RefreshEntitlements(ctx, c); err != nil {
		t.Fatal(err)
	}
	p.Config.Users.Rules = []usersync.UserRule{{Name: "Josh Ames licenses", Condition: `displayName eq "Josh Ames"`, Licenses: []usersync.License{{SKU: "YAMMER_ENTERPRISE"}, {SKU: "OFFICESUBSCRIPTION"}}}}
	if err := d.CreateProvisioner(ctx, p, "s3cret-value-1234"); err != nil {
		t.Fatal(err)
	}
	x, err := entra.NewUsers(d, c, p)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := x.Run(ctx, entra.UserOptions{}); err != nil || r.Pending != 3 {
		t.Fatalf("seed run: %v %+v", err, r)
	}
	return tenant
}

// The console's pages of user provisioning over HTTP: approvals (approve
// sends at once, deciding twice is refused), the provisioning log, a
// user's roles and log, Check rule with users, a mapping edit whose bad
// condition is shown next to its field and changes nothing, and reapply
// with a preview.
func TestUserProvisioningPages(t *testing.T) {
	d, srv := console(t)
	tenant := office365(t, d)
	c := browser(t)
	_, csrf := signIn(t, c, srv.URL, "root@example.com", password)
	pending, _ := d.FindApprovals(context.Background(), "o365u", usersync.ApprovalPending)
	byUser := map[string]string{}
	for _, a := range pending {
		byUser[a.Username] = strconvI(a.ID)
	}
	code, page, _ := get(t, c, srv.URL+"/admin/approvals")
	if code != 200 || !strings.Contains(page, "josh@contoso.com") || !strings.Contains(page, "entered scope") {
		t.Fatalf("approvals page: %d %s", code, page)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/approvals", url.Values{"csrf": {"forged"}, "decision": {"approve"}, "id": {byUser["josh@contoso.com"]}})
	if code != http.StatusForbidden {
		t.Fatalf("a forged form: %d", code)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/approvals", url.Values{"csrf": {csrf}, "decision": {"approve"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "Tick the actions to approve first; nothing was decided.") {
		t.Fatalf("approve nothing: %d", code)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/approvals", url.Values{"csrf": {csrf}, "decision": {"approve"}, "id": {byUser["josh@contoso.com"], byUser["ann@contoso.com"]}})
	if code != 200 || !strings.Contains(page, "2 actions approved and sent (o365u: 3 done, 0 failed)") {
		t.Fatalf("approve two: %d %s", code, page)
	}
	if u, ok := tenant.UserByUPN("josh@contoso.com"); !ok || len(u.Licenses) != 2 {
		t.Fatalf("josh in the tenant: %+v", u)
	}
	if !strings.Contains(page, "admin:root@example.com") {
		t.Fatal("the decided list does not name the administrator")
	}
	code, page, _ = post(t, c, srv.URL+"/admin/approvals", url.Values{"csrf": {csrf}, "decision": {"reject"}, "id": {byUser["bo@contoso.com"], byUser["josh@contoso.com"]}})
	if code != http.StatusConflict || !strings.Contains(page, "is used already") { // approved, and sent
		t.Fatalf("reject with one decided already: %d", code)
	}
	if a, _ := d.FindApproval(context.Background(), mustID(byUser["bo@contoso.com"])); a.Status != usersync.ApprovalPending {
		t.Fatalf("bo's approval changed although the decision was refused: %s", a.Status)
	}
	// The provisioning log, by user and status.
	code, page, _ = get(t, c, srv.URL+"/admin/provisioning?provisioner=o365u&user=josh@contoso.com")
	if code != 200 || !strings.Contains(page, "<code>displayName</code>: — → Josh Ames") || !strings.Contains(page, "pending-approval") {
		t.Fatalf("log: %d %s", code, page)
	}
	_, page, _ = get(t, c, srv.URL+"/admin/provisioning?provisioner=o365u&status=done")
	if strings.Contains(page, "pending-approval</td>") || !strings.Contains(page, "licenses") {
		t.Fatalf("log by status: %s", page)
	}
	// A user's page: roles and how held, and its log.
	_, page, _ = get(t, c, srv.URL+"/admin/users/josh@contoso.com")
	if !strings.Contains(page, "Office 365 <small>(mapping Office 365 Mapping)</small>") || !strings.Contains(page, "YAMMER_ENTERPRISE") {
		t.Fatalf("user page: %s", page)
	}
	// Give a role by hand, and take it; an unknown role is said next to the field.
	code, page, _ = post(t, c, srv.URL+"/admin/users/bo@contoso.com/roles", url.Values{"csrf": {csrf}, "role": {"Nobody"}})
	if code != http.StatusNotFound || !strings.Contains(page, `id="role-error"`) || !strings.Contains(page, `no role named &#34;Nobody&#34;`) {
		t.Fatalf("an unknown role: %d %s", code, page)
	}
	if err := d.CreateRole(context.Background(), &usersync.Role{Name: "Pilot"}); err != nil {
		t.Fatal(err)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/users/bo@contoso.com/roles", url.Values{"csrf": {csrf}, "role": {"pilot"}})
	if code != 200 || !strings.Contains(page, "Pilot <small>(hand)</small>") {
		t.Fatalf("give a role: %d %s", code, page)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/users/bo@contoso.com/roles", url.Values{"csrf": {csrf}, "remove": {"Pilot"}})
	if code != 200 || strings.Contains(page, "Pilot <small>") {
		t.Fatalf("take a role: %d %s", code, page)
	}
	// Check rule with users.
	_, page, _ = get(t, c, srv.URL+"/admin/mappings?"+url.Values{"provisioner": {"o365u"}, "rule": {"Josh Ames licenses"}, "users": {"josh@contoso.com, ann@contoso.com"}}.Encode())
	if !strings.Contains(page, "<td>josh@contoso.com</td><td>Will be mapped</td><td>displayName eq &#34;Josh Ames&#34; holds</td>") ||
		!strings.Contains(page, "<td>ann@contoso.com</td><td>Will not be mapped</td>") {
		t.Fatalf("check rule: %s", page)
	}
	// A token for a user that does not exist: the reason next to the form, nothing made.
	code, page, _ = post(t, c, srv.URL+"/admin/tokens", url.Values{"csrf": {csrf}, "user": {"nobody@contoso.com"}, "name": {"ci"}})
	if code != http.StatusNotFound || !strings.Contains(page, `<p class="field-error" id="create-error" role="alert">`) || !strings.Contains(page, `value="nobody@contoso.com"`) {
		t.Fatalf("a token for nobody: %d %s", code, page)
	}
	if list, _ := d.FindTokens(context.Background(), 0); len(list) != 0 {
		t.Fatalf("a refused token was made: %+v", list)
	}
	// Typing names suggests users (the last name typed, the others kept).
	if _, page, _ = get(t, c, srv.URL+"/admin/user-suggestions?users="+url.QueryEscape("josh@contoso.com, an")); page != "<option value=\"josh@contoso.com, ann@contoso.com\">Ann Lee</option>\n" {
		t.Fatalf("suggestions: %q", page)
	}
	_, page, _ = get(t, c, srv.URL+"/admin/mappings?"+url.Values{"provisioner": {"o365u"}, "rule": {"Josh Ames licenses"}, "users": {"nobody@x"}}.Encode())
	if !strings.Contains(page, "no user named nobody@x") {
		t.Fatalf("check an unknown user: %s", page)
	}
	// A mapping edit: a bad condition is shown next to the field; nothing changes.
	ms, _ := d.FindMappings(context.Background())
	code, page, _ = post(t, c, srv.URL+"/admin/mappings/Office%20365%20Mapping", url.Values{"csrf": {csrf}, "version": {strconvI(ms[0].Version)},
		"condition": {`memberOf co`}, "roles": {"Office 365"}, "position": {"1"}})
	if code != http.StatusBadRequest || !strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, "at character 12") {
		t.Fatalf("bad condition: %d %s", code, page)
	}
	if after, _ := d.FindMappings(context.Background()); after[0].Condition != ms[0].Condition || after[0].Version != ms[0].Version {
		t.Fatalf("a refused edit changed the mapping: %+v", after[0])
	}
	code, page, _ = post(t, c, srv.URL+"/admin/mappings/Office%20365%20Mapping", url.Values{"csrf": {csrf}, "version": {strconvI(ms[0].Version)},
		"condition": {`memberOf eq "Office 365" and not (firstName eq "Ann")`}, "roles": {"Office 365"}, "position": {"1"}})
	if code != 200 || !strings.Contains(page, "Mapping Office 365 Mapping saved") {
		t.Fatalf("save: %d %s", code, page)
	}
	// Create a role and a mapping; a bad condition is said next to the
	// form, with what was typed, and nothing is made.
	code, page, _ = post(t, c, srv.URL+"/admin/roles", url.Values{"csrf": {csrf}, "name": {"office 365"}})
	if code != http.StatusConflict || !strings.Contains(page, `id="role-error"`) || !strings.Contains(page, `value="office 365"`) {
		t.Fatalf("a taken role name: %d %s", code, page)
	}
	if code, page, _ = post(t, c, srv.URL+"/admin/roles", url.Values{"csrf": {csrf}, "name": {"Sales"}}); code != 200 || !strings.Contains(page, "Role Sales created.") {
		t.Fatalf("create role: %d", code)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/mappings", url.Values{"csrf": {csrf}, "name": {"Sales Mapping"}, "condition": {`attributes.dept eq`}, "roles": {"Sales"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, `id="mapping-error"`) || !strings.Contains(page, "expected a space and a value") || !strings.Contains(page, `value="attributes.dept eq"`) {
		t.Fatalf("a bad condition: %d %s", code, page)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/mappings", url.Values{"csrf": {csrf}, "name": {"Sales Mapping"}, "condition": {`lastName eq "Chen"`}, "roles": {"Sales"}})
	if code != 200 || !strings.Contains(page, "Mapping Sales Mapping created: its condition holds for 1 users.") {
		t.Fatalf("create mapping: %d %s", code, page)
	}
	if ms, _ := d.FindMappings(context.Background()); len(ms) != 2 || ms[1].Name != "Sales Mapping" {
		t.Fatalf("mappings: %+v", ms)
	}
	// Rules: one naming a license the tenant lacks is refused next to its
	// form, with what was typed; a good one is added, then deleted.
	code, page, _ = post(t, c, srv.URL+"/admin/provisioners/o365u/rules", url.Values{"csrf": {csrf}, "rule": {"E5 for Bo"}, "condition": {`firstName eq "Bo"`}, "licenses": {"ENTERPRISEPREMIUM"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, `id="rule-error-o365u"`) || !strings.Contains(page, `the tenant has no license &#34;ENTERPRISEPREMIUM&#34;`) || !strings.Contains(page, `value="E5 for Bo"`) {
		t.Fatalf("an unknown license: %d %s", code, page)
	}
	if p, _ := d.FindProvisioner(context.Background(), "o365u"); len(p.Config.Users.Rules) != 1 {
		t.Fatalf("a refused rule was stored: %+v", p.Config.Users.Rules)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/provisioners/o365u/rules", url.Values{"csrf": {csrf}, "rule": {"Yammer for Bo"}, "condition": {`firstName eq "Bo"`}, "licenses": {"YAMMER_ENTERPRISE"}})
	if p, _ := d.FindProvisioner(context.Background(), "o365u"); code != 200 || len(p.Config.Users.Rules) != 2 || p.Config.Users.Rules[1].Licenses[0].SKU != "YAMMER_ENTERPRISE" {
		t.Fatalf("add a rule: %d %+v", code, p.Config.Users.Rules)
	}
	code, _, _ = post(t, c, srv.URL+"/admin/provisioners/o365u/rules", url.Values{"csrf": {csrf}, "delete": {"Yammer for Bo"}})
	if p, _ := d.FindProvisioner(context.Background(), "o365u"); code != 200 || len(p.Config.Users.Rules) != 1 {
		t.Fatalf("delete a rule: %d %+v", code, p.Config.Users.Rules)
	}
	// Reapply: the preview writes nothing; then it suspends Ann.
	code, page, _ = post(t, c, srv.URL+"/admin/reapply", url.Values{"csrf": {csrf}, "apply": {"no"}})
	if code != 200 || !strings.Contains(page, "Preview: nothing was written.") || !strings.Contains(page, "<td>ann@contoso.com</td><td>suspend</td><td>planned") {
		t.Fatalf("preview: %d %s", code, page)
	}
	if u, _ := tenant.UserByUPN("ann@contoso.com"); !u.AccountEnabled {
		t.Fatal("the preview suspended Ann")
	}
	_, page, _ = post(t, c, srv.URL+"/admin/reapply", url.Values{"csrf": {csrf}, "apply": {"yes"}})
	if u, _ := tenant.UserByUPN("ann@contoso.com"); u.AccountEnabled || !strings.Contains(page, "Reapplied.") {
		t.Fatalf("reapply did not suspend Ann: %s", page)
	}
	// Provisioners: users by state, the backlog and its lag, a reconcile
	// planned then applied.
	code, page, _ = get(t, c, srv.URL+"/admin/provisioners")
	if code != 200 || !strings.Contains(page, "<dd>1 active, 1 suspended, 0 deleted</dd>") || !strings.Contains(page, "1 pending") {
		t.Fatalf("provisioners page: %d %s", code, page)
	}
	bo := "Bo-Renamed"
	boUser, _ := d.FindUserByUsername(context.Background(), "bo@contoso.com")
	if _, err := d.UpdateUser(context.Background(), boUser.ID, usersync.UserUpdate{FirstName: &bo}, boUser.Version); err != nil {
		t.Fatal(err)
	}
	josh, _ := d.FindUserByUsername(context.Background(), "josh@contoso.com")
	title := "Engineer"
	if _, err := d.UpdateUser(context.Background(), josh.ID, usersync.UserUpdate{Attributes: map[string]*string{"jobTitle": &title}}, josh.Version); err != nil {
		t.Fatal(err)
	}
	_, page, _ = get(t, c, srv.URL+"/admin/provisioners")
	if !strings.Contains(page, "the oldest has waited") {
		t.Fatalf("no lag with a backlog: %s", page)
	}
	code, page, _ = post(t, c, srv.URL+"/admin/provisioners/o365u/plan", url.Values{"csrf": {csrf}})
	if code != 200 || !strings.Contains(page, "The plan: nothing was written yet.") || !strings.Contains(page, "jobTitle: — → Engineer") {
		t.Fatalf("plan: %d %s", code, page)
	}
	if u, _ := tenant.UserByUPN("josh@contoso.com"); u.JobTitle != "" {
		t.Fatal("the plan wrote")
	}
	code, page, _ = post(t, c, srv.URL+"/admin/provisioners/o365u/reconcile", url.Values{"csrf": {csrf}})
	if u, _ := tenant.UserByUPN("josh@contoso.com"); code != 200 || u.JobTitle != "Engineer" || !strings.Contains(page, "Reconciled") {
		t.Fatalf("apply: %d %+v %s", code, u, page)
	}
	if _, page, _ = get(t, c, srv.URL+"/admin/provisioners"); !strings.Contains(page, "<dd>none</dd>") {
		t.Fatalf("lag after the run: %s", page)
	}
	// Links: each provisioned user and its Entra user.
	joshEntra, _ := tenant.UserByUPN("josh@contoso.com")
	if code, page, _ = get(t, c, srv.URL+"/admin/provisioners/o365u/links"); code != 200 || !strings.Contains(page, "josh@contoso.com") || !strings.Contains(page, joshEntra.ID) {
		t.Fatalf("links page: %d %s", code, page)
	}
	if code, _, _ = get(t, c, srv.URL+"/admin/provisioners/nope/links"); code != 404 {
		t.Fatalf("links of an unknown provisioner: %d", code)
	}
	// Every write is in the change log with its actor.
	cs, _ := d.ChangesAfter(context.Background(), 0, 10000)
	var decided, mapping int
	for _, ch := range cs {
		if ch.Actor == "admin:root@example.com" && ch.Kind == usersync.ApprovalDecided {
			decided++
		}
		if ch.Actor == "admin:root@example.com" && ch.Kind == usersync.MappingUpdated {
			mapping++
		}
	}
	if decided != 2 || mapping != 1 {
		t.Fatalf("change log: %d decisions, %d mapping edits by the administrator", decided, mapping)
	}
	// Issue "Writes into a tenant …", item 11: a group under a folder that
	// carries the default o365Sync marker is pushed by no group provisioner
	// here; the user provisioner (whose settings name the same marker) was
	// said to push it.
	v := "true"
	if _, err := d.CreateFolder(context.Background(), "apps"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetFolderAttributes(context.Background(), "apps", map[string]*string{usersync.DefaultSyncAttribute: &v}); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateGroup(context.Background(), &usersync.Group{Name: "apps:marked"}); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := get(t, c, srv.URL+"/admin/groups/apps:marked"); strings.Contains(body, "Pushed to Entra ID by") || !strings.Contains(body, "No provisioner pushes this group") {
		t.Fatalf("a marked group with only a user provisioner: %s", body)
	}
}

// In a real browser: approve a pending action by ticking it, and check a
// rule with users.
func TestUserProvisioningInBrowser(t *testing.T) {
	d, srv := consoleWith(t, dirtest.SQLite(t), func(usersync.Directory) api.Options { return api.Options{} })
	tenant := office365(t, d)
	b := headless(t)
	dir := shots(t)
	var text string
	must := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var err error
		if text, err = chromedp.Run(b, chromedp.Text(chromedp.CSS("main"))); err != nil {
			t.Fatalf("%s: read the page: %v", what, err)
		}
	}
	must("sign in", chromedp.Navigate(srv.URL+"/admin/approvals"), chromedp.WaitVisible(chromedp.ID("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "root@example.com"), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.ID("approve-form")))
	screenshot(t, b, dir, "approvals")
	pending, _ := d.FindApprovals(context.Background(), "o365u", usersync.ApprovalPending)
	var josh int64
	for _, a := range pending {
		if a.Username == "josh@contoso.com" {
			josh = a.ID
		}
	}
	must("approve josh", chromedp.Click(chromedp.ID("approval-"+strconvI(josh))), chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if !strings.Contains(text, "1 actions approved and sent") {
		t.Fatalf("after approve: %s", text)
	}
	if u, ok := tenant.UserByUPN("josh@contoso.com"); !ok || len(u.Licenses) != 2 {
		t.Fatalf("josh in the tenant: %+v", u)
	}
	must("check rule", chromedp.Click(chromedp.CSS(`nav a[href="/admin/mappings"]`)), chromedp.WaitVisible(chromedp.ID("check-o365u-0")),
		chromedp.SendKeys(chromedp.ID("users-o365u-0"), "josh@contoso.com, b"),
		chromedp.WaitReady(chromedp.CSS(`#suggest-o365u-0 option[value="josh@contoso.com, bo@contoso.com"]`)), // typed names suggest users
		chromedp.SendKeys(chromedp.ID("users-o365u-0"), "o@contoso.com"), chromedp.Submit(chromedp.ID("users-o365u-0")),
		chromedp.WaitVisible(chromedp.ID("verdicts")))
	screenshot(t, b, dir, "check-rule")
	for _, want := range []string{"josh@contoso.com\tWill be mapped", "bo@contoso.com\tWill not be mapped"} {
		if !strings.Contains(text, want) {
			t.Fatalf("verdicts lack %q:\n%s", want, text)
		}
	}
	must("provisioning log", chromedp.Click(chromedp.CSS(`nav a[href="/admin/provisioning"]`)), chromedp.WaitVisible(chromedp.ID("find-log")))
	if !strings.Contains(text, "josh@contoso.com") || !strings.Contains(text, "licenses") {
		t.Fatalf("log page: %s", text)
	}
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func mustID(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
