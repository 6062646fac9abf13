package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/pull"
)

// Mapping says which Graph user properties fill which directory fields.
type Mapping struct {
	UsernameAttr  string // default userPrincipalName
	FirstNameAttr string // default givenName
	LastNameAttr  string // default surname
	EmailAttr     string // default mail
	// CustomAttrs are copied into the user's attributes under their own
	// names; with CustomAttrAppID set, attribute x is read from the
	// directory extension property extension_<appId without dashes>_x.
	CustomAttrs     []string
	CustomAttrAppID string
	// GroupAttrs are the CustomAttrs that came from --map-attr-to-group:
	// an error about one names that option.
	GroupAttrs []string
	// TrustedServerUsernameAttr, when set, fills the attribute
	// trusted_server_username from this property.
	TrustedServerUsernameAttr string
	Transformations           []Transformation
}

// Transformation replaces an attribute's value by the first capture group
// of Pattern when it matches; a value that does not match is kept as is.
type Transformation struct {
	Attr    string
	Pattern *regexp.Regexp
}

// ParseTransformations reads the seed's form,
// [{'attr_name': 'trusted_server_username', 'action': '^([a-zA-Z0-9._%+-]+)@'}],
// with single or double quotes.
func ParseTransformations(s string) ([]Transformation, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	js, err := pythonToJSON(s)
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "--attributes-transformation: %v", err)
	}
	var raw []struct {
		Attr   *string `json:"attr_name"`
		Action *string `json:"action"`
	}
	if err := json.Unmarshal([]byte(js), &raw); err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "--attributes-transformation must be a list of {'attr_name': …, 'action': …}: %v", err)
	}
	out := make([]Transformation, 0, len(raw))
	for i, r := range raw {
		if r.Attr == nil || *r.Attr == "" || r.Action == nil {
			return nil, usersync.Errorf(usersync.EINVALID, "--attributes-transformation entry %d needs attr_name and action", i+1)
		}
		re, err := regexp.Compile(*r.Action)
		if err != nil {
			return nil, usersync.Errorf(usersync.EINVALID, "--attributes-transformation entry %d: action %q is not a valid regular expression: %v", i+1, *r.Action, err)
		}
		if re.NumSubexp() < 1 {
			return nil, usersync.Errorf(usersync.EINVALID, "--attributes-transformation entry %d: action %q has no capture group to take the value from", i+1, *r.Action)
		}
		out = append(out, Transformation{Attr: *r.Attr, Pattern: re})
	}
	return out, nil
}

// Check refuses transformations of attributes the mapping does not fill:
// they did nothing, silently (a typo in attr_name, or
// trusted_server_username without --trusted-server-username-attr).
func (m Mapping) Check() error {
	for i, t := range m.Transformations {
		switch {
		case t.Attr == "trusted_server_username" && m.TrustedServerUsernameAttr == "":
			return usersync.Errorf(usersync.EINVALID, "--attributes-transformation entry %d transforms trusted_server_username, which only --trusted-server-username-attr fills; give that option (for example --trusted-server-username-attr userPrincipalName)", i+1)
		case t.Attr == "trusted_server_username" || slices.Contains(m.CustomAttrs, t.Attr):
		default:
			filled := append([]string{"trusted_server_username"}, m.CustomAttrs...)
			msg := fmt.Sprintf("--attributes-transformation entry %d: attr_name %q is no attribute this pull fills (%s)", i+1, t.Attr, strings.Join(filled, ", "))
			if sug := pull.Closest(t.Attr, filled); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			return usersync.Errorf(usersync.EINVALID, "%s", msg)
		}
	}
	return nil
}

// pythonToJSON turns single-quoted strings into JSON strings; everything
// outside strings is kept.
func pythonToJSON(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\'' && c != '"' {
			b.WriteByte(c)
			continue
		}
		quote, j := c, i+1
		var val strings.Builder
		for ; j < len(s) && s[j] != quote; j++ {
			if s[j] == '\\' && j+1 < len(s) && (s[j+1] == quote || s[j+1] == '\\') {
				j++
			}
			val.WriteByte(s[j])
		}
		if j >= len(s) {
			return "", usersync.Errorf(usersync.EINVALID, "unterminated string starting at character %d", i+1)
		}
		enc, _ := json.Marshal(val.String())
		b.Write(enc)
		i = j
	}
	return b.String(), nil
}

func (m *Mapping) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&m.UsernameAttr, "userPrincipalName")
	def(&m.FirstNameAttr, "givenName")
	def(&m.LastNameAttr, "surname")
	def(&m.EmailAttr, "mail")
}

// property returns the Graph property that holds custom attribute name:
// a standard user property by its own name, else, with CustomAttrAppID set,
// the directory extension extension_<appId without dashes>_<name>.
func (m *Mapping) property(name string) string {
	if m.CustomAttrAppID == "" || standardProps[name] || strings.HasPrefix(name, "extension_") {
		return name
	}
	return "extension_" + strings.ReplaceAll(m.CustomAttrAppID, "-", "") + "_" + name
}

// standardProps are Microsoft Graph user properties (v1.0 user resource)
// that an attribute name means before any directory extension.
var (
	standardProps    = map[string]bool{}
	standardPropList []string
)

func init() {
	standardPropList = strings.Fields(`id userPrincipalName displayName givenName surname mail mailNickname accountEnabled
		department jobTitle companyName officeLocation employeeId employeeType employeeHireDate city state country
		postalCode streetAddress usageLocation preferredLanguage mobilePhone businessPhones onPremisesImmutableId
		onPremisesSamAccountName onPremisesUserPrincipalName onPremisesDomainName`)
	for _, p := range standardPropList {
		standardProps[p] = true
	}
}

// NewSource adapts a Graph client to the sync engine; the result is also a
// pull.Counter, a pull.DeltaSource and a pull.Describer.
func NewSource(c *msgraph.Client, m Mapping) interface {
	pull.DeltaSource
	pull.Describer
	pull.Identity
	pull.Lookup
} {
	m.defaults()
	return &source{c: c, m: m}
}

type source struct {
	c        *msgraph.Client
	m        Mapping
	tenantID string // learnt by Identify
}

// Owner is "o365:<tenant id>" once Identify has run (the tenant as typed
// before).
func (s *source) Owner() string {
	if s.tenantID != "" {
		return "o365:" + s.tenantID
	}
	return "o365:" + s.c.Tenant()
}

// Identify learns the tenant's id: a tenant typed as a domain is the same
// owner as when typed by its id.
func (s *source) Identify(ctx context.Context) error {
	id, err := s.c.TenantID(ctx)
	if err == nil {
		s.tenantID = id
	}
	return err
}

// SameSource says whether owner ("o365:<id or domain>") is this tenant.
func (s *source) SameSource(ctx context.Context, owner string) (bool, error) {
	tenant, ok := strings.CutPrefix(owner, "o365:")
	if !ok || tenant == "" {
		return false, nil
	}
	id, err := s.c.ResolveTenant(ctx, tenant)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		return false, nil
	}
	return err == nil && id == s.tenantID, err
}

func (s *source) FindGroup(ctx context.Context, nameOrID string) (pull.Group, error) {
	g, err := s.c.FindGroup(ctx, nameOrID)
	if err != nil {
		return pull.Group{}, pull.GroupNotFound(ctx, err, nameOrID, s.c.GroupNamesStarting)
	}
	return pull.Group{ID: g.ID, Name: g.DisplayName, Description: g.Description}, nil
}

func (s *source) props() []string {
	p := []string{"accountEnabled", s.m.UsernameAttr, s.m.FirstNameAttr, s.m.LastNameAttr, s.m.EmailAttr}
	for _, a := range s.m.CustomAttrs {
		p = append(p, s.m.property(a))
	}
	if s.m.TrustedServerUsernameAttr != "" {
		p = append(p, s.m.TrustedServerUsernameAttr)
	}
	return p
}

func (s *source) Members(ctx context.Context, g pull.Group, fn func([]pull.User) error) error {
	return s.explain(s.c.Members(ctx, g.ID, s.props(), func(page []msgraph.User) error {
		out := make([]pull.User, len(page))
		for i, u := range page {
			out[i] = s.toUser(u)
		}
		return fn(out)
	}))
}

// explain turns Graph's refusal of a property the mapping names (400 "Could
// not find a property named 'x'") into an error that names the option that
// gave it and the property most likely meant.
func (s *source) explain(err error) error {
	var ae *msgraph.APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		return err
	}
	flags := map[string]string{}
	for _, a := range s.m.CustomAttrs {
		flags[s.m.property(a)] = "--custom-user-attribute"
	}
	for _, a := range s.m.GroupAttrs {
		flags[s.m.property(a)] = "--map-attr-to-group"
	}
	flags[s.m.TrustedServerUsernameAttr] = "--trusted-server-username-attr"
	flags[s.m.EmailAttr] = "--email-attr"
	flags[s.m.LastNameAttr] = "--last-name-attr"
	flags[s.m.FirstNameAttr] = "--first-name-attr"
	flags[s.m.UsernameAttr] = "--username-attr"
	for prop, flag := range flags {
		if prop == "" || !strings.Contains(ae.Message, "'"+prop+"'") {
			continue
		}
		msg := fmt.Sprintf("Graph does not know the user property %q (%s)", prop, flag)
		if sug := s.Suggest(prop); sug != "" && sug != prop {
			msg += fmt.Sprintf("; did you mean %q?", sug)
		} else if (flag == "--custom-user-attribute" || flag == "--map-attr-to-group") && s.m.CustomAttrAppID != "" {
			msg += fmt.Sprintf("; with --custom-attr-app-id it is read as a directory extension of app %s", s.m.CustomAttrAppID)
		}
		return usersync.Errorf(usersync.EINVALID, "%s: %s", ae.What, msg)
	}
	return err
}

// toUser maps a Graph user; a user without accountEnabled counts as enabled.
// LookupUsers reads users by their object ids (pull.Lookup).
func (s *source) LookupUsers(ctx context.Context, ids []string) (map[string]pull.User, error) {
	users, err := s.c.UsersByID(ctx, ids, s.props())
	out := make(map[string]pull.User, len(users))
	for _, u := range users {
		out[u.ID()] = s.toUser(u)
	}
	return out, err
}

func (s *source) toUser(u msgraph.User) pull.User {
	enabled := true
	if v, ok := u["accountEnabled"].(bool); ok {
		enabled = v
	}
	pu := pull.User{ID: u.ID(), Username: u.String(s.m.UsernameAttr), Email: u.String(s.m.EmailAttr),
		FirstName: u.String(s.m.FirstNameAttr), LastName: u.String(s.m.LastNameAttr), Enabled: enabled, Attributes: map[string]string{}}
	for _, a := range s.m.CustomAttrs {
		pu.Attributes[a] = u.String(s.m.property(a))
	}
	if s.m.TrustedServerUsernameAttr != "" {
		pu.Attributes["trusted_server_username"] = u.String(s.m.TrustedServerUsernameAttr)
	}
	for _, t := range s.m.Transformations {
		if m := t.Pattern.FindStringSubmatch(pu.Attributes[t.Attr]); m != nil {
			pu.Attributes[t.Attr] = m[1]
		}
	}
	return pu
}

// Options are the mapping flags, as pull.Describer asks: changing any of
// them changes the users a sync produces.
func (s *source) Options() map[string]string {
	var tr []string
	for _, t := range s.m.Transformations {
		tr = append(tr, t.Attr+"="+t.Pattern.String())
	}
	return map[string]string{
		"--username-attr":                s.m.UsernameAttr,
		"--first-name-attr":              s.m.FirstNameAttr,
		"--last-name-attr":               s.m.LastNameAttr,
		"--email-attr":                   s.m.EmailAttr,
		"--custom-user-attribute":        strings.Join(s.m.CustomAttrs, ","),
		"--custom-attr-app-id":           s.m.CustomAttrAppID,
		"--trusted-server-username-attr": s.m.TrustedServerUsernameAttr,
		"--attributes-transformation":    strings.Join(tr, "\n"),
	}
}

// Attributes are the custom attributes this mapping fills.
func (s *source) Attributes() []string {
	out := append([]string(nil), s.m.CustomAttrs...)
	if s.m.TrustedServerUsernameAttr != "" {
		out = append(out, "trusted_server_username")
	}
	return out
}

// Suggest names the Graph user property closest to a mistyped one.
func (s *source) Suggest(name string) string { return pull.Closest(name, standardPropList) }

func (s *source) CountMembers(ctx context.Context, g pull.Group) (int, error) {
	return s.c.MemberCount(ctx, g.ID)
}

// errExpired is Graph's answer for a delta link it no longer knows.
var errExpired = fmt.Errorf("%w: Graph says the saved delta token has expired (410 Gone)", pull.ErrFullSyncNeeded)

// deltaState is what the Graph source keeps between runs for one group:
// delta links for its membership and for user profiles, and the $select
// they were made with (another mapping needs a full read).
type deltaState struct {
	Groups string `json:"groups"`
	Users  string `json:"users"`
	Select string `json:"select"`
}

func (s *source) selectList() string {
	return msgraph.Select(s.props()...)
}

// DeltaStart takes both delta links from "now" before the full read, so a
// change made during the read comes again next time (applied idempotently)
// rather than being lost. Groups with nested groups are not followed:
// their membership delta lists only direct members.
func (s *source) DeltaStart(ctx context.Context, g pull.Group) (_ string, _ bool, err error) {
	st := deltaState{Select: s.selectList()}
	// The three requests at once: one round trip instead of three. The
	// links are dropped when the group has nested groups.
	var nested bool
	var nestedErr, groupsErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		nested, nestedErr = s.c.HasNestedGroups(ctx, g.ID)
	}()
	go func() {
		defer wg.Done()
		st.Groups, groupsErr = s.c.LatestDelta(ctx, "groups", url.Values{"$filter": {"id eq '" + g.ID + "'"}, "$select": {"members"}})
	}()
	var usersErr error
	st.Users, usersErr = s.c.LatestDelta(ctx, "users", url.Values{"$select": {st.Select}})
	wg.Wait()
	if nestedErr != nil || nested {
		return "", false, nestedErr
	}
	defer func() { err = s.explain(err) }()
	if groupsErr != nil {
		return "", false, groupsErr
	}
	if usersErr != nil {
		return "", false, usersErr
	}
	b, _ := json.Marshal(st)
	return string(b), true, nil
}

// Changes follows the group's membership delta, then the users delta, and
// fetches the profiles of joiners whose profile did not change (and so did
// not come with the users delta) in $batch requests.
func (s *source) Changes(ctx context.Context, g pull.Group, state string) (*pull.Changes, error) {
	var st deltaState
	if err := json.Unmarshal([]byte(state), &st); err != nil || st.Groups == "" || st.Users == "" {
		return nil, fmt.Errorf("%w: the saved delta links cannot be read", pull.ErrFullSyncNeeded)
	}
	if st.Select != s.selectList() {
		return nil, fmt.Errorf("%w: the user properties read differ from the last run's", pull.ErrFullSyncNeeded)
	}
	ch := &pull.Changes{}
	joined := map[string]bool{} // member id → joined (true) or left (false); the latest wins
	var order []string
	nested := false
	groupLink, err := s.c.Delta(ctx, st.Groups, func(it map[string]any) error {
		if it["id"] != g.ID {
			return nil
		}
		list, _ := it["members@delta"].([]any)
		for _, m := range list {
			m, _ := m.(map[string]any)
			id, _ := m["id"].(string)
			if typ, _ := m["@odata.type"].(string); typ != "#microsoft.graph.user" {
				nested = nested || typ == "#microsoft.graph.group"
				continue
			}
			if _, seen := joined[id]; !seen {
				order = append(order, id)
			}
			_, removed := m["@removed"]
			joined[id] = !removed
		}
		return nil
	})
	if err == msgraph.ErrForeignLink {
		return nil, fmt.Errorf("%w: the Graph URL is not the last run's", pull.ErrFullSyncNeeded)
	}
	if err == msgraph.ErrSyncStateExpired {
		return nil, errExpired
	}
	if nested {
		return nil, fmt.Errorf("%w: groups joined the group (nested groups are always read in full)", pull.ErrFullSyncNeeded)
	}
	if err != nil {
		return nil, err
	}
	profiles := map[string]pull.User{}
	userLink, err := s.c.Delta(ctx, st.Users, func(it map[string]any) error {
		id, _ := it["id"].(string)
		if _, removed := it["@removed"]; removed {
			if _, seen := joined[id]; !seen {
				order = append(order, id)
			}
			joined[id] = false
			return nil
		}
		u := s.toUser(msgraph.User(it))
		profiles[id] = u
		ch.Updated = append(ch.Updated, u)
		return nil
	})
	if err == msgraph.ErrSyncStateExpired {
		return nil, errExpired
	}
	if err != nil {
		return nil, err
	}
	var fetch []string
	for _, id := range order {
		if !joined[id] {
			ch.Removed = append(ch.Removed, id)
		} else if u, ok := profiles[id]; ok {
			ch.Added = append(ch.Added, u)
		} else {
			fetch = append(fetch, id)
		}
	}
	if len(fetch) > 0 {
		users, err := s.c.UsersByID(ctx, fetch, s.props())
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			ch.Added = append(ch.Added, s.toUser(u))
		}
	}
	b, _ := json.Marshal(deltaState{Groups: groupLink, Users: userLink, Select: st.Select})
	ch.State = string(b)
	return ch, nil
}
