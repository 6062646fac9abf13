package scim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// groupAttrs maps SCIM Group attributes (lower case) to group fields and
// whether they compare case-exactly.
var groupAttrs = map[string]struct {
	field string
	exact bool
}{
	"displayname": {"name", false}, "externalid": {"alias", true}, "id": {"id", true},
	"meta.created": {"createdAt", false}, "meta.lastmodified": {"updatedAt", false},
	"members": {"member", true}, "members.value": {"member", true},
}

// groupCond translates a SCIM filter on Groups into a directory condition.
func groupCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			return groupMatch(e.Path, "pr", nil)
		case *filter.Compare:
			return groupMatch(e.Path, e.Op, e.Value)
		case *filter.ValuePath: // members[value eq "id"]
			if !strings.EqualFold(e.Path.Name, "members") || e.Path.Sub != "" || (e.Path.URI != "" && !strings.EqualFold(e.Path.URI, SchemaGroup)) {
				return nil, invalidFilter("value filters apply to members only here, not %s", e.Path)
			}
			return memberCond(e.Filter)
		}
		return nil, invalidFilter("groups filter on displayName, externalId, id, members and meta dates")
	})
}

// memberCond translates the filter inside members[…]: value is a user id;
// type is always "User" (groups hold no groups here).
func memberCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			if k := strings.ToLower(e.Path.Name); k == "value" || k == "type" || k == "display" {
				return groupMatch(filter.Path{Name: "members"}, "pr", nil)
			}
		case *filter.Compare:
			switch strings.ToLower(e.Path.Name) {
			case "value":
				return groupMatch(filter.Path{Name: "members"}, e.Op, e.Value)
			case "type":
				s, ok := e.Value.(string)
				if !ok || e.Op != "eq" {
					return nil, invalidFilter("members type compares with eq and a string")
				}
				if !strings.EqualFold(s, "User") {
					return usersync.Always(false), nil
				}
				return groupMatch(filter.Path{Name: "members"}, "pr", nil)
			}
		}
		return nil, invalidFilter("members filters on value (a user id) and type")
	})
}

func groupMatch(p filter.Path, op string, v any) (usersync.Cond, error) {
	key := strings.ToLower(p.Name)
	if p.Sub != "" {
		key += "." + strings.ToLower(p.Sub)
	}
	if p.URI != "" && !strings.EqualFold(p.URI, SchemaGroup) {
		return nil, invalidFilter("unknown schema %q", p.URI)
	}
	a, ok := groupAttrs[key]
	if !ok {
		return nil, invalidFilter("%s is not a group attribute usersync filters on", p)
	}
	switch a.field {
	case "id", "member":
		if a.field == "member" && op != "eq" && op != "pr" {
			return nil, invalidFilter("%s is a set of user ids: only eq and pr test it, not %s", p, op)
		}
		s, ok := v.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if op != "pr" && (!ok || err != nil) {
			return usersync.Always(op == "ne"), nil
		}
		v = float64(n)
	case "createdAt", "updatedAt":
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if op != "pr" && err != nil {
			return nil, invalidFilter("%s compares with an RFC 3339 date-time, not %v", p, v)
		}
		v = t
	}
	m := usersync.Match{Field: a.field, Op: usersync.MatchOp(op), Value: v, CaseExact: a.exact}
	if err := usersync.ValidateFields(m, usersync.GroupMatchFields); err != nil {
		return nil, invalidFilter("%s", usersync.ErrorMessage(err))
	}
	return m, nil
}

// excluded reports whether a request's attributes/excludedAttributes leave
// out attr (only "members" is worth leaving out: it can be huge).
func excluded(r *http.Request, attr string) bool {
	q := r.URL.Query()
	has := func(list string) bool {
		for _, a := range strings.Split(list, ",") {
			a = strings.TrimSpace(a)
			a = strings.TrimPrefix(strings.TrimPrefix(a, SchemaGroup+":"), SchemaUser+":")
			if strings.EqualFold(a, attr) {
				return true
			}
		}
		return false
	}
	if v := q.Get("excludedAttributes"); v != "" && has(v) {
		return true
	}
	if v := q.Get("attributes"); v != "" && !has(v) {
		return true
	}
	return false
}

func (s *Server) groupJSON(r *http.Request, g *usersync.Group, withMembers bool) (map[string]any, error) {
	id, root := strconv.FormatInt(g.ID, 10), s.root(r)
	out := map[string]any{
		"schemas": []string{SchemaGroup}, "id": id, "displayName": g.Name,
		"meta": map[string]any{"resourceType": "Group", "created": g.CreatedAt.Format(time.RFC3339Nano), "lastModified": g.UpdatedAt.Format(time.RFC3339Nano),
			"location": root + "/Groups/" + id, "version": etag(g.Version)},
	}
	if g.Alias != "" {
		out["externalId"] = g.Alias
	}
	if g.Description != "" {
		out["description"] = g.Description
	}
	if withMembers {
		users, _, err := s.dir.Members(r.Context(), g.ID, 0, 0)
		if err != nil {
			return nil, err
		}
		members := make([]map[string]any, 0, len(users))
		for _, u := range users {
			uid := strconv.FormatInt(u.ID, 10)
			members = append(members, map[string]any{"value": uid, "display": u.Username, "$ref": root + "/Users/" + uid, "type": "User"})
		}
		out["members"] = members
	}
	return out, nil
}

// groupResource is a Group as clients send it.
type groupResource struct {
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId"`
	Description string `json:"description"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

func memberIDs(values []string) ([]int64, error) {
	ids := make([]int64, 0, len(values))
	for _, v := range values {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidValue("member %q is not a user id of this service", v)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	var in groupResource
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		writeError(w, invalidValue("displayName is required"))
		return
	}
	var values []string
	for _, m := range in.Members {
		values = append(values, m.Value)
	}
	ids, err := memberIDs(values)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// One transaction: the group and its members, or nothing.
	g := &usersync.Group{Name: in.DisplayName, Alias: in.ExternalID, Description: in.Description, Source: SourceSCIM, SourceID: in.ExternalID}
	if err := s.dir.CreateGroup(r.Context(), g, ids...); err != nil {
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			err = invalidValue("%s: members must be users", usersync.ErrorMessage(err))
		}
		s.fail(w, r, err) // a taken displayName is ECONFLICT: 409 uniqueness
		return
	}
	body, err := s.groupJSON(r, g, len(ids) > 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", s.root(r)+"/Groups/"+strconv.FormatInt(g.ID, 10))
	w.Header().Set("ETag", etag(g.Version))
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) findGroup(w http.ResponseWriter, r *http.Request) *usersync.Group {
	return find(s, w, r, "group", s.dir.FindGroupByID)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	g := s.findGroup(w, r)
	if g == nil {
		return
	}
	body, err := s.groupJSON(r, g, !excluded(r, "members"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(g.Version))
	writeJSON(w, 200, project(r, body))
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, count, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := usersync.GroupFilter{Offset: start - 1, Limit: max(count, 1)}
	if v := q.Get("filter"); v != "" {
		e, err := filter.Parse(v)
		if err != nil {
			writeError(w, &Error{Status: 400, ScimType: "invalidFilter", Detail: err.Error()})
			return
		}
		if f.Where, err = groupCond(e); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	groups, total, err := s.dir.FindGroups(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if count == 0 {
		groups = nil
	}
	resources := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		body, err := s.groupJSON(r, g, !excluded(r, "members"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resources = append(resources, project(r, body))
	}
	writeList(w, start, total, resources)
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	g := s.findGroup(w, r)
	if g == nil || !ifMatch(w, r, g.Version) {
		return
	}
	if err := s.dir.DeleteGroup(r.Context(), g.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// memberValues reads a members value: a list of {"value": id} (or one).
func memberValues(raw json.RawMessage) ([]string, error) {
	var list []struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		var one struct {
			Value string `json:"value"`
		}
		if json.Unmarshal(raw, &one) != nil || one.Value == "" {
			return nil, invalidValue("members needs a list of {\"value\": user id}")
		}
		return []string{one.Value}, nil
	}
	out := make([]string, 0, len(list))
	for _, m := range list {
		out = append(out, m.Value)
	}
	return out, nil
}

// patchGroup applies member adds and removes (by value list, by value
// filter, or all), replacements of the member list, and renames.
func (s *Server) patchGroup(w http.ResponseWriter, r *http.Request) {
	g := s.findGroup(w, r)
	if g == nil || !ifMatch(w, r, g.Version) {
		return
	}
	req, err := readPatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var upd usersync.GroupUpdate
	var add, remove []string
	replaceAll, removeAll := false, false
	setString := func(key string, raw json.RawMessage) error {
		v, err := stringValue(raw, key)
		if err != nil {
			return err
		}
		switch strings.ToLower(key) {
		case "displayname":
			if strings.TrimSpace(v) == "" {
				return invalidValue("displayName cannot be empty")
			}
			upd.Name = &v
		case "externalid":
			upd.Alias, upd.SourceID = &v, &v
		case "description":
			upd.Description = &v
		}
		return nil
	}
	for _, op := range req.Operations {
		if op.Path == "" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(op.Value, &obj); err != nil {
				s.fail(w, r, invalidValue("%s without a path needs an object value", op.Op))
				return
			}
			for k, v := range obj {
				if strings.EqualFold(k, "members") {
					vals, err := memberValues(v)
					if err != nil {
						s.fail(w, r, err)
						return
					}
					if op.Op == "replace" {
						replaceAll, add, remove = true, vals, nil
					} else {
						add = append(add, vals...)
					}
					continue
				}
				if err := setString(k, v); err != nil {
					s.fail(w, r, err)
					return
				}
			}
			continue
		}
		path, vf, _, err := filter.ParsePath(op.Path)
		if err != nil {
			s.fail(w, r, invalidPath("path %q: %v", op.Path, err))
			return
		}
		if !strings.EqualFold(path.Name, "members") {
			if op.Op == "remove" {
				if strings.EqualFold(path.Name, "displayName") {
					s.fail(w, r, &Error{Status: 400, ScimType: "mutability", Detail: "displayName is required and cannot be removed"})
					return
				}
				continue // other attributes usersync does not keep
			}
			if err := setString(path.Name, op.Value); err != nil {
				s.fail(w, r, err)
				return
			}
			continue
		}
		switch {
		case vf != nil: // members[value eq "id"]
			c, ok := vf.(*filter.Compare)
			v, _ := c.Value.(string)
			if !ok || !strings.EqualFold(c.Path.Name, "value") || c.Op != "eq" || op.Op != "remove" {
				s.fail(w, r, invalidPath("%s: only remove with members[value eq \"id\"] is supported", op.Path))
				return
			}
			remove = append(remove, v)
		case op.Op == "remove" && len(op.Value) == 0:
			removeAll, add = true, nil
		default:
			vals, err := memberValues(op.Value)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			switch op.Op {
			case "add":
				add = append(add, vals...)
			case "remove":
				remove = append(remove, vals...)
			case "replace":
				replaceAll, add, remove = true, vals, nil
			}
		}
	}
	if err := s.applyGroupChange(r, g, upd, add, remove, replaceAll || removeAll); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// applyGroupChange renames and changes members (by user id) in one
// transaction; with replace, the members become exactly add. With If-Match
// the change applies only to the version the client named.
func (s *Server) applyGroupChange(r *http.Request, g *usersync.Group, upd usersync.GroupUpdate, add, remove []string, replace bool) error {
	ch := usersync.GroupChange{GroupUpdate: upd, ReplaceMembers: replace}
	var err error
	if ch.Add, err = memberIDs(add); err != nil {
		return err
	}
	if ch.Remove, err = memberIDs(remove); err != nil {
		return err
	}
	var expect int64
	if r.Header.Get("If-Match") != "" {
		expect = g.Version
	}
	_, err = s.dir.ChangeGroup(r.Context(), g.ID, ch, expect)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND && strings.HasPrefix(usersync.ErrorMessage(err), "user ") {
		return invalidValue("%s", usersync.ErrorMessage(err)) // a member that does not exist
	}
	return err // a taken name is ECONFLICT: fail answers 409 uniqueness
}

// putGroup replaces a group's name, externalId, description and members.
func (s *Server) putGroup(w http.ResponseWriter, r *http.Request) {
	g := s.findGroup(w, r)
	if g == nil || !ifMatch(w, r, g.Version) {
		return
	}
	var in groupResource
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		writeError(w, invalidValue("displayName is required"))
		return
	}
	upd := usersync.GroupUpdate{}
	if in.DisplayName != g.Name {
		upd.Name = &in.DisplayName
	}
	if in.ExternalID != g.Alias {
		upd.Alias, upd.SourceID = &in.ExternalID, &in.ExternalID
	}
	if in.Description != g.Description {
		upd.Description = &in.Description
	}
	var add []string
	for _, m := range in.Members {
		add = append(add, m.Value)
	}
	if err := s.applyGroupChange(r, g, upd, add, nil, true); err != nil {
		s.fail(w, r, err)
		return
	}
	next, err := s.dir.FindGroupByID(r.Context(), g.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.groupJSON(r, next, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(next.Version))
	writeJSON(w, 200, body)
}

// project applies a request's attributes and excludedAttributes (RFC 7644
// §3.4.2.5) to a resource: id, schemas and meta.resourceType always stay.
// Names are top-level attributes ("name", "emails", "members"), a
// sub-attribute ("name.givenName") or, for the enterprise extension, its
// URN-qualified attributes.
func project(r *http.Request, res map[string]any) map[string]any {
	q := r.URL.Query()
	list := func(v string) []string {
		var out []string
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				a = strings.TrimPrefix(strings.TrimPrefix(a, SchemaUser+":"), SchemaGroup+":")
				out = append(out, a)
			}
		}
		return out
	}
	// top names the top-level attribute a path is in, and whether the path
	// is that whole attribute.
	top := func(a string) (string, bool) {
		if strings.EqualFold(a, SchemaEnterprise) {
			return SchemaEnterprise, true
		}
		if _, ok := enterpriseKey(a); ok {
			return SchemaEnterprise, false
		}
		name, sub, _ := strings.Cut(a, ".")
		return name, sub == ""
	}
	find := func(key string) (string, bool) {
		for k := range res {
			if strings.EqualFold(k, key) {
				return k, true
			}
		}
		return "", false
	}
	if v := q.Get("attributes"); v != "" {
		out := map[string]any{"id": res["id"], "schemas": res["schemas"]}
		for _, a := range list(v) {
			key, _ := top(a)
			if k, ok := find(key); ok {
				out[k] = res[k]
			}
		}
		return out
	}
	if v := q.Get("excludedAttributes"); v != "" {
		for _, a := range list(v) {
			key, whole := top(a)
			if k, ok := find(key); ok && whole && k != "id" && k != "schemas" {
				delete(res, k)
			}
		}
	}
	return res
}
