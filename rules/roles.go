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
		v, err := c.Check(ctx, dir, users)
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
