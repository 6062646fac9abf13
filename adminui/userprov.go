// Console pages of user provisioning (seed 004): approvals, the
// provisioning log, and mappings and rules with "Check rule with users".

package adminui

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/target/entra"
)

// approvalsPage lists pending approvals (to approve or reject, one or
// many) and the latest decided ones, with who decided and when.
func (u *ui) approvalsPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showApprovals(w, r, s, http.StatusOK, "", "")
}

func (u *ui) showApprovals(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	pending, err := u.dir.FindApprovals(r.Context(), "", usersync.ApprovalPending)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	all, err := u.dir.FindApprovals(r.Context(), "", "")
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var decided []*usersync.Approval
	for i := len(all) - 1; i >= 0 && len(decided) < 50; i-- {
		if all[i].Status != usersync.ApprovalPending {
			decided = append(decided, all[i])
		}
	}
	u.render(w, status, "approvals", view{Title: "Approvals", Session: s, Notice: notice, Error: problem,
		Data: map[string]any{"Pending": pending, "Decided": decided}})
}

// decideApprovals approves or rejects the approvals ticked on the page;
// approved actions are sent at once.
func (u *ui) decideApprovals(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	r.ParseForm()
	var ids []int64
	for _, v := range r.PostForm["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			u.showApprovals(w, r, s, http.StatusBadRequest, "", fmt.Sprintf("%q is not an approval id; nothing was decided.", v))
			return
		}
		ids = append(ids, id)
	}
	decision := r.PostFormValue("decision")
	if decision != "approve" && decision != "reject" {
		u.showApprovals(w, r, s, http.StatusBadRequest, "", "Choose Approve or Reject; nothing was decided.")
		return
	}
	if len(ids) == 0 {
		u.showApprovals(w, r, s, http.StatusBadRequest, "", "Tick the actions to "+decision+" first; nothing was decided.")
		return
	}
	list, results, err := entra.Decide(r.Context(), u.dir, ids, decision == "approve")
	if err != nil && len(list) == 0 {
		u.showApprovals(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	notice := fmt.Sprintf("%d actions %sd.", len(list), decision)
	if decision == "approve" {
		var parts []string
		for _, res := range results {
			done, failed := 0, res.Failed
			for k, n := range res.Counts {
				if strings.HasSuffix(k, ":"+entra.StatusDone) {
					done += n
				}
			}
			parts = append(parts, fmt.Sprintf("%s: %d done, %d failed", res.Provisioner, done, failed))
		}
		notice = fmt.Sprintf("%d actions approved and sent (%s). The provisioning log has each one.", len(list), strings.Join(parts, "; "))
	}
	problem := ""
	if err != nil {
		problem = usersync.ErrorMessage(err)
	}
	u.showApprovals(w, r, s, http.StatusOK, notice, problem)
}

// provisioningPage is the provisioning log, searchable by provisioner,
// user, run and status; each entry has the properties it modified.
func (u *ui) provisioningPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	ps, err := u.dir.FindProvisioners(r.Context())
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	f := usersync.LogFilter{Provisioner: r.FormValue("provisioner"), Username: strings.TrimSpace(r.FormValue("user")), Group: strings.TrimSpace(r.FormValue("group")),
		Run: strings.TrimSpace(r.FormValue("run")), Status: r.FormValue("status"), Limit: 200}
	var entries []usersync.LogEntry
	if len(names) > 0 {
		if f.Provisioner == "" {
			f.Provisioner = names[0]
		}
		if entries, err = u.dir.FindLog(r.Context(), f); err != nil {
			u.fail(w, s, err)
			return
		}
	}
	u.render(w, http.StatusOK, "provisioning", view{Title: "Provisioning log", Session: s, Data: map[string]any{
		"Provisioners": names, "Filter": f, "Entries": entries,
		"Statuses": []string{entra.StatusDone, entra.StatusFailed, entra.StatusPending, entra.StatusHeld}}})
}

// mappingRow is a mapping with how many users its condition holds for.
type mappingRow struct {
	*usersync.Mapping
	Users int
	Error string // a field-level error of its edit form
}

// ruleSet is a user provisioner's rules, and the last check of one.
type ruleSet struct {
	Provisioner string
	Scope       []string
	Rules       []usersync.UserRule
	Checked     string // the rule checked
	Users       string // who was checked
	Verdicts    []rules.Verdict
	CheckError  string
	AddError    string // the add-rule form's problem
}

// mappingsPage lists roles, mappings in order (with an edit form each)
// and each user provisioner's rules with "Check rule with users".
func (u *ui) mappingsPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showMappings(w, r, s, http.StatusOK, "", "", nil)
}

func (u *ui) showMappings(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string, fieldErr map[string]string) {
	ctx := r.Context()
	roles, err := u.dir.FindRoles(ctx)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	ms, err := u.dir.FindMappings(ctx)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var rows []mappingRow
	for _, m := range ms {
		n, err := rules.CountMapping(ctx, u.dir, m)
		row := mappingRow{Mapping: m, Users: n, Error: fieldErr[m.Name]}
		if err != nil {
			row.Error = usersync.ErrorMessage(err)
		}
		rows = append(rows, row)
	}
	ps, err := u.dir.FindProvisioners(ctx)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var sets []*ruleSet
	for _, p := range ps {
		if p.Config.Users == nil {
			continue
		}
		set := &ruleSet{Provisioner: p.Name, Scope: p.Config.Users.ScopeRoles, Rules: p.Config.Users.Rules, AddError: fieldErr[ruleFormKey(p.Name)]}
		if r.FormValue("provisioner") == p.Name && r.FormValue("rule") != "" {
			set.Checked, set.Users = r.FormValue("rule"), r.FormValue("users")
			set.Verdicts, set.CheckError = u.checkRule(r, p, set.Checked, set.Users)
		}
		sets = append(sets, set)
	}
	u.render(w, status, "mappings", view{Title: "Rules and mappings", Session: s, Notice: notice, Error: problem,
		Data: map[string]any{"Roles": roles, "Mappings": rows, "RuleSets": sets, "Fields": rules.FieldNames(),
			"NewRoleError": fieldErr[newRoleForm], "NewMappingError": fieldErr[newMappingForm], "Typed": typed(r, fieldErr)}})
}

// checkRule is "Check rule with users": for each named user, Will be
// mapped or Will not be mapped, and why.
func (u *ui) checkRule(r *http.Request, p *usersync.Provisioner, rule, users string) ([]rules.Verdict, string) {
	i := -1
	for j, x := range p.Config.Users.Rules {
		if strings.EqualFold(x.Name, rule) {
			i = j
		}
	}
	if i < 0 {
		return nil, fmt.Sprintf("provisioner %s has no rule %q", p.Name, rule)
	}
	var names []string
	for _, n := range strings.FieldsFunc(users, func(c rune) bool { return c == ',' || c == '\n' || c == ' ' || c == ';' }) {
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, "Type the usernames to check (separated by commas or spaces)."
	}
	if len(names) > 100 {
		return nil, "Check at most 100 users at a time."
	}
	v, err := entra.CheckRule(r.Context(), u.dir, p, i, names)
	if err != nil {
		return nil, usersync.ErrorMessage(err)
	}
	return v, ""
}

// saveMapping changes a mapping's condition, roles and place in the
// order; a condition that does not parse is shown next to its field and
// nothing changes.
func (u *ui) saveMapping(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	name := r.PathValue("name")
	ms, err := u.dir.FindMappings(r.Context())
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var m *usersync.Mapping
	for _, x := range ms {
		if strings.EqualFold(x.Name, name) {
			m = x
		}
	}
	if m == nil {
		u.showMappings(w, r, s, http.StatusNotFound, "", fmt.Sprintf("There is no mapping %q (any more).", name), nil)
		return
	}
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	cond := r.PostFormValue("condition")
	if _, err := rules.Parse(cond); err != nil {
		u.showMappings(w, r, s, http.StatusBadRequest, "", "", map[string]string{m.Name: usersync.ErrorMessage(err)})
		return
	}
	var roles []string
	for _, x := range strings.Split(r.PostFormValue("roles"), ",") {
		if x = strings.TrimSpace(x); x != "" {
			roles = append(roles, x)
		}
	}
	pos, err := strconv.Atoi(r.PostFormValue("position"))
	if err != nil || pos < 1 {
		u.showMappings(w, r, s, http.StatusBadRequest, "", "", map[string]string{m.Name: "The position is a number from 1."})
		return
	}
	m.Condition, m.Roles, m.Position, m.Version = cond, roles, pos, version
	if err := u.dir.UpdateMapping(r.Context(), m); err != nil {
		u.showMappings(w, r, s, statusOf(err), "", "", map[string]string{m.Name: usersync.ErrorMessage(err)})
		return
	}
	u.showMappings(w, r, s, http.StatusOK, fmt.Sprintf("Mapping %s saved; provisioners apply it at their next run (at once under usersync serve).", m.Name), "", nil)
}

// reapply previews (dry run) or runs every user provisioner now.
func (u *ui) reapply(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	dry := r.PostFormValue("apply") != "yes"
	results, err := entra.ReapplyAll(r.Context(), u.dir, dry)
	if err != nil {
		u.showMappings(w, r, s, statusOf(err), "", usersync.ErrorMessage(err), nil)
		return
	}
	u.render(w, http.StatusOK, "reapply", view{Title: "Reapply mappings and rules", Session: s, Data: map[string]any{"DryRun": dry, "Results": results}})
}

// userSuggestions answers the usernames that start like the last name
// typed in a "Check rule with users" field, as <option>s of its datalist
// (htmx fills it while the administrator types).
func (u *ui) userSuggestions(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	typed := r.FormValue("users")
	parts := strings.FieldsFunc(typed, func(c rune) bool { return c == ',' || c == ' ' || c == ';' })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if len(parts) == 0 || strings.HasSuffix(typed, ",") || strings.HasSuffix(typed, " ") {
		return
	}
	last := parts[len(parts)-1]
	prefix := strings.TrimSuffix(typed, last)
	found, _, err := u.dir.FindUsers(r.Context(), usersync.UserFilter{Search: last, Limit: 20})
	if err != nil {
		http.Error(w, usersync.ErrorMessage(err), statusOf(err))
		return
	}
	for _, f := range found {
		fmt.Fprintf(w, "<option value=\"%s\">%s</option>\n", template.HTMLEscapeString(prefix+f.Username), template.HTMLEscapeString(strings.TrimSpace(f.FirstName+" "+f.LastName)))
	}
}

// Keys of the create forms' errors (mapping names are never these).
const (
	newRoleForm    = "\x00new role"
	newMappingForm = "\x00new mapping"
)

// createRole makes a role; a bad or taken name is said next to the field.
func (u *ui) createRole(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	role := &usersync.Role{Name: strings.TrimSpace(r.PostFormValue("name")), Description: strings.TrimSpace(r.PostFormValue("description"))}
	if err := u.dir.CreateRole(r.Context(), role); err != nil {
		u.showMappings(w, r, s, statusOf(err), "", "", map[string]string{newRoleForm: usersync.ErrorMessage(err)})
		return
	}
	u.showMappings(w, r, s, http.StatusOK, "Role "+role.Name+" created.", "", nil)
}

// createMapping makes a mapping at the end of the order (or at the
// position given); its condition is checked first, and a problem is said
// next to the form, with what was typed.
func (u *ui) createMapping(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	m := &usersync.Mapping{Name: strings.TrimSpace(r.PostFormValue("name")), Condition: r.PostFormValue("condition")}
	for _, x := range strings.Split(r.PostFormValue("roles"), ",") {
		if x = strings.TrimSpace(x); x != "" {
			m.Roles = append(m.Roles, x)
		}
	}
	if p := strings.TrimSpace(r.PostFormValue("position")); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			u.showMappings(w, r, s, http.StatusBadRequest, "", "", map[string]string{newMappingForm: "The position is a number from 1 (or empty: last)."})
			return
		}
		m.Position = n
	}
	_, err := rules.Parse(m.Condition)
	if err == nil {
		err = u.dir.CreateMapping(r.Context(), m)
	}
	if err != nil {
		u.showMappings(w, r, s, statusOf(err), "", "", map[string]string{newMappingForm: usersync.ErrorMessage(err)})
		return
	}
	n, _ := rules.CountMapping(r.Context(), u.dir, m)
	u.showMappings(w, r, s, http.StatusOK, fmt.Sprintf("Mapping %s created: its condition holds for %d users.", m.Name, n), "", nil)
}

// typed is what was typed in a create form that was refused, to show it again.
func typed(r *http.Request, fieldErr map[string]string) map[string]string {
	out := map[string]string{}
	if len(fieldErr) > 0 {
		for _, k := range []string{"name", "description", "condition", "roles", "position", "rule", "licenses", "groups"} {
			out[k] = r.PostFormValue(k)
		}
	}
	return out
}

// ruleFormKey keys a provisioner's add-rule form errors.
func ruleFormKey(provisioner string) string { return "\x00rule:" + provisioner }

// changeRules adds a rule at the end of a user provisioner's rules, or
// deletes one. A rule is checked as the provisioner compiles it (its
// condition, and licenses and groups against the tenant's entitlements)
// before it is stored; a problem is said next to the form.
func (u *ui) changeRules(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	name := r.PathValue("name")
	p, err := u.dir.FindProvisioner(r.Context(), name)
	if err == nil && p.Config.Users == nil {
		err = usersync.Errorf(usersync.EINVALID, "provisioner %s pushes groups: rules belong to user provisioners", name)
	}
	if err != nil {
		u.showMappings(w, r, s, statusOf(err), "", usersync.ErrorMessage(err), nil)
		return
	}
	if del := r.PostFormValue("delete"); del != "" {
		kept := p.Config.Users.Rules[:0:0]
		for _, x := range p.Config.Users.Rules {
			if !strings.EqualFold(x.Name, del) {
				kept = append(kept, x)
			}
		}
		p.Config.Users.Rules = kept
		if err := u.dir.UpdateProvisioner(r.Context(), p, nil); err != nil {
			u.showMappings(w, r, s, statusOf(err), "", usersync.ErrorMessage(err), nil)
			return
		}
		u.showMappings(w, r, s, http.StatusOK, fmt.Sprintf("Rule %s deleted: its licenses and groups are taken back at the next run.", del), "", nil)
		return
	}
	rule := usersync.UserRule{Name: strings.TrimSpace(r.PostFormValue("rule")), Condition: r.PostFormValue("condition")}
	for _, l := range strings.Split(r.PostFormValue("licenses"), ",") {
		sku, plans, _ := strings.Cut(strings.TrimSpace(l), ":")
		if sku == "" {
			continue
		}
		lic := usersync.License{SKU: sku}
		for _, pl := range strings.Split(plans, "+") {
			if pl = strings.TrimSpace(pl); pl != "" {
				lic.DisabledPlans = append(lic.DisabledPlans, pl)
			}
		}
		rule.Licenses = append(rule.Licenses, lic)
	}
	for _, g := range strings.Split(r.PostFormValue("groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			rule.Groups = append(rule.Groups, g)
		}
	}
	p.Config.Users.Rules = append(p.Config.Users.Rules, rule)
	err = p.Validate()
	if err == nil {
		_, _, err = entra.CompileUsers(p)
	}
	if err == nil {
		err = u.dir.UpdateProvisioner(r.Context(), p, nil)
	}
	if err != nil {
		u.showMappings(w, r, s, statusOf(err), "", "", map[string]string{ruleFormKey(name): usersync.ErrorMessage(err)})
		return
	}
	u.showMappings(w, r, s, http.StatusOK, fmt.Sprintf("Rule %s added to %s: applied at its next run (check it with users below).", rule.Name, name), "", nil)
}
