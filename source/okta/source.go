package okta

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/usersync/usersync"
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

// Source adapts the client to the sync engine; it is also a pull.Counter
// and a pull.Describer.
//
// Okta statuses become: SUSPENDED and DEPROVISIONED users are disabled in
// the directory (a DEPROVISIONED user missing there is not created at all);
// every other status — ACTIVE, STAGED, PROVISIONED, RECOVERY,
// PASSWORD_EXPIRED, LOCKED_OUT (a temporary sign-in lockout) — is enabled.
// The status is kept in the attribute okta_status.
func (c *Client) Source(m Mapping) interface {
	pull.Source
	pull.Describer
	pull.Identity
	pull.Lookup
} {
	m.defaults()
	return &source{c: c, m: m, seen: map[string]bool{}}
}

type source struct {
	c *Client
	m Mapping

	mu      sync.Mutex
	seen    map[string]bool // profile attribute names met while reading, for Suggest
	checked bool            // the mapping's attribute names were found in the org's user schema
	orgID   string          // learnt by Identify
}

// defaultProfile lists the attributes of Okta's default user profile.
var defaultProfile = []string{"login", "email", "secondEmail", "firstName", "lastName", "middleName", "honorificPrefix", "honorificSuffix",
	"title", "displayName", "nickName", "profileUrl", "primaryPhone", "mobilePhone", "streetAddress", "city", "state", "zipCode",
	"countryCode", "postalAddress", "preferredLanguage", "locale", "timezone", "userType", "employeeNumber", "costCenter",
	"organization", "division", "department", "managerId", "manager"}

// Options are the mapping flags, as pull.Describer asks.
func (s *source) Options() map[string]string {
	return map[string]string{"--username-attr": s.m.UsernameAttr, "--first-name-attr": s.m.FirstNameAttr,
		"--last-name-attr": s.m.LastNameAttr, "--email-attr": s.m.EmailAttr}
}

// Attributes are the custom attributes the source fills.
func (s *source) Attributes() []string { return []string{"okta_status"} }

// Suggest names the profile attribute closest to a mistyped one, among
// Okta's default profile and the attributes of the profiles read.
func (s *source) Suggest(name string) string {
	s.mu.Lock()
	known := append([]string(nil), defaultProfile...)
	for k := range s.seen {
		known = append(known, k)
	}
	s.mu.Unlock()
	sort.Strings(known)
	return pull.Closest(name, known)
}

// Owner names the org: "okta:<org id>" once Identify has run, "okta:<host>"
// before it or for a server that does not tell its id.
func (s *source) Owner() string {
	if s.orgID != "" {
		return "okta:" + s.orgID
	}
	return "okta:" + s.c.host
}

// Identify learns the org's id: an org reached as localhost or 127.0.0.1,
// by its okta.com name or a custom domain, is one owner.
func (s *source) Identify(ctx context.Context) error {
	id, err := s.c.OrgID(ctx, "")
	switch {
	case err == nil:
		s.orgID = id
	case usersync.ErrorCode(err) != usersync.ENOTFOUND:
		return err
	}
	return nil
}

// SameSource says whether owner ("okta:<host>", as earlier versions kept
// it) is this org, by asking that host for its id.
func (s *source) SameSource(ctx context.Context, owner string) (bool, error) {
	host, ok := strings.CutPrefix(owner, "okta:")
	if !ok || host == "" || s.orgID == "" || !strings.ContainsAny(host, ".:") {
		return false, nil // an org id, or a host of no org
	}
	// Only the host was kept: ask it over this org's scheme (https, but
	// http for an emulator reached over http).
	scheme, _, _ := strings.Cut(s.c.base, "://")
	id, err := s.c.OrgID(ctx, scheme+"://"+host)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		return false, nil
	}
	return err == nil && id == s.orgID, err
}

// checkMapping refuses, before anything is read, a mapping flag that names
// no attribute of the org's user profile, as the o365 pull refuses one
// Graph does not know: Okta answers profiles without the attribute and no
// error, so a typo made users with empty names or no email. A token that
// may not read the schema (403) is no reason to refuse; the checks made
// while reading remain.
func (s *source) checkMapping(ctx context.Context) error {
	s.mu.Lock()
	checked := s.checked
	s.mu.Unlock()
	if checked {
		return nil
	}
	names, err := s.c.ProfileAttributes(ctx)
	if usersync.ErrorCode(err) == usersync.EFORBIDDEN {
		s.mu.Lock()
		s.checked = true
		s.mu.Unlock()
		return nil
	} else if err != nil {
		return err
	}
	for _, f := range []struct{ flag, attr string }{{"--username-attr", s.m.UsernameAttr}, {"--first-name-attr", s.m.FirstNameAttr},
		{"--last-name-attr", s.m.LastNameAttr}, {"--email-attr", s.m.EmailAttr}} {
		if slices.Contains(names, f.attr) {
			continue
		}
		msg := fmt.Sprintf("%s %q is no attribute of the Okta user profile (its schema, /api/v1/meta/schemas/user/default, has %d)", f.flag, f.attr, len(names))
		if sug := pull.Closest(f.attr, names); sug != "" {
			msg += fmt.Sprintf("; did you mean %q?", sug)
		}
		return usersync.Errorf(usersync.EINVALID, "%s", msg)
	}
	s.mu.Lock()
	s.checked = true
	s.mu.Unlock()
	return nil
}

func (s *source) FindGroup(ctx context.Context, nameOrID string) (pull.Group, error) {
	if err := s.checkMapping(ctx); err != nil {
		return pull.Group{}, err
	}
	g, err := s.c.FindGroup(ctx, nameOrID)
	if err != nil {
		return pull.Group{}, pull.GroupNotFound(ctx, err, nameOrID, s.c.GroupNamesStarting)
	}
	return pull.Group{ID: g.ID, Name: g.Profile.Name, Description: g.Profile.Description}, nil
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
		if len(page) > 0 { // one profile a page names the org's attributes well enough
			s.mu.Lock()
			for k := range page[0].Profile {
				s.seen[k] = true
			}
			s.mu.Unlock()
		}
		return fn(out)
	})
}

// LookupUsers reads users by their Okta ids (pull.Lookup).
func (s *source) LookupUsers(ctx context.Context, ids []string) (map[string]pull.User, error) {
	users, err := s.c.Users(ctx, ids)
	out := make(map[string]pull.User, len(users))
	for _, u := range users {
		out[u.ID] = s.toUser(u)
	}
	return out, err
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
