// Users: the endpoints, and how a directory user looks in SCIM.

package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// flexBool reads true/false and Entra's "True"/"False" strings.
type flexBool struct {
	set, v bool
}

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		b.v = x
	case string:
		p, err := strconv.ParseBool(strings.ToLower(x))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", x)
		}
		b.v = p
	default:
		return fmt.Errorf("%s is not a boolean", data)
	}
	b.set = true
	return nil
}

// userResource is a User as clients send it; unknown attributes are ignored.
type userResource struct {
	Schemas    []string `json:"schemas"`
	ExternalID string   `json:"externalId"`
	UserName   string   `json:"userName"`
	Active     flexBool `json:"active"`
	Name       struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Emails []struct {
		Value   string   `json:"value"`
		Type    string   `json:"type"`
		Primary flexBool `json:"primary"`
	} `json:"emails"`
	Enterprise map[string]any `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

// workEmail picks the work email, else the primary one, else the first.
func (in *userResource) workEmail() string {
	for _, e := range in.Emails {
		if strings.EqualFold(e.Type, "work") {
			return e.Value
		}
	}
	for _, e := range in.Emails {
		if e.Primary.v {
			return e.Value
		}
	}
	if len(in.Emails) > 0 {
		return in.Emails[0].Value
	}
	return ""
}

// toUser maps the resource to a directory user: a regular SSO user owned
// by SCIM; enterprise extension attributes become custom attributes.
func (in *userResource) toUser() (*usersync.User, error) {
	if in.UserName == "" {
		return nil, &Error{Status: 400, ScimType: "invalidValue", Detail: "userName is required"}
	}
	if utf8.RuneCountInString(in.UserName) > MaxUserName {
		return nil, &Error{Status: 400, ScimType: "invalidValue", Detail: fmt.Sprintf("userName is longer than %d characters", MaxUserName)}
	}
	email := in.workEmail()
	if email == "" {
		return nil, &Error{Status: 400, ScimType: "invalidValue", Detail: "a work email is required (emails[type eq \"work\"].value)"}
	}
	u := &usersync.User{Username: in.UserName, Email: email, FirstName: in.Name.GivenName, LastName: in.Name.FamilyName,
		Enabled: !in.Active.set || in.Active.v, Type: usersync.UserRegular, AuthMethod: usersync.AuthSSO,
		Source: SourceSCIM, SourceID: in.ExternalID, Attributes: map[string]string{}}
	for k, v := range in.Enterprise {
		switch x := v.(type) {
		case string:
			u.Attributes[k] = x
		case float64, bool:
			u.Attributes[k] = fmt.Sprint(x)
		case map[string]any: // manager: {"value": id, "displayName": …}
			if id, ok := x["value"].(string); ok {
				u.Attributes[k] = id
			}
		}
	}
	return u, nil
}

func (s *Server) userJSON(r *http.Request, u *usersync.User, prefix string) map[string]any {
	id := strconv.FormatInt(u.ID, 10)
	out := map[string]any{
		"schemas":     []string{SchemaUser},
		"id":          id,
		"userName":    scimName(u, prefix),
		"name":        map[string]any{"givenName": u.FirstName, "familyName": u.LastName, "formatted": strings.TrimSpace(u.FirstName + " " + u.LastName)},
		"displayName": strings.TrimSpace(u.FirstName + " " + u.LastName),
		"active":      u.Enabled,
		"meta": map[string]any{"resourceType": "User", "created": u.CreatedAt.Format(time.RFC3339Nano), "lastModified": u.UpdatedAt.Format(time.RFC3339Nano),
			"location": s.root(r) + "/Users/" + id, "version": etag(u.Version)},
	}
	if u.Source == SourceSCIM && u.SourceID != "" {
		out["externalId"] = u.SourceID // the SCIM client's own id for users it owns
	}
	if u.Email != "" {
		out["emails"] = []map[string]any{{"value": u.Email, "type": "work", "primary": true}}
	}
	if len(u.Attributes) > 0 {
		ext := map[string]any{}
		for k, v := range u.Attributes {
			ext[k] = v
		}
		out[SchemaEnterprise] = ext
		out["schemas"] = []string{SchemaUser, SchemaEnterprise}
	}
	return out
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, count, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := usersync.UserFilter{Offset: start - 1, Limit: count}
	if v := q.Get("filter"); v != "" {
		e, err := filter.Parse(v)
		if err != nil {
			writeError(w, &Error{Status: 400, ScimType: "invalidFilter", Detail: err.Error()})
			return
		}
		if f.Where, err = userCond(e, sd.prefix); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	var users []*usersync.User
	var total int
	if count == 0 {
		f.Limit = 1 // only the total is asked for
		_, total, err = s.dir.FindUsers(r.Context(), f)
	} else {
		users, total, err = s.dir.FindUsers(r.Context(), f)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resources := make([]map[string]any, 0, len(users))
	for _, u := range users {
		resources = append(resources, project(r, s.userJSON(r, u, sd.prefix)))
	}
	writeList(w, start, total, resources)
}

func (s *Server) findUser(w http.ResponseWriter, r *http.Request) *usersync.User {
	return find(s, w, r, "user", s.dir.FindUserByID)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil {
		return
	}
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, 200, project(r, s.userJSON(r, u, sd.prefix)))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var in userResource
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := in.toUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.dir.CreateUser(r.Context(), u); err != nil {
		if usersync.ErrorCode(err) == usersync.ECONFLICT {
			writeError(w, &Error{Status: 409, ScimType: "uniqueness", Detail: "userName " + strconv.Quote(u.Username) + " is taken"})
			return
		}
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", s.root(r)+"/Users/"+strconv.FormatInt(u.ID, 10))
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, http.StatusCreated, s.userJSON(r, u, "")) // created enabled: no soft-delete prefix
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil {
		return
	}
	if err := s.dir.DeleteUser(r.Context(), u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// softDelete is what active=false means, from the settings.
type softDelete struct {
	remove bool   // delete the user
	prefix string // else disable it and prefix its username
}

func (s *Server) softDelete(r *http.Request) (softDelete, error) {
	rm, err := s.dir.Setting(r.Context(), "SCIM_REMOVE_USER_ON_SOFT_DELETE")
	if err != nil {
		return softDelete{}, err
	}
	p, err := s.dir.Setting(r.Context(), "SCIM_SOFT_DELETE_PREFIX")
	return softDelete{remove: rm.Bool(), prefix: p.Value}, err
}

// scimName is the userName a SCIM client sees: a soft-deleted user's name
// without the prefix that marks it in the directory, so that the client
// finds the user it disabled by the name it gave it. A user disabled any
// other way (by a pull, the CLI, or created inactive) keeps its name.
func scimName(u *usersync.User, prefix string) string {
	if u.SoftDeleted && prefix != "" {
		return strings.TrimPrefix(u.Username, prefix)
	}
	return u.Username
}

// stateOf is what SCIM sees of a user: a soft-deleted user's name without
// the prefix it got when it was disabled.
func stateOf(u *usersync.User, prefix string) userState {
	st := userState{UserName: scimName(u, prefix), GivenName: u.FirstName, FamilyName: u.LastName, Email: u.Email,
		Active: u.Enabled, Attrs: map[string]string{}}
	if u.Source == SourceSCIM {
		st.ExternalID = u.SourceID
	}
	for k, v := range u.Attributes {
		st.Attrs[k] = v
	}
	return st
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil || !ifMatch(w, r, u.Version) {
		return
	}
	req, err := readPatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeUser(w, r, u, func(u *usersync.User, sd softDelete) (userState, error) {
		st := stateOf(u, sd.prefix)
		for _, op := range req.Operations {
			if err := st.apply(op); err != nil {
				return st, err
			}
		}
		return st, nil
	})
}

func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil || !ifMatch(w, r, u.Version) {
		return
	}
	var in userResource
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	next, err := in.toUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeUser(w, r, u, func(*usersync.User, softDelete) (userState, error) {
		return userState{UserName: next.Username, ExternalID: next.SourceID, GivenName: next.FirstName, FamilyName: next.LastName,
			Email: next.Email, Active: next.Enabled, Attrs: next.Attributes}, nil
	})
}

// errSoftDelete stops a user write that is a soft delete with
// SCIM_REMOVE_USER_ON_SOFT_DELETE=Y: the user is deleted instead.
var errSoftDelete = errors.New("soft delete removes the user")

// writeUser saves the state that state computes from the user as stored
// (inside the write, so concurrent PATCHes of one user never lose each
// other's changes) and answers the request. With If-Match the write
// applies only to the version the client named.
func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u *usersync.User, state func(*usersync.User, softDelete) (userState, error)) {
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var expect int64
	if r.Header.Get("If-Match") != "" {
		expect = u.Version
	}
	next, err := s.dir.ModifyUser(r.Context(), u.ID, expect, func(cur *usersync.User) (usersync.UserUpdate, error) {
		st, err := state(cur, sd)
		if err != nil {
			return usersync.UserUpdate{}, err
		}
		if !st.Active && cur.Enabled && sd.remove {
			return usersync.UserUpdate{}, errSoftDelete
		}
		return updateFor(cur, st, sd.prefix), nil
	})
	if errors.Is(err, errSoftDelete) {
		if err = s.dir.DeleteUser(r.Context(), u.ID); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if err != nil {
		s.fail(w, r, err) // a taken userName is ECONFLICT: 409 uniqueness
		return
	}
	w.Header().Set("ETag", etag(next.Version))
	writeJSON(w, 200, s.userJSON(r, next, sd.prefix))
}

// updateFor is the update that turns u into st. Deactivating an active
// user is a soft delete: the user is disabled, marked soft-deleted, and its
// username gets the prefix; reactivating it restores the name. Any other
// write keeps the user's state: a soft-deleted user stays so (its name
// prefixed), and a user disabled otherwise is only disabled.
func updateFor(u *usersync.User, st userState, prefix string) usersync.UserUpdate {
	soft := u.SoftDeleted
	switch {
	case !st.Active && u.Enabled: // the soft-delete transition
		soft = true
	case st.Active:
		soft = false
	}
	name := st.UserName // as the client sees it: without the prefix (scimName)
	if soft {
		name = prefix + name
	}
	upd := usersync.UserUpdate{Attributes: map[string]*string{}}
	if soft != u.SoftDeleted {
		upd.SoftDeleted = &soft
	}
	if name != u.Username {
		upd.Username = &name
	}
	if st.Email != u.Email {
		upd.Email = &st.Email
	}
	if st.GivenName != u.FirstName {
		upd.FirstName = &st.GivenName
	}
	if st.FamilyName != u.LastName {
		upd.LastName = &st.FamilyName
	}
	if st.Active != u.Enabled {
		upd.Enabled = &st.Active
	}
	if u.Source == SourceSCIM && st.ExternalID != u.SourceID {
		upd.SourceID = &st.ExternalID
	} else if u.Source != SourceSCIM && st.ExternalID != "" {
		// A SCIM client that gives a user its id takes the user over.
		src := SourceSCIM
		upd.Source, upd.SourceID = &src, &st.ExternalID
	}
	for k, v := range st.Attrs {
		if u.Attributes[k] != v {
			v := v
			upd.Attributes[k] = &v
		}
	}
	for k := range u.Attributes {
		if _, ok := st.Attrs[k]; !ok {
			upd.Attributes[k] = nil
		}
	}
	return upd
}
