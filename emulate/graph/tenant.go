// Package graph emulates the parts of Microsoft Graph and the Microsoft
// identity platform that usersync uses: client-credentials tokens, groups,
// users, members and transitive members with paging, $filter and $select,
// Graph error bodies, throttling with Retry-After, latency and injected
// faults (see shared/docs/graph-and-okta-wire-facts.md). It is product code:
// tests, the demo and benchmarks run it in-process, and `usersync emulate
// graph` serves it for people.
package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"
)

// User is an Entra user as Graph returns it.
type User struct {
	ID                    string            `json:"id"`
	UserPrincipalName     string            `json:"userPrincipalName"`
	DisplayName           string            `json:"displayName"`
	GivenName             string            `json:"givenName"`
	Surname               string            `json:"surname"`
	Mail                  *string           `json:"mail"`
	AccountEnabled        bool              `json:"accountEnabled"`
	Department            string            `json:"department"`
	JobTitle              string            `json:"jobTitle"`
	EmployeeID            string            `json:"employeeId"`
	OnPremisesImmutableID string            `json:"onPremisesImmutableId"`
	UsageLocation         string            `json:"usageLocation"`
	MailNickname          string            `json:"mailNickname,omitempty"`
	Licenses              []AssignedLicense `json:"assignedLicenses,omitempty"`
	Other                 map[string]string `json:"other,omitempty"`      // companyName, officeLocation, mobilePhone, city, country
	Extensions            map[string]string `json:"extensions,omitempty"` // "extension_<appid>_<name>" → value
}

// Group is an Entra group; Members holds user and group ids. A group with
// no GroupTypes is a security group; ["Unified"] is a Microsoft 365 group.
type Group struct {
	ID              string   `json:"id"`
	DisplayName     string   `json:"displayName"`
	Description     string   `json:"description"`
	MailNickname    string   `json:"mailNickname,omitempty"`
	MailEnabled     bool     `json:"mailEnabled,omitempty"`
	SecurityEnabled *bool    `json:"securityEnabled,omitempty"` // nil: true (the generated groups are security groups)
	GroupTypes      []string `json:"groupTypes,omitempty"`
	Visibility      string   `json:"visibility,omitempty"`
	// UniqueName is an alternate key a client may give a group: unique in
	// the tenant, immutable once set, and the key of upserts
	// (PATCH /groups(uniqueName='…') with Prefer: create-if-missing).
	UniqueName string   `json:"uniqueName,omitempty"`
	Members    []string `json:"members"`

	created time.Time // when a client created it (for the replication lag); zero for loaded groups
}

// unified reports a Microsoft 365 group.
func (g *Group) unified() bool {
	for _, t := range g.GroupTypes {
		if strings.EqualFold(t, "Unified") {
			return true
		}
	}
	return false
}

// Tenant is an in-memory directory. Its methods are safe for concurrent use.
// Every change after creation is kept in a journal, numbered, so that delta
// queries can answer "what changed since".
type Tenant struct {
	mu      sync.RWMutex
	ID      string
	users   map[string]*User
	groups  map[string]*Group
	order   []string // group ids in creation order
	journal []change // changes in order; journal[i].seq == i+1
	epoch   int      // delta tokens of another epoch are expired

	cacheMu sync.Mutex
	cache   map[string]memberCache // transitiveUsers answers

	domains []string        // verified domains (see SetDomains)
	skus    []*SKU          // subscribed licenses (see AddSKU)
	deleted map[string]User // soft-deleted users, restorable
}

// change is one journal entry: a user created, changed or deleted, a group
// created or changed (member ""), or a group's member added or removed.
type change struct {
	user    string // user id, or ""
	group   string // group id for member changes
	member  string // member id for member changes
	removed bool
}

func (t *Tenant) record(c change) { t.journal = append(t.journal, c) }

// seq is the number of the latest change; tokens mark positions in the journal.
func (t *Tenant) seq() int64 { return int64(len(t.journal)) }

// NewTenant returns an empty tenant.
func NewTenant(id string) *Tenant {
	return &Tenant{ID: id, users: map[string]*User{}, groups: map[string]*Group{}}
}

// AddUser stores a user (replacing one with the same id).
func (t *Tenant) AddUser(u User) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users[u.ID] = &u
	t.record(change{user: u.ID})
}

// DeleteUser removes a user and its memberships; it reports whether the user existed.
func (t *Tenant) DeleteUser(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.users[id]; !ok {
		return false
	}
	delete(t.users, id)
	t.record(change{user: id, removed: true})
	for _, gid := range t.order {
		g := t.groups[gid]
		if i := indexOf(g.Members, id); i >= 0 {
			g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
			t.record(change{group: gid, member: id, removed: true})
		}
	}
	return true
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// AddGroup stores a group (replacing one with the same id).
func (t *Tenant) AddGroup(g Group) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.groups[g.ID]
	if !ok {
		t.order = append(t.order, g.ID)
		old = &Group{}
	}
	t.groups[g.ID] = &g
	t.record(change{group: g.ID})
	t.recordMembers(g.ID, old.Members, g.Members)
}

// recordMembers journals the difference between two member lists.
func (t *Tenant) recordMembers(groupID string, before, after []string) {
	was := make(map[string]bool, len(before))
	for _, m := range before {
		was[m] = true
	}
	now := make(map[string]bool, len(after))
	for _, m := range after {
		now[m] = true
		if !was[m] {
			t.record(change{group: groupID, member: m})
		}
	}
	for _, m := range before {
		if !now[m] {
			t.record(change{group: groupID, member: m, removed: true})
		}
	}
}

// UpdateUser changes a user in place; it reports whether the user exists.
func (t *Tenant) UpdateUser(id string, fn func(*User)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.users[id]
	if ok {
		fn(u)
		u.ID = id
		t.record(change{user: id})
	}
	return ok
}

// SetMembers replaces a group's member list; it reports whether the group exists.
func (t *Tenant) SetMembers(groupID string, members []string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[groupID]
	if ok {
		t.recordMembers(groupID, g.Members, members)
		g.Members = append([]string(nil), members...)
	}
	return ok
}

// AddMember adds a user or group to a group (no-op when already a member);
// it reports whether both exist.
func (t *Tenant) AddMember(groupID, memberID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[groupID]
	_, isUser := t.users[memberID]
	_, isGroup := t.groups[memberID]
	if !ok || !(isUser || isGroup) {
		return false
	}
	if indexOf(g.Members, memberID) < 0 {
		g.Members = append(g.Members, memberID)
		t.record(change{group: groupID, member: memberID})
	}
	return true
}

// RemoveMember takes a member out of a group; it reports whether it was one.
func (t *Tenant) RemoveMember(groupID, memberID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[groupID]
	if !ok {
		return false
	}
	i := indexOf(g.Members, memberID)
	if i < 0 {
		return false
	}
	g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
	t.record(change{group: groupID, member: memberID, removed: true})
	return true
}

// ExpireDeltaTokens makes every delta token issued so far expired, as if
// seven days passed: the next delta call with one answers 410 Gone.
func (t *Tenant) ExpireDeltaTokens() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epoch++
}

// Group returns a copy of a group.
func (t *Tenant) Group(id string) (Group, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g, ok := t.groups[id]
	if !ok {
		return Group{}, false
	}
	c := *g
	c.Members = append([]string(nil), g.Members...)
	return c, true
}

// groupByUniqueName returns the group with this uniqueName (compared
// without case), or nil; the caller holds t.mu.
func (t *Tenant) groupByUniqueName(key string) *Group {
	for _, id := range t.order {
		if g := t.groups[id]; g.UniqueName != "" && strings.EqualFold(g.UniqueName, key) {
			return g
		}
	}
	return nil
}

// Groups returns a copy of every group, in creation order.
func (t *Tenant) Groups() []Group {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Group, 0, len(t.order))
	for _, id := range t.order {
		g := *t.groups[id]
		g.Members = append([]string(nil), g.Members...)
		out = append(out, g)
	}
	return out
}

// GroupsNamed returns the groups with exactly this display name, in creation order.
func (t *Tenant) GroupsNamed(name string) []Group {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Group
	for _, id := range t.order {
		if g := t.groups[id]; g.DisplayName == name {
			out = append(out, *g)
		}
	}
	return out
}

// transitiveUsers returns the users reachable from a group through nested
// groups, each once, in first-seen order. The answer is kept until the
// tenant changes, so paging through a large group stays linear.
func (t *Tenant) transitiveUsers(groupID string, direct bool) []*User {
	t.mu.RLock()
	key := fmt.Sprintf("%s/%v", groupID, direct)
	t.cacheMu.Lock()
	c, ok := t.cache[key]
	t.cacheMu.Unlock()
	if ok && c.seq == t.seq() && c.epoch == t.epoch {
		t.mu.RUnlock()
		return c.users
	}
	var out []*User
	seenUser, seenGroup := map[string]bool{}, map[string]bool{groupID: true}
	queue := []string{groupID}
	for len(queue) > 0 {
		g := t.groups[queue[0]]
		queue = queue[1:]
		for _, m := range g.Members {
			if u, ok := t.users[m]; ok && !seenUser[m] {
				seenUser[m] = true
				out = append(out, u)
			} else if _, ok := t.groups[m]; ok && !seenGroup[m] && !direct {
				seenGroup[m] = true
				queue = append(queue, m)
			}
		}
	}
	seq, epoch := t.seq(), t.epoch
	t.mu.RUnlock()
	t.cacheMu.Lock()
	if t.cache == nil {
		t.cache = map[string]memberCache{}
	}
	t.cache[key] = memberCache{seq: seq, epoch: epoch, users: out}
	t.cacheMu.Unlock()
	return out
}

// memberCache is a group's flattened user list as of a journal position.
type memberCache struct {
	seq   int64
	epoch int
	users []*User
}

// Generate builds a tenant from a seed: users with realistic attributes, a
// group "All Users" holding every user, and groups of varied sizes (each
// about half the previous one), the last of which nests the one before it.
func Generate(seed int64, users, groups int) *Tenant {
	r := rand.New(rand.NewSource(seed))
	t := NewTenant(fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), seed))
	first := []string{"Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger", "Radia", "Donald"}
	last := []string{"Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen", "Dijkstra", "Perlman", "Knuth"}
	depts := []string{"Engineering", "Sales", "Finance", "Support", "Marketing", "Legal"}
	ids := make([]string, users)
	for i := 0; i < users; i++ {
		f, l := first[r.Intn(len(first))], last[r.Intn(len(last))]
		upn := fmt.Sprintf("%s.%s%d@contoso.example", lower(f), lower(l), i)
		mail := upn
		u := User{ID: guid(r), UserPrincipalName: upn, DisplayName: f + " " + l, GivenName: f, Surname: l, Mail: &mail,
			AccountEnabled: r.Intn(20) != 0, Department: depts[r.Intn(len(depts))], JobTitle: "Staff",
			EmployeeID: fmt.Sprintf("E%06d", i), UsageLocation: "US"}
		if i%10 == 0 {
			u.Mail = nil // Graph's mail is often null
		}
		ids[i] = u.ID
		t.users[u.ID] = &u
	}
	all := Group{ID: guid(r), DisplayName: "All Users", MailNickname: "all-users", Description: "Every user of the tenant", Members: append([]string(nil), ids...)}
	t.groups[all.ID], t.order = &all, append(t.order, all.ID)
	size := users / 2
	for g := 0; g < groups-1; g++ {
		if size < 1 {
			size = 1
		}
		perm := r.Perm(users)[:min(size, users)]
		sort.Ints(perm)
		grp := Group{ID: guid(r), DisplayName: fmt.Sprintf("Group %d", g+1), MailNickname: fmt.Sprintf("group-%d", g+1), Description: fmt.Sprintf("%d members", len(perm))}
		for _, p := range perm {
			grp.Members = append(grp.Members, ids[p])
		}
		t.groups[grp.ID], t.order = &grp, append(t.order, grp.ID)
		size /= 2
	}
	// The users' domain is verified; the tenant subscribes to seed 004's
	// licenses: Yammer and Office Web Apps for everyone, Office
	// Professional for half.
	t.domains = []string{"contoso.example"}
	for _, k := range []SKU{
		{ID: "3fa21d5b-0000-4000-8000-0000000000a1", PartNumber: "YAMMER_ENTERPRISE", Enabled: users + 100, Plans: []Plan{{ID: "7547a3fe-0000-4000-8000-0000000000b1", Name: "YAMMER_ENTERPRISE"}}},
		{ID: "3fa21d5b-0000-4000-8000-0000000000a2", PartNumber: "SHAREPOINTWAC", Enabled: users + 100, Plans: []Plan{{ID: "e95bec33-0000-4000-8000-0000000000b2", Name: "SHAREPOINTWAC"}}},
		{ID: "3fa21d5b-0000-4000-8000-0000000000a3", PartNumber: "OFFICESUBSCRIPTION", Enabled: users/2 + 10, Plans: []Plan{
			{ID: "43de0ff5-0000-4000-8000-0000000000b3", Name: "OFFICESUBSCRIPTION"}, {ID: "13696edf-0000-4000-8000-0000000000b4", Name: "ONEDRIVESTANDARD"}}},
	} {
		k.Status = "Enabled"
		t.skus = append(t.skus, &k)
	}
	return t
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func guid(r *rand.Rand) string {
	b := make([]byte, 16)
	r.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// tenantFile is the JSON form of a tenant, for `usersync emulate graph --tenant-file`.
type tenantFile struct {
	ID     string  `json:"id"`
	Users  []User  `json:"users"`
	Groups []Group `json:"groups"`
	// Domains are the verified domains (none: every domain is); SKUs the
	// subscribed licenses.
	Domains []string `json:"domains,omitempty"`
	SKUs    []SKU    `json:"subscribedSkus,omitempty"`
}

// LoadTenant reads a tenant from its JSON form: {"id": …, "users": […],
// "groups": […]}, members by id. Unknown member ids and duplicate ids are
// errors, named.
func LoadTenant(r io.Reader) (*Tenant, error) {
	var f tenantFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tenant file: %w", err)
	}
	if f.ID == "" {
		return nil, fmt.Errorf("tenant file: \"id\" (the tenant id) is missing")
	}
	t := NewTenant(f.ID)
	t.domains = f.Domains
	for _, k := range f.SKUs {
		t.AddSKU(k)
	}
	for i, u := range f.Users {
		if u.ID == "" {
			return nil, fmt.Errorf("tenant file: user %d has no id", i+1)
		}
		if _, dup := t.users[u.ID]; dup {
			return nil, fmt.Errorf("tenant file: user id %q appears twice", u.ID)
		}
		u := u
		t.users[u.ID] = &u
	}
	for i, g := range f.Groups {
		if g.ID == "" {
			return nil, fmt.Errorf("tenant file: group %d (%q) has no id", i+1, g.DisplayName)
		}
		if _, dup := t.groups[g.ID]; dup || t.users[g.ID] != nil {
			return nil, fmt.Errorf("tenant file: id %q appears twice", g.ID)
		}
		g := g
		t.groups[g.ID], t.order = &g, append(t.order, g.ID)
	}
	for _, g := range t.groups {
		for _, m := range g.Members {
			if t.users[m] == nil && t.groups[m] == nil {
				return nil, fmt.Errorf("tenant file: group %q has member %q, which is neither a user nor a group", g.DisplayName, m)
			}
		}
	}
	return t, nil
}

// WriteJSON writes the tenant in the form LoadTenant reads.
func (t *Tenant) WriteJSON(w io.Writer) error {
	t.mu.RLock()
	f := tenantFile{ID: t.ID, Users: make([]User, 0, len(t.users)), Groups: make([]Group, 0, len(t.order)), Domains: t.domains}
	for _, k := range t.skus {
		f.SKUs = append(f.SKUs, *k)
	}
	for _, u := range t.users {
		f.Users = append(f.Users, *u)
	}
	for _, id := range t.order {
		f.Groups = append(f.Groups, *t.groups[id])
	}
	t.mu.RUnlock()
	sort.Slice(f.Users, func(i, j int) bool { return f.Users[i].ID < f.Users[j].ID })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(f)
}

// subgroups returns the groups nested in a group, directly or at any depth,
// each once. The caller holds t.mu.
func (t *Tenant) subgroups(groupID string, direct bool) []string {
	var out []string
	seen := map[string]bool{groupID: true}
	queue := []string{groupID}
	for len(queue) > 0 {
		g := t.groups[queue[0]]
		queue = queue[1:]
		for _, m := range g.Members {
			if _, ok := t.groups[m]; ok && !seen[m] {
				seen[m] = true
				out = append(out, m)
				if !direct {
					queue = append(queue, m)
				}
			}
		}
	}
	return out
}

// User returns a copy of a user.
func (t *Tenant) User(id string) (User, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	u, ok := t.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// Size returns how many users and groups the tenant holds.
func (t *Tenant) Size() (users, groups int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.users), len(t.groups)
}

// LargestGroup names the group with the most users (nested groups
// flattened) and its size; "" for a tenant without groups.
func (t *Tenant) LargestGroup() (name string, users int) {
	t.mu.RLock()
	order := append([]string(nil), t.order...)
	t.mu.RUnlock()
	for _, id := range order {
		if n := len(t.transitiveUsers(id, false)); name == "" || n > users {
			t.mu.RLock()
			name, users = t.groups[id].DisplayName, n
			t.mu.RUnlock()
		}
	}
	return name, users
}
