package sqlstore

import (
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
	}}
	groupEntity = entity{fields: usersync.GroupMatchFields, keyField: "name", column: "name", columns: map[string]string{
		"id": "id", "name": "name_key", "description": "description", "alias": "alias", "source": "source", "sourceId": "source_id",
		"createdAt": "created_at", "updatedAt": "updated_at",
	}}
)

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

func (d *DB) writeCond(b *strings.Builder, args *[]any, c usersync.Cond, e entity) {
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
			d.writeCond(b, args, s, e)
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
	case usersync.All:
		join(c, " AND ", "1=1")
	case usersync.Any:
		join(c, " OR ", "1=0")
	case usersync.Not:
		b.WriteString("NOT (")
		d.writeCond(b, args, c.Cond, e)
		b.WriteString(")")
	case usersync.Match:
		d.writeMatch(b, args, c, e)
	}
}

func (d *DB) writeMatch(b *strings.Builder, args *[]any, m usersync.Match, e entity) {
	kind, _ := usersync.FieldKindOf(e.fields, m.Field)
	if kind == usersync.KindMember { // through the (group_id, member) primary key
		b.WriteString("EXISTS (SELECT 1 FROM memberships WHERE group_id = groups.id AND member_type = 'user'")
		if m.Op == usersync.OpEq {
			b.WriteString(" AND member_id = ?")
			*args = append(*args, int64(m.Value.(float64)))
		}
		b.WriteString(")")
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
		s := escapeLike(value.(string))
		switch m.Op {
		case usersync.OpCo:
			s = "%" + s + "%"
		case usersync.OpSw:
			s += "%"
		case usersync.OpEw:
			s = "%" + s
		}
		like := "LIKE"
		if d.dialect.name == "sqlite" && !fold {
			// SQLite's LIKE ignores ASCII case; GLOB does not, but has its own
			// metacharacters, so exact matching uses instr/substr instead.
			switch m.Op {
			case usersync.OpCo:
				b.WriteString("(instr(" + col + ", ?) > 0)")
			case usersync.OpSw:
				b.WriteString("(substr(" + col + ", 1, length(?)) = ?)")
				*args = append(*args, value)
			case usersync.OpEw:
				b.WriteString("(length(" + col + ") >= length(?) AND substr(" + col + ", -length(?)) = ?)")
				*args = append(*args, value, value)
			}
			*args = append(*args, value)
			return
		}
		b.WriteString("(" + col + " " + like + " " + param + " ESCAPE '\\')")
		*args = append(*args, s)
	}
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
