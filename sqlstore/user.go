package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usersync/usersync"
)

const userCols = `id, username, email, first_name, last_name, user_type, enabled, auth_method, source, source_id, attributes, soft_deleted, created_at, updated_at, version, profile`

type scanner interface{ Scan(...any) error }

func scanUser(s scanner) (*usersync.User, error) {
	var u usersync.User
	var attrs, profile string
	var created, updated int64
	if err := s.Scan(&u.ID, &u.Username, &u.Email, &u.FirstName, &u.LastName, &u.Type, &u.Enabled, &u.AuthMethod,
		&u.Source, &u.SourceID, &attrs, &u.SoftDeleted, &created, &updated, &u.Version, &profile); err != nil {
		return nil, err
	}
	var err error
	if u.Attributes, err = decodeAttrs(attrs); err != nil {
		return nil, err
	}
	if u.Profile, err = decodeProfile(profile); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

func userRef(u *usersync.User) usersync.ObjectRef {
	return usersync.ObjectRef{Type: usersync.ObjectUser, ID: u.ID, Name: u.Username}
}

// sameUser reports whether next holds what old does, in every field a
// change event compares (false when unsure: the full comparison decides).
func sameUser(old, next *usersync.User) bool {
	if old.Username != next.Username || old.Email != next.Email || old.FirstName != next.FirstName || old.LastName != next.LastName ||
		old.Type != next.Type || old.Enabled != next.Enabled || old.AuthMethod != next.AuthMethod || old.Source != next.Source ||
		old.SourceID != next.SourceID || old.SoftDeleted != next.SoftDeleted || len(old.Attributes) != len(next.Attributes) ||
		len(old.Profile) != 0 || len(next.Profile) != 0 {
		return false
	}
	for k, v := range old.Attributes {
		if w, ok := next.Attributes[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// userFields returns the fields of u as strings, for change events.
func userFields(u *usersync.User) map[string]string {
	m := map[string]string{
		"username": u.Username, "email": u.Email, "firstName": u.FirstName, "lastName": u.LastName,
		"type": string(u.Type), "enabled": strconv.FormatBool(u.Enabled), "authMethod": string(u.AuthMethod),
		"source": u.Source, "sourceId": u.SourceID,
	}
	if u.SoftDeleted {
		m["softDeleted"] = "true"
	}
	for k, v := range u.Attributes {
		m["attributes."+k] = v
	}
	for k, v := range u.Profile {
		m["profile."+k] = profileText(v)
	}
	return m
}

// profileText is a profile value as the change log shows it: its JSON.
func profileText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func encodeProfile(p map[string]any) string {
	if len(p) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(p) // checked by User.Validate; keys are sorted
	return string(b)
}

func decodeProfile(s string) (map[string]any, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return p, nil
}

// cloneProfile is a deep copy, so that a caller's changes stay its own.
func cloneProfile(p map[string]any) map[string]any {
	if p == nil {
		return nil
	}
	c, _ := decodeProfile(encodeProfile(p))
	return c
}

// createdFields is diffFields(nil, userFields(u)) in one map: the non-empty
// fields of a new user. A first sync builds one per created user.
func createdFields(u *usersync.User) map[string]usersync.FieldChange {
	out := make(map[string]usersync.FieldChange, 9+len(u.Attributes))
	set := func(k, v string) {
		if v != "" {
			out[k] = usersync.FieldChange{To: v}
		}
	}
	set("username", u.Username)
	set("email", u.Email)
	set("firstName", u.FirstName)
	set("lastName", u.LastName)
	set("type", string(u.Type))
	set("enabled", strconv.FormatBool(u.Enabled))
	set("authMethod", string(u.AuthMethod))
	set("source", u.Source)
	set("sourceId", u.SourceID)
	if u.SoftDeleted {
		set("softDeleted", "true")
	}
	for k, v := range u.Attributes {
		set("attributes."+k, v)
	}
	for k, v := range u.Profile {
		set("profile."+k, profileText(v))
	}
	return out
}

// diffFields returns the fields whose values differ between two field maps.
func diffFields(from, to map[string]string) map[string]usersync.FieldChange {
	out := map[string]usersync.FieldChange{}
	for k, v := range to {
		if from[k] != v {
			out[k] = usersync.FieldChange{From: from[k], To: v}
		}
	}
	for k, v := range from {
		if _, ok := to[k]; !ok && v != "" {
			out[k] = usersync.FieldChange{From: v}
		}
	}
	return out
}

// CreateUser validates u, stores it and fills its id, times and version.
func (d *DB) CreateUser(ctx context.Context, u *usersync.User) error {
	u.Normalize()
	if err := u.Validate(); err != nil {
		return err
	}
	return d.update(ctx, func(t *tx) error { return t.createUsers([]*usersync.User{u}) })
}

// createUsers inserts users in multi-row statements and records their events.
func (t *tx) createUsers(users []*usersync.User) error {
	if len(users) == 0 {
		return nil
	}
	for _, u := range users {
		u.CreatedAt, u.UpdatedAt, u.Version = fromMicros(t.now), fromMicros(t.now), 1
	}
	const table = "users (username, username_key, email, first_name, last_name, user_type, enabled, auth_method, source, source_id, attributes, soft_deleted, created_at, updated_at, version, profile)"
	row := func(i int, args []any) []any {
		u := users[i]
		return append(args, u.Username, usersync.UsernameKey(u.Username), u.Email, u.FirstName, u.LastName, string(u.Type), u.Enabled,
			string(u.AuthMethod), u.Source, u.SourceID, encodeAttrs(u.Attributes), u.SoftDeleted, t.now, t.now, int64(1), encodeProfile(u.Profile))
	}
	var err error
	if t.d.dialect.name == "sqlite" {
		// SQLite gives the rows of one multi-row INSERT consecutive rowids
		// (max(rowid)+1 onwards, the write lock held), so the ids follow from
		// the last one without RETURNING, which costs a row scan per user.
		t.afterInsert = func(start, end int, res sql.Result) error {
			last, err := res.LastInsertId()
			if err != nil {
				return err
			}
			for i := start; i < end; i++ {
				users[i].ID = last - int64(end-1-i)
			}
			return nil
		}
		err = t.insertRows(table, 16, len(users), "", row, nil)
		t.afterInsert = nil
	} else {
		byKey := make(map[string]*usersync.User, len(users))
		for _, u := range users {
			byKey[usersync.UsernameKey(u.Username)] = u
		}
		err = t.insertRows(table, 16, len(users), " RETURNING id, username_key", row, func(rows *sql.Rows) error {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				return err
			}
			byKey[key].ID = id
			return nil
		})
	}
	if isUniqueViolation(err) {
		if len(users) == 1 {
			return usersync.Errorf(usersync.ECONFLICT, "user %q already exists", users[0].Username)
		}
		return usersync.Errorf(usersync.ECONFLICT, "a username in the batch exists already (usernames are compared case-insensitively)")
	} else if err != nil {
		return err
	}
	if t.fresh == nil {
		t.fresh = make(map[int64]bool, len(users))
	}
	for _, u := range users {
		t.fresh[u.ID] = true
		t.userCreated(u)
	}
	return nil
}

// FindUserByID returns a user or ENOTFOUND.
func (d *DB) FindUserByID(ctx context.Context, id int64) (*usersync.User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, d.q(`SELECT `+userCols+` FROM users WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "user with id %d not found", id)
	}
	return u, d.wrapErr("find user", err)
}

// FindUserByUsername returns a user, matched case-insensitively, or ENOTFOUND.
func (d *DB) FindUserByUsername(ctx context.Context, username string) (*usersync.User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, d.q(`SELECT `+userCols+` FROM users WHERE username_key = ?`), usersync.UsernameKey(username)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "user %q not found", username)
	}
	return u, d.wrapErr("find user", err)
}

// FindUsers lists users ordered by username, with the total that match.
func (d *DB) FindUsers(ctx context.Context, f usersync.UserFilter) ([]*usersync.User, int, error) {
	var where []string
	var args []any
	if f.Source != "" {
		where, args = append(where, "source = ?"), append(args, f.Source)
	}
	if f.Where != nil {
		sql, wargs, err := d.whereSQL(f.Where, userEntity)
		if err != nil {
			return nil, 0, err
		}
		where, args = append(where, sql), append(args, wargs...)
	}
	if f.Search != "" {
		p, fp := likePattern(usersync.UsernameKey(f.Search)), likePattern(f.Search)
		fold := d.dialect.fold
		where = append(where, `(username_key LIKE ? ESCAPE '\' OR `+fold("email")+` LIKE `+fold("?")+` ESCAPE '\' OR `+fold("first_name || ' ' || last_name")+` LIKE `+fold("?")+` ESCAPE '\')`)
		args = append(args, p, fp, fp)
		if c, cargs, ok := d.searchIndex(f.Search); ok {
			// The trigram index narrows to the users that may match; the
			// LIKEs above decide.
			where, args = append(where, c), append(args, cargs...)
		}
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	order, cont, cargs, err := orderSQL(userEntity, f.Order, f.After)
	if err != nil {
		return nil, 0, err
	}
	if f.Unordered {
		order = ""
	}
	page, pageArgs := cond, args
	if cont != "" {
		page, pageArgs = " WHERE "+strings.Join(append(slices.Clone(where), cont), " AND "), append(slices.Clone(args), cargs...)
	}
	cols := userCols
	if f.WithMemberships {
		cols += ", " + d.directGroupsSQL()
	}
	rows, err := d.queryRows(ctx, `SELECT `+cols+` FROM users`+page+order+limitClause(f.Offset, f.Limit), pageArgs...)
	if err != nil {
		return nil, 0, d.wrapErr("list users", err)
	}
	defer rows.Close()
	var out []*usersync.User
	var nested []int64 // users in a group that is itself in a group
	var direct string
	scan := scanner(rows)
	if f.WithMemberships {
		scan = scanFunc(func(dest ...any) error { return rows.Scan(append(dest, &direct)...) })
	}
	for rows.Next() {
		u, err := scanUser(scan)
		if err != nil {
			return nil, 0, d.wrapErr("list users", err)
		}
		if f.WithMemberships {
			deeper, err := decodeDirectGroups(u, direct)
			if err != nil {
				return nil, 0, d.wrapErr("list users", err)
			}
			if deeper {
				nested = append(nested, u.ID)
			}
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, d.wrapErr("list users", err)
	}
	rows.Close()
	if len(nested) > 0 {
		all, err := d.MembershipsOf(ctx, nested)
		if err != nil {
			return nil, 0, err
		}
		for _, u := range out {
			if ms, ok := all[u.ID]; ok {
				u.Memberships = ms
			}
		}
	}
	// A first page that is not full holds everything: no need to count
	// (a SCIM lookup by userName is one query, not two).
	total := len(out)
	if !f.NoCount && (f.Offset > 0 || f.After != nil || (f.Limit > 0 && len(out) == f.Limit)) {
		if err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM users`+cond), args...).Scan(&total); err != nil {
			return nil, 0, d.wrapErr("count users", err)
		}
	}
	return out, total, nil
}

// UserIDs returns the ids of the users where holds for.
func (d *DB) UserIDs(ctx context.Context, where usersync.Cond) ([]int64, error) {
	sql, args, err := d.whereSQL(where, userEntity)
	if err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT id FROM users WHERE `+sql), args...)
	if err != nil {
		return nil, d.wrapErr("find users", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, d.wrapErr("find users", err)
		}
		out = append(out, id)
	}
	return out, d.wrapErr("find users", rows.Err())
}

// UsersByUsername returns the existing users among usernames, keyed by
// UsernameKey, reading them in chunks.
func (d *DB) UsersByUsername(ctx context.Context, usernames []string) (map[string]*usersync.User, error) {
	keys := make([]string, len(usernames))
	for i, n := range usernames {
		keys[i] = usersync.UsernameKey(n)
	}
	return (&tx{d: d, ctx: ctx}).usersByKey(keys) // no transaction: plain reads from the pool
}

// UsersBySource returns the users owned by source with the given source
// ids, keyed by source id, reading them in chunks.
func (d *DB) UsersBySource(ctx context.Context, source string, ids []string) (map[string]*usersync.User, error) {
	out := make(map[string]*usersync.User, len(ids))
	return out, inChunks(d, d.poolQuery(ctx), "read users by source id", `SELECT `+userCols+` FROM users WHERE source = ? AND source_id IN `, []any{source}, ids,
		func(rows *sql.Rows) error {
			u, err := scanUser(rows)
			if err == nil {
				out[u.SourceID] = u
			}
			return err
		})
}

// prefixPattern is a LIKE pattern (ESCAPE '\') for values starting with s.
func prefixPattern(s string) string { return escapeLike(strings.ToLower(s)) + "%" }

// likePattern is a LIKE pattern (ESCAPE '\') for values containing s.
func likePattern(s string) string { return "%" + prefixPattern(s) }

// searchIndex returns the condition that narrows a search to the users a
// trigram index (migration 19) finds: those holding the search as typed
// (in the email or the name) or as a username key. SQLite asks its FTS5
// trigram table; PostgreSQL a LIKE on the expression its pg_trgm index
// holds. A trigram index finds substrings of three characters or more: ok
// is false for shorter ones, which scan.
func (d *DB) searchIndex(search string) (string, []any, bool) {
	key := usersync.UsernameKey(search)
	if utf8.RuneCountInString(search) < 3 || utf8.RuneCountInString(key) < 3 {
		return "", nil, false
	}
	if d.dialect.name == "sqlite" {
		phrase := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
		m := phrase(search)
		if key != strings.ToLower(search) {
			m += " OR " + phrase(key)
		}
		return `id IN (SELECT rowid FROM users_search WHERE users_search MATCH ?)`, []any{m}, true
	}
	expr := `(username_key || ' ' || ` + d.dialect.fold(`email || ' ' || first_name || ' ' || last_name`) + `)`
	return `(` + expr + ` LIKE ? ESCAPE '\' OR ` + expr + ` LIKE ` + d.dialect.fold("?") + ` ESCAPE '\')`, []any{likePattern(key), likePattern(search)}, true
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func limitClause(offset, limit int) string {
	s := ""
	if limit > 0 {
		s = " LIMIT " + strconv.Itoa(limit)
	} else if offset > 0 {
		s = " LIMIT 9223372036854775807" // SQLite allows OFFSET only after LIMIT
	}
	if offset > 0 {
		s += " OFFSET " + strconv.Itoa(offset)
	}
	return s
}

// UpdateUser applies upd to a user.
func (d *DB) UpdateUser(ctx context.Context, id int64, upd usersync.UserUpdate, expectVersion int64) (*usersync.User, error) {
	return d.ModifyUser(ctx, id, expectVersion, func(*usersync.User) (usersync.UserUpdate, error) { return upd, nil })
}

// ModifyUser applies the update that fn computes from the locked user.
func (d *DB) ModifyUser(ctx context.Context, id int64, expectVersion int64, fn func(*usersync.User) (usersync.UserUpdate, error)) (*usersync.User, error) {
	var out *usersync.User
	err := d.update(ctx, func(t *tx) error {
		u, err := t.lockUser(id)
		if err != nil {
			return err
		}
		if expectVersion != 0 && u.Version != expectVersion {
			return usersync.Errorf(usersync.ESTALE, "user %q was changed meanwhile (version %d, expected %d)", u.Username, u.Version, expectVersion)
		}
		cur := *u
		cur.Attributes = maps.Clone(u.Attributes)
		cur.Profile = cloneProfile(u.Profile)
		upd, err := fn(&cur)
		if err != nil {
			return err
		}
		next := *u
		next.Attributes = applyAttrs(u.Attributes, upd.Attributes)
		set(&next.Username, upd.Username)
		set(&next.Email, upd.Email)
		set(&next.FirstName, upd.FirstName)
		set(&next.LastName, upd.LastName)
		set(&next.Type, upd.Type)
		set(&next.Enabled, upd.Enabled)
		set(&next.AuthMethod, upd.AuthMethod)
		set(&next.Source, upd.Source)
		set(&next.SourceID, upd.SourceID)
		set(&next.SoftDeleted, upd.SoftDeleted)
		if upd.Profile != nil {
			next.Profile = *upd.Profile
			if len(next.Profile) == 0 {
				next.Profile = nil
			}
		}
		if err := next.Validate(); err != nil {
			return err
		}
		if err := t.saveUser(u, &next); err != nil {
			return err
		}
		out = &next
		return nil
	})
	return out, err
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func applyAttrs(cur map[string]string, upd map[string]*string) map[string]string {
	out := make(map[string]string, len(cur)+len(upd))
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range upd {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	return out
}

func (t *tx) lockUser(id int64) (*usersync.User, error) {
	u, err := scanUser(t.queryRow(`SELECT `+userCols+` FROM users WHERE id = ?`+t.d.dialect.forUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "user with id %d not found", id)
	}
	return u, t.d.wrapErr("read user", err)
}

// saveUser writes next over old when they differ, bumping the version and
// recording the changed fields. It writes nothing when they are equal.
func (t *tx) saveUser(old, next *usersync.User) error {
	if sameUser(old, next) {
		return nil // most users of a sync run: no maps built to find that nothing changed
	}
	diff := diffFields(userFields(old), userFields(next))
	if len(diff) == 0 {
		return nil
	}
	next.Version, next.UpdatedAt = old.Version+1, fromMicros(t.now)
	n, err := t.exec(`UPDATE users SET username = ?, username_key = ?, email = ?, first_name = ?, last_name = ?, user_type = ?, enabled = ?,
		auth_method = ?, source = ?, source_id = ?, attributes = ?, soft_deleted = ?, updated_at = ?, version = ?, profile = ? WHERE id = ? AND version = ?`,
		next.Username, usersync.UsernameKey(next.Username), next.Email, next.FirstName, next.LastName, string(next.Type), next.Enabled,
		string(next.AuthMethod), next.Source, next.SourceID, encodeAttrs(next.Attributes), next.SoftDeleted, t.now, next.Version, encodeProfile(next.Profile), next.ID, old.Version)
	if isUniqueViolation(err) {
		return usersync.Errorf(usersync.ECONFLICT, "cannot rename user %q: %q already exists", old.Username, next.Username)
	} else if err != nil {
		return t.d.wrapErr("update user", err)
	} else if n == 0 {
		return usersync.Errorf(usersync.ESTALE, "user %q was changed or deleted by another writer meanwhile; try again", old.Username)
	}
	t.change(usersync.UserUpdated, userRef(next), nil, diff)
	t.onCommit(func() { t.d.tokens.drop(tokensOf(next.ID)) })
	return nil
}

// DeleteUser removes a user, its memberships and its tokens; when
// expectVersion is not 0, only the user at that version (ESTALE otherwise),
// checked on the locked row.
func (d *DB) DeleteUser(ctx context.Context, id int64, expectVersion int64) error {
	return d.update(ctx, func(t *tx) error {
		u, err := t.lockUser(id)
		if err != nil {
			return err
		}
		if expectVersion != 0 && u.Version != expectVersion {
			return usersync.Errorf(usersync.ESTALE, "user %q is at version %d, not %d: it changed meanwhile; nothing was deleted", u.Username, u.Version, expectVersion)
		}
		rows, err := t.query(`SELECT g.id, g.name FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.member_type = 'user' AND m.member_id = ? ORDER BY g.name_key`, id)
		if err != nil {
			return t.d.wrapErr("read memberships", err)
		}
		var groups []usersync.ObjectRef
		for rows.Next() {
			g := usersync.ObjectRef{Type: usersync.ObjectGroup}
			if err := rows.Scan(&g.ID, &g.Name); err != nil {
				rows.Close()
				return t.d.wrapErr("read memberships", err)
			}
			groups = append(groups, g)
		}
		rows.Close()
		ref := userRef(u)
		for _, g := range groups {
			t.change(usersync.MemberRemoved, g, &ref, nil)
		}
		if _, err := t.exec(`DELETE FROM memberships WHERE member_type = 'user' AND member_id = ?`, id); err != nil {
			return t.d.wrapErr("delete memberships", err)
		}
		if _, err := t.exec(`DELETE FROM api_tokens WHERE user_id = ?`, id); err != nil {
			return t.d.wrapErr("delete tokens", err)
		}
		if _, err := t.exec(`DELETE FROM admin_sessions WHERE user_id = ?`, id); err != nil {
			return t.d.wrapErr("delete sessions", err)
		}
		if _, err := t.exec(`DELETE FROM users WHERE id = ?`, id); err != nil {
			return t.d.wrapErr("delete user", err)
		}
		t.change(usersync.UserDeleted, ref, nil, diffFields(userFields(u), nil))
		t.onCommit(func() { t.d.tokens.drop(tokensOf(id)) })
		return nil
	})
}
