// Groups: the endpoints, and how a directory group looks in SCIM.

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

// groupResource is a Group as clients send it.
type groupResource struct {
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId"`
	Description string `json:"description"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

// readGroup reads a Group body, which must name the group.
func readGroup(r *http.Request) (*groupResource, error) {
	var in groupResource
	if err := readBody(r, &in); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		return nil, invalidValue("displayName is required")
	}
	return &in, nil
}

// memberValues lists the member ids the body gives.
func (in *groupResource) memberValues() []string {
	out := make([]string, 0, len(in.Members))
	for _, m := range in.Members {
		out = append(out, m.Value)
	}
	return out
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

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	in, err := readGroup(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids, err := memberIDs(in.memberValues())
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
		case vf != nil: // members[value eq "id"]; the type is checked before anything is read
			c, ok := vf.(*filter.Compare)
			if !ok || !strings.EqualFold(c.Path.Name, "value") || c.Op != "eq" || op.Op != "remove" {
				s.fail(w, r, invalidPath("%s: only remove with members[value eq \"id\"] is supported", op.Path))
				return
			}
			v, ok := c.Value.(string)
			if !ok {
				s.fail(w, r, invalidPath("%s: the member id must be a string", op.Path))
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
	if _, err := s.applyGroupChange(r, g, upd, add, remove, replaceAll || removeAll); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// applyGroupChange renames and changes members (by user id) in one
// transaction; with replace, the members become exactly add. With If-Match
// the change applies only to the version the client named. It returns the
// group as changed.
func (s *Server) applyGroupChange(r *http.Request, g *usersync.Group, upd usersync.GroupUpdate, add, remove []string, replace bool) (*usersync.Group, error) {
	ch := usersync.GroupChange{GroupUpdate: upd, ReplaceMembers: replace}
	var err error
	if ch.Add, err = memberIDs(add); err != nil {
		return nil, err
	}
	if ch.Remove, err = memberIDs(remove); err != nil {
		return nil, err
	}
	var expect int64
	if r.Header.Get("If-Match") != "" {
		expect = g.Version
	}
	next, err := s.dir.ChangeGroup(r.Context(), g.ID, ch, expect)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND && strings.HasPrefix(usersync.ErrorMessage(err), "user ") {
		return nil, invalidValue("%s", usersync.ErrorMessage(err)) // a member that does not exist
	}
	return next, err // a taken name is ECONFLICT: fail answers 409 uniqueness
}

// putGroup replaces a group's name, externalId, description and members.
func (s *Server) putGroup(w http.ResponseWriter, r *http.Request) {
	g := s.findGroup(w, r)
	if g == nil || !ifMatch(w, r, g.Version) {
		return
	}
	in, err := readGroup(r)
	if err != nil {
		s.fail(w, r, err)
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
	next, err := s.applyGroupChange(r, g, upd, in.memberValues(), nil, true)
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
