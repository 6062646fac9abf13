package okta

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// write serves the writes Okta's management API documents for users and
// groups, so that a change can be made to a running emulator as to an org:
//
//	POST   /api/v1/users?activate=true|false      create (ACTIVE, or STAGED)
//	POST   /api/v1/users/{id}                     partial profile update
//	PUT    /api/v1/users/{id}                     whole profile replace
//	POST   /api/v1/users/{id}/lifecycle/{op}      activate, deactivate, suspend, unsuspend
//	DELETE /api/v1/users/{id}                     deactivate, then (when DEPROVISIONED) delete
//	POST   /api/v1/groups                         create an OKTA_GROUP
//	PUT    /api/v1/groups/{id}                    replace its profile
//	DELETE /api/v1/groups/{id}                    delete (not a BUILT_IN group)
//	PUT    /api/v1/groups/{id}/users/{userId}     add a member
//	DELETE /api/v1/groups/{id}/users/{userId}     remove a member
//
// Errors are Okta's: E0000001 (validation, with causes; a lifecycle change
// the user's status does not allow), E0000003 (a body that is not JSON),
// E0000006 (a BUILT_IN or APP_GROUP group), E0000007 (not found), E0000022
// (method).
func (s *Server) write(w http.ResponseWriter, r *http.Request, parts []string) {
	s.count("write")
	m := r.Method
	switch {
	case parts[0] == "users" && len(parts) == 1 && m == http.MethodPost:
		s.createUser(w, r)
	case parts[0] == "users" && len(parts) == 2 && (m == http.MethodPost || m == http.MethodPut):
		s.updateUser(w, r, parts[1], m == http.MethodPut)
	case parts[0] == "users" && len(parts) == 2 && m == http.MethodDelete:
		s.deleteUser(w, parts[1])
	case parts[0] == "users" && len(parts) == 4 && parts[2] == "lifecycle" && m == http.MethodPost:
		s.lifecycle(w, r, parts[1], parts[3])
	case parts[0] == "groups" && len(parts) == 1 && m == http.MethodPost:
		s.createGroup(w, r)
	case parts[0] == "groups" && len(parts) == 2 && m == http.MethodPut:
		s.updateGroup(w, r, parts[1])
	case parts[0] == "groups" && len(parts) == 2 && m == http.MethodDelete:
		s.deleteGroup(w, parts[1])
	case parts[0] == "groups" && len(parts) == 4 && parts[2] == "users" && (m == http.MethodPut || m == http.MethodDelete):
		s.membership(w, parts[1], parts[3], m == http.MethodPut)
	default:
		apiError(w, 405, "E0000022", "The endpoint does not support the provided HTTP method")
	}
}

// validation writes Okta's E0000001 with its causes.
func validation(w http.ResponseWriter, field string, causes ...string) {
	list := make([]any, len(causes))
	for i, c := range causes {
		list[i] = map[string]any{"errorSummary": c}
	}
	id := make([]byte, 8)
	rand.Read(id)
	writeJSON(w, 400, map[string]any{"errorCode": "E0000001", "errorSummary": "Api validation failed: " + field, "errorLink": "E0000001",
		"errorId": "oae" + hex.EncodeToString(id), "errorCauses": list})
}

// readProfile reads {"profile": {...}} from the body.
func readProfile(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body struct {
		Profile map[string]any `json:"profile"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		apiError(w, 400, "E0000003", "The request body was not well-formed.")
		return nil, false
	}
	if body.Profile == nil {
		body.Profile = map[string]any{}
	}
	return body.Profile, true
}

func newID(prefix string) string {
	b := make([]byte, 9)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)[:17]
}

// checkProfile refuses a profile without the base schema's required
// attributes, or with a login another user has.
func (o *Org) checkProfile(w http.ResponseWriter, p map[string]any, self string) bool {
	var causes []string
	for _, k := range []string{"login", "email", "firstName", "lastName"} {
		if v, _ := p[k].(string); strings.TrimSpace(v) == "" {
			causes = append(causes, k+": The field cannot be left blank")
		}
	}
	login, _ := p["login"].(string)
	for id, u := range o.users {
		if l, _ := u.Profile["login"].(string); id != self && login != "" && strings.EqualFold(l, login) {
			causes = append(causes, "login: An object with this field already exists in the current organization")
		}
	}
	if len(causes) > 0 {
		validation(w, "login", causes...)
		return false
	}
	return true
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	p, ok := readProfile(w, r)
	if !ok {
		return
	}
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.checkProfile(w, p, "") {
		return
	}
	status := StatusActive
	if r.URL.Query().Get("activate") == "false" {
		status = StatusStaged
	}
	now := time.Now().UTC()
	u := &User{ID: newID("00u"), Status: status, Created: now, LastUpdated: now, Profile: p}
	o.users[u.ID] = u
	o.everyone().Members = append(o.everyone().Members, u.ID)
	writeJSON(w, 200, userJSON(r, u))
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, id string, replace bool) {
	p, ok := readProfile(w, r)
	if !ok {
		return
	}
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.userOr404(w, id)
	if !ok {
		return
	}
	next := p
	if !replace { // POST is a partial update: the attributes sent change
		next = make(map[string]any, len(u.Profile)+len(p))
		for k, v := range u.Profile {
			next[k] = v
		}
		for k, v := range p {
			if v == nil {
				delete(next, k)
			} else {
				next[k] = v
			}
		}
	}
	if !o.checkProfile(w, next, id) {
		return
	}
	u.Profile, u.LastUpdated = next, time.Now().UTC()
	writeJSON(w, 200, userJSON(r, u))
}

// lifecycle applies a status change as Okta allows it: activate a STAGED or
// PROVISIONED user, suspend an ACTIVE one, unsuspend a SUSPENDED one,
// deactivate any but a DEPROVISIONED one.
func (s *Server) lifecycle(w http.ResponseWriter, r *http.Request, id, op string) {
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.userOr404(w, id)
	if !ok {
		return
	}
	var next string
	var allowed bool
	switch op {
	case "activate":
		next, allowed = StatusActive, u.Status == StatusStaged || u.Status == StatusProvisioned || u.Status == StatusDeprovisioned
	case "deactivate":
		next, allowed = StatusDeprovisioned, u.Status != StatusDeprovisioned
	case "suspend":
		next, allowed = StatusSuspended, u.Status == StatusActive
	case "unsuspend":
		next, allowed = StatusActive, u.Status == StatusSuspended
	default:
		apiError(w, 404, "E0000007", "Not found: Resource not found: lifecycle/"+op)
		return
	}
	if !allowed {
		apiError(w, 400, "E0000001", fmt.Sprintf("Api validation failed: cannot %s a user whose status is %s", op, u.Status))
		return
	}
	u.Status, u.LastUpdated = next, time.Now().UTC()
	writeJSON(w, 200, map[string]any{})
}

// deleteUser deactivates a user first, as Okta does; a DEPROVISIONED user
// is deleted, and leaves every group.
func (s *Server) deleteUser(w http.ResponseWriter, id string) {
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.userOr404(w, id)
	if !ok {
		return
	}
	if u.Status != StatusDeprovisioned {
		u.Status, u.LastUpdated = StatusDeprovisioned, time.Now().UTC()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	delete(o.users, id)
	for _, g := range o.groups {
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == id })
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	p, ok := readProfile(w, r)
	if !ok {
		return
	}
	name, desc, ok := groupProfile(w, p)
	if !ok {
		return
	}
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	g := &Group{ID: newID("00g"), Type: "OKTA_GROUP", Name: name, Description: desc}
	o.putGroup(g)
	writeJSON(w, 200, groupJSON(r, g, false))
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request, id string) {
	p, ok := readProfile(w, r)
	if !ok {
		return
	}
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	g, ok := o.editableGroup(w, id)
	if !ok {
		return
	}
	name, desc, ok := groupProfile(w, p)
	if !ok {
		return
	}
	g.Name, g.Description = name, desc
	writeJSON(w, 200, groupJSON(r, g, false))
}

func (s *Server) deleteGroup(w http.ResponseWriter, id string) {
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.editableGroup(w, id); !ok {
		return
	}
	delete(o.groups, id)
	o.order = slices.DeleteFunc(o.order, func(x string) bool { return x == id })
	w.WriteHeader(http.StatusNoContent)
}

// membership adds (add) or removes a user of an OKTA_GROUP; both are
// idempotent, as Okta's are.
func (s *Server) membership(w http.ResponseWriter, gid, uid string, add bool) {
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	g, ok := o.editableGroup(w, gid)
	if !ok {
		return
	}
	if _, ok := o.userOr404(w, uid); !ok {
		return
	}
	has := slices.Contains(g.Members, uid)
	switch {
	case add && !has:
		g.Members = append(g.Members, uid)
	case !add && has:
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == uid })
	}
	w.WriteHeader(http.StatusNoContent)
}

func notFound(w http.ResponseWriter, id, kind string) {
	apiError(w, 404, "E0000007", "Not found: Resource not found: "+id+" ("+kind+")")
}

// groupProfile reads a group's name (required) and description.
func groupProfile(w http.ResponseWriter, p map[string]any) (name, desc string, ok bool) {
	name, _ = p["name"].(string)
	desc, _ = p["description"].(string)
	if strings.TrimSpace(name) == "" {
		validation(w, "profile.name", "name: The field cannot be left blank")
		return "", "", false
	}
	return name, desc, true
}

// userOr404 returns a user, or answers 404; o.mu is held.
func (o *Org) userOr404(w http.ResponseWriter, id string) (*User, bool) {
	u, ok := o.users[id]
	if !ok {
		notFound(w, id, "User")
	}
	return u, ok
}

// editableGroup returns a group the API may change, or answers 404, or
// 403 for a BUILT_IN or APP_GROUP group (Everyone; an application's), as
// Okta does; o.mu is held.
func (o *Org) editableGroup(w http.ResponseWriter, id string) (*Group, bool) {
	g, ok := o.groups[id]
	switch {
	case !ok:
		notFound(w, id, "UserGroup")
		return nil, false
	case g.Type != "OKTA_GROUP":
		apiError(w, 403, "E0000006", "You do not have permission to perform the requested action")
		return nil, false
	}
	return g, true
}
