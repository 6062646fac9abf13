package sqlstore

import (
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// entity is a table conditions apply to: its fields, their columns, and
// the name field that is always compared through its lower-case key column.
type entity struct {
	fields           map[string]usersync.FieldKind
	columns          map[string]string
	keyField, column string // e.g. username: username_key (folded), username (exact)
}

var (
	userEntity = entity{fields: usersync.MatchFields, keyField: "username", column: "username", columns: map[string]string{
		"id": "id", "username": "username_key", "email": "email", "firstName": "first_name", "lastName": "last_name",
		"enabled": "enabled", "type": "user_type", "source": "source", "sourceId": "source_id",
		"createdAt": "created_at", "updatedAt": "updated_at", "softDeleted": "soft_deleted",
		"displayName": "TRIM(first_name || ' ' || last_name)",
	}}
	groupEntity = entity{fields: usersync.GroupMatchFields, keyField: "name", column: "name", columns: map[string]string{
		"id": "id", "name": "name_key", "description": "description", "alias": "alias", "source": "source", "sourceId": "source_id",
		"createdAt": "created_at", "updatedAt": "updated_at",
	}}
)

// roleEntity is the roles table, for role conditions.
var roleEntity = entity{fields: map[string]usersync.FieldKind{"name": usersync.KindString}, keyField: "name", column: "roles.name",
	columns: map[string]string{"name": "roles.name_key"}}

// whereSQL compiles a condition on users into SQL with ? placeholders.
// Everything is evaluated by the database: usernames through their
// lower-case key (indexed), attributes through the JSON functions of each
// dialect.
func (d *DB) whereSQL(c usersync.Cond, e entity) (string, []any, error) {
	if err := usersync.ValidateFields(c, e.fields); err != nil {
		return "", nil, err
	}
	var args []any
	var b strings.Builder
	d.writeCond(&b, &args, c, e)
	return b.String(), args, nil
}

// profileBase is the JSON a profile condition reads: the users' profile
// column, or the element of an enclosing ProfileEach (depth > 0).
func (d *DB) profileBase(depth int) string {
	if depth == 0 {
		if d.dialect.name == "sqlite" {
			return "users.profile"
		}
		return "users.profile::jsonb"
	}
	if d.dialect.name == "sqlite" {
		return "pe" + strconv.Itoa(depth) + ".value"
	}
	return "pe" + strconv.Itoa(depth) + ".v"
}

// profileAt is the JSON value at path under base, and its JSON type name
// ("text"/"string", "integer"/"real"/"number", "true"/"false"/"boolean",
// "array", "object", "null"; NULL when absent).
func (d *DB) profileAt(base string, path []string) (value, typ string) {
	if d.dialect.name == "sqlite" {
		var p strings.Builder
		p.WriteString("$")
		for _, k := range path {
			p.WriteString(`."` + strings.ReplaceAll(strings.ReplaceAll(k, `\`, `\\`), `"`, `\"`) + `"`)
		}
		lit := sqlString(p.String())
		return "json_extract(" + base + ", " + lit + ")", "json_type(" + base + ", " + lit + ")"
	}
	keys := make([]string, len(path))
	for i, k := range path {
		keys[i] = sqlString(k)
	}
	v := "(" + base + " #> ARRAY[" + strings.Join(keys, ", ") + "]::text[])"
	return v, "jsonb_typeof(" + v + ")"
}

func (d *DB) writeProfileEach(b *strings.Builder, args *[]any, c usersync.ProfileEach, e entity, depth int) {
	v, typ := d.profileAt(d.profileBase(depth), c.Path)
	alias := "pe" + strconv.Itoa(depth+1)
	if d.dialect.name == "sqlite" {
		b.WriteString("EXISTS (SELECT 1 FROM json_each(CASE WHEN " + typ + " = 'array' THEN " + v + " ELSE '[]' END) AS " + alias)
	} else {
		b.WriteString("EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN " + typ + " = 'array' THEN " + v + " ELSE '[]'::jsonb END) AS " + alias + "(v)")
	}
	if c.Where != nil {
		b.WriteString(" WHERE ")
		d.writeCondAt(b, args, c.Where, e, depth+1)
	}
	b.WriteString(")")
}

func (d *DB) writeProfileMatch(b *strings.Builder, args *[]any, m usersync.ProfileMatch, depth int) {
	v, typ := d.profileAt(d.profileBase(depth), m.Path)
	sqlite := d.dialect.name == "sqlite"
	text := v // the value as SQL text, for strings
	if !sqlite {
		text = "(" + v + " #>> '{}')"
	}
	isString, isNumber := typ+" = 'string'", typ+" = 'number'"
	if sqlite {
		isString, isNumber = typ+" = 'text'", typ+" IN ('integer', 'real')"
	}
	if m.Op == usersync.OpPresent {
		b.WriteString("(COALESCE(" + typ + ", 'null') <> 'null' AND NOT (" + isString + " AND " + text + " = '')")
		if sqlite {
			b.WriteString(" AND NOT (" + typ + " IN ('array', 'object') AND json(" + v + ") IN ('[]', '{}'))")
		} else {
			b.WriteString(" AND NOT (" + typ + " IN ('array', 'object') AND " + v + " IN ('[]'::jsonb, '{}'::jsonb))")
		}
		b.WriteString(")")
		return
	}
	negate := m.Op == usersync.OpNe
	if negate {
		b.WriteString("NOT ")
		m.Op = usersync.OpEq
	}
	b.WriteString("COALESCE(")
	switch val := m.Value.(type) {
	case bool:
		switch {
		case sqlite && val:
			b.WriteString(typ + " = 'true'")
		case sqlite:
			b.WriteString(typ + " = 'false'")
		default:
			b.WriteString("(" + typ + " = 'boolean' AND " + text + " = " + sqlString(strconv.FormatBool(val)) + ")")
		}
	case float64:
		op := map[usersync.MatchOp]string{usersync.OpEq: "=", usersync.OpGt: ">", usersync.OpGe: ">=", usersync.OpLt: "<", usersync.OpLe: "<="}[m.Op]
		num := v
		if !sqlite {
			num = "(CASE WHEN " + isNumber + " THEN " + text + "::float8 END)"
		}
		b.WriteString("(" + isNumber + " AND " + num + " " + op + " ?)")
		*args = append(*args, val)
	case string:
		col, param := text, "?"
		if !m.CaseExact {
			col, param = d.dialect.fold(text), d.dialect.fold("?")
		}
		b.WriteString("(" + isString + " AND ")
		switch m.Op {
		case usersync.OpCo, usersync.OpSw, usersync.OpEw:
			d.writeLike(b, args, col, param, m.Op, val, !m.CaseExact)
		default:
			op := map[usersync.MatchOp]string{usersync.OpEq: "=", usersync.OpGt: ">", usersync.OpGe: ">=", usersync.OpLt: "<", usersync.OpLe: "<="}[m.Op]
			b.WriteString(col + " " + op + " " + param)
			*args = append(*args, val)
		}
		b.WriteString(")")
	}
	b.WriteString(", FALSE)")
}

func (d *DB) writeCond(b *strings.Builder, args *[]any, c usersync.Cond, e entity) {
	d.writeCondAt(b, args, c, e, 0)
}

// writeCondAt writes c at a ProfileEach nesting depth (0: the top).
func (d *DB) writeCondAt(b *strings.Builder, args *[]any, c usersync.Cond, e entity, depth int) {
	join := func(list []usersync.Cond, op, empty string) {
		if len(list) == 0 {
			b.WriteString(empty)
			return
		}
		b.WriteString("(")
		for i, s := range list {
			if i > 0 {
				b.WriteString(op)
			}
			d.writeCondAt(b, args, s, e, depth)
		}
		b.WriteString(")")
	}
	switch c := c.(type) {
	case nil:
		b.WriteString("1=1")
	case usersync.Always:
		if c {
			b.WriteString("1=1")
		} else {
			b.WriteString("1=0")
		}
	case usersync.IDIn:
		if len(c) == 0 {
			b.WriteString("1=0")
			return
		}
		b.WriteString("id IN (")
		for i, id := range c {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatInt(id, 10)) // numbers: no injection, and one plan per size is not worth it here
		}
		b.WriteString(")")
	case usersync.All:
		join(c, " AND ", "1=1")
	case usersync.Any:
		join(c, " OR ", "1=0")
	case usersync.Not:
		b.WriteString("NOT (")
		d.writeCondAt(b, args, c.Cond, e, depth)
		b.WriteString(")")
	case usersync.Match:
		d.writeMatch(b, args, c, e)
	case usersync.ProfileMatch:
		d.writeProfileMatch(b, args, c, depth)
	case usersync.ProfileEach:
		d.writeProfileEach(b, args, c, e, depth)
	}
}

func (d *DB) writeMatch(b *strings.Builder, args *[]any, m usersync.Match, e entity) {
	kind, _ := usersync.FieldKindOf(e.fields, m.Field)
	if kind == usersync.KindMember { // through the (group_id, member) primary key
		typ := usersync.ObjectUser
		if m.Field == "memberGroup" {
			typ = usersync.ObjectGroup
		}
		b.WriteString("EXISTS (SELECT 1 FROM memberships WHERE group_id = groups.id AND member_type = '" + typ + "'")
		if m.Op == usersync.OpEq {
			b.WriteString(" AND member_id = ?")
			*args = append(*args, int64(m.Value.(float64)))
		}
		b.WriteString(")")
		return
	}
	if e.keyField == "username" && (m.Field == "memberOf" || m.Field == "role") {
		d.writeSetMatch(b, args, m)
		return
	}
	col, isColumn := e.columns[m.Field]
	if !isColumn { // attributes.<name>: a missing attribute reads as ''
		// The name goes into the SQL as a quoted literal (it may appear
		// twice in one comparison, which placeholders would make fragile).
		name := strings.TrimPrefix(m.Field, "attributes.")
		if d.dialect.name == "sqlite" {
			col = "COALESCE(json_extract(attributes, " + sqlString(`$."`+strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `"`, `\"`)+`"`) + "), '')"
		} else {
			col = "COALESCE(attributes::jsonb ->> " + sqlString(name) + ", '')"
		}
	}
	if m.Op == usersync.OpPresent {
		switch kind {
		case usersync.KindString:
			b.WriteString("(" + col + " <> '')")
		default:
			b.WriteString("1=1") // booleans, numbers and times always have a value
		}
		return
	}
	var value any
	switch v := m.Value.(type) {
	case string:
		value = v
	case bool:
		value = v
	case float64:
		value = v
		if v == float64(int64(v)) {
			value = int64(v)
		}
	case time.Time:
		value = micros(v)
	}
	// Strings compare case-insensitively unless asked otherwise; the
	// username column is its lower-case key already.
	fold := kind == usersync.KindString && !m.CaseExact
	param := "?" // how the value enters the comparison
	if fold && m.Field == e.keyField {
		// The key column holds names as the key function folds them.
		if e.keyField == "username" {
			value = usersync.UsernameKey(value.(string))
		} else {
			value = usersync.GroupNameKey(value.(string))
		}
	} else if fold {
		// Both sides are folded by the database, the same way: Unicode
		// case mapping on both backends (see dialect.fold).
		col, param = d.dialect.fold(col), d.dialect.fold("?")
	} else if m.Field == e.keyField {
		col = e.column
	}
	switch m.Op {
	case usersync.OpEq, usersync.OpNe, usersync.OpGt, usersync.OpGe, usersync.OpLt, usersync.OpLe:
		op := map[usersync.MatchOp]string{usersync.OpEq: "=", usersync.OpNe: "<>", usersync.OpGt: ">", usersync.OpGe: ">=", usersync.OpLt: "<", usersync.OpLe: "<="}[m.Op]
		b.WriteString("(" + col + " " + op + " " + param + ")")
		*args = append(*args, value)
	case usersync.OpCo, usersync.OpSw, usersync.OpEw:
		b.WriteString("(")
		d.writeLike(b, args, col, param, m.Op, value.(string), fold)
		b.WriteString(")")
	}
}

// writeSetMatch writes a comparison with the names of a user's groups
// (memberOf) or hand-held roles (role): it holds when one of them matches,
// and ne holds when none is equal. The groups are found once, not per
// user: those whose name matches, and the groups nested in them.
func (d *DB) writeSetMatch(b *strings.Builder, args *[]any, m usersync.Match) {
	negate := m.Op == usersync.OpNe
	if negate {
		m.Op = usersync.OpEq
		b.WriteString("NOT ")
	}
	name := usersync.Match{Field: "name", Op: m.Op, Value: m.Value, CaseExact: m.CaseExact}
	if m.Field == "role" {
		b.WriteString("(users.id IN (SELECT ur.user_id FROM user_roles ur JOIN roles ON roles.id = ur.role_id WHERE ")
		d.writeMatch(b, args, name, roleEntity)
		b.WriteString("))")
		return
	}
	b.WriteString("(users.id IN (WITH RECURSIVE sub(id) AS (SELECT groups.id FROM groups WHERE ")
	d.writeMatch(b, args, name, groupEntity)
	b.WriteString(` UNION SELECT m.member_id FROM memberships m JOIN sub ON m.group_id = sub.id WHERE m.member_type = 'group')
		SELECT m.member_id FROM memberships m JOIN sub ON m.group_id = sub.id WHERE m.member_type = 'user'))`)
}

// writeLike writes col co/sw/ew v. Folded comparisons use LIKE on both
// sides folded; exact ones on SQLite use instr/substr, since SQLite's LIKE
// ignores ASCII case and GLOB has metacharacters of its own.
func (d *DB) writeLike(b *strings.Builder, args *[]any, col, param string, op usersync.MatchOp, v string, fold bool) {
	if d.dialect.name == "sqlite" && !fold {
		switch op {
		case usersync.OpCo:
			b.WriteString("instr(" + col + ", ?) > 0")
			*args = append(*args, v)
		case usersync.OpSw:
			b.WriteString("substr(" + col + ", 1, length(?)) = ?")
			*args = append(*args, v, v)
		case usersync.OpEw:
			b.WriteString("length(" + col + ") >= length(?) AND substr(" + col + ", -length(?)) = ?")
			*args = append(*args, v, v, v)
		}
		return
	}
	s := escapeLike(v)
	switch op {
	case usersync.OpCo:
		s = "%" + s + "%"
	case usersync.OpSw:
		s += "%"
	case usersync.OpEw:
		s = "%" + s
	}
	b.WriteString(col + " LIKE " + param + " ESCAPE '\\'")
	*args = append(*args, s)
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// orderSQL is the ORDER BY of a listing and, for keyset paging, the
// condition that continues after a position: rows after it in the order
// (the field, then id).
func orderSQL(e entity, o *usersync.Order, after *usersync.Position) (order, cont string, args []any, err error) {
	field, desc := e.keyField, false
	if o != nil {
		field, desc = o.Field, o.Desc
	}
	col, ok := e.columns[field]
	if k, _ := usersync.FieldKindOf(e.fields, field); !ok || k == usersync.KindMember || k == usersync.KindProfile {
		return "", "", nil, usersync.Errorf(usersync.EINVALID, "cannot sort by %q", field)
	}
	dir, cmp := " ASC", " > "
	if desc {
		dir, cmp = " DESC", " < "
	}
	unique := field == e.keyField || field == "id" // one row per value: the column alone orders
	order = " ORDER BY " + col + dir
	if !unique {
		order += ", id" + dir
	}
	if after == nil {
		return order, "", nil, nil
	}
	v := after.Value
	switch x := v.(type) {
	case float64: // a position read back from JSON
		v = int64(x)
	}
	if unique {
		return order, "(" + col + cmp + "?)", []any{v}, nil
	}
	return order, "(" + col + cmp + "? OR (" + col + " = ? AND id" + cmp + "?))", []any{v, v, after.ID}, nil
}
