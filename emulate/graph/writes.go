// Writes: groups and memberships, as an outbound provisioner sends them
// (wire facts §5, §7, §8).

package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of group properties (wire facts §5).
const (
	MaxDisplayName  = 256
	MaxDescription  = 1024
	MaxMailNickname = 64
	MaxBinds        = 20 // members@odata.bind and owners@odata.bind together, per request
)

// mailNicknameForbidden are the characters Graph refuses in a mailNickname
// (besides non-ASCII and space).
const mailNicknameForbidden = `@()\[]";:<>,`

// CheckMailNickname reports what is wrong with a mailNickname ("" when
// nothing is): at most 64 characters of ASCII, none of @ ( ) \ [ ] " ; : < > ,
// and no space.
func CheckMailNickname(s string) string {
	switch {
	case s == "":
		return "mailNickname is required"
	case len(s) > MaxMailNickname:
		return fmt.Sprintf("mailNickname is longer than %d characters", MaxMailNickname)
	}
	for _, c := range s {
		if c > 127 || c <= ' ' || strings.ContainsRune(mailNicknameForbidden, c) {
			return fmt.Sprintf("mailNickname contains the character %q, which is not allowed", c)
		}
	}
	return ""
}

// writeCall names a write for the counts ("POST /groups", …).
func writeCall(method, kind string) string { return method + " " + kind }

// takeWrite takes one request from the write quota (per app and tenant:
// 3,000 per 150 s by default when a budget is set) and reports the wait
// when there is none left.
func (s *Server) takeWrite() (int, bool) {
	if s.opts.WriteBudget <= 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.writeStart) >= s.opts.WriteWindow {
		s.writeStart, s.writesInWindow = now, 0
	}
	if s.writesInWindow >= s.opts.WriteBudget {
		wait := s.opts.WriteWindow - now.Sub(s.writeStart)
		return int((wait + time.Second - 1) / time.Second), false
	}
	s.writesInWindow++
	return 0, true
}

// serveWrite answers a POST, PATCH or DELETE under /v1.0 (alone or inside
// a $batch); parts is the path below /v1.0.
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request, parts []string) {
	if retry, ok := s.takeWrite(); !ok {
		s.count("429")
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		w.Header().Set("x-ms-throttle-information", "WriteLimitExceeded")
		graphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		graphError(w, 400, "BadRequest", "Cannot read the request body.")
		return
	}
	switch {
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "groups":
		s.countWrite("POST /groups")
		s.createGroup(w, r, body)
	case r.Method == http.MethodPatch && isUniqueNameKey(parts):
		s.countWrite("PATCH /groups(uniqueName)")
		key, _ := uniqueNameKey(parts)
		s.upsertGroup(w, r, key, body)
	case r.Method == http.MethodPatch && len(parts) == 2 && parts[0] == "groups":
		s.countWrite("PATCH /groups/{id}")
		s.patchGroup(w, parts[1], body)
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "groups":
		s.countWrite("DELETE /groups/{id}")
		s.deleteGroup(w, parts[1])
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "groups" && parts[2] == "members" && parts[3] == "$ref":
		s.countWrite("POST /groups/{id}/members/$ref")
		s.addMemberRef(w, parts[1], body)
	case r.Method == http.MethodDelete && len(parts) == 5 && parts[0] == "groups" && parts[2] == "members" && parts[4] == "$ref":
		s.countWrite("DELETE /groups/{id}/members/{id}/$ref")
		s.removeMemberRef(w, parts[1], parts[3])
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "users":
		s.countWrite("POST /users")
		s.createUser(w, r, body)
	case r.Method == http.MethodPatch && len(parts) == 2 && parts[0] == "users":
		s.countWrite("PATCH /users/{id}")
		s.patchUser(w, parts[1], body)
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "users":
		s.countWrite("DELETE /users/{id}")
		s.deleteUser(w, parts[1])
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "users" && parts[2] == "assignLicense":
		s.countWrite("POST /users/{id}/assignLicense")
		s.assignLicense(w, parts[1], body)
	default:
		graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("The emulator does not serve %s %s.", r.Method, r.URL.Path))
	}
}

func (s *Server) countWrite(what string) {
	s.mu.Lock()
	s.writes[what]++
	s.mu.Unlock()
}

// Writes returns how many writes of each kind the emulator accepted for
// processing ("POST /groups", "PATCH /groups/{id}", …; throttled ones are
// not among them).
func (s *Server) Writes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.writes))
	for k, v := range s.writes {
		out[k] = v
	}
	return out
}

// lagging reports a group created less than the replication lag ago: Graph
// answers 404 for it on reads and writes for a while (wire facts §5).
func (s *Server) lagging(g *Group) bool {
	return s.opts.ReplicationLag > 0 && !g.created.IsZero() && time.Since(g.created) < s.opts.ReplicationLag
}

// bindIDs reads "…/directoryObjects/{id}" (or users/{id}, groups/{id})
// references.
func bindIDs(refs []string) ([]string, error) {
	out := make([]string, 0, len(refs))
	for _, ref := range refs {
		i := strings.LastIndex(ref, "/")
		if i < 0 || i == len(ref)-1 || !strings.Contains(ref, "/v1.0/") {
			return nil, fmt.Errorf("Invalid object identifier '%s'.", ref)
		}
		out = append(out, ref[i+1:])
	}
	return out, nil
}

type groupBody struct {
	DisplayName     *string  `json:"displayName"`
	Description     *string  `json:"description"`
	MailNickname    *string  `json:"mailNickname"`
	MailEnabled     *bool    `json:"mailEnabled"`
	SecurityEnabled *bool    `json:"securityEnabled"`
	GroupTypes      []string `json:"groupTypes"`
	Visibility      *string  `json:"visibility"`
	UniqueName      *string  `json:"uniqueName"`
	MembersBind     []string `json:"members@odata.bind"`
	OwnersBind      []string `json:"owners@odata.bind"`
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, raw []byte) {
	var in groupBody
	if err := json.Unmarshal(raw, &in); err != nil {
		graphError(w, 400, "BadRequest", "Invalid JSON: "+err.Error())
		return
	}
	s.tenant.mu.Lock()
	s.insertAndAnswer(w, r, in)
}

// insertAndAnswer creates the group in describes and answers 201 with
// it, or the refusal; the caller holds the tenant's lock, released here.
func (s *Server) insertAndAnswer(w http.ResponseWriter, r *http.Request, in groupBody) {
	g, status, code, msg := s.insertGroup(in)
	var body map[string]any
	if g != nil {
		body = groupJSON(g, nil)
	}
	s.tenant.mu.Unlock()
	if status != 0 {
		graphError(w, status, code, msg)
		return
	}
	w.Header().Set("Location", scheme(r)+"://"+r.Host+"/v1.0/groups/"+g.ID)
	writeJSON(w, http.StatusCreated, body)
}

// insertGroup creates the group a POST (or an upsert that found none)
// describes, or says why not; the caller holds the tenant's lock.
func (s *Server) insertGroup(in groupBody) (g *Group, status int, code, msg string) {
	switch {
	case in.DisplayName == nil || strings.TrimSpace(*in.DisplayName) == "":
		return nil, 400, "Request_BadRequest", "Invalid value specified for property 'displayName' of resource 'Group'."
	case in.MailEnabled == nil || in.SecurityEnabled == nil || in.MailNickname == nil:
		return nil, 400, "Request_BadRequest", "A value is required for the properties 'mailEnabled', 'mailNickname' and 'securityEnabled' of resource 'Group'."
	}
	g = &Group{ID: newGUID(), DisplayName: *in.DisplayName, MailNickname: *in.MailNickname, MailEnabled: *in.MailEnabled,
		SecurityEnabled: in.SecurityEnabled, GroupTypes: in.GroupTypes, created: time.Now()}
	if in.Description != nil {
		g.Description = *in.Description
	}
	if in.Visibility != nil {
		g.Visibility = *in.Visibility
	}
	if in.UniqueName != nil {
		g.UniqueName = *in.UniqueName
	}
	if msg := checkGroup(g); msg != "" {
		return nil, 400, "Request_BadRequest", msg
	}
	if len(in.MembersBind)+len(in.OwnersBind) > MaxBinds {
		return nil, 400, "Request_BadRequest", fmt.Sprintf("A maximum of %d owners and members can be added at creation; %d were given.", MaxBinds, len(in.MembersBind)+len(in.OwnersBind))
	}
	members, err := bindIDs(in.MembersBind)
	if err == nil {
		_, err = bindIDs(in.OwnersBind)
	}
	if err != nil {
		return nil, 400, "Request_BadRequest", err.Error()
	}
	t := s.tenant
	for _, m := range members {
		if status, code, msg := t.refuseMember(g, m, false); status != 0 {
			return nil, status, code, msg
		}
	}
	if g.UniqueName != "" && t.groupByUniqueName(g.UniqueName) != nil {
		return nil, 400, "Request_BadRequest", "Another object with the same value for property uniqueName already exists."
	}
	if g.unified() {
		for _, id := range t.order {
			if o := t.groups[id]; o.unified() && strings.EqualFold(o.MailNickname, g.MailNickname) {
				return nil, 400, "Request_BadRequest", "Another object with the same value for property mailNickname already exists."
			}
		}
	}
	t.order = append(t.order, g.ID)
	t.groups[g.ID] = g
	t.record(change{group: g.ID})
	t.recordMembers(g.ID, nil, dedupe(members))
	g.Members = dedupe(members)
	return g, 0, "", ""
}

// uniqueNameKey reads the alternate key of "groups(uniqueName='…')" (or
// the documented "groups/(uniqueName='…')"), with ” as an escaped quote.
func uniqueNameKey(parts []string) (string, bool) {
	var seg string
	switch {
	case len(parts) == 1 && strings.HasPrefix(parts[0], "groups("):
		seg = strings.TrimPrefix(parts[0], "groups")
	case len(parts) == 2 && parts[0] == "groups" && strings.HasPrefix(parts[1], "("):
		seg = parts[1]
	default:
		return "", false
	}
	inner, ok := strings.CutPrefix(seg, "(uniqueName='")
	if !ok || !strings.HasSuffix(inner, "')") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, "')")
	if strings.Count(strings.ReplaceAll(inner, "''", ""), "'") > 0 || inner == "" {
		return "", false
	}
	return strings.ReplaceAll(inner, "''", "'"), true
}

// upsertGroup serves PATCH /groups(uniqueName='key'): the group with that
// key is updated (204); when there is none, it is created with the key
// (201 with the group) if the request says Prefer: create-if-missing, and
// answers 404 otherwise. The key is the tenant's own: a group created
// moments ago is found by it, replication lag or not, which is what makes
// a replayed create safe.
func (s *Server) upsertGroup(w http.ResponseWriter, r *http.Request, key string, raw []byte) {
	var in groupBody
	if err := json.Unmarshal(raw, &in); err != nil {
		graphError(w, 400, "BadRequest", "Invalid JSON: "+err.Error())
		return
	}
	if in.UniqueName != nil && !strings.EqualFold(*in.UniqueName, key) {
		graphError(w, 400, "Request_BadRequest", "The uniqueName in the body differs from the one in the request URL.")
		return
	}
	t := s.tenant
	t.mu.Lock()
	g := t.groupByUniqueName(key)
	if g != nil {
		id := g.ID
		t.mu.Unlock()
		s.patchGroupAt(w, id, raw, true)
		return
	}
	if !preferCreate(r) {
		t.mu.Unlock()
		notFound(w, key)
		return
	}
	in.UniqueName = &key
	s.insertAndAnswer(w, r, in)
}

func isUniqueNameKey(parts []string) bool { _, ok := uniqueNameKey(parts); return ok }

// preferCreate reports a Prefer header that asks for create-if-missing.
func preferCreate(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "create-if-missing") {
				return true
			}
		}
	}
	return false
}

// checkGroup applies Graph's rules for a group's properties.
func checkGroup(g *Group) string {
	switch {
	case utf8.RuneCountInString(g.DisplayName) > MaxDisplayName:
		return fmt.Sprintf("Invalid value specified for property 'displayName' of resource 'Group': longer than %d characters.", MaxDisplayName)
	case utf8.RuneCountInString(g.Description) > MaxDescription:
		return fmt.Sprintf("Invalid value specified for property 'description' of resource 'Group': longer than %d characters.", MaxDescription)
	}
	if msg := CheckMailNickname(g.MailNickname); msg != "" {
		return "Invalid value specified for property 'mailNickname' of resource 'Group': " + msg + "."
	}
	switch {
	case g.unified() && !g.MailEnabled:
		return "A Microsoft 365 group (groupTypes Unified) must be mail-enabled."
	case !g.unified() && len(g.GroupTypes) > 0:
		return fmt.Sprintf("Unsupported groupTypes %v.", g.GroupTypes)
	case !g.unified() && (g.MailEnabled || (g.SecurityEnabled != nil && !*g.SecurityEnabled)): // nil: a loaded security group
		return "Only security groups (mailEnabled false, securityEnabled true) and Microsoft 365 groups can be created through Microsoft Graph."
	}
	switch strings.ToLower(g.Visibility) {
	case "", "public", "private":
	case "hiddenmembership":
		if !g.unified() {
			return "HiddenMembership applies to Microsoft 365 groups only."
		}
	default:
		return fmt.Sprintf("Invalid value '%s' for property 'visibility'.", g.Visibility)
	}
	return ""
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// writableGroup returns the group a write names, or answers 404.
func (s *Server) writableGroup(w http.ResponseWriter, id string) *Group {
	g, ok := s.tenant.groups[id]
	if !ok || s.lagging(g) {
		notFound(w, id)
		return nil
	}
	return g
}

func (s *Server) patchGroup(w http.ResponseWriter, id string, raw []byte) {
	s.patchGroupAt(w, id, raw, false)
}

// patchGroupAt updates a group; byKey: it was named by its uniqueName,
// which finds it even while it replicates.
func (s *Server) patchGroupAt(w http.ResponseWriter, id string, raw []byte, byKey bool) {
	var in groupBody
	if err := json.Unmarshal(raw, &in); err != nil {
		graphError(w, 400, "BadRequest", "Invalid JSON: "+err.Error())
		return
	}
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[id]
	if !byKey {
		g = s.writableGroup(w, id)
	}
	if g == nil {
		if byKey {
			notFound(w, id) // deleted meanwhile
		}
		return
	}
	next := *g
	if in.UniqueName != nil && !strings.EqualFold(*in.UniqueName, g.UniqueName) {
		switch {
		case g.UniqueName != "":
			graphError(w, 400, "Request_BadRequest", "Property 'uniqueName' is immutable once set.")
			return
		case t.groupByUniqueName(*in.UniqueName) != nil:
			graphError(w, 400, "Request_BadRequest", "Another object with the same value for property uniqueName already exists.")
			return
		}
		next.UniqueName = *in.UniqueName
	}
	if in.DisplayName != nil {
		if strings.TrimSpace(*in.DisplayName) == "" {
			graphError(w, 400, "Request_BadRequest", "Invalid value specified for property 'displayName' of resource 'Group'.")
			return
		}
		next.DisplayName = *in.DisplayName
	}
	if in.Description != nil {
		next.Description = *in.Description
	}
	if in.MailNickname != nil {
		next.MailNickname = *in.MailNickname
	}
	if in.Visibility != nil {
		if strings.EqualFold(*in.Visibility, "HiddenMembership") != strings.EqualFold(g.Visibility, "HiddenMembership") {
			graphError(w, 400, "Request_BadRequest", "HiddenMembership can only be set when a group is created.")
			return
		}
		next.Visibility = *in.Visibility
	}
	if msg := checkGroup(&next); msg != "" {
		graphError(w, 400, "Request_BadRequest", msg)
		return
	}
	// members@odata.bind: at most 20, all or nothing.
	if len(in.MembersBind) > MaxBinds {
		graphError(w, 400, "Request_BadRequest", fmt.Sprintf("A maximum of %d members can be added in one request; %d were given.", MaxBinds, len(in.MembersBind)))
		return
	}
	ids, err := bindIDs(in.MembersBind)
	if err != nil {
		graphError(w, 400, "Request_BadRequest", err.Error())
		return
	}
	have := make(map[string]bool, len(g.Members))
	for _, m := range g.Members {
		have[m] = true
	}
	for _, m := range ids {
		if status, code, msg := t.refuseMember(g, m, have[m]); status != 0 {
			graphError(w, status, code, msg)
			return
		}
	}
	next.Members = append(append([]string(nil), g.Members...), dedupe(ids)...)
	t.recordMembers(id, g.Members, next.Members)
	*g = next
	t.record(change{group: id})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteGroup(w http.ResponseWriter, id string) {
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.writableGroup(w, id) == nil {
		return
	}
	t.deleteGroup(id)
	w.WriteHeader(http.StatusNoContent)
}

// DeleteGroup deletes a group as an administrator would in the portal;
// false when there is none.
func (t *Tenant) DeleteGroup(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.groups[id]; !ok {
		return false
	}
	t.deleteGroup(id)
	return true
}

// deleteGroup removes a group and its memberships in other groups; the
// caller holds t.mu.
func (t *Tenant) deleteGroup(id string) {
	delete(t.groups, id)
	for i, gid := range t.order {
		if gid == id {
			t.order = append(t.order[:i:i], t.order[i+1:]...)
			break
		}
	}
	for _, gid := range t.order { // a group that was a member leaves its parents
		g := t.groups[gid]
		if i := indexOf(g.Members, id); i >= 0 {
			g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
			t.record(change{group: gid, member: id, removed: true})
		}
	}
	t.record(change{group: id})
}

func (s *Server) addMemberRef(w http.ResponseWriter, id string, raw []byte) {
	var in struct {
		Ref string `json:"@odata.id"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || in.Ref == "" {
		graphError(w, 400, "BadRequest", "The request body needs an @odata.id reference.")
		return
	}
	ids, err := bindIDs([]string{in.Ref})
	if err != nil {
		graphError(w, 400, "Request_BadRequest", err.Error())
		return
	}
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	g := s.writableGroup(w, id)
	if g == nil {
		return
	}
	m := ids[0]
	if status, code, msg := t.refuseMember(g, m, indexOf(g.Members, m) >= 0); status != 0 {
		graphError(w, status, code, msg)
		return
	}
	g.Members = append(g.Members, m)
	t.record(change{group: id, member: m})
	w.WriteHeader(http.StatusNoContent)
}

// refuseMember is Graph's answer when m cannot join g (status 0 when it
// can): no such object, a group into a Microsoft 365 group, or a member
// already. Call with t.mu held.
func (t *Tenant) refuseMember(g *Group, m string, already bool) (status int, code, msg string) {
	_, isUser := t.users[m]
	_, isGroup := t.groups[m]
	switch {
	case !isUser && !isGroup:
		return http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", m)
	case isGroup && g.unified():
		return http.StatusBadRequest, "Request_BadRequest", "Microsoft 365 groups cannot have groups as members."
	case already:
		return http.StatusBadRequest, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'."
	}
	return 0, "", ""
}

func (s *Server) removeMemberRef(w http.ResponseWriter, id, member string) {
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	g := s.writableGroup(w, id)
	if g == nil {
		return
	}
	i := indexOf(g.Members, member)
	if i < 0 {
		notFound(w, member)
		return
	}
	g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
	t.record(change{group: id, member: member, removed: true})
	w.WriteHeader(http.StatusNoContent)
}
