package graph

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/internal/pullmodel"
	"github.com/usersync/usersync/pull"
)

// TestPullModel drives random tenant changes — creates, deletes, a UPN
// reused by a new person, renames, UPN swaps and rotations, membership
// churn, disables, moves between groups — interleaved with incremental,
// full and killed runs, each with the tenant spelled by its id or by its
// domain. After every run that completes it checks the directory against
// the emulator's truth:
//
//   - one directory user per source user, under the tenant's id;
//   - the group's members are exactly the tenant's, each with its
//     username, surname, email and state — except users the run lists as
//     unresolved (no silent skip);
//   - an unresolved user is one whose name another identity still holds.
//
// When a run leaves users unresolved, the model acts as the administrator
// the message asks for (deletes the directory users whose source user is
// gone), and the next run must bring them in by itself.
func TestPullModel(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		for seed := int64(1); seed <= int64(*pullmodel.Seeds); seed++ {
			t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
				m := newPullModel(t, seed, open(t))
				for step := 0; step < *pullmodel.Steps; step++ {
					m.step(step)
				}
				t.Logf("%d steps: %d runs completed, %d killed, %d unresolved then healed", *pullmodel.Steps, m.Runs, m.Kills, m.healed)
			})
		}
	})
}

type pullModel struct {
	pullmodel.Model
	tenant   *graphemu.Tenant
	byID     Source
	byDomain Source
	groups   [2]string // group ids
	next     int       // for fresh ids and names
	healed   int
	pending  map[string]bool // groups with unresolved users left by their last run
}

// Source is what NewSource returns.
type Source = interface {
	pull.DeltaSource
	pull.Describer
	pull.Identity
}

func newPullModel(t *testing.T, seed int64, d usersync.Directory) *pullModel {
	tenant := graphemu.NewTenant(fmt.Sprintf("0e8f5c2a-0000-4000-8000-%012d", seed))
	_, cfg := start(t, tenant, graphemu.Options{})
	m := &pullModel{Model: pullmodel.Model{T: t, R: rand.New(rand.NewSource(seed)), Dir: d}, tenant: tenant, pending: map[string]bool{}}
	m.byID = NewSource(newClient(t, cfg), Mapping{})
	cfg.Tenant = "contoso.example"
	m.byDomain = NewSource(newClient(t, cfg), Mapping{})
	var members [2][]string
	for i := 0; i < 16; i++ {
		id := m.newUser()
		for g := range members {
			if m.R.Intn(2) == 0 {
				members[g] = append(members[g], id)
			}
		}
	}
	for g := range m.groups {
		m.groups[g] = fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", g+1)
		tenant.AddGroup(graphemu.Group{ID: m.groups[g], DisplayName: fmt.Sprintf("Model %d", g+1), Members: members[g]})
	}
	return m
}

func (m *pullModel) newUser() string {
	m.next++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", m.next)
	m.addUser(id, fmt.Sprintf("u%d@contoso.example", m.next))
	return id
}

func (m *pullModel) addUser(id, upn string) {
	mail := upn
	m.tenant.AddUser(graphemu.User{ID: id, UserPrincipalName: upn, Mail: &mail, GivenName: "U", Surname: "S" + id[len(id)-3:], AccountEnabled: true})
}

func (m *pullModel) users() []graphemu.User {
	var out []graphemu.User
	for _, u := range m.tenant.UsersByUPN() {
		out = append(out, u...)
	}
	slices.SortFunc(out, func(a, b graphemu.User) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (m *pullModel) pick() (graphemu.User, bool) {
	us := m.users()
	if len(us) == 0 {
		return graphemu.User{}, false
	}
	return us[m.R.Intn(len(us))], true
}

func (m *pullModel) setUPN(id, upn string) {
	m.Note("%s is renamed %s", id[len(id)-3:], upn)
	m.tenant.UpdateUser(id, func(u *graphemu.User) { u.UserPrincipalName, u.Mail = upn, &upn })
}

// step makes one tenant change or one run.
func (m *pullModel) step(step int) {
	g := m.groups[m.R.Intn(2)]
	switch op := m.R.Intn(14); op {
	case 0: // a new user joins a group
		id := m.newUser()
		m.Note("new user %s joins %s", id[len(id)-3:], g[len(g)-1:])
		m.tenant.AddMember(g, id)
	case 1: // a user leaves the tenant
		if u, ok := m.pick(); ok {
			m.Note("%s (%s) is deleted", u.ID[len(u.ID)-3:], u.UserPrincipalName)
			m.tenant.DeleteUser(u.ID)
		}
	case 2: // a user leaves, and a new person gets the UPN
		if u, ok := m.pick(); ok {
			m.tenant.DeleteUser(u.ID)
			m.next++
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", m.next)
			m.addUser(id, u.UserPrincipalName)
			m.tenant.AddMember(g, id)
			m.Note("%s is deleted; new %s gets %s and joins %s", u.ID[len(u.ID)-3:], id[len(id)-3:], u.UserPrincipalName, g[len(g)-1:])
		}
	case 3: // renamed
		if u, ok := m.pick(); ok {
			m.next++
			m.setUPN(u.ID, fmt.Sprintf("r%d@contoso.example", m.next))
		}
	case 4: // two or three users rotate their UPNs (through a temporary name)
		us := m.users()
		m.R.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
		n := min(len(us), 2+m.R.Intn(2))
		if n < 2 {
			return
		}
		first := us[0].UserPrincipalName
		m.setUPN(us[0].ID, "tmp@contoso.example")
		for i := 1; i < n; i++ {
			m.setUPN(us[i-1].ID, us[i].UserPrincipalName)
		}
		m.setUPN(us[n-1].ID, first)
	case 5, 6: // membership churn
		if u, ok := m.pick(); ok {
			if grp, _ := m.tenant.Group(g); slices.Contains(grp.Members, u.ID) {
				m.Note("%s leaves %s", u.ID[len(u.ID)-3:], g[len(g)-1:])
				m.tenant.RemoveMember(g, u.ID)
			} else {
				m.Note("%s joins %s", u.ID[len(u.ID)-3:], g[len(g)-1:])
				m.tenant.AddMember(g, u.ID)
			}
		}
	case 7: // disabled or enabled
		if u, ok := m.pick(); ok {
			m.Note("%s enabled flips", u.ID[len(u.ID)-3:])
			m.tenant.UpdateUser(u.ID, func(u *graphemu.User) { u.AccountEnabled = !u.AccountEnabled })
		}
	case 8: // moves between the groups
		if u, ok := m.pick(); ok {
			m.Note("%s moves from 1 to 2", u.ID[len(u.ID)-3:])
			m.tenant.RemoveMember(m.groups[0], u.ID)
			m.tenant.AddMember(m.groups[1], u.ID)
		}
	case 9: // a profile change
		if u, ok := m.pick(); ok {
			m.tenant.UpdateUser(u.ID, func(u *graphemu.User) { u.Surname = fmt.Sprint("S", m.R.Intn(1000)) })
		}
	default: // a run: incremental, full or killed, by id or by domain
		m.run(g, op == 10, op == 11)
	}
}

func (m *pullModel) run(g string, full, kill bool) {
	src := m.byID
	if m.R.Intn(2) == 0 {
		src = m.byDomain
	}
	r := m.Run(src, "o365:"+m.tenant.ID, g, pull.Options{Full: full}, kill)
	if r == nil {
		return // killed
	}
	m.checkGroup(r)
	if len(r.Unresolved) > 0 {
		m.pending[g] = true
		m.Resolve(func(id string) bool { _, ok := m.tenant.User(id); return ok })
		return
	}
	if m.pending[g] {
		m.healed++
		delete(m.pending, g)
	}
}

// checkGroup compares the group a run completed with the tenant.
func (m *pullModel) checkGroup(r *pull.Result) {
	ctx := context.Background()
	unresolved := map[string]string{}
	for _, a := range r.Unresolved {
		unresolved[a.SourceID] = a.Reason
	}
	grp, _ := m.tenant.Group(r.SourceID)
	want := map[string]graphemu.User{}
	for _, id := range grp.Members {
		if u, ok := m.tenant.User(id); ok {
			want[id] = u
		}
	}
	got := m.Members(r.Group)
	for id, u := range want {
		d := got[id]
		ok := d != nil && d.Username == u.UserPrincipalName && d.LastName == u.Surname && d.Enabled == u.AccountEnabled && d.Email == *u.Mail
		if ok {
			continue
		}
		why, listed := unresolved[id]
		if !listed {
			m.Fatalf("%s run of %s: source user %s (%s) is %+v in the directory, and not listed as unresolved (unresolved: %v)", r.Mode, r.SourceGroup, id, u.UserPrincipalName, d, unresolved)
		}
		// Unresolved only when another identity holds the name.
		holder, err := m.Dir.FindUserByUsername(ctx, u.UserPrincipalName)
		if err != nil || holder.SourceID == id {
			m.Fatalf("source user %s is unresolved (%s), but its name %s is held by %+v (%v)", id, why, u.UserPrincipalName, holder, err)
		}
	}
	for id, d := range got {
		if _, ok := want[id]; !ok {
			m.Fatalf("%s run of %s: directory member %s (source %s) is not in the tenant's group", r.Mode, r.SourceGroup, d.Username, id)
		}
	}
}
