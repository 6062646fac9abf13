package adminui

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/rules"
)

// pageSize is how many rows a listing page shows.
const pageSize = 50

func (u *ui) usersPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	q := api.UserQuery{Search: r.FormValue("q"), Source: r.FormValue("source"), Type: r.FormValue("type"), Enabled: r.FormValue("enabled"),
		Paging: api.Paging{Limit: pageSize, Cursor: r.FormValue("cursor")}}
	page, err := u.ops.ListUsers(r.Context(), q)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	next := ""
	if page.NextCursor != "" {
		next = "?" + url.Values{"q": {q.Search}, "source": {q.Source}, "type": {q.Type}, "enabled": {q.Enabled}, "cursor": {page.NextCursor}}.Encode()
	}
	u.render(w, http.StatusOK, "users", view{Title: "Users", Session: s, Data: map[string]any{"Page": page, "Query": q, "Next": next}})
}

func (u *ui) userPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showUser(w, r, s, http.StatusOK, "", "")
}

// changeUserRole gives or takes a role held by hand (the seed's
// "provisioning users manually"); a problem is said next to the field.
func (u *ui) changeUserRole(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	user, err := u.dir.FindUserByUsername(r.Context(), r.PathValue("username"))
	if err != nil {
		u.fail(w, s, err)
		return
	}
	role := strings.TrimSpace(r.PostFormValue("role"))
	if take := r.PostFormValue("remove"); take != "" {
		if err := u.dir.UnassignRole(r.Context(), user.ID, take); err != nil {
			u.showUser(w, r, s, statusOf(err), "", roleFieldError+usersync.ErrorMessage(err))
			return
		}
		u.showUser(w, r, s, http.StatusOK, "Role "+take+" taken; provisioners act on it at their next run.", "")
		return
	}
	if role == "" {
		u.showUser(w, r, s, http.StatusUnprocessableEntity, "", roleFieldError+"Type the role to give.")
		return
	}
	if err := u.dir.AssignRole(r.Context(), user.ID, role); err != nil {
		u.showUser(w, r, s, statusOf(err), "", roleFieldError+usersync.ErrorMessage(err))
		return
	}
	u.showUser(w, r, s, http.StatusOK, "Role "+role+" given; provisioners act on it at their next run.", "")
}

// roleFieldError marks a problem that belongs next to the role field.
const roleFieldError = "\x00role:"

func (u *ui) showUser(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	user, err := u.ops.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		u.fail(w, s, err)
		return
	}
	groups, err := u.ops.UserGroups(r.Context(), user.Username)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	// Roles (by hand and through mappings) and what provisioners did to the user.
	grants, err := rules.Roles(r.Context(), u.dir, []*usersync.User{user})
	if err != nil {
		u.fail(w, s, err)
		return
	}
	log, err := u.dir.FindLog(r.Context(), usersync.LogFilter{Username: user.Username, Limit: 50})
	if err != nil {
		u.fail(w, s, err)
		return
	}
	hand, err := u.dir.UserRoles(r.Context(), []int64{user.ID})
	if err != nil {
		u.fail(w, s, err)
		return
	}
	data := map[string]any{"User": user, "Groups": groups, "Attributes": sorted(user.Attributes), "Roles": grants[user.ID], "Log": log, "ByHand": hand[user.ID]}
	if msg, ok := strings.CutPrefix(problem, roleFieldError); ok {
		data["RoleError"], data["Typed"], problem = msg, r.PostFormValue("role"), ""
	}
	u.render(w, status, "user", view{Title: user.Username, Session: s, Notice: notice, Error: problem, Data: data})
}

func (u *ui) groupsPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	q := api.GroupQuery{Search: r.FormValue("q"), Folder: r.FormValue("folder"), Paging: api.Paging{Limit: pageSize, Cursor: r.FormValue("cursor")}}
	page, err := u.ops.ListGroups(r.Context(), q)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	next := ""
	if page.NextCursor != "" {
		next = "?" + url.Values{"q": {q.Search}, "folder": {q.Folder}, "cursor": {page.NextCursor}}.Encode()
	}
	u.render(w, http.StatusOK, "groups", view{Title: "Groups", Session: s, Data: map[string]any{"Page": page, "Query": q, "Next": next}})
}

func (u *ui) groupPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showGroup(w, r, s, http.StatusOK, "", "")
}

// showGroup shows a group with its Members tab, and what a change did.
func (u *ui) showGroup(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	ctx := r.Context()
	g, err := u.ops.GetGroup(ctx, r.PathValue("name"))
	if err != nil {
		u.fail(w, s, err)
		return
	}
	cursor := r.URL.Query().Get("cursor")
	members, err := u.ops.ListMembers(ctx, g.Name, api.MemberQuery{Paging: api.Paging{Limit: pageSize, Cursor: cursor}})
	if err != nil {
		u.fail(w, s, err)
		return
	}
	next := ""
	if members.NextCursor != "" {
		next = "?" + url.Values{"cursor": {members.NextCursor}}.Encode()
	}
	covering, err := u.coverage(r, g)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	data := map[string]any{"Group": g, "Members": members, "Next": next, "Attributes": sorted(g.Attributes), "Covering": covering}
	if msg, ok := strings.CutPrefix(problem, addFieldError); ok {
		// A problem with the names typed to add is shown next to that field,
		// with what was typed.
		data["AddError"], data["Typed"], problem = msg, r.PostFormValue("add"), ""
	}
	u.render(w, status, "group", view{Title: g.Name, Session: s, Notice: notice, Error: problem, Data: data})
}

// addFieldError marks a problem that belongs next to the add field.
const addFieldError = "\x00add:"

// coverage names the provisioners that push a group, and why.
func (u *ui) coverage(r *http.Request, g *usersync.Group) ([]kv, error) {
	ps, err := u.ops.ListProvisioners(r.Context())
	if err != nil {
		return nil, err
	}
	read := map[string]*usersync.Folder{} // each folder once, whatever the number of provisioners
	folder := func(path string) (*usersync.Folder, error) {
		if f, ok := read[path]; ok {
			return f, nil
		}
		f, err := u.ops.GetFolder(r.Context(), path)
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			f, err = nil, nil
		}
		read[path] = f
		return f, err
	}
	var out []kv
	for _, p := range ps {
		if p.Kind != usersync.ProvisionerGroups {
			continue // a user provisioner pushes users by role, not marked groups
		}
		why, err := usersync.CoveredBy(p.Config.SyncAttribute, g, folder)
		if err != nil {
			return nil, err
		}
		if why != "" {
			out = append(out, kv{p.Name, why})
		}
	}
	return out, nil
}

// changeMembers adds the usernames typed (one per line or comma) or removes
// one; a name that does not exist changes nothing and says so.
func (u *ui) changeMembers(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	var ch api.MembersChange
	if rm := r.PostFormValue("remove"); rm != "" {
		ch.Remove = []string{rm}
	} else {
		for _, n := range strings.FieldsFunc(r.PostFormValue("add"), func(c rune) bool { return c == ',' || c == '\n' || c == '\r' || c == ' ' }) {
			ch.Add = append(ch.Add, n)
		}
		if len(ch.Add) == 0 {
			u.showGroup(w, r, s, http.StatusUnprocessableEntity, "", addFieldError+"Type at least one username to add.")
			return
		}
	}
	done, err := u.ops.ChangeMembers(r.Context(), r.PathValue("name"), ch, 0)
	if usersync.ErrorCode(err) == usersync.EINVALID {
		prefix := ""
		if len(ch.Add) > 0 {
			prefix = addFieldError
		}
		u.showGroup(w, r, s, http.StatusUnprocessableEntity, "", prefix+usersync.ErrorMessage(err))
		return
	} else if err != nil {
		u.fail(w, s, err)
		return
	}
	notice := "Added " + plural(done.Added, "member") + " of " + plural(len(ch.Add), "name") + "."
	if len(ch.Remove) > 0 {
		notice = "Removed " + ch.Remove[0] + "."
		if done.Removed == 0 {
			notice = ch.Remove[0] + " was not a member."
		}
	}
	u.showGroup(w, r, s, http.StatusOK, notice, "")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

type kv struct{ Key, Value string }

func sorted(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// settingsPage is System Variables: every setting with its type and
// description, found by a part of its key or description.
func (u *ui) settingsPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showSettings(w, r, s, http.StatusOK, "", "")
}

func (u *ui) showSettings(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	u.showSettingsWith(w, r, s, status, notice, problem, nil)
}

// settingRow is a setting on the page; a value refused is shown again, as
// typed, with its error next to it.
type settingRow struct {
	usersync.Setting
	Typed string
	Error string
}

func (u *ui) showSettingsWith(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string, fieldErr map[string]string) {
	all, err := u.ops.Settings(r.Context())
	if err != nil {
		u.fail(w, s, err)
		return
	}
	q := strings.TrimSpace(r.FormValue("q"))
	var shown []settingRow
	for _, st := range all {
		if q == "" || strings.Contains(strings.ToLower(st.Key+" "+st.Description), strings.ToLower(q)) {
			row := settingRow{Setting: st, Typed: st.Value, Error: fieldErr[st.Key]}
			if v, sent := r.PostForm["v:"+st.Key]; fieldErr != nil && sent && !st.Secret {
				row.Typed = strings.TrimSpace(v[0]) // what was typed stays; a secret is never written back into the page
			}
			shown = append(shown, row)
		}
	}
	u.render(w, status, "settings", view{Title: "System Variables", Session: s, Notice: notice, Error: problem, Data: map[string]any{"Settings": shown, "Query": q}})
}

// commitSettings applies the values that changed (a secret only when a new
// one is typed). Each is checked before any is stored, so a bad value
// changes nothing.
func (u *ui) commitSettings(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	ctx := r.Context()
	all, err := u.ops.Settings(ctx)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	type change struct{ key, value string }
	var changes []change
	bad := map[string]string{}
	for _, st := range all {
		v, sent := r.PostForm["v:"+st.Key]
		if !sent {
			continue // not on the page (filtered out)
		}
		value := strings.TrimSpace(v[0])
		if st.Secret && value == "" || !st.Secret && value == st.Value {
			continue
		}
		canon, err := st.Parse(value)
		if err == nil {
			err = usersync.ValidateText("setting "+st.Key, map[string]string{"value": canon})
		}
		if err != nil {
			bad[st.Key] = usersync.ErrorMessage(err)
			continue
		}
		changes = append(changes, change{st.Key, value})
	}
	if len(bad) > 0 {
		keys := make([]string, 0, len(bad))
		for k := range bad {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		u.showSettingsWith(w, r, s, http.StatusUnprocessableEntity, "", "Not committed: "+strings.Join(keys, ", ")+" "+map[bool]string{true: "has a value", false: "have values"}[len(keys) == 1]+" it cannot take (see next to each). Nothing was changed.", bad)
		return
	}
	var names []string
	for _, c := range changes {
		if _, err := u.ops.SetSetting(ctx, c.key, c.value); err != nil {
			u.showSettings(w, r, s, http.StatusUnprocessableEntity, "", usersync.ErrorMessage(err))
			return
		}
		names = append(names, c.key)
	}
	notice := "No setting changed."
	if len(names) > 0 {
		notice = "Committed: " + strings.Join(names, ", ") + "."
	}
	u.showSettings(w, r, s, http.StatusOK, notice, "")
}
