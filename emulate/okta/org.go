// Package okta emulates the parts of the Okta management API that usersync
// uses: SSWS API tokens, groups (search by name), group members with Link
// paging, users with statuses and custom profile attributes, rate-limit
// headers with a per-window limit, latency and injected faults (see
// shared/docs/graph-and-okta-wire-facts.md). It is product code: tests, the
// demo and benchmarks run it in-process, and `usersync emulate okta` serves
// it for people.
package okta

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"sync"
	"time"
)

// User statuses, as Okta names them.
const (
	StatusActive          = "ACTIVE"
	StatusStaged          = "STAGED"
	StatusProvisioned     = "PROVISIONED"
	StatusRecovery        = "RECOVERY"
	StatusPasswordExpired = "PASSWORD_EXPIRED"
	StatusLockedOut       = "LOCKED_OUT"
	StatusSuspended       = "SUSPENDED"
	StatusDeprovisioned   = "DEPROVISIONED"
)

// User is an Okta user; Profile holds login, email, firstName, lastName and
// any custom attributes.
type User struct {
	ID          string         `json:"id"`
	Status      string         `json:"status"`
	Created     time.Time      `json:"created"`
	LastUpdated time.Time      `json:"lastUpdated"`
	Profile     map[string]any `json:"profile"`
}

// Group is an Okta group; Members holds user ids in the order they joined.
type Group struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"` // OKTA_GROUP, APP_GROUP or BUILT_IN
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Members     []string `json:"members"`
}

// Org is an in-memory Okta org. Its methods are safe for concurrent use.
type Org struct {
	// ID is the org's id, as /.well-known/okta-organization tells it: what
	// a client keys the org by, however its host was typed.
	ID     string
	mu     sync.RWMutex
	users  map[string]*User
	groups map[string]*Group
	order  []string // group ids in creation order
}

// DefaultOrgID is the id of an org made without one.
const DefaultOrgID = "00o1emulated0rg00000"

// NewOrg returns an org holding only the built-in group Everyone.
func NewOrg() *Org {
	o := &Org{ID: DefaultOrgID, users: map[string]*User{}, groups: map[string]*Group{}}
	o.putGroup(&Group{ID: "00g0000000everyone0", Type: "BUILT_IN", Name: "Everyone", Description: "All users in your organization"})
	return o
}

func (o *Org) putGroup(g *Group) {
	if _, ok := o.groups[g.ID]; !ok {
		o.order = append(o.order, g.ID)
	}
	o.groups[g.ID] = g
}

func (o *Org) everyone() *Group { return o.groups[o.order[0]] }

// AddUser stores a user (replacing one with the same id); a new user joins Everyone.
func (o *Org) AddUser(u User) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if u.Profile == nil {
		u.Profile = map[string]any{}
	}
	if _, ok := o.users[u.ID]; !ok {
		e := o.everyone()
		e.Members = append(e.Members, u.ID)
	}
	u.LastUpdated = time.Now().UTC()
	o.users[u.ID] = &u
}

// UpdateUser changes a user in place; it reports whether the user exists.
func (o *Org) UpdateUser(id string, fn func(*User)) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.users[id]
	if ok {
		fn(u)
		u.ID, u.LastUpdated = id, time.Now().UTC()
	}
	return ok
}

// User returns a copy of a user.
func (o *Org) User(id string) (User, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	u, ok := o.users[id]
	if !ok {
		return User{}, false
	}
	c := *u
	c.Profile = make(map[string]any, len(u.Profile))
	for k, v := range u.Profile {
		c.Profile[k] = v
	}
	return c, true
}

// AddGroup stores a group (replacing one with the same id).
func (o *Org) AddGroup(g Group) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if g.Type == "" {
		g.Type = "OKTA_GROUP"
	}
	o.putGroup(&g)
}

// SetMembers replaces a group's members; it reports whether the group exists.
func (o *Org) SetMembers(groupID string, members []string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	g, ok := o.groups[groupID]
	if ok {
		g.Members = append([]string(nil), members...)
	}
	return ok
}

// Group returns a copy of a group.
func (o *Org) Group(id string) (Group, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	g, ok := o.groups[id]
	if !ok {
		return Group{}, false
	}
	c := *g
	c.Members = append([]string(nil), g.Members...)
	return c, true
}

// GroupsNamed returns the groups with exactly this name, in creation order.
func (o *Org) GroupsNamed(name string) []Group {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []Group
	for _, id := range o.order {
		if g := o.groups[id]; g.Name == name {
			out = append(out, *g)
		}
	}
	return out
}

// Generate builds an org from a seed: users with realistic profiles and a
// mix of statuses, the built-in group Everyone with every user, and groups
// "Group 1", "Group 2", … of halving sizes.
func Generate(seed int64, users, groups int) *Org {
	r := rand.New(rand.NewSource(seed))
	o := NewOrg()
	o.ID = fmt.Sprintf("00o%017x", uint64(seed))
	first := []string{"Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger", "Radia", "Donald"}
	last := []string{"Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen", "Dijkstra", "Perlman", "Knuth"}
	depts := []string{"Engineering", "Sales", "Finance", "Support", "Marketing", "Legal"}
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ids := make([]string, users)
	for i := 0; i < users; i++ {
		f, l := first[r.Intn(len(first))], last[r.Intn(len(last))]
		login := fmt.Sprintf("%s.%s%d@example.okta", lower(f), lower(l), i)
		status := StatusActive
		switch n := r.Intn(100); {
		case n < 3:
			status = StatusSuspended
		case n < 6:
			status = StatusDeprovisioned
		case n < 8:
			status = StatusLockedOut
		case n < 9:
			status = StatusProvisioned
		}
		u := &User{ID: fmt.Sprintf("00u%017x", r.Uint64()>>4), Status: status, Created: created, LastUpdated: created, Profile: map[string]any{
			"login": login, "email": login, "firstName": f, "lastName": l, "department": depts[r.Intn(len(depts))],
			"employeeNumber": fmt.Sprintf("E%06d", i), "costCenter": fmt.Sprintf("CC-%d", 100+r.Intn(20))}}
		ids[i] = u.ID
		o.users[u.ID] = u
	}
	o.everyone().Members = ids
	size := users / 2
	for g := 0; g < groups-1; g++ {
		size = max(size, 1)
		perm := r.Perm(users)[:min(size, users)]
		sort.Ints(perm)
		grp := &Group{ID: fmt.Sprintf("00g%017x", r.Uint64()>>4), Type: "OKTA_GROUP", Name: fmt.Sprintf("Group %d", g+1), Description: fmt.Sprintf("%d members", len(perm))}
		for _, p := range perm {
			grp.Members = append(grp.Members, ids[p])
		}
		o.putGroup(grp)
		size /= 2
	}
	return o
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

// orgFile is the JSON form of an org, for `usersync emulate okta --org-file`.
type orgFile struct {
	ID     string  `json:"id,omitempty"` // default DefaultOrgID
	Users  []User  `json:"users"`
	Groups []Group `json:"groups"`
}

// LoadOrg reads an org from its JSON form: {"users": […], "groups": […]},
// members by id. Everyone is added (holding every user) unless the file has
// a BUILT_IN group of that name. Unknown member ids and duplicate ids are
// errors, named.
func LoadOrg(r io.Reader) (*Org, error) {
	var f orgFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("org file: %w", err)
	}
	o := NewOrg()
	if f.ID != "" {
		o.ID = f.ID
	}
	for i, u := range f.Users {
		if u.ID == "" {
			return nil, fmt.Errorf("org file: user %d has no id", i+1)
		}
		if _, dup := o.users[u.ID]; dup {
			return nil, fmt.Errorf("org file: user id %q appears twice", u.ID)
		}
		if u.Status == "" {
			u.Status = StatusActive
		}
		if u.Profile == nil {
			u.Profile = map[string]any{}
		}
		u := u
		o.users[u.ID] = &u
		o.everyone().Members = append(o.everyone().Members, u.ID)
	}
	for i, g := range f.Groups {
		if g.ID == "" {
			return nil, fmt.Errorf("org file: group %d (%q) has no id", i+1, g.Name)
		}
		if g.Type == "BUILT_IN" && g.Name == "Everyone" {
			continue
		}
		if _, dup := o.groups[g.ID]; dup {
			return nil, fmt.Errorf("org file: group id %q appears twice", g.ID)
		}
		for _, m := range g.Members {
			if o.users[m] == nil {
				return nil, fmt.Errorf("org file: group %q has member %q, which is not a user", g.Name, m)
			}
		}
		if g.Type == "" {
			g.Type = "OKTA_GROUP"
		}
		g := g
		o.putGroup(&g)
	}
	return o, nil
}

// Size returns how many users and groups the org holds.
func (o *Org) Size() (users, groups int) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.users), len(o.groups)
}

// LargestGroup names the group with the most members and its size; "" for
// an org without groups.
func (o *Org) LargestGroup() (name string, users int) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, id := range o.order {
		if g := o.groups[id]; name == "" || len(g.Members) > users {
			name, users = g.Name, len(g.Members)
		}
	}
	return name, users
}
