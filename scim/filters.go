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
// Attributes usersync does not store make the filter invalid, as RFC 7644
// §3.4.2.2 asks.
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
			if err := valuePathOn(e.Path, "emails", SchemaUser); err != nil {
				return nil, err
			}
			return emailCond(e.Filter)
		}
		return nil, invalidFilter("unsupported expression")
	})
}

// valuePathOn checks that a value filter (attr[…]) names attr of schema,
// the one multi-valued attribute of the resource that filters reach into.
func valuePathOn(p filter.Path, attr, schema string) error {
	if !strings.EqualFold(p.Name, attr) || p.Sub != "" || (p.URI != "" && !strings.EqualFold(p.URI, schema)) {
		return invalidFilter("value filters apply to %s only here, not %s", attr, p)
	}
	return nil
}

// emailCond translates the filter inside emails[…]: usersync keeps one
// email, the work one, which is also primary.
func emailCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			switch strings.ToLower(e.Path.Name) {
			case "value", "type", "primary":
				return usersync.Match{Field: "email", Op: usersync.OpPresent}, nil
			}
		case *filter.Compare:
			switch strings.ToLower(e.Path.Name) {
			case "value":
				return match("email", e.Op, e.Value, false)
			case "type":
				s, ok := e.Value.(string)
				if !ok || e.Op != "eq" {
					return nil, invalidFilter("emails type compares with eq and a string")
				}
				return usersync.Always(strings.EqualFold(s, "work")), nil
			case "primary":
				b, ok := e.Value.(bool)
				if !ok || e.Op != "eq" {
					return nil, invalidFilter("emails primary compares with eq and true or false")
				}
				return usersync.Always(b), nil
			}
		}
		return nil, invalidFilter("emails have value, type and primary only")
	})
}

// userAttrs maps SCIM User attribute paths (lower case) to directory
// fields and whether they compare case-exactly.
var userAttrs = map[string]struct {
	field string
	exact bool
}{
	"username": {"username", false}, "id": {"id", true}, "active": {"enabled", false},
	"name.givenname": {"firstName", false}, "name.familyname": {"lastName", false},
	"emails": {"email", false}, "emails.value": {"email", false},
	"meta.created": {"createdAt", false}, "meta.lastmodified": {"updatedAt", false},
}

func userMatch(p filter.Path, op string, v any) (usersync.Cond, error) {
	key := strings.ToLower(p.Name)
	if p.Sub != "" {
		key += "." + strings.ToLower(p.Sub)
	}
	switch {
	case strings.EqualFold(p.URI, SchemaEnterprise):
		// Enterprise extension attributes live among the custom attributes.
		if p.Sub != "" {
			return nil, invalidFilter("%s: sub-attributes of the enterprise extension are not stored", p)
		}
		return match("attributes."+p.Name, op, v, false)
	case p.URI != "" && !strings.EqualFold(p.URI, SchemaUser):
		return nil, invalidFilter("unknown schema %q", p.URI)
	}
	if key == "externalid" {
		// externalId is the SCIM client's id of users it owns (source
		// "scim"); the partial index users_scim_external serves this.
		m, err := match("sourceId", op, v, true)
		if err != nil {
			return nil, err
		}
		return usersync.All{usersync.Match{Field: "source", Op: usersync.OpEq, Value: SourceSCIM, CaseExact: true}, m}, nil
	}
	a, ok := userAttrs[key]
	if !ok {
		return nil, invalidFilter("%s is not an attribute usersync stores for users", p)
	}
	if a.field == "id" {
		s, ok := v.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if op != "pr" && (!ok || err != nil) {
			return usersync.Always(op == "ne"), nil // no user has such an id
		}
		v = float64(n)
	}
	if a.field == "createdAt" || a.field == "updatedAt" {
		s, ok := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if op != "pr" && (!ok || err != nil) {
			return nil, invalidFilter("%s compares with an RFC 3339 date-time, not %v", p, v)
		}
		v = t
	}
	return match(a.field, op, v, a.exact)
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
	"members": {"member", true}, "members.value": {"member", true},
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

// memberCond translates the filter inside members[…]: value is a user id;
// type is always "User" (groups hold no groups here).
func memberCond(e filter.Expr) (usersync.Cond, error) {
	return translate(e, func(e filter.Expr) (usersync.Cond, error) {
		switch e := e.(type) {
		case *filter.Present:
			if k := strings.ToLower(e.Path.Name); k == "value" || k == "type" || k == "display" {
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
				if !strings.EqualFold(s, "User") {
					return usersync.Always(false), nil
				}
				return groupMatch(filter.Path{Name: "members"}, "pr", nil)
			}
		}
		return nil, invalidFilter("members filters on value (a user id) and type")
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
		return nil, invalidFilter("%s is not a group attribute usersync filters on", p)
	}
	switch a.field {
	case "id", "member":
		if a.field == "member" && op != "eq" && op != "pr" {
			return nil, invalidFilter("%s is a set of user ids: only eq and pr test it, not %s", p, op)
		}
		s, ok := v.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if op != "pr" && (!ok || err != nil) {
			return usersync.Always(op == "ne"), nil
		}
		v = float64(n)
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
