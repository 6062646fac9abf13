// Nested groups: groups as members of groups, kept in memberships with
// member_type 'group', and the effective (transitive) members they give.

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
)

// nestLockKey serialises changes of group-in-group memberships on
// PostgreSQL, where two transactions could otherwise each add one half of
// a cycle (A in B, B in A) without seeing the other. SQLite has one
// writer at a time.
const nestLockKey = 0x75736e657374 // "usnest"

// changeGroupMembers applies a group change's nested-group part: add,
// remove, or (replace) make exactly add.
func (t *tx) changeGroupMembers(g usersync.ObjectRef, add, remove []int64, replace bool) (int, error) {
	if len(add) == 0 && len(remove) == 0 && !replace {
		return 0, nil
	}
	if t.d.dialect.name == "postgres" {
		if _, err := t.exec(`SELECT pg_advisory_xact_lock(?)`, int64(nestLockKey)); err != nil {
			return 0, t.d.wrapErr("lock nested groups", err)
		}
	}
	current, err := t.memberGroupIDs(g.ID)
	if err != nil {
		return 0, err
	}
	if replace {
		keep := map[int64]bool{}
		for _, id := range add {
			keep[id] = true
		}
		remove = nil
		for id := range current {
			if !keep[id] {
				remove = append(remove, id)
			}
		}
	}
	changed := 0
	for _, id := range dedupe(add) {
		if current[id] {
			continue
		}
		child, err := t.lockGroup(id)
		if err != nil {
			return 0, err
		}
		if err := t.refuseCycle(g, child); err != nil {
			return 0, err
		}
		if _, err := t.exec(`INSERT INTO memberships (group_id, member_type, member_id, created_at, via) VALUES (?, 'group', ?, ?, '')`, g.ID, id, t.now); err != nil {
			return 0, t.d.wrapErr("add group member", err)
		}
		current[id] = true
		changed++
		t.change(usersync.MemberAdded, g, &usersync.ObjectRef{Type: usersync.ObjectGroup, ID: id, Name: child.Name}, nil)
	}
	for _, id := range dedupe(remove) {
		if !current[id] {
			continue
		}
		var name string
		if err := t.queryRow(`SELECT name FROM groups WHERE id = ?`, id).Scan(&name); err != nil {
			return 0, t.d.wrapErr("read group member", err)
		}
		if _, err := t.exec(`DELETE FROM memberships WHERE group_id = ? AND member_type = 'group' AND member_id = ?`, g.ID, id); err != nil {
			return 0, t.d.wrapErr("remove group member", err)
		}
		delete(current, id)
		changed++
		t.change(usersync.MemberRemoved, g, &usersync.ObjectRef{Type: usersync.ObjectGroup, ID: id, Name: name}, nil)
	}
	return changed, nil
}

// memberGroupIDs is the set of groups directly in a group.
func (t *tx) memberGroupIDs(groupID int64) (map[int64]bool, error) {
	rows, err := t.query(`SELECT member_id FROM memberships WHERE group_id = ? AND member_type = 'group'`, groupID)
	if err != nil {
		return nil, t.d.wrapErr("read group members", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, t.d.wrapErr("read group members", err)
		}
		out[id] = true
	}
	return out, t.d.wrapErr("read group members", rows.Err())
}

// descendants is a recursive query for the groups nested in the group
// bound to its placeholder, at any depth (UNION, not UNION ALL: it ends on
// any graph, even one that a bug had made cyclic).
const descendants = `WITH RECURSIVE sub(id) AS (
	SELECT member_id FROM memberships WHERE group_id = ? AND member_type = 'group'
	UNION SELECT m.member_id FROM memberships m JOIN sub ON m.group_id = sub.id WHERE m.member_type = 'group')`

// refuseCycle fails when putting child into parent would make a group a
// member of itself: child is parent, or parent is nested in child.
func (t *tx) refuseCycle(parent usersync.ObjectRef, child *usersync.Group) error {
	if child.ID == parent.ID {
		return usersync.Errorf(usersync.EINVALID, "group %q cannot be a member of itself", parent.Name)
	}
	var one int
	err := t.queryRow(descendants+` SELECT 1 FROM sub WHERE id = ? LIMIT 1`, child.ID, parent.ID).Scan(&one)
	if err == sql.ErrNoRows {
		return nil
	} else if err != nil {
		return t.d.wrapErr("check nested groups", err)
	}
	return usersync.Errorf(usersync.EINVALID, "group %q cannot be a member of %q: %q is already inside %q, which would make a cycle",
		child.Name, parent.Name, parent.Name, child.Name)
}

// MemberGroups lists the groups directly in a group, by name.
func (d *DB) MemberGroups(ctx context.Context, groupID int64) ([]*usersync.Group, error) {
	if _, err := d.FindGroupByID(ctx, groupID); err != nil {
		return nil, err
	}
	return d.listGroups(ctx, "list group members", `SELECT `+prefixCols("g.", groupCols)+` FROM memberships m JOIN groups g ON g.id = m.member_id
		WHERE m.group_id = ? AND m.member_type = 'group' ORDER BY g.name_key`, groupID)
}

func (d *DB) listGroups(ctx context.Context, what, query string, args ...any) ([]*usersync.Group, error) {
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return nil, d.wrapErr(what, err)
	}
	defer rows.Close()
	var out []*usersync.Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, d.wrapErr(what, err)
		}
		out = append(out, g)
	}
	return out, d.wrapErr(what, rows.Err())
}

// effective is a recursive query for a group and every group nested in
// it; the users with a membership in any of them are its effective members.
const effective = `WITH RECURSIVE sub(id) AS (
	SELECT CAST(? AS BIGINT)
	UNION SELECT m.member_id FROM memberships m JOIN sub ON m.group_id = sub.id WHERE m.member_type = 'group')`

// EffectiveMembers lists the users in a group directly or through nested
// groups, each once, by username.
func (d *DB) EffectiveMembers(ctx context.Context, groupID int64, offset, limit int) ([]*usersync.User, int, error) {
	if _, err := d.FindGroupByID(ctx, groupID); err != nil {
		return nil, 0, err
	}
	const users = ` SELECT DISTINCT m.member_id FROM memberships m JOIN sub ON m.group_id = sub.id WHERE m.member_type = 'user'`
	var total int
	if err := d.db.QueryRowContext(ctx, d.q(effective+` SELECT COUNT(*) FROM (`+users+`) e`), groupID).Scan(&total); err != nil {
		return nil, 0, d.wrapErr("count effective members", err)
	}
	rows, err := d.db.QueryContext(ctx, d.q(effective+` SELECT `+prefixCols("u.", userCols)+` FROM users u WHERE u.id IN (`+users+`)
		ORDER BY u.username_key`+limitClause(offset, limit)), groupID)
	if err != nil {
		return nil, 0, d.wrapErr("list effective members", err)
	}
	defer rows.Close()
	var out []*usersync.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, d.wrapErr("list effective members", err)
		}
		out = append(out, u)
	}
	return out, total, d.wrapErr("list effective members", rows.Err())
}

// MembershipsOf returns the groups each user is in, directly or through
// nested groups: one recursive query upwards from the users' direct groups.
func (d *DB) MembershipsOf(ctx context.Context, userIDs []int64) (map[int64][]usersync.Membership, error) {
	out := make(map[int64][]usersync.Membership, len(userIDs))
	ids := dedupe(userIDs)
	if len(ids) == 0 {
		return out, nil
	}
	seen := map[[2]int64]int{} // (user, group) → index in out[user]
	for start := 0; start < len(ids); start += 1024 {
		chunk := ids[start:min(start+1024, len(ids))]
		// Padded to a power of two (repeating the last id), so that a few
		// prepared statements serve every page size.
		size := 1
		for size < len(chunk) {
			size *= 2
		}
		args := make([]any, size)
		for i := range args {
			args[i] = chunk[min(i, len(chunk)-1)]
		}
		q := `WITH RECURSIVE up(user_id, group_id, direct) AS (
			SELECT member_id, group_id, 1 FROM memberships WHERE member_type = 'user' AND member_id IN (` + placeholders(size) + `)
			UNION SELECT up.user_id, m.group_id, 0 FROM memberships m JOIN up ON m.member_type = 'group' AND m.member_id = up.group_id)
			SELECT up.user_id, g.id, g.name, up.direct FROM up JOIN groups g ON g.id = up.group_id ORDER BY up.user_id, g.name_key, up.direct DESC`
		rows, err := d.queryRows(ctx, q, args...) // prepared once: SCIM asks this for every user it returns
		if err != nil {
			return nil, d.wrapErr("list groups of users", err)
		}
		for rows.Next() {
			var uid, gid int64
			var name string
			var direct int
			if err := rows.Scan(&uid, &gid, &name, &direct); err != nil {
				rows.Close()
				return nil, d.wrapErr("list groups of users", err)
			}
			k := [2]int64{uid, gid}
			if _, dup := seen[k]; dup {
				continue // reached directly and through a nested group: direct came first
			}
			seen[k] = len(out[uid])
			out[uid] = append(out[uid], usersync.Membership{GroupID: gid, GroupName: name, Direct: direct == 1})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, d.wrapErr("list groups of users", err)
		}
	}
	return out, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// directGroupsSQL is a column of a users query: the user's direct groups
// as "id␟nested␟name" joined by ␞ (group names hold no control
// characters), nested telling whether that group is in a group itself.
// Plain text: SQLite's JSON functions cost a filtered lookup 20 % more.
func (d *DB) directGroupsSQL() string {
	const from = ` FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.member_type = 'user' AND m.member_id = users.id)`
	const nested = `EXISTS (SELECT 1 FROM memberships p WHERE p.member_type = 'group' AND p.member_id = g.id)`
	if d.dialect.name == "sqlite" {
		return `COALESCE((SELECT group_concat(g.id || char(31) || (` + nested + `) || char(31) || g.name, char(30))` + from + `, '')`
	}
	return `COALESCE((SELECT string_agg(g.id::text || chr(31) || (` + nested + `)::int::text || chr(31) || g.name, chr(30))` + from + `, '')`
}

// decodeDirectGroups fills u.Memberships, by group name, from
// directGroupsSQL's column and reports whether one of them is nested (the
// indirect ones need a recursive query).
func decodeDirectGroups(u *usersync.User, s string) (bool, error) {
	u.Memberships = []usersync.Membership{}
	if s == "" {
		return false, nil
	}
	deeper := false
	for _, rec := range strings.Split(s, "\x1e") {
		parts := strings.SplitN(rec, "\x1f", 3)
		if len(parts) != 3 {
			return false, fmt.Errorf("decode groups of user %d: %q", u.ID, rec)
		}
		id, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return false, fmt.Errorf("decode groups of user %d: %w", u.ID, err)
		}
		deeper = deeper || parts[1] == "1"
		u.Memberships = append(u.Memberships, usersync.Membership{GroupID: id, GroupName: parts[2], Direct: true})
	}
	slices.SortFunc(u.Memberships, func(a, b usersync.Membership) int {
		return strings.Compare(usersync.GroupNameKey(a.GroupName), usersync.GroupNameKey(b.GroupName))
	})
	return deeper, nil
}

// leaveParents takes a group being deleted out of the groups it is in;
// each parent's version moves and the log says so.
func (t *tx) leaveParents(g *usersync.Group) error {
	rows, err := t.query(`DELETE FROM memberships WHERE member_type = 'group' AND member_id = ? RETURNING group_id`, g.ID)
	if err != nil {
		return t.d.wrapErr("delete memberships", err)
	}
	var parentIDs []int64
	for rows.Next() {
		var pid int64
		if err := rows.Scan(&pid); err != nil {
			rows.Close()
			return t.d.wrapErr("delete memberships", err)
		}
		parentIDs = append(parentIDs, pid)
	}
	if err := rows.Close(); err != nil {
		return t.d.wrapErr("delete memberships", err)
	}
	names, err := t.groupNames(parentIDs)
	if err != nil {
		return err
	}
	for _, pid := range parentIDs {
		if err := t.touchGroup(&usersync.Group{ID: pid}); err != nil {
			return err
		}
		t.change(usersync.MemberRemoved, usersync.ObjectRef{Type: usersync.ObjectGroup, ID: pid, Name: names[pid]}, &usersync.ObjectRef{Type: usersync.ObjectGroup, ID: g.ID, Name: g.Name}, nil)
	}
	return nil
}
