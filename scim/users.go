// Users: the endpoints, and how a directory user looks in SCIM.

package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// readUser reads a User body into a doc (see readUserDoc).
func readUser(r *http.Request) (doc, error) {
	var in map[string]any
	if err := readBody(r, &in); err != nil {
		return nil, err
	}
	return readUserDoc(in)
}

// newUser is the directory user a doc makes: a regular SSO user owned by
// SCIM, its profile what the doc holds beyond the directory's fields.
func newUser(d doc) (*usersync.User, userFields, error) {
	f, profile, err := split(d)
	if err != nil {
		return nil, f, err
	}
	u := &usersync.User{Username: f.UserName, Email: f.Email, FirstName: f.GivenName, LastName: f.FamilyName,
		Enabled: f.Active, Type: usersync.UserRegular, AuthMethod: usersync.AuthSSO,
		Source: SourceSCIM, SourceID: f.ExternalID, Attributes: f.Attrs, Profile: profile}
	return u, f, nil
}

// checkEmail enforces SCIM_REQUIRE_EMAIL.
func (s *Server) checkEmail(r *http.Request, f userFields) error {
	if f.Email != "" {
		return nil
	}
	req, err := s.dir.Setting(r.Context(), "SCIM_REQUIRE_EMAIL")
	if err != nil || !req.Bool() {
		return err
	}
	if f.InvalidEmail != "" {
		return invalidValue("SCIM_REQUIRE_EMAIL is Y and %q is not a valid email address (the work email, else the primary, else the first is used)", f.InvalidEmail)
	}
	return invalidValue("SCIM_REQUIRE_EMAIL is Y: the user needs an email (emails[type eq \"work\"].value)")
}

// userJSON is a user's SCIM resource; groups are the user's memberships
// (nil: not read, leave the attribute out).
func (s *Server) userJSON(r *http.Request, u *usersync.User, prefix string, groups []usersync.Membership) map[string]any {
	id, root := strconv.FormatInt(u.ID, 10), s.root(r)
	out := view(u, prefix)
	out["id"] = id
	out["meta"] = map[string]any{"resourceType": "User", "created": u.CreatedAt.Format(time.RFC3339Nano), "lastModified": u.UpdatedAt.Format(time.RFC3339Nano),
		"location": root + "/Users/" + id, "version": etag(u.Version)}
	out["schemas"] = []string{SchemaUser}
	if _, ok := out[SchemaEnterprise]; ok {
		out["schemas"] = []string{SchemaUser, SchemaEnterprise}
	}
	if len(groups) > 0 {
		list := make([]any, 0, len(groups))
		for _, m := range groups {
			gid := groupSCIMID(m.GroupID)
			typ := "indirect"
			if m.Direct {
				typ = "direct"
			}
			list = append(list, map[string]any{"value": gid, "$ref": root + "/Groups/" + gid, "display": m.GroupName, "type": typ})
		}
		out["groups"] = list
	}
	return out
}

// wantsGroups reports whether a response shows users' groups, so that
// they are read only then.
func wantsGroups(r *http.Request) bool { return !excluded(r, "groups") }

// membershipsOf reads the groups of the users in one query, when asked.
func (s *Server) membershipsOf(r *http.Request, users []*usersync.User) (map[int64][]usersync.Membership, error) {
	if !wantsGroups(r) || len(users) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return s.dir.MembershipsOf(r.Context(), ids)
}

// oneUserJSON is userJSON with the user's groups read.
func (s *Server) oneUserJSON(r *http.Request, u *usersync.User, prefix string) (map[string]any, error) {
	ms, err := s.membershipsOf(r, []*usersync.User{u})
	if err != nil {
		return nil, err
	}
	return s.userJSON(r, u, prefix, ms[u.ID]), nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	lq, err := readList(r.URL.Query(), userSortFields, "username")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := usersync.UserFilter{Offset: lq.start - 1, Limit: lq.count, Order: lq.order, After: lq.after, WithMemberships: wantsGroups(r)}
	if lq.cursor {
		f.Offset = 0
	}
	if lq.filter != "" {
		e, err := filter.Parse(lq.filter)
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
	if lq.count == 0 {
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
		resources = append(resources, project(r, s.userJSON(r, u, sd.prefix, u.Memberships)))
	}
	next := ""
	if n := len(users); n > 0 {
		last := users[n-1]
		next = lq.nextCursor(n == lq.count, last.SortValue(lq.sortField), last.ID)
	}
	lq.writePage(w, total, resources, next)
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
	body, err := s.oneUserJSON(r, u, sd.prefix)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, 200, project(r, body))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	d, err := readUser(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, f, err := newUser(d)
	if err == nil {
		err = s.checkEmail(r, f)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A soft-deleted user keeps its userName as its client sees it
	// (scimName): another user may not take it, or a filter would find
	// two and the first could never be restored. The same user sent again
	// (its externalId), as Okta re-sends a user it deactivated, is that
	// user reactivated.
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if old, err := s.softDeletedNamed(r, sd, u.Username, 0); err != nil {
		s.fail(w, r, err)
		return
	} else if old != nil {
		if u.SourceID != "" && old.Source == SourceSCIM && old.SourceID == u.SourceID {
			w.Header().Set("Location", s.root(r)+"/Users/"+strconv.FormatInt(old.ID, 10))
			s.writeUser(w, r, old, func(*usersync.User, softDelete) (doc, error) { return d, nil }, http.StatusCreated)
			return
		}
		s.fail(w, r, takenBySoftDeleted(u.Username, old))
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
	writeJSON(w, http.StatusCreated, project(r, s.userJSON(r, u, "", nil))) // new: no groups, no soft-delete prefix
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil || !ifMatch(w, r, u.Version) {
		return
	}
	if err := refuseSelf(r, u, "delete"); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.dir.DeleteUser(r.Context(), u.ID, expectedVersion(r, u.Version)); err != nil {
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
	s.writeUser(w, r, u, func(u *usersync.User, sd softDelete) (doc, error) {
		d := view(u, sd.prefix)
		for _, op := range req.Operations {
			if err := patchDoc(d, op); err != nil {
				return nil, err
			}
		}
		return d, nil
	}, http.StatusOK)
}

func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	u := s.findUser(w, r)
	if u == nil || !ifMatch(w, r, u.Version) {
		return
	}
	d, err := readUser(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, _, err := split(d); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeUser(w, r, u, func(*usersync.User, softDelete) (doc, error) { return d, nil }, http.StatusOK)
}

// softDeletedNamed returns the soft-deleted user (other than except) that
// its SCIM client sees as name, or nil.
func (s *Server) softDeletedNamed(r *http.Request, sd softDelete, name string, except int64) (*usersync.User, error) {
	if sd.prefix == "" {
		return nil, nil
	}
	old, err := s.dir.FindUserByUsername(r.Context(), sd.prefix+name)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND || (err == nil && (!old.SoftDeleted || old.ID == except)) {
		return nil, nil
	}
	return old, err
}

func takenBySoftDeleted(name string, old *usersync.User) error {
	return &Error{Status: http.StatusConflict, ScimType: "uniqueness", Detail: fmt.Sprintf("userName %q belongs to user %d, which a SCIM client deactivated (soft delete): "+
		"reactivate it (PATCH active true, or POST it again with its externalId) or delete it first; a second user of that name is refused (RFC 7643 §4.1.1)", name, old.ID)}
}

// errSoftDelete stops a user write that is a soft delete with
// SCIM_REMOVE_USER_ON_SOFT_DELETE=Y: the user is deleted instead.
var errSoftDelete = errors.New("soft delete removes the user")

// writeUser saves the doc that next computes from the user as stored
// (inside the write, so concurrent PATCHes of one user never lose each
// other's changes) and answers the request. With If-Match the write
// applies only to the version the client named.
func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u *usersync.User, next func(*usersync.User, softDelete) (doc, error), status int) {
	sd, err := s.softDelete(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	expect := expectedVersion(r, u.Version)
	saved, err := s.dir.ModifyUser(r.Context(), u.ID, expect, func(cur *usersync.User) (usersync.UserUpdate, error) {
		d, err := next(cur, sd)
		if err != nil {
			return usersync.UserUpdate{}, err
		}
		f, profile, err := split(d)
		if err != nil {
			return usersync.UserUpdate{}, err
		}
		if err := s.checkEmail(r, f); err != nil {
			return usersync.UserUpdate{}, err
		}
		if !f.Active && cur.Enabled {
			if err := refuseSelf(r, cur, "disable"); err != nil {
				return usersync.UserUpdate{}, err
			}
			if sd.remove {
				return usersync.UserUpdate{}, errSoftDelete
			}
		}
		upd := updateFor(cur, f, sd.prefix)
		if upd.Username != nil && (upd.SoftDeleted == nil || !*upd.SoftDeleted) && !cur.SoftDeleted {
			if old, err := s.softDeletedNamed(r, sd, *upd.Username, cur.ID); err != nil {
				return usersync.UserUpdate{}, err
			} else if old != nil {
				return usersync.UserUpdate{}, takenBySoftDeleted(*upd.Username, old)
			}
		}
		if !sameProfile(cur.Profile, profile) {
			if profile == nil {
				profile = map[string]any{}
			}
			upd.Profile = &profile
		}
		return upd, nil
	})
	if errors.Is(err, errSoftDelete) {
		if err = s.dir.DeleteUser(r.Context(), u.ID, expect); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if err != nil {
		s.fail(w, r, err) // a taken userName is ECONFLICT: 409 uniqueness
		return
	}
	body, err := s.oneUserJSON(r, saved, sd.prefix)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(saved.Version))
	writeJSON(w, status, project(r, body))
}

// updateFor is the update that gives u the fields f. Deactivating an
// active user is a soft delete: the user is disabled, marked soft-deleted,
// and its username gets the prefix; reactivating it restores the name. Any
// other write keeps the user's state: a soft-deleted user stays so (its
// name prefixed), and a user disabled otherwise is only disabled. Of the
// custom attributes, only the enterprise extension's are SCIM's to change.
func updateFor(u *usersync.User, st userFields, prefix string) usersync.UserUpdate {
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
	for _, a := range EnterpriseSchema.Attributes {
		v, ok := st.Attrs[a.Name]
		switch {
		case ok && u.Attributes[a.Name] != v:
			upd.Attributes[a.Name] = &v
		case !ok && u.Attributes[a.Name] != "":
			upd.Attributes[a.Name] = nil
		}
	}
	return upd
}
