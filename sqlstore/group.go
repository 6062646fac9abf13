package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
)

const groupCols = `id, name, description, alias, source, source_id, attributes, created_at, updated_at, version, flat`

func scanGroup(s scanner) (*usersync.Group, error) {
	var g usersync.Group
	var attrs string
	var created, updated int64
	if err := s.Scan(&g.ID, &g.Name, &g.Description, &g.Alias, &g.Source, &g.SourceID, &attrs, &created, &updated, &g.Version, &g.Flat); err != nil {
		return nil, err
	}
	var err error
	if g.Attributes, err = decodeAttrs(attrs); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &g, nil
}

func groupRef(g *usersync.Group) usersync.ObjectRef {
	return usersync.ObjectRef{Type: usersync.ObjectGroup, ID: g.ID, Name: g.Name}
}

func groupFields(g *usersync.Group) map[string]string {
	m := map[string]string{"name": g.Name, "description": g.Description, "alias": g.Alias, "source": g.Source, "sourceId": g.SourceID}
	for k, v := range g.Attributes {
		m["attributes."+k] = v
	}
	return m
}

// CreateGroup validates g, stores it with its members, and makes the
// folders on its path.
func (d *DB) CreateGroup(ctx context.Context, g *usersync.Group, memberIDs ...int64) error {
	return d.CreateGroupWith(ctx, g, usersync.GroupChange{Add: memberIDs})
}

// CreateGroupWith stores g with the users ch.Add and the groups
// ch.AddGroups as members, in one transaction.
func (d *DB) CreateGroupWith(ctx context.Context, g *usersync.Group, ch usersync.GroupChange) error {
	g.Normalize()
	if err := g.Validate(); err != nil {
		return err
	}
	return d.update(ctx, func(t *tx) error {
		if err := t.createGroup(g); err != nil {
			return err
		}
		if _, err := t.addMembers(groupRef(g), ch.Add); err != nil {
			return err
		}
		_, err := t.changeGroupMembers(groupRef(g), ch.AddGroups, nil, false)
		return err
	})
}

func (t *tx) createGroup(g *usersync.Group) error {
	if err := t.ensureFolders(g.Folders()); err != nil {
		return err
	}
	g.CreatedAt, g.UpdatedAt, g.Version = fromMicros(t.now), fromMicros(t.now), 1
	err := t.queryRow(`INSERT INTO groups (name, name_key, folder_key, description, alias, source, source_id, attributes, created_at, updated_at, version, flat)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) RETURNING id`,
		g.Name, usersync.GroupNameKey(g.Name), usersync.GroupNameKey(g.Folder()), g.Description, g.Alias, g.Source, g.SourceID,
		encodeAttrs(g.Attributes), t.now, t.now, g.Flat).Scan(&g.ID)
	if isUniqueViolation(err) {
		return usersync.Errorf(usersync.ECONFLICT, "group %q already exists", g.Name)
	} else if err != nil {
		return t.d.wrapErr("create group", err)
	}
	t.rows++
	t.change(usersync.GroupCreated, groupRef(g), nil, diffFields(nil, groupFields(g)))
	return nil
}

// FindGroupByID returns a group or ENOTFOUND.
func (d *DB) FindGroupByID(ctx context.Context, id int64) (*usersync.Group, error) {
	g, err := scanGroup(d.db.QueryRowContext(ctx, d.q(`SELECT `+groupCols+` FROM groups WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "group with id %d not found", id)
	}
	return g, d.wrapErr("find group", err)
}

// FindGroupByName returns a group, matched case-insensitively, or ENOTFOUND.
func (d *DB) FindGroupByName(ctx context.Context, name string) (*usersync.Group, error) {
	g, err := scanGroup(d.db.QueryRowContext(ctx, d.q(`SELECT `+groupCols+` FROM groups WHERE name_key = ?`), usersync.GroupNameKey(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "group %q not found", name)
	}
	return g, d.wrapErr("find group", err)
}

// FindGroups lists groups ordered by name, with the total that match.
func (d *DB) FindGroups(ctx context.Context, f usersync.GroupFilter) ([]*usersync.Group, int, error) {
	var where []string
	var args []any
	if f.Source != "" {
		where, args = append(where, "source = ?"), append(args, f.Source)
	}
	if f.Folder != nil {
		where, args = append(where, "folder_key = ?"), append(args, usersync.GroupNameKey(*f.Folder))
	}
	if f.Search != "" {
		where, args = append(where, `name_key LIKE ? ESCAPE '\'`), append(args, likePattern(f.Search))
	}
	if f.Where != nil {
		sql, wargs, err := d.whereSQL(f.Where, groupEntity)
		if err != nil {
			return nil, 0, err
		}
		where, args = append(where, sql), append(args, wargs...)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM groups`+cond), args...).Scan(&total); err != nil {
		return nil, 0, d.wrapErr("count groups", err)
	}
	order, cont, cargs, err := orderSQL(groupEntity, f.Order, f.After)
	if err != nil {
		return nil, 0, err
	}
	page, pageArgs := cond, args
	if cont != "" {
		page, pageArgs = " WHERE "+strings.Join(append(slices.Clone(where), cont), " AND "), append(slices.Clone(args), cargs...)
	}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT `+groupCols+` FROM groups`+page+order+limitClause(f.Offset, f.Limit)), pageArgs...)
	if err != nil {
		return nil, 0, d.wrapErr("list groups", err)
	}
	defer rows.Close()
	var out []*usersync.Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, 0, d.wrapErr("list groups", err)
		}
		out = append(out, g)
	}
	return out, total, d.wrapErr("list groups", rows.Err())
}

func (t *tx) lockGroup(id int64) (*usersync.Group, error) {
	g, err := scanGroup(t.queryRow(`SELECT `+groupCols+` FROM groups WHERE id = ?`+t.d.dialect.forUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "group with id %d not found", id)
	}
	return g, t.d.wrapErr("read group", err)
}

// UpdateGroup applies upd to a group. The Default Group cannot be renamed.
func (d *DB) UpdateGroup(ctx context.Context, id int64, upd usersync.GroupUpdate, expectVersion int64) (*usersync.Group, error) {
	return d.ChangeGroup(ctx, id, usersync.GroupChange{GroupUpdate: upd}, expectVersion)
}

// ChangeGroup applies attribute and member changes in one transaction.
func (d *DB) ChangeGroup(ctx context.Context, id int64, ch usersync.GroupChange, expectVersion int64) (*usersync.Group, error) {
	var out *usersync.Group
	err := d.update(ctx, func(t *tx) error {
		g, err := t.lockGroup(id)
		if err != nil {
			return err
		}
		if expectVersion != 0 && g.Version != expectVersion {
			return usersync.Errorf(usersync.ESTALE, "group %q was changed meanwhile (version %d, expected %d)", g.Name, g.Version, expectVersion)
		}
		next, err := t.updateGroup(g, ch.GroupUpdate)
		if err != nil {
			return err
		}
		remove := ch.Remove
		if ch.ReplaceMembers {
			if remove, err = t.membersBut(id, ch.Add); err != nil {
				return err
			}
		}
		added, err := t.addMembers(groupRef(next), ch.Add)
		if err != nil {
			return err
		}
		removed, err := t.removeMembers(groupRef(next), remove)
		if err != nil {
			return err
		}
		nested, err := t.changeGroupMembers(groupRef(next), ch.AddGroups, ch.RemoveGroups, ch.ReplaceMembers)
		if err != nil {
			return err
		}
		if added+removed+nested > 0 && next.Version == g.Version {
			if err := t.touchGroup(next); err != nil {
				return err
			}
		}
		out = next
		return nil
	})
	return out, err
}

// updateGroup applies upd to g (locked) and saves it when it changed.
func (t *tx) updateGroup(g *usersync.Group, upd usersync.GroupUpdate) (*usersync.Group, error) {
	next := *g
	next.Attributes = applyAttrs(g.Attributes, upd.Attributes)
	set(&next.Name, upd.Name)
	set(&next.Description, upd.Description)
	set(&next.Alias, upd.Alias)
	set(&next.Source, upd.Source)
	set(&next.SourceID, upd.SourceID)
	if usersync.GroupNameKey(g.Name) == usersync.GroupNameKey(usersync.DefaultGroupName) && next.Name != g.Name {
		return nil, usersync.Errorf(usersync.EFORBIDDEN, "the %s is built in and cannot be renamed", usersync.DefaultGroupName)
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	if err := t.saveGroup(g, &next); err != nil {
		return nil, err
	}
	return &next, nil
}

// touchGroup moves a group's version after its members changed: they are
// part of what a SCIM client's ETag stands for.
func (t *tx) touchGroup(g *usersync.Group) error {
	g.Version, g.UpdatedAt = g.Version+1, fromMicros(t.now)
	_, err := t.exec(`UPDATE groups SET version = version + 1, updated_at = ? WHERE id = ?`, t.now, g.ID)
	return t.d.wrapErr("update group version", err)
}

// membersBut lists the group's user members that are not in keep.
func (t *tx) membersBut(groupID int64, keep []int64) ([]int64, error) {
	kept := make(map[int64]bool, len(keep))
	for _, id := range keep {
		kept[id] = true
	}
	rows, err := t.query(`SELECT member_id FROM memberships WHERE group_id = ? AND member_type = 'user'`, groupID)
	if err != nil {
		return nil, t.d.wrapErr("read members", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, t.d.wrapErr("read members", err)
		}
		if !kept[id] {
			out = append(out, id)
		}
	}
	return out, t.d.wrapErr("read members", rows.Err())
}

func (t *tx) saveGroup(old, next *usersync.Group) error {
	diff := diffFields(groupFields(old), groupFields(next))
	if len(diff) == 0 {
		return nil
	}
	next.Flat = old.Flat // set when made, never changed
	if next.Name != old.Name {
		if err := t.ensureFolders(next.Folders()); err != nil {
			return err
		}
	}
	next.Version, next.UpdatedAt = old.Version+1, fromMicros(t.now)
	n, err := t.exec(`UPDATE groups SET name = ?, name_key = ?, folder_key = ?, description = ?, alias = ?, source = ?, source_id = ?, attributes = ?,
		updated_at = ?, version = ? WHERE id = ? AND version = ?`,
		next.Name, usersync.GroupNameKey(next.Name), usersync.GroupNameKey(next.Folder()), next.Description, next.Alias,
		next.Source, next.SourceID, encodeAttrs(next.Attributes), t.now, next.Version, next.ID, old.Version)
	if isUniqueViolation(err) {
		return usersync.Errorf(usersync.ECONFLICT, "cannot rename group %q: %q already exists", old.Name, next.Name)
	} else if err != nil {
		return t.d.wrapErr("update group", err)
	} else if n == 0 {
		return usersync.Errorf(usersync.ESTALE, "group %q was changed or deleted by another writer meanwhile; try again", old.Name)
	}
	t.change(usersync.GroupUpdated, groupRef(next), nil, diff)
	return nil
}

// DeleteGroup removes a group and its memberships; its folders stay. When
// expectVersion is not 0, only the group at that version (ESTALE
// otherwise), checked on the locked row.
func (d *DB) DeleteGroup(ctx context.Context, id int64, expectVersion int64) error {
	return d.update(ctx, func(t *tx) error {
		g, err := t.lockGroup(id)
		if err != nil {
			return err
		}
		if expectVersion != 0 && g.Version != expectVersion {
			return usersync.Errorf(usersync.ESTALE, "group %q is at version %d, not %d: it changed meanwhile; nothing was deleted", g.Name, g.Version, expectVersion)
		}
		if usersync.GroupNameKey(g.Name) == usersync.GroupNameKey(usersync.DefaultGroupName) {
			return usersync.Errorf(usersync.EFORBIDDEN, "the %s is built in and cannot be deleted", usersync.DefaultGroupName)
		}
		rows, err := t.query(`DELETE FROM memberships WHERE group_id = ? RETURNING member_type, member_id`, id)
		if err != nil {
			return t.d.wrapErr("delete memberships", err)
		}
		var ids, groupIDs []int64
		for rows.Next() {
			var typ string
			var mid int64
			if err := rows.Scan(&typ, &mid); err != nil {
				rows.Close()
				return t.d.wrapErr("delete memberships", err)
			}
			t.rows++
			if typ == usersync.ObjectUser {
				ids = append(ids, mid)
			} else {
				groupIDs = append(groupIDs, mid)
			}
		}
		if err := rows.Close(); err != nil {
			return t.d.wrapErr("delete memberships", err)
		}
		names, err := t.usernames(ids)
		if err != nil {
			return err
		}
		ref := groupRef(g)
		for _, mid := range ids {
			t.change(usersync.MemberRemoved, ref, &usersync.ObjectRef{Type: usersync.ObjectUser, ID: mid, Name: names[mid]}, nil)
		}
		groupNames, err := t.groupNames(groupIDs)
		if err != nil {
			return err
		}
		for _, mid := range groupIDs {
			t.change(usersync.MemberRemoved, ref, &usersync.ObjectRef{Type: usersync.ObjectGroup, ID: mid, Name: groupNames[mid]}, nil)
		}
		if err := t.leaveParents(g); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM groups WHERE id = ?`, id); err != nil {
			return t.d.wrapErr("delete group", err)
		}
		t.change(usersync.GroupDeleted, ref, nil, diffFields(groupFields(g), nil))
		return nil
	})
}

// usernames maps user ids to usernames; ids not found are absent.
func (t *tx) usernames(ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	return out, inChunks(t.d, t.query, "read users", `SELECT id, username FROM users WHERE id IN `, nil, ids, func(rows *sql.Rows) error {
		var id int64
		var name string
		err := rows.Scan(&id, &name)
		out[id] = name
		return err
	})
}

// groupNames maps group ids to names; ids not found are absent.
func (t *tx) groupNames(ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	return out, inChunks(t.d, t.query, "read groups", `SELECT id, name FROM groups WHERE id IN `, nil, ids, func(rows *sql.Rows) error {
		var id int64
		var name string
		err := rows.Scan(&id, &name)
		out[id] = name
		return err
	})
}

// AddMembers adds users to a group; users already in it are left alone.
func (d *DB) AddMembers(ctx context.Context, groupID int64, userIDs []int64) (int, error) {
	return d.changeMembersOf(ctx, groupID, userIDs, false)
}

// RemoveMembers removes users from a group.
func (d *DB) RemoveMembers(ctx context.Context, groupID int64, userIDs []int64) (int, error) {
	return d.changeMembersOf(ctx, groupID, userIDs, true)
}

func (d *DB) changeMembersOf(ctx context.Context, groupID int64, userIDs []int64, remove bool) (int, error) {
	var n int
	err := d.update(ctx, func(t *tx) error {
		g, err := t.lockGroup(groupID)
		if err != nil {
			return err
		}
		if remove {
			n, err = t.removeMembers(groupRef(g), userIDs)
		} else {
			n, err = t.addMembers(groupRef(g), userIDs)
		}
		if err != nil || n == 0 {
			return err
		}
		return t.touchGroup(g)
	})
	return n, err
}

// addMembers adds users, each of which must exist, to a locked group.
func (t *tx) addMembers(g usersync.ObjectRef, userIDs []int64) (int, error) {
	if len(userIDs) == 0 {
		return 0, nil
	}
	names, err := t.usernames(userIDs)
	if err != nil {
		return 0, err
	}
	for _, id := range userIDs {
		if _, ok := names[id]; !ok {
			return 0, usersync.Errorf(usersync.ENOTFOUND, "user with id %d not found", id)
		}
	}
	return t.changeMembers(g, userIDs, names, false, "")
}

// removeMembers removes users from a locked group.
func (t *tx) removeMembers(g usersync.ObjectRef, userIDs []int64) (int, error) {
	if len(userIDs) == 0 {
		return 0, nil
	}
	names, err := t.usernames(userIDs)
	if err != nil {
		return 0, err
	}
	return t.changeMembers(g, userIDs, names, true, "")
}

// denseProbe is how many membership rows a range read may pass per user
// asked about before reading them one by one is cheaper.
const denseProbe = 4

// notMembers returns the users of ids (distinct) that are not members of
// group gid, in the order of ids. Users made together have neighbouring
// ids, so when ids span a range at most denseProbe times their number, one
// read of that range of the group's primary key answers for all of them (a
// batch applied again: 100,000 users in one range instead of 200 reads of
// 500 keys); otherwise each is looked up by key.
func (t *tx) notMembers(gid int64, ids []int64) ([]int64, error) {
	sorted := slices.Sorted(slices.Values(ids))
	lo, hi := sorted[0], sorted[len(sorted)-1]
	var present []int64 // ascending
	collect := func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		present = append(present, id)
		return err
	}
	if uint64(hi-lo) < uint64(denseProbe*len(sorted)) {
		rows, err := t.query(`SELECT member_id FROM memberships WHERE group_id = ? AND member_type = 'user' AND member_id BETWEEN ? AND ? ORDER BY member_id`, gid, lo, hi)
		if err != nil {
			return nil, t.d.wrapErr("read memberships", err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := collect(rows); err != nil {
				return nil, t.d.wrapErr("read memberships", err)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, t.d.wrapErr("read memberships", err)
		}
	} else {
		err := inChunks(t.d, t.query, "read memberships", `SELECT member_id FROM memberships WHERE group_id = ? AND member_type = 'user' AND member_id IN `,
			[]any{gid}, sorted, collect)
		if err != nil {
			return nil, err
		}
		slices.Sort(present)
	}
	if len(present) == 0 {
		return ids, nil
	}
	var missing []int64 // in the order asked: their events follow it
	for _, id := range ids {
		if _, found := slices.BinarySearch(present, id); !found {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// changeMembers adds or removes user members of one group and records an
// event for each membership that really changed. INSERT … ON CONFLICT DO
// NOTHING RETURNING and DELETE … RETURNING report exactly those, so a no-op
// writes no row and no event. With via (a source group, see
// usersync.MemberChange), an add records via on the membership and a
// removal drops it, removing the membership only when no other source group
// holds it.
func (t *tx) changeMembers(g usersync.ObjectRef, userIDs []int64, names map[int64]string, remove bool, via string) (int, error) {
	ids := dedupe(userIDs)
	if len(ids) == 0 {
		return 0, nil
	}
	if via != "" {
		var err error
		if via, err = t.sourceGroupNum(via); err != nil { // memberships hold the number
			return 0, err
		}
	}
	changed := 0
	record := func(rows *sql.Rows) error {
		var mid int64
		if err := rows.Scan(&mid); err != nil {
			return err
		}
		changed++
		kind := usersync.MemberAdded
		if remove {
			kind = usersync.MemberRemoved
		}
		t.change(kind, g, &usersync.ObjectRef{Type: usersync.ObjectUser, ID: mid, Name: names[mid]}, nil)
		return nil
	}
	if !remove {
		// Users created in this transaction are in no group yet: their rows
		// go in without the conflict check and the RETURNING scan.
		var fresh, known []int64
		for _, id := range ids {
			if t.fresh[id] {
				fresh = append(fresh, id)
			} else {
				known = append(known, id)
			}
		}
		row := func(list []int64) func(i int, args []any) []any {
			return func(i int, args []any) []any { return append(args, g.ID, usersync.ObjectUser, list[i], t.now, via) }
		}
		const table = "memberships (group_id, member_type, member_id, created_at, via)"
		if err := t.insertRows(table, 5, len(fresh), "", row(fresh), nil); err != nil {
			return 0, err
		}
		for _, id := range fresh {
			changed++
			t.change(usersync.MemberAdded, g, &usersync.ObjectRef{Type: usersync.ObjectUser, ID: id, Name: names[id]}, nil)
		}
		if len(known) == 0 {
			return changed, nil
		}
		// Members already there are found by primary-key reads first: a
		// batch applied again (most of a sync) then tries no insert at all,
		// which cost SQLite a B-tree search and a conflict each. What is
		// left still goes in with ON CONFLICT, for a writer that got there
		// in between (PostgreSQL).
		if via == "" && len(known) >= 64 {
			var err error
			if known, err = t.notMembers(g.ID, known); err != nil {
				return 0, err
			}
			if len(known) == 0 {
				return changed, nil
			}
		}
		inserted := map[int64]bool{}
		err := t.insertRows(table, 5, len(known), " ON CONFLICT DO NOTHING RETURNING member_id", row(known), func(rows *sql.Rows) error {
			if err := record(rows); err != nil {
				return err
			}
			inserted[t.events[len(t.events)-1].Member.ID] = true
			return nil
		})
		if err != nil || via == "" {
			return changed, err
		}
		// Members already there: note that this source group holds them too.
		var were []int64
		for _, id := range known {
			if !inserted[id] {
				were = append(were, id)
			}
		}
		return changed, t.rewriteVia(g.ID, were, func(cur []string) ([]string, bool) {
			if slices.Contains(cur, via) {
				return cur, false
			}
			return append(cur, via), true
		})
	}
	del := ids
	if via != "" {
		// Only memberships no other source group holds are removed; the
		// others just forget via.
		vias, err := t.viaOf(g.ID, ids)
		if err != nil {
			return 0, err
		}
		del = nil
		var keep []int64
		for _, id := range ids {
			cur, ok := vias[id]
			switch {
			case !ok:
			case len(cur) == 0 || (len(cur) == 1 && cur[0] == via):
				del = append(del, id)
			case slices.Contains(cur, via):
				keep = append(keep, id)
			}
		}
		if err := t.rewriteVia(g.ID, keep, func(cur []string) ([]string, bool) {
			return slices.DeleteFunc(cur, func(v string) bool { return v == via }), true
		}); err != nil {
			return 0, err
		}
	}
	for start := 0; start < len(del); start += 500 {
		chunk := del[start:min(start+500, len(del))]
		args := []any{g.ID}
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := t.query(`DELETE FROM memberships WHERE group_id = ? AND member_type = 'user' AND member_id IN `+inClause(len(chunk))+` RETURNING member_id`, args...)
		if err != nil {
			return 0, t.d.wrapErr("remove members", err)
		}
		for rows.Next() {
			t.rows++
			if err := record(rows); err != nil {
				rows.Close()
				return 0, t.d.wrapErr("remove members", err)
			}
		}
		if err := rows.Close(); err != nil {
			return 0, t.d.wrapErr("remove members", err)
		}
	}
	return changed, nil
}

// viaSep separates the source groups of a membership in its via column.
const viaSep = " "

// sourceGroupNum returns the number that stands for a source group (its
// key, "o365:<tenant>/<group id>") in memberships, recording it the first
// time.
func (t *tx) sourceGroupNum(key string) (string, error) {
	if n, ok := t.d.viaNums.Load(key); ok {
		return n.(string), nil
	}
	var id int64
	err := t.queryRow(`SELECT id FROM source_groups WHERE key = ?`, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// ON CONFLICT: another process may record it at the same time.
		if _, err = t.exec(`INSERT INTO source_groups (key) VALUES (?) ON CONFLICT (key) DO NOTHING`, key); err == nil {
			err = t.queryRow(`SELECT id FROM source_groups WHERE key = ?`, key).Scan(&id)
		}
	}
	if err != nil {
		return "", t.d.wrapErr("record source group", err)
	}
	num := strconv.FormatInt(id, 10)
	t.onCommit(func() { t.d.viaNums.Store(key, num); t.d.viaKeys.Store(num, key) })
	return num, nil
}

// sourceGroupKeys turns a via column into source-group keys.
func (d *DB) sourceGroupKeys(ctx context.Context, via string) ([]string, error) {
	nums := splitVia(via)
	out := make([]string, len(nums))
	for i, n := range nums {
		if k, ok := d.viaKeys.Load(n); ok {
			out[i] = k.(string)
			continue
		}
		if err := d.db.QueryRowContext(ctx, d.q(`SELECT key FROM source_groups WHERE id = ?`), n).Scan(&out[i]); err != nil {
			return nil, d.wrapErr("read source group", err)
		}
		d.viaKeys.Store(n, out[i])
		d.viaNums.Store(out[i], n)
	}
	return out, nil
}

func splitVia(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, viaSep)
}

// viaOf reads the source groups of the memberships of ids in a group;
// users who are not members are absent.
func (t *tx) viaOf(groupID int64, ids []int64) (map[int64][]string, error) {
	out := make(map[int64][]string, len(ids))
	return out, inChunks(t.d, t.query, "read memberships", `SELECT member_id, via FROM memberships WHERE group_id = ? AND member_type = 'user' AND member_id IN `,
		[]any{groupID}, ids, func(rows *sql.Rows) error {
			var id int64
			var via string
			err := rows.Scan(&id, &via)
			out[id] = splitVia(via)
			return err
		})
}

// rewriteVia applies fn to the source groups of the memberships of ids and
// stores the results fn reports as changed, one UPDATE per distinct
// (old, new) pair: a first sync after an upgrade tags a whole group at once.
func (t *tx) rewriteVia(groupID int64, ids []int64, fn func(cur []string) ([]string, bool)) error {
	if len(ids) == 0 {
		return nil
	}
	vias, err := t.viaOf(groupID, ids)
	if err != nil {
		return err
	}
	type move struct{ from, to string }
	moves := map[move][]int64{}
	var order []move
	for _, id := range ids {
		cur, ok := vias[id]
		if !ok {
			continue
		}
		next, changed := fn(slices.Clone(cur))
		if !changed {
			continue
		}
		slices.Sort(next)
		m := move{strings.Join(cur, viaSep), strings.Join(next, viaSep)}
		if m.from == m.to {
			continue
		}
		if moves[m] == nil {
			order = append(order, m)
		}
		moves[m] = append(moves[m], id)
	}
	for _, m := range order {
		list := moves[m]
		for start := 0; start < len(list); start += 500 {
			chunk := list[start:min(start+500, len(list))]
			args := []any{m.to, groupID, m.from}
			for _, id := range chunk {
				args = append(args, id)
			}
			if _, err := t.exec(`UPDATE memberships SET via = ? WHERE group_id = ? AND member_type = 'user' AND via = ? AND member_id IN `+inClause(len(chunk)), args...); err != nil {
				return t.d.wrapErr("update membership sources", err)
			}
		}
	}
	return nil
}

func dedupe(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// Members lists a group's member users ordered by username.
func (d *DB) Members(ctx context.Context, groupID int64, offset, limit int) ([]*usersync.User, int, error) {
	if _, err := d.FindGroupByID(ctx, groupID); err != nil {
		return nil, 0, err
	}
	var total int
	if err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM memberships WHERE group_id = ? AND member_type = 'user'`), groupID).Scan(&total); err != nil {
		return nil, 0, d.wrapErr("count members", err)
	}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT `+prefixCols("u.", userCols)+` FROM memberships m JOIN users u ON u.id = m.member_id
		WHERE m.group_id = ? AND m.member_type = 'user' ORDER BY u.username_key`+limitClause(offset, limit)), groupID)
	if err != nil {
		return nil, 0, d.wrapErr("list members", err)
	}
	defer rows.Close()
	var out []*usersync.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, d.wrapErr("list members", err)
		}
		out = append(out, u)
	}
	return out, total, d.wrapErr("list members", rows.Err())
}

// memberRefCols is what a member ref reads: the join of memberships (m)
// and users (u).
const memberRefCols = `SELECT u.id, u.username, u.source, u.source_id, m.via FROM memberships m JOIN users u ON u.id = m.member_id
	WHERE m.group_id = ? AND m.member_type = 'user'`

// refScanner reads member refs from rows. Most members of a group share
// their owner and source groups, and rows come grouped: the previous row's
// copies serve the next (a 100,000-member group would otherwise allocate
// 200,000 equal strings and slices).
type refScanner struct {
	d                 *DB
	ctx               context.Context
	source, via       sql.RawBytes
	lastSource, lastV string
	lastVias          []string
}

func (r *refScanner) scan(rows *sql.Rows) (usersync.MemberRef, error) {
	var m usersync.MemberRef
	if err := rows.Scan(&m.UserID, &m.Username, &r.source, &m.SourceID, &r.via); err != nil {
		return m, err
	}
	if string(r.source) != r.lastSource {
		r.lastSource = string(r.source)
	}
	m.Source = r.lastSource
	if string(r.via) != r.lastV || r.lastVias == nil {
		keys, err := r.d.sourceGroupKeys(r.ctx, string(r.via))
		if err != nil {
			return m, err
		}
		r.lastV, r.lastVias = string(r.via), slices.Clip(keys)
	}
	m.Via = r.lastVias
	return m, nil
}

// MemberRefs lists a group's user members by username, source and source id.
func (d *DB) MemberRefs(ctx context.Context, groupID int64) ([]usersync.MemberRef, error) {
	var out []usersync.MemberRef
	return out, d.ScanMemberRefs(ctx, groupID, func(m usersync.MemberRef) error {
		out = append(out, m)
		return nil
	})
}

// ScanMemberRefs calls fn with each user member of a group.
func (d *DB) ScanMemberRefs(ctx context.Context, groupID int64, fn func(usersync.MemberRef) error) error {
	rows, err := d.db.QueryContext(ctx, d.q(memberRefCols), groupID)
	if err != nil {
		return d.wrapErr("list members", err)
	}
	defer rows.Close()
	sc := &refScanner{d: d, ctx: ctx}
	for rows.Next() {
		m, err := sc.scan(rows)
		if err != nil {
			return d.wrapErr("list members", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return d.wrapErr("list members", rows.Err())
}

// MemberRefsOf returns the members of a group among the users q names, by
// the primary key of memberships (user ids) or the users (source, source_id)
// index.
func (d *DB) MemberRefsOf(ctx context.Context, groupID int64, q usersync.MemberQuery) ([]usersync.MemberRef, error) {
	var out []usersync.MemberRef
	sc := &refScanner{d: d, ctx: ctx}
	add := func(rows *sql.Rows) error {
		m, err := sc.scan(rows)
		out = append(out, m)
		return err
	}
	if err := inChunks(d, d.poolQuery(ctx), "read members", memberRefCols+` AND m.member_id IN `, []any{groupID}, q.UserIDs, add); err != nil {
		return nil, err
	}
	if q.Source != "" {
		// The users first, by their (source, source_id) index, then each
		// one's membership by primary key: CROSS JOIN keeps SQLite from
		// walking the whole group instead (1,000 ids in a million-member
		// group read 2,000,000 memberships that way).
		const bySource = `SELECT u.id, u.username, u.source, u.source_id, m.via FROM users u CROSS JOIN memberships m
			WHERE m.group_id = ? AND m.member_type = 'user' AND m.member_id = u.id AND u.source = ? AND u.source_id IN `
		if err := inChunks(d, d.poolQuery(ctx), "read members", bySource, []any{groupID, q.Source}, q.SourceIDs, add); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CountMembers counts a group's user members.
func (d *DB) CountMembers(ctx context.Context, groupID int64) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM memberships WHERE group_id = ? AND member_type = 'user'`), groupID).Scan(&n)
	return n, d.wrapErr("count members", err)
}

// CountMembersUpTo counts a group's user members, reading at most max.
func (d *DB) CountMembersUpTo(ctx context.Context, groupID int64, max int) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM (SELECT 1 FROM memberships WHERE group_id = ? AND member_type = 'user' LIMIT ?) m`), groupID, max).Scan(&n)
	return n, d.wrapErr("count members", err)
}

// HasMembersNotFrom reports whether a group has a user member that source
// does not own.
func (d *DB) HasMembersNotFrom(ctx context.Context, groupID int64, source string) (bool, error) {
	var one int
	err := d.db.QueryRowContext(ctx, d.q(`SELECT 1 FROM memberships m JOIN users u ON u.id = m.member_id
		WHERE m.group_id = ? AND m.member_type = 'user' AND u.source <> ? LIMIT 1`), groupID, source).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, d.wrapErr("read members", err)
}

// GroupsOf lists the groups a user is a direct member of, by name.
func (d *DB) GroupsOf(ctx context.Context, userID int64) ([]*usersync.Group, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT `+prefixCols("g.", groupCols)+` FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE m.member_type = 'user' AND m.member_id = ? ORDER BY g.name_key`), userID)
	if err != nil {
		return nil, d.wrapErr("list groups of user", err)
	}
	defer rows.Close()
	var out []*usersync.Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, d.wrapErr("list groups of user", err)
		}
		out = append(out, g)
	}
	return out, d.wrapErr("list groups of user", rows.Err())
}

func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return strings.Join(parts, ", ")
}
