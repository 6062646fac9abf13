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

// SyncState returns a saved sync state.
func (d *DB) SyncState(ctx context.Context, source, key string) (usersync.SyncState, error) {
	s := usersync.SyncState{Source: source, Key: key}
	var full, updated int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT value, full_at, updated_at FROM sync_state WHERE source = ? AND key = ?`), source, key).Scan(&s.Value, &full, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, usersync.Errorf(usersync.ENOTFOUND, "no sync state for %s %s", source, key)
	} else if err != nil {
		return s, d.wrapErr("read sync state", err)
	}
	s.FullAt, s.UpdatedAt = fromMicros(full), fromMicros(updated)
	return s, nil
}

// SaveSyncState creates or replaces a sync state.
func (d *DB) SaveSyncState(ctx context.Context, s usersync.SyncState) error {
	if s.Source == "" || s.Key == "" {
		return usersync.Errorf(usersync.EINVALID, "a sync state needs a source and a key")
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO sync_state (source, key, value, full_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, full_at = excluded.full_at, updated_at = excluded.updated_at`,
			s.Source, s.Key, s.Value, micros(s.FullAt), t.now)
		return t.d.wrapErr("write sync state", err)
	})
}

// DeleteSyncState forgets a sync state.
func (d *DB) DeleteSyncState(ctx context.Context, source, key string) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM sync_state WHERE source = ? AND key = ?`, source, key)
		return t.d.wrapErr("delete sync state", err)
	})
}

// SyncStates lists a source's sync states, by key.
func (d *DB) SyncStates(ctx context.Context, source string) ([]usersync.SyncState, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT key, value, full_at, updated_at FROM sync_state WHERE source = ? ORDER BY key`), source)
	if err != nil {
		return nil, d.wrapErr("list sync states", err)
	}
	defer rows.Close()
	var out []usersync.SyncState
	for rows.Next() {
		s := usersync.SyncState{Source: source}
		var full, updated int64
		if err := rows.Scan(&s.Key, &s.Value, &full, &updated); err != nil {
			return nil, d.wrapErr("list sync states", err)
		}
		s.FullAt, s.UpdatedAt = fromMicros(full), fromMicros(updated)
		out = append(out, s)
	}
	return out, d.wrapErr("list sync states", rows.Err())
}

// Sources lists every owner of a user, a group or a sync state. Every
// pull asks, so the users' sources are read by skipping along their index
// (users_source) from one source to the next, a few lookups whatever the
// number of users, rather than by reading every user.
func (d *DB) Sources(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `WITH RECURSIVE owners(source) AS (
			SELECT MIN(source) FROM users
			UNION ALL
			SELECT (SELECT MIN(u.source) FROM users u WHERE u.source > owners.source) FROM owners WHERE owners.source IS NOT NULL)
		SELECT source FROM owners WHERE source IS NOT NULL
		UNION SELECT source FROM groups UNION SELECT source FROM sync_state ORDER BY 1`)
	if err != nil {
		return nil, d.wrapErr("list sources", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, d.wrapErr("list sources", err)
		}
		out = append(out, s)
	}
	return out, d.wrapErr("list sources", rows.Err())
}

// RenameSource moves a source's users, groups, sync states and the source
// groups of its memberships to another name. Source groups get new rows
// rather than new keys: another process may hold a number → key mapping
// in its cache (viaKeys), and a number must keep meaning what it meant.
func (d *DB) RenameSource(ctx context.Context, from, to string) (usersync.SourceRenamed, error) {
	var out usersync.SourceRenamed
	if from == "" || to == "" || from == to || strings.ContainsAny(from+to, "/") {
		return out, usersync.Errorf(usersync.EINVALID, "cannot rename source %q to %q", from, to)
	}
	err := d.update(ctx, func(t *tx) error {
		out = usersync.SourceRenamed{}
		for _, tbl := range []struct {
			table string
			typ   string
			n     *int
		}{{"users", usersync.ObjectUser, &out.Users}, {"groups", usersync.ObjectGroup, &out.Groups}} {
			nameCol := "username"
			if tbl.table == "groups" {
				nameCol = "name"
			}
			rows, err := t.query(`SELECT id, `+nameCol+` FROM `+tbl.table+` WHERE source = ? ORDER BY id`, from)
			if err != nil {
				return t.d.wrapErr("rename source", err)
			}
			var refs []usersync.ObjectRef
			for rows.Next() {
				r := usersync.ObjectRef{Type: tbl.typ}
				if err := rows.Scan(&r.ID, &r.Name); err != nil {
					rows.Close()
					return t.d.wrapErr("rename source", err)
				}
				refs = append(refs, r)
			}
			rows.Close()
			if len(refs) == 0 {
				continue
			}
			if _, err := t.exec(`UPDATE `+tbl.table+` SET source = ?, version = version + 1, updated_at = ? WHERE source = ?`, to, t.now, from); err != nil {
				return t.d.wrapErr("rename source", err)
			}
			kind := usersync.UserUpdated
			if tbl.typ == usersync.ObjectGroup {
				kind = usersync.GroupUpdated
			}
			for _, r := range refs {
				t.change(kind, r, nil, map[string]usersync.FieldChange{"source": {From: from, To: to}})
			}
			if tbl.typ == usersync.ObjectUser { // cached token owners carry their source
				t.onCommit(func() { t.d.tokens.drop(func(_ string, u usersync.User) bool { return u.Source == from }) })
			}
			*tbl.n = len(refs)
		}
		if _, err := t.exec(`DELETE FROM sync_state WHERE source = ? AND key IN (SELECT key FROM sync_state WHERE source = ?)`, from, to); err != nil {
			return t.d.wrapErr("rename source", err)
		}
		n, err := t.exec(`UPDATE sync_state SET source = ? WHERE source = ?`, to, from)
		if err != nil {
			return t.d.wrapErr("rename source", err)
		}
		out.SyncStates = int(n)
		return t.renameSourceGroups(from, to)
	})
	return out, err
}

// renameSourceGroups points the memberships brought by from's source groups
// ("from/<id>") at the same groups under to.
func (t *tx) renameSourceGroups(from, to string) error {
	prefix := from + "/"
	rows, err := t.query(`SELECT id, key FROM source_groups WHERE substr(key, 1, ?) = ?`, len(prefix), prefix)
	if err != nil {
		return t.d.wrapErr("rename source groups", err)
	}
	nums := map[string]string{} // old number → new number
	var keys []string
	var olds []int64
	for rows.Next() {
		var id int64
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			rows.Close()
			return t.d.wrapErr("rename source groups", err)
		}
		olds, keys = append(olds, id), append(keys, key)
	}
	rows.Close()
	for i, key := range keys {
		n, err := t.sourceGroupNum(to + "/" + strings.TrimPrefix(key, prefix))
		if err != nil {
			return err
		}
		nums[strconv.FormatInt(olds[i], 10)] = n
	}
	for old := range nums {
		rows, err := t.query(`SELECT group_id, member_type, member_id, via FROM memberships WHERE ' ' || via || ' ' LIKE ?`, "% "+old+" %")
		if err != nil {
			return t.d.wrapErr("rename source groups", err)
		}
		type ref struct {
			g   int64
			typ string
			m   int64
			via string
		}
		var list []ref
		for rows.Next() {
			var r ref
			if err := rows.Scan(&r.g, &r.typ, &r.m, &r.via); err != nil {
				rows.Close()
				return t.d.wrapErr("rename source groups", err)
			}
			list = append(list, r)
		}
		rows.Close()
		for _, r := range list {
			var next []string
			for _, v := range splitVia(r.via) {
				if n, ok := nums[v]; ok {
					v = n
				}
				if !slices.Contains(next, v) {
					next = append(next, v)
				}
			}
			if _, err := t.exec(`UPDATE memberships SET via = ? WHERE group_id = ? AND member_type = ? AND member_id = ?`, strings.Join(next, viaSep), r.g, r.typ, r.m); err != nil {
				return t.d.wrapErr("rename source groups", err)
			}
		}
	}
	return nil
}
