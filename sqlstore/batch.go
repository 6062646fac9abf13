package sqlstore

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/usersync/usersync"
)

// ApplyBatch applies b in one transaction: groups, then users, then
// memberships. Everything is validated before anything is written; an
// invalid entry fails the whole batch. Entries whose effect is in place
// already write nothing. Updates are optimistic: a user changed by another
// writer between this batch's read and its write is not overwritten
// blindly; the batch runs again on what is stored then.
func (d *DB) ApplyBatch(ctx context.Context, b *usersync.Batch) (*usersync.BatchResult, error) {
	keys, err := validateBatch(b)
	if err != nil {
		return nil, err
	}
	// A writer of another process (PostgreSQL: a SCIM server beside a
	// pull) may change a user between this batch's read and its write: the
	// batch then fails as stale, and runs again reading afresh. It states
	// the result it wants, so a second reading serves as well as the first.
	for try := 1; ; try++ {
		res, err := d.applyBatch(ctx, b, keys)
		if usersync.ErrorCode(err) != usersync.ESTALE || try == staleTries {
			return res, err
		}
	}
}

// staleTries bounds how often a batch that keeps racing other writers runs.
const staleTries = 3

func (d *DB) applyBatch(ctx context.Context, b *usersync.Batch, keys []string) (*usersync.BatchResult, error) {
	var res *usersync.BatchResult
	err := d.update(ctx, func(t *tx) error {
		res = &usersync.BatchResult{}
		groups, err := t.applyGroups(b.Groups, res)
		if err != nil {
			return err
		}
		users, skipped, err := t.applyUsers(b.Users, keys, res)
		if err != nil {
			return err
		}
		if err := t.applyMembers(b.Members, groups, users, skipped, res); err != nil {
			return err
		}
		res.RowsWritten = t.rows
		if len(t.events) > 0 {
			res.RowsWritten += int64(len(t.events)) + 1 // the events and the counter row, written at commit
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// validateBatch checks b and returns its users' username keys, by index.
func validateBatch(b *usersync.Batch) ([]string, error) {
	keys := make([]string, len(b.Users))
	seen := make(map[string]bool, len(b.Users))
	for i := range b.Users {
		u := &b.Users[i].User
		u.Normalize()
		if err := u.Validate(); err != nil {
			return nil, err
		}
		k := usersync.UsernameKey(u.Username)
		if seen[k] {
			return nil, usersync.Errorf(usersync.EINVALID, "batch names user %q twice", u.Username)
		}
		seen[k], keys[i] = true, k
	}
	seen = map[string]bool{}
	for i := range b.Groups {
		g := &b.Groups[i].Group
		g.Normalize()
		if err := g.Validate(); err != nil {
			return nil, err
		}
		k := usersync.GroupNameKey(g.Name)
		if seen[k] {
			return nil, usersync.Errorf(usersync.EINVALID, "batch names group %q twice", g.Name)
		}
		seen[k] = true
	}
	for _, m := range b.Members {
		if m.Group == "" || m.Username == "" {
			return nil, usersync.Errorf(usersync.EINVALID, "batch has a membership change with an empty group or username (%q, %q)", m.Group, m.Username)
		}
	}
	return keys, nil
}

// applyGroups upserts groups and returns every group of the batch by name key.
func (t *tx) applyGroups(ups []usersync.GroupUpsert, res *usersync.BatchResult) (map[string]usersync.ObjectRef, error) {
	out := map[string]usersync.ObjectRef{}
	for i := range ups {
		up := &ups[i]
		key := usersync.GroupNameKey(up.Group.Name)
		old, err := scanGroup(t.queryRow(`SELECT `+groupCols+` FROM groups WHERE name_key = ?`, key))
		switch {
		case err == sql.ErrNoRows && !up.Create:
			res.GroupsSkipped++
			continue
		case err == sql.ErrNoRows:
			g := up.Group
			if err := t.createGroup(&g); err != nil {
				return nil, err
			}
			res.GroupsCreated++
			out[key] = groupRef(&g)
			continue
		case err != nil:
			return nil, t.d.wrapErr("read group", err)
		}
		next := *old
		next.Attributes = mergeAttrs(old.Attributes, up.Group.Attributes, up.Update&usersync.FieldGroupAttributes != 0)
		if up.Update&usersync.FieldDescription != 0 {
			next.Description = up.Group.Description
		}
		if up.Update&usersync.FieldAlias != 0 {
			next.Alias = up.Group.Alias
		}
		if up.Update&usersync.FieldGroupSource != 0 {
			next.Source, next.SourceID = up.Group.Source, up.Group.SourceID
		}
		before := t.rows
		if err := t.saveGroup(old, &next); err != nil {
			return nil, err
		}
		if t.rows > before {
			res.GroupsUpdated++
		} else {
			res.GroupsUnchanged++
		}
		out[key] = groupRef(&next)
	}
	return out, nil
}

// mergeAttrs returns cur with upd merged in when merge is set: an empty
// value removes the key.
func mergeAttrs(cur, upd map[string]string, merge bool) map[string]string {
	if !merge || len(upd) == 0 {
		return cur
	}
	out := make(map[string]string, len(cur)+len(upd))
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range upd {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// applyUsers upserts users. It returns every user of the batch that exists
// afterwards, by username key, and the keys of users skipped as missing.
//
// Users to create by name are inserted without reading first, under a
// savepoint: a puller creates only users it found missing, so reading them
// again is a query per user for nothing. When one of them exists after
// all (made meanwhile, or the caller did not look), the savepoint is
// rolled back and they are read and placed like the others.
func (t *tx) applyUsers(ups []usersync.UserUpsert, keys []string, res *usersync.BatchResult) (map[string]usersync.ObjectRef, map[string]bool, error) {
	var byName []string
	var byID []int64
	var fresh []int // creates by name, inserted first
	for i := range ups {
		switch {
		case ups[i].ID != 0:
			byID = append(byID, ups[i].ID)
		case ups[i].Create:
			fresh = append(fresh, i)
		default:
			byName = append(byName, keys[i])
		}
	}
	existing, err := t.usersByKey(byName)
	if err != nil {
		return nil, nil, err
	}
	withID, err := t.usersByID(byID)
	if err != nil {
		return nil, nil, err
	}
	if t.d.hookBatchRead != nil {
		t.d.hookBatchRead()
	}
	if err := t.parkRenamed(ups, keys, withID); err != nil {
		return nil, nil, err
	}
	out := make(map[string]usersync.ObjectRef, len(ups))
	skipped := map[string]bool{}
	var create []*usersync.User
	// place plans upsert i given what the directory holds of it.
	place := func(i int, old *usersync.User, ok bool) error {
		up, key := &ups[i], keys[i]
		if !ok {
			if !up.Create || up.ID != 0 {
				res.UsersSkipped++
				skipped[key] = true
				return nil
			}
			u := up.User
			create = append(create, &u)
			return nil
		}
		next := mergeUser(old, up)
		before := t.rows
		if err := t.saveUser(old, next); err != nil {
			return err
		}
		if t.rows > before {
			res.UsersUpdated++
		} else {
			res.UsersUnchanged++
		}
		out[usersync.UsernameKey(next.Username)] = userRef(next)
		return nil
	}
	for i := range ups {
		if ups[i].ID == 0 && ups[i].Create {
			continue // fresh: below
		}
		old, ok := existing[keys[i]]
		if ups[i].ID != 0 {
			old, ok = withID[ups[i].ID]
		}
		if err := place(i, old, ok); err != nil {
			return nil, nil, err
		}
	}
	// Only fresh upserts create, so create holds exactly them.
	for _, i := range fresh {
		u := ups[i].User
		create = append(create, &u)
	}
	if inserted, err := t.tryCreateUsers(create); err != nil {
		return nil, nil, err
	} else if !inserted {
		create = nil
		names := make([]string, len(fresh))
		for j, i := range fresh {
			names[j] = keys[i]
		}
		found, err := t.usersByKey(names)
		if err != nil {
			return nil, nil, err
		}
		for _, i := range fresh {
			old, ok := found[keys[i]]
			if err := place(i, old, ok); err != nil {
				return nil, nil, err
			}
			if ok {
				res.FoundIDs = append(res.FoundIDs, old.ID)
			}
		}
		if err := t.createUsers(create); err != nil {
			return nil, nil, err
		}
	}
	res.UsersCreated = len(create)
	res.CreatedIDs = make([]int64, 0, len(create))
	for _, u := range create {
		out[usersync.UsernameKey(u.Username)] = userRef(u)
		res.CreatedIDs = append(res.CreatedIDs, u.ID)
	}
	return out, skipped, nil
}

// parkRenamed lets the renames of one batch exchange names (two users who
// swap usernames, or a chain A → B's, B → C's): each renamed user whose
// old name another user of the batch takes is first moved to a name no
// user can have, so that the renames below meet no unique-key conflict
// whatever their order. The final UPDATE of each sets its real name; the
// parked name is never committed and records no change.
func (t *tx) parkRenamed(ups []usersync.UserUpsert, keys []string, withID map[int64]*usersync.User) error {
	wanted := map[string]int64{} // new username key → the user renamed to it
	for i := range ups {
		if old, ok := withID[ups[i].ID]; ok && ups[i].Update&usersync.FieldUsername != 0 && usersync.UsernameKey(old.Username) != keys[i] {
			wanted[keys[i]] = old.ID
		}
	}
	if len(wanted) < 2 {
		return nil // one rename cannot take a name another one frees
	}
	for i := range ups {
		old, ok := withID[ups[i].ID]
		if !ok || ups[i].Update&usersync.FieldUsername == 0 || usersync.UsernameKey(old.Username) == keys[i] {
			continue // not renamed: its name stays, and a rename to it fails as it should
		}
		if by, taken := wanted[usersync.UsernameKey(old.Username)]; taken && by != old.ID {
			// A control character: ValidateUsername refuses it in any name.
			if _, err := t.exec(`UPDATE users SET username_key = ? WHERE id = ?`, "\x01renaming "+strconv.FormatInt(old.ID, 10), old.ID); err != nil {
				return t.d.wrapErr("rename users", err)
			}
		}
	}
	return nil
}

// tryCreateUsers creates users under a savepoint and reports false, with
// nothing written, when a username among them is taken. The savepoint
// statements run uncounted: a driver may report the last INSERT's row
// count for them.
func (t *tx) tryCreateUsers(users []*usersync.User) (bool, error) {
	if len(users) == 0 {
		return true, nil
	}
	if _, err := t.sqlTx.ExecContext(t.ctx, `SAVEPOINT fresh_users`); err != nil {
		return false, t.d.wrapErr("savepoint", err)
	}
	rows, events := t.rows, len(t.events)
	err := t.createUsers(users)
	taken := usersync.ErrorCode(err) == usersync.ECONFLICT
	if err != nil && !taken {
		return false, err
	}
	if taken {
		if _, err := t.sqlTx.ExecContext(t.ctx, `ROLLBACK TO SAVEPOINT fresh_users`); err != nil {
			return false, t.d.wrapErr("roll back to savepoint", err)
		}
		t.rows, t.events = rows, t.events[:events]
		for _, u := range users {
			delete(t.fresh, u.ID)
			u.ID = 0
		}
	}
	if _, err := t.sqlTx.ExecContext(t.ctx, `RELEASE SAVEPOINT fresh_users`); err != nil {
		return false, t.d.wrapErr("release savepoint", err)
	}
	return !taken, nil
}

// mergeUser returns old with the upsert's selected fields written over it.
func mergeUser(old *usersync.User, up *usersync.UserUpsert) *usersync.User {
	next := *old
	src, f := &up.User, up.Update
	if f&usersync.FieldUsername != 0 && up.ID != 0 {
		next.Username, next.SoftDeleted = src.Username, false
	}
	if f&usersync.FieldEmail != 0 {
		next.Email = src.Email
	}
	if f&usersync.FieldFirstName != 0 {
		next.FirstName = src.FirstName
	}
	if f&usersync.FieldLastName != 0 {
		next.LastName = src.LastName
	}
	if f&usersync.FieldType != 0 {
		next.Type = src.Type
	}
	if f&usersync.FieldEnabled != 0 {
		next.Enabled = src.Enabled
	}
	if f&usersync.FieldAuthMethod != 0 {
		next.AuthMethod = src.AuthMethod
	}
	if f&usersync.FieldSource != 0 {
		next.Source, next.SourceID = src.Source, src.SourceID
	}
	next.Attributes = mergeAttrs(old.Attributes, src.Attributes, f&usersync.FieldAttributes != 0)
	return &next
}

// usersByID loads the users with the given ids.
func (t *tx) usersByID(ids []int64) (map[int64]*usersync.User, error) {
	out := make(map[int64]*usersync.User, len(ids))
	return out, inChunks(t.d, t.query, "read users", `SELECT `+userCols+` FROM users WHERE id IN `, nil, ids, func(rows *sql.Rows) error {
		u, err := scanUser(rows)
		if err == nil {
			out[u.ID] = u
		}
		return err
	})
}

// usersByKey loads the users with the given username keys.
func (t *tx) usersByKey(keys []string) (map[string]*usersync.User, error) {
	out := make(map[string]*usersync.User, len(keys))
	return out, inChunks(t.d, t.query, "read users", `SELECT `+userCols+` FROM users WHERE username_key IN `, nil, keys, func(rows *sql.Rows) error {
		u, err := scanUser(rows)
		if err == nil {
			out[usersync.UsernameKey(u.Username)] = u
		}
		return err
	})
}

// applyMembers resolves the named groups and users and adds or removes
// memberships group by group, in the order the groups first appear.
func (t *tx) applyMembers(changes []usersync.MemberChange, groups, users map[string]usersync.ObjectRef, skipped map[string]bool, res *usersync.BatchResult) error {
	if len(changes) == 0 {
		return nil
	}
	var missingUsers []string
	var byID []int64
	for _, m := range changes {
		if m.UserID != 0 {
			byID = append(byID, m.UserID)
			continue
		}
		k := usersync.UsernameKey(m.Username)
		if _, ok := users[k]; !ok && !skipped[k] {
			missingUsers = append(missingUsers, k)
			users[k] = usersync.ObjectRef{} // asked once
		}
	}
	found, err := t.usersByKey(missingUsers)
	if err != nil {
		return err
	}
	for _, k := range missingUsers {
		if u, ok := found[k]; ok {
			users[k] = userRef(u)
		} else {
			delete(users, k)
		}
	}
	withID, err := t.usersByID(byID)
	if err != nil {
		return err
	}
	type work struct {
		group         usersync.ObjectRef
		adds, removes map[string][]int64 // by Via
		vias          []string           // in first-seen order
	}
	byGroup := map[string]*work{}
	var order []string
	names := map[int64]string{}
	for _, m := range changes {
		gk, uk := usersync.GroupNameKey(m.Group), usersync.UsernameKey(m.Username)
		w := byGroup[gk]
		if w == nil {
			g, ok := groups[gk]
			if !ok {
				found, err := scanGroup(t.queryRow(`SELECT `+groupCols+` FROM groups WHERE name_key = ?`, gk))
				if err == sql.ErrNoRows {
					return usersync.Errorf(usersync.ENOTFOUND, "membership change names group %q, which does not exist", m.Group)
				} else if err != nil {
					return t.d.wrapErr("read group", err)
				}
				g = groupRef(found)
			}
			w = &work{group: g, adds: map[string][]int64{}, removes: map[string][]int64{}}
			byGroup[gk] = w
			order = append(order, gk)
		}
		u, ok := users[uk]
		if m.UserID != 0 {
			var cur *usersync.User
			if cur, ok = withID[m.UserID]; ok {
				u = userRef(cur)
			}
			uk = "" // not skipped by name
		}
		switch {
		case skipped[uk]:
			continue // the user was not created, so neither is its membership
		case !ok && m.Remove:
			continue // a user that does not exist is in no group
		case !ok && m.UserID != 0:
			return usersync.Errorf(usersync.ENOTFOUND, "membership change adds user %q (id %d) to group %q, and the user does not exist", m.Username, m.UserID, m.Group)
		case !ok:
			return usersync.Errorf(usersync.ENOTFOUND, "membership change adds user %q to group %q, and the user does not exist", m.Username, m.Group)
		}
		names[u.ID] = u.Name
		if _, seen := w.adds[m.Via]; !seen {
			if _, seen := w.removes[m.Via]; !seen {
				w.vias = append(w.vias, m.Via)
			}
		}
		if m.Remove {
			w.removes[m.Via] = append(w.removes[m.Via], u.ID)
		} else {
			w.adds[m.Via] = append(w.adds[m.Via], u.ID)
		}
	}
	for _, gk := range order {
		w := byGroup[gk]
		changed := 0
		for _, via := range w.vias {
			added, err := t.changeMembers(w.group, w.adds[via], names, false, via)
			if err != nil {
				return err
			}
			res.MembersAdded += added
			n, err := t.changeMembers(w.group, w.removes[via], names, true, via)
			if err != nil {
				return err
			}
			res.MembersRemoved += n
			changed += n + added
		}
		if changed > 0 {
			if _, err := t.exec(`UPDATE groups SET version = version + 1, updated_at = ? WHERE id = ?`, t.now, w.group.ID); err != nil {
				return t.d.wrapErr("update group version", err)
			}
		}
	}
	return nil
}
