package rules

import (
	"context"
	"strings"

	"github.com/usersync/usersync"
)

// Grant is a role a user holds, and how: by hand, or through a mapping.
type Grant struct {
	Role string `json:"role"`
	Via  string `json:"via"` // "hand" or "mapping NAME"
}

// Directory is what roles are read from.
type Directory interface {
	usersync.UserService
	usersync.RoleService
}

// Roles returns the roles of each user: those held by hand, then those
// mappings give, in the mappings' order (each role once, by its first grant).
func Roles(ctx context.Context, dir Directory, users []*usersync.User) (map[int64][]Grant, error) {
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	hand, err := dir.UserRoles(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[int64][]Grant{}
	seen := map[int64]map[string]bool{}
	grant := func(id int64, role, via string) {
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		if k := strings.ToLower(role); !seen[id][k] {
			seen[id][k] = true
			out[id] = append(out[id], Grant{Role: role, Via: via})
		}
	}
	for id, rs := range hand {
		for _, r := range rs {
			grant(id, r, "hand")
		}
	}
	ms, err := dir.FindMappings(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		c, err := Parse(m.Condition)
		if err != nil {
			return nil, usersync.Errorf(usersync.EINVALID, "mapping %q: %s", m.Name, usersync.ErrorMessage(err))
		}
		v, err := c.Check(ctx, dir, users, ms) // a condition on role sees the roles other mappings give too
		if err != nil {
			return nil, err
		}
		for i, verdict := range v {
			if verdict.Holds {
				for _, r := range m.Roles {
					grant(users[i].ID, r, "mapping "+m.Name)
				}
			}
		}
	}
	return out, nil
}

// CountMapping counts the users a mapping's condition holds for (one query).
func CountMapping(ctx context.Context, dir usersync.UserService, m *usersync.Mapping) (int, error) {
	c, err := Parse(m.Condition)
	if err != nil {
		return 0, err
	}
	_, n, err := dir.FindUsers(ctx, usersync.UserFilter{Where: c.Cond, Limit: 1, Unordered: true})
	return n, err
}

// ExpandRoles rewrites every comparison on role in c so that it holds for
// a role held by hand or given by a mapping: "holds a role" has one meaning
// for scope, rules and Check alike. A comparison becomes "held by hand, or
// the condition of a mapping that sets a matching role" (role ne X: not
// holding X either way). A mapping whose condition asks for the role it
// gives (directly or through others) adds nothing there: a cycle grants
// nothing by itself.
func ExpandRoles(c usersync.Cond, ms []*usersync.Mapping) (usersync.Cond, error) {
	x := expander{ms: ms, parsed: map[string]usersync.Cond{}, visiting: map[string]bool{}}
	return x.expand(c)
}

type expander struct {
	ms       []*usersync.Mapping
	parsed   map[string]usersync.Cond
	visiting map[string]bool
}

func (x *expander) expand(c usersync.Cond) (usersync.Cond, error) {
	switch c := c.(type) {
	case usersync.Match:
		if c.Field != "role" {
			return c, nil
		}
		if c.Op == usersync.OpNe {
			c.Op = usersync.OpEq
			held, err := x.expand(c)
			return usersync.Not{Cond: held}, err
		}
		out := usersync.Any{c}
		for _, m := range x.ms {
			if x.visiting[m.Name] || !setsRole(m.Roles, c) {
				continue
			}
			mc, ok := x.parsed[m.Name]
			if !ok {
				p, err := Parse(m.Condition)
				if err != nil {
					return nil, usersync.Errorf(usersync.EINVALID, "mapping %q: %s", m.Name, usersync.ErrorMessage(err))
				}
				mc, x.parsed[m.Name] = p.Cond, p.Cond
			}
			x.visiting[m.Name] = true
			e, err := x.expand(mc)
			delete(x.visiting, m.Name)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	case usersync.All:
		l, err := x.expandEach(c)
		return usersync.All(l), err
	case usersync.Any:
		l, err := x.expandEach(c)
		return usersync.Any(l), err
	case usersync.Not:
		e, err := x.expand(c.Cond)
		return usersync.Not{Cond: e}, err
	}
	return c, nil
}

// setsRole reports whether one of roles satisfies a comparison on role
// (role names compare without case unless it is case-exact).
func setsRole(roles []string, m usersync.Match) bool {
	want, _ := m.Value.(string)
	for _, r := range roles {
		have, w := r, want
		if !m.CaseExact {
			have, w = strings.ToLower(have), strings.ToLower(w)
		}
		var ok bool
		switch m.Op {
		case usersync.OpEq:
			ok = have == w
		case usersync.OpCo:
			ok = strings.Contains(have, w)
		case usersync.OpSw:
			ok = strings.HasPrefix(have, w)
		case usersync.OpEw:
			ok = strings.HasSuffix(have, w)
		case usersync.OpPresent:
			ok = have != ""
		case usersync.OpGt:
			ok = have > w
		case usersync.OpGe:
			ok = have >= w
		case usersync.OpLt:
			ok = have < w
		case usersync.OpLe:
			ok = have <= w
		}
		if ok {
			return true
		}
	}
	return false
}

// expandEach expands every condition of an All or Any.
func (x *expander) expandEach(list []usersync.Cond) ([]usersync.Cond, error) {
	out := make([]usersync.Cond, len(list))
	for i, k := range list {
		e, err := x.expand(k)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}
