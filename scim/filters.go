// SCIM filters (RFC 7644 §3.4.2.2) translated into directory conditions,
// which the store evaluates in the database.

package scim

import (
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// translate maps and, or and not onto directory conditions and leaves the
// attribute expressions to leaf.
func translate(e filter.Expr, leaf func(filter.Expr) (usersync.Cond, error)) (usersync.Cond, error) {
	switch e := e.(type) {
	case *filter.Logical:
		l, err := translate(e.Left, leaf)
		if err != nil {
			return nil, err
		}
		r, err := translate(e.Right, leaf)
		if err != nil {
			return nil, err
		}
		if e.Op == "and" {
			return usersync.All{l, r}, nil
		}
		return usersync.Any{l, r}, nil
	case *filter.Not:
		c, err := translate(e.Expr, leaf)
		if err != nil {
			return nil, err
		}
		return usersync.Not{Cond: c}, nil
	}
	return leaf(e)
}

// userCond translates a SCIM filter on Users into a directory condition.
// Every attribute of the User schemas is filterable: the directory's own
// fields by their columns, the rest in the profile. Attributes the schemas
// do not have make the filter invalid, as RFC 7644 §3.4.2.2 asks.
//
// userName eq also finds a user soft-deleted under that name (stored with
// the prefix, and marked soft-deleted), as the client sees it (scimName): a
// client that lost its own record of the user must find it again, not
// create another.
func userCond(e filter.Expr, prefix string) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			return userMatch(e.Path, "pr", nil)
		case *filter.Compare:
			c, err := userMatch(e.Path, e.Op, e.Value)
			if name, ok := e.Value.(string); ok && err == nil && prefix != "" && e.Op == "eq" && strings.EqualFold(e.Path.Name, "userName") {
				c = usersync.Any{c, usersync.All{
					usersync.Match{Field: "username", Op: usersync.OpEq, Value: prefix + name},
					usersync.Match{Field: "softDeleted", Op: usersync.OpEq, Value: true},
				}}
			}
			return c, err
		case *filter.ValuePath:
			return userValuePath(e)
		}
		return nil, invalidFilter("unsupported expression")
	})
}

// userValuePath translates attr[filter]: some value of a multi-valued
// attribute matches. Users without emails in their profile (pulled ones)
// have the directory's email as their one work, primary email.
func userValuePath(e *filter.ValuePath) (usersync.Cond, error) {
	s, a := resolveUser(e.Path.URI, e.Path.Name)
	if a == nil || !a.MultiValued || a.Type != "complex" || e.Path.Sub != "" {
		return nil, invalidFilter("value filters apply to multi-valued attributes such as emails, not %s", e.Path)
	}
	if a.Mutability == "readOnly" || a.Mutability == "writeOnly" {
		return nil, invalidFilter("%s is not filterable", a.Name)
	}
	where, err := translate(e.Filter, func(x filter.Expr) (usersync.Cond, error) {
		switch x := x.(type) {
		case *filter.Present:
			return elemMatch(a, x.Path, "pr", nil)
		case *filter.Compare:
			return elemMatch(a, x.Path, x.Op, x.Value)
		}
		return nil, invalidFilter("value filters compare sub-attributes of %s", a.Name)
	})
	if err != nil {
		return nil, err
	}
	c := usersync.Cond(usersync.ProfileEach{Path: profilePath(s, a.Name), Where: where})
	if a.Name == "emails" {
		col, err := emailCond(e.Filter)
		if err != nil {
			return nil, err
		}
		c = usersync.Any{c, usersync.All{usersync.Not{Cond: usersync.ProfileMatch{Path: []string{"emails"}, Op: usersync.OpPresent}}, col}}
	}
	return c, nil
}

// profilePath is where an attribute of schema s is in a profile.
func profilePath(s *Schema, name string, sub ...string) []string {
	p := []string{name}
	if s == EnterpriseSchema {
		p = []string{SchemaEnterprise, name}
	}
	return append(p, sub...)
}

// elemMatch compares a sub-attribute of an element of a.
func elemMatch(a *Attribute, p filter.Path, op string, v any) (usersync.Cond, error) {
	sa := a.Sub(p.Name)
	if sa == nil || p.Sub != "" || p.URI != "" {
		return nil, invalidFilter("%s has no sub-attribute %q", a.Name, p)
	}
	return profileMatch(sa, []string{sa.Name}, op, v)
}

// profileMatch compares a profile value of attribute a at path.
func profileMatch(a *Attribute, path []string, op string, v any) (usersync.Cond, error) {
	m := usersync.ProfileMatch{Path: path, Op: usersync.MatchOp(op), Value: v, CaseExact: a.CaseExact}
	if op == "pr" {
		m.Value = nil
	} else {
		switch a.Type {
		case "boolean":
			if _, ok := v.(bool); !ok {
				return nil, invalidFilter("%s is true or false, not %v", a.Name, v)
			}
		case "decimal", "integer":
			if _, ok := v.(float64); !ok {
				return nil, invalidFilter("%s is a number, not %v", a.Name, v)
			}
		default:
			if _, ok := v.(string); !ok {
				return usersync.Always(op == "ne"), nil // a string attribute never equals a number, true or null
			}
		}
	}
	if err := usersync.Validate(m); err != nil {
		return nil, invalidFilter("%s", usersync.ErrorMessage(err))
	}
	return m, nil
}

// userColumns map User attributes (lower case) kept in the directory's
// own fields to them, and whether they compare case-exactly.
var userColumns = map[string]struct {
	field string
	exact bool
}{
	"username": {"username", false}, "id": {"id", true}, "active": {"enabled", false},
	"name.givenname": {"firstName", false}, "name.familyname": {"lastName", false},
	"meta.created": {"createdAt", false}, "meta.lastmodified": {"updatedAt", false},
}

func userMatch(p filter.Path, op string, v any) (usersync.Cond, error) {
	s, a := resolveUser(p.URI, p.Name)
	if a == nil {
		return nil, invalidFilter("%s is not a User attribute (see /Schemas)", p)
	}
	if a.Mutability == "writeOnly" || a.Name == "groups" {
		return nil, invalidFilter("%s is not filterable", a.Name)
	}
	var sa *Attribute
	if p.Sub != "" {
		if sa = a.Sub(p.Sub); sa == nil {
			return nil, invalidFilter("%s has no sub-attribute %q", a.Name, p.Sub)
		}
	}
	key := strings.ToLower(a.Name)
	if sa != nil {
		key += "." + strings.ToLower(sa.Name)
	}
	switch {
	case key == "externalid":
		// externalId is the SCIM client's id of users it owns (source
		// "scim"); the partial index users_scim_external serves this.
		m, err := match("sourceId", op, v, true)
		if err != nil {
			return nil, err
		}
		return usersync.All{usersync.Match{Field: "source", Op: usersync.OpEq, Value: SourceSCIM, CaseExact: true}, m}, nil
	case s == EnterpriseSchema && (sa == nil || sa.Name == "value"):
		// Enterprise attributes are custom attributes too (manager: its id).
		if op != "pr" {
			if _, ok := v.(string); !ok {
				return usersync.Always(op == "ne"), nil
			}
		}
		return match("attributes."+a.Name, op, v, false)
	case key == "emails" || key == "emails.value":
		col, err := match("email", op, v, false)
		if err != nil {
			return nil, err
		}
		if op == "ne" {
			eq, err := userMatch(p, "eq", v)
			return usersync.Not{Cond: eq}, err
		}
		prof, err := profileMatch(UserSchema.Attr("emails").Sub("value"), []string{"value"}, op, v)
		if err != nil {
			return nil, err
		}
		return usersync.Any{col, usersync.ProfileEach{Path: []string{"emails"}, Where: prof}}, nil
	case strings.HasPrefix(key, "meta.") && userColumns[key].field == "":
		return nil, invalidFilter("%s is not filterable", p)
	}
	if c, ok := userColumns[key]; ok {
		if c.field == "id" {
			s, ok := v.(string)
			n, err := strconv.ParseInt(s, 10, 64)
			if op != "pr" && (!ok || err != nil) {
				return usersync.Always(op == "ne"), nil // no user has such an id
			}
			v = float64(n)
		}
		if c.field == "createdAt" || c.field == "updatedAt" {
			s, ok := v.(string)
			t, err := time.Parse(time.RFC3339Nano, s)
			if op != "pr" && (!ok || err != nil) {
				return nil, invalidFilter("%s compares with an RFC 3339 date-time, not %v", p, v)
			}
			v = t
		}
		if c.field == "enabled" && op != "pr" {
			if _, ok := v.(bool); !ok {
				return nil, invalidFilter("active is true or false, not %v", v)
			}
		}
		return match(c.field, op, v, c.exact)
	}
	// Everything else is in the profile.
	if a.MultiValued {
		target := sa
		if target == nil {
			target = a.Sub("value") // emails co "x": the values
		}
		if target == nil {
			return nil, invalidFilter("%s has no value to compare: name a sub-attribute", a.Name)
		}
		if op == "ne" {
			eq, err := profileMatch(target, []string{target.Name}, "eq", v)
			return usersync.Not{Cond: usersync.ProfileEach{Path: profilePath(s, a.Name), Where: eq}}, err
		}
		m, err := profileMatch(target, []string{target.Name}, op, v)
		return usersync.ProfileEach{Path: profilePath(s, a.Name), Where: m}, err
	}
	if sa != nil {
		return profileMatch(sa, profilePath(s, a.Name, sa.Name), op, v)
	}
	if a.Type == "complex" {
		return nil, invalidFilter("%s is complex: name a sub-attribute (%s.%s)", a.Name, a.Name, a.SubAttributes[0].Name)
	}
	return profileMatch(a, profilePath(s, a.Name), op, v)
}

// valuePathOn checks that a value filter (attr[…]) names attr of schema,
// the one multi-valued attribute of the resource that filters reach into.
func valuePathOn(p filter.Path, attr, schema string) error {
	if !strings.EqualFold(p.Name, attr) || p.Sub != "" || (p.URI != "" && !strings.EqualFold(p.URI, schema)) {
		return invalidFilter("value filters apply to %s only here, not %s", attr, p)
	}
	return nil
}

// emailCond translates the filter inside emails[…] for a user whose
// profile has no emails: its one email is the directory's, work and primary.
func emailCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			switch strings.ToLower(e.Path.Name) {
			case "value", "type", "primary":
				return usersync.Match{Field: "email", Op: usersync.OpPresent}, nil
			case "display":
				return usersync.Always(false), nil
			}
		case *filter.Compare:
			switch strings.ToLower(e.Path.Name) {
			case "value":
				return match("email", e.Op, e.Value, false)
			case "type":
				s, ok := e.Value.(string)
				if !ok {
					return usersync.Always(e.Op == "ne"), nil
				}
				return usersync.All{usersync.Match{Field: "email", Op: usersync.OpPresent}, usersync.Always(compareValue("work", e.Op, s, false))}, nil
			case "primary":
				b, ok := e.Value.(bool)
				if !ok || (e.Op != "eq" && e.Op != "ne") {
					return nil, invalidFilter("emails primary compares with eq or ne and true or false")
				}
				return usersync.All{usersync.Match{Field: "email", Op: usersync.OpPresent}, usersync.Always(compareValue(true, e.Op, b, false))}, nil
			case "display":
				return usersync.Always(e.Op == "ne"), nil
			}
		}
		return nil, invalidFilter("emails have value, display, type and primary")
	})
}

func match(field, op string, v any, exact bool) (usersync.Cond, error) {
	m := usersync.Match{Field: field, Op: usersync.MatchOp(op), Value: v, CaseExact: exact}
	if err := usersync.Validate(m); err != nil {
		return nil, invalidFilter("%s", usersync.ErrorMessage(err))
	}
	return m, nil
}

// groupAttrs maps SCIM Group attributes (lower case) to group fields and
// whether they compare case-exactly.
var groupAttrs = map[string]struct {
	field string
	exact bool
}{
	"displayname": {"name", false}, "externalid": {"alias", true}, "id": {"id", true},
	"meta.created": {"createdAt", false}, "meta.lastmodified": {"updatedAt", false},
	"members": {"member", true}, "members.value": {"member", true}, "description": {"description", false},
}

// groupCond translates a SCIM filter on Groups into a directory condition.
func groupCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			return groupMatch(e.Path, "pr", nil)
		case *filter.Compare:
			return groupMatch(e.Path, e.Op, e.Value)
		case *filter.ValuePath: // members[value eq "id"]
			if err := valuePathOn(e.Path, "members", SchemaGroup); err != nil {
				return nil, err
			}
			return memberCond(e.Filter)
		}
		return nil, invalidFilter("groups filter on displayName, externalId, id, members and meta dates")
	})
}

// memberCond translates the filter inside members[…]: value is a user's
// id or a group's ("g…"); type is User or Group.
func memberCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			if k := strings.ToLower(e.Path.Name); k == "value" || k == "type" || k == "display" || k == "$ref" {
				return groupMatch(filter.Path{Name: "members"}, "pr", nil)
			}
		case *filter.Compare:
			switch strings.ToLower(e.Path.Name) {
			case "value":
				return groupMatch(filter.Path{Name: "members"}, e.Op, e.Value)
			case "type":
				s, ok := e.Value.(string)
				if !ok || e.Op != "eq" {
					return nil, invalidFilter("members type compares with eq and a string")
				}
				switch strings.ToLower(s) {
				case "user":
					return usersync.Match{Field: "member", Op: usersync.OpPresent}, nil
				case "group":
					return usersync.Match{Field: "memberGroup", Op: usersync.OpPresent}, nil
				}
				return usersync.Always(false), nil
			}
		}
		return nil, invalidFilter("members filters on value (a member's id) and type")
	})
}

func groupMatch(p filter.Path, op string, v any) (usersync.Cond, error) {
	key := strings.ToLower(p.Name)
	if p.Sub != "" {
		key += "." + strings.ToLower(p.Sub)
	}
	if p.URI != "" && !strings.EqualFold(p.URI, SchemaGroup) {
		return nil, invalidFilter("unknown schema %q", p.URI)
	}
	a, ok := groupAttrs[key]
	if !ok {
		return nil, invalidFilter("%s is not a Group attribute (see /Schemas)", p)
	}
	switch a.field {
	case "id":
		s, ok := v.(string)
		n, valid := parseGroupID(s)
		if op != "pr" && (!ok || !valid) {
			return usersync.Always(op == "ne"), nil
		}
		v = float64(n)
	case "member":
		if op != "eq" && op != "pr" {
			return nil, invalidFilter("%s is a set of ids: only eq and pr test it, not %s", p, op)
		}
		if op == "pr" {
			return usersync.Any{usersync.Match{Field: "member", Op: usersync.OpPresent}, usersync.Match{Field: "memberGroup", Op: usersync.OpPresent}}, nil
		}
		s, _ := v.(string)
		ms, err := resolveMembers([]memberRef{{Value: s}})
		if err != nil {
			return usersync.Always(false), nil // no member has such an id
		}
		if len(ms.groups) == 1 {
			return usersync.Match{Field: "memberGroup", Op: usersync.OpEq, Value: float64(ms.groups[0])}, nil
		}
		return usersync.Match{Field: "member", Op: usersync.OpEq, Value: float64(ms.users[0])}, nil
	case "createdAt", "updatedAt":
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if op != "pr" && err != nil {
			return nil, invalidFilter("%s compares with an RFC 3339 date-time, not %v", p, v)
		}
		v = t
	}
	m := usersync.Match{Field: a.field, Op: usersync.MatchOp(op), Value: v, CaseExact: a.exact}
	if err := usersync.ValidateFields(m, usersync.GroupMatchFields); err != nil {
		return nil, invalidFilter("%s", usersync.ErrorMessage(err))
	}
	return m, nil
}
