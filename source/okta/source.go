package okta

import (
	"context"
	"fmt"

	"github.com/usersync/usersync/pull"
)

// Mapping says which Okta profile attributes fill which directory fields.
type Mapping struct {
	UsernameAttr  string // default login
	FirstNameAttr string // default firstName
	LastNameAttr  string // default lastName
	EmailAttr     string // default email
}

func (m *Mapping) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&m.UsernameAttr, "login")
	def(&m.FirstNameAttr, "firstName")
	def(&m.LastNameAttr, "lastName")
	def(&m.EmailAttr, "email")
}

// Source adapts the client to the sync engine; it is also a pull.Counter.
//
// Okta statuses become: SUSPENDED and DEPROVISIONED users are disabled in
// the directory (a DEPROVISIONED user missing there is not created at all);
// every other status — ACTIVE, STAGED, PROVISIONED, RECOVERY,
// PASSWORD_EXPIRED, LOCKED_OUT (a temporary sign-in lockout) — is enabled.
// The status is kept in the attribute okta_status.
func (c *Client) Source(m Mapping) pull.Source {
	m.defaults()
	return &source{c: c, m: m}
}

type source struct {
	c *Client
	m Mapping
}

// Owner names the org: "okta:<host>".
func (s *source) Owner() string { return "okta:" + s.c.host }

func (s *source) FindGroup(ctx context.Context, nameOrID string) (pull.Group, error) {
	g, err := s.c.FindGroup(ctx, nameOrID)
	return pull.Group{ID: g.ID, Name: g.Profile.Name, Description: g.Profile.Description}, err
}

func (s *source) CountMembers(ctx context.Context, g pull.Group) (int, error) {
	return s.c.MemberCount(ctx, g.ID)
}

func (s *source) Members(ctx context.Context, g pull.Group, fn func([]pull.User) error) error {
	return s.c.Members(ctx, g.ID, func(page []User) error {
		out := make([]pull.User, len(page))
		for i, u := range page {
			out[i] = s.toUser(u)
		}
		return fn(out)
	})
}

func (s *source) toUser(u User) pull.User {
	str := func(attr string) string {
		switch v := u.Profile[attr].(type) {
		case nil:
			return ""
		case string:
			return v
		default:
			return fmt.Sprint(v)
		}
	}
	pu := pull.User{ID: u.ID, Username: str(s.m.UsernameAttr), Email: str(s.m.EmailAttr), FirstName: str(s.m.FirstNameAttr),
		LastName: str(s.m.LastNameAttr), Enabled: true, Attributes: map[string]string{"okta_status": u.Status}}
	switch u.Status {
	case "SUSPENDED":
		pu.Enabled = false
	case "DEPROVISIONED":
		pu.Enabled = false
		pu.NoCreate = "deprovisioned in Okta: not created; an existing user is disabled"
	}
	return pu
}
