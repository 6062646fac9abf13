package entra

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
)

// The model-based test of the user provisioner: random sequences of
// directory changes (users created, deleted and created again under the
// same name, moved in and out of the mapped group, given and refused the
// role by hand, renamed, disabled), interleaved with runs that are killed,
// run two at once or meet 503s. Once runs settle, every enabled user in
// scope has exactly one Entra user, linked, with the mapped properties, or
// is listed as failing with the reason; every provisioned user out of scope
// is suspended; no Entra user is linked to two directory users; and an
// Entra user usersync does not own is never touched.
//
//	go test ./target/entra -run TestModelUsers -model.steps 5000 -model.seeds 1,2,3
func TestModelUsers(t *testing.T) {
	steps, seeds := modelConfig(120, 1, 2, 3)
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				m := &userModel{model: model{t: t, rng: rand.New(rand.NewPCG(seed, 3)), frng: rand.New(rand.NewPCG(seed, 5))}}
				m.ue = newUserEnvWith(t, open(t), graphemu.Options{Fault: m.fault}, func(c *usersync.UserProvisioning) {
					c.Deprovision, c.MassLimit = usersync.DeprovisionSuspend, 1000
				})
				m.e = m.ue.env
				m.e.tenant.AddUser(graphemu.User{ID: "manual", UserPrincipalName: "manual@contoso.com", DisplayName: "Made by hand", AccountEnabled: true})
				for m.steps < steps {
					m.step()
					if m.steps%30 == 0 {
						m.converge()
					}
				}
				m.converge()
			})
		}
	})
}

type userModel struct {
	model
	ue *userEnv
}

var userPool = []string{"u0", "u1", "u2", "u3", "u4", "josh", "ann"}

func (m *userModel) user(uid string) *usersync.User {
	u, err := m.e.dir.FindUserByUsername(ctx, uid+"@contoso.com")
	if err != nil {
		return nil
	}
	return u
}

func (m *userModel) step() {
	m.steps++
	d, uid := m.e.dir, m.pick(userPool)
	u := m.user(uid)
	switch op := m.rng.IntN(100); {
	case op < 15:
		if u != nil {
			break
		}
		nu := &usersync.User{Username: uid + "@contoso.com", Email: uid + "@contoso.com", FirstName: strings.ToUpper(uid[:1]) + uid[1:], LastName: "L", Enabled: true,
			Attributes: map[string]string{"usageLocation": "US"}}
		err := d.CreateUser(ctx, nu)
		m.note("create user %s (id %d): %v", uid, nu.ID, err)
	case op < 25:
		if u == nil {
			break
		}
		m.note("delete user %s (id %d): %v", uid, u.ID, d.DeleteUser(ctx, u.ID, 0))
	case op < 45:
		if u == nil {
			break
		}
		_, err := d.AddMembers(ctx, m.ue.group.ID, []int64{u.ID})
		m.note("%s joins Office 365: %v", uid, err)
	case op < 60:
		if u == nil {
			break
		}
		_, err := d.RemoveMembers(ctx, m.ue.group.ID, []int64{u.ID})
		m.note("%s leaves Office 365: %v", uid, err)
	case op < 68:
		if u == nil {
			break
		}
		err := d.AssignRole(ctx, u.ID, "Office 365")
		if usersync.ErrorCode(err) == usersync.ECONFLICT {
			err = d.UnassignRole(ctx, u.ID, "Office 365")
			m.note("role taken from %s: %v", uid, err)
		} else {
			m.note("role given to %s: %v", uid, err)
		}
	case op < 80:
		if u == nil {
			break
		}
		last := fmt.Sprintf("L%d", m.rng.IntN(5))
		_, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{LastName: &last}, 0)
		m.note("rename %s to %s: %v", uid, last, err)
	case op < 86:
		if u == nil {
			break
		}
		on := !u.Enabled
		_, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Enabled: &on}, 0)
		m.note("%s enabled=%v: %v", uid, on, err)
	}
	if m.rng.IntN(3) == 0 {
		m.runs()
	}
}

func (m *userModel) runs() {
	run := func(what string) {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		m.mu.Lock()
		m.kill = cancel
		m.mu.Unlock()
		r, err := m.ue.provisioner().Run(rctx, UserOptions{KeepActions: true, Now: func() time.Time { return m.e.now }})
		m.mu.Lock()
		m.kill = nil
		m.mu.Unlock()
		m.note("%s: %v %v", what, r.Counts, err)
	}
	switch k := m.rng.IntN(10); {
	case k < 5:
		run("run")
	case k < 7:
		m.faults.Store(true)
		run("run with 503s")
		m.faults.Store(false)
	case k < 9:
		m.killAt.Store(int64(1 + m.rng.IntN(6)))
		run("run killed")
		m.killAt.Store(0)
	default:
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := m.ue.provisioner().Run(ctx, UserOptions{Now: func() time.Time { return m.e.now }}); err != nil {
					m.t.Errorf("a concurrent run: %v", err)
				}
			}()
		}
		wg.Wait()
		m.note("two runs at once")
	}
	m.e.now = m.e.now.Add(time.Duration(m.rng.IntN(30)) * time.Second)
}

// converge runs until a run writes nothing, then checks.
func (m *userModel) converge() {
	m.faults.Store(false)
	m.killAt.Store(0)
	for round := 0; ; round++ {
		if round == 12 {
			m.fatalf("runs did not settle after %d rounds", round)
		}
		m.e.now = m.e.now.Add(3 * time.Hour)
		r, err := m.ue.provisioner().Run(ctx, UserOptions{KeepActions: true, Now: func() time.Time { return m.e.now }})
		if err != nil {
			m.fatalf("run: %v", err)
		}
		wrote := false
		for _, a := range r.Actions {
			wrote = wrote || a.Status == StatusDone
		}
		if !wrote {
			break
		}
	}
	m.check()
}

func (m *userModel) check() {
	m.t.Helper()
	d, p := m.e.dir, m.e.p
	scope, err := ScopeCondition(ctx, d, p.Config.Users.ScopeRoles)
	if err != nil {
		m.fatalf("%v", err)
	}
	inScope := map[int64]bool{}
	ids, err := d.UserIDs(ctx, scope)
	if err != nil {
		m.fatalf("%v", err)
	}
	for _, id := range ids {
		inScope[id] = true
	}
	state, err := d.ProvisionedUsers(ctx, p.Name)
	if err != nil {
		m.fatalf("%v", err)
	}
	byRemote := map[string][]string{}
	for _, st := range state {
		if st.RemoteID != "" && st.State != usersync.StateDeleted {
			byRemote[st.RemoteID] = append(byRemote[st.RemoteID], st.Username)
		}
	}
	for rid, who := range byRemote {
		if len(who) > 1 {
			m.fatalf("Entra user %s is linked to %d directory users: %v", rid, len(who), who)
		}
	}
	users, _, err := d.FindUsers(ctx, usersync.UserFilter{})
	if err != nil {
		m.fatalf("%v", err)
	}
	exists := map[int64]bool{}
	for _, u := range users {
		exists[u.ID] = true
		st := state[u.ID]
		failing := st != nil && (st.Failures > 0 || st.Quarantined)
		switch {
		case inScope[u.ID] && u.Enabled && (st == nil || st.State != usersync.StateActive):
			if !failing && !(st == nil && m.upnTaken(u, state)) {
				m.fatalf("%s (id %d) is in scope and enabled but not provisioned: %+v", u.Username, u.ID, st)
			}
		case inScope[u.ID] && u.Enabled:
			eu, ok := m.e.tenant.User(st.RemoteID)
			if !ok || !strings.EqualFold(eu.UserPrincipalName, u.Email) || !eu.AccountEnabled || eu.Surname != u.LastName {
				if !failing {
					m.fatalf("%s: its Entra user %s is %+v (ok %v)", u.Username, st.RemoteID, eu, ok)
				}
			}
		case st != nil && st.State == usersync.StateActive && !failing:
			m.fatalf("%s (id %d) is out of scope or disabled, yet active in Entra", u.Username, u.ID)
		}
	}
	for _, st := range state {
		if !exists[st.UserID] && st.State == usersync.StateActive && !st.Quarantined && st.Failures == 0 {
			m.fatalf("%s (id %d) left the directory, yet is active in Entra", st.Username, st.UserID)
		}
	}
	if eu, _ := m.e.tenant.User("manual"); eu.DisplayName != "Made by hand" || !eu.AccountEnabled {
		m.fatalf("an Entra user usersync does not own was changed: %+v", eu)
	}
	for upn, list := range m.e.tenant.UsersByUPN() {
		if len(list) > 1 {
			m.fatalf("%d Entra users with UPN %s", len(list), upn)
		}
	}
}

// upnTaken reports a user whose UPN belongs to another provisioned user's
// Entra account (a deleted user's, suspended): refused loudly, never
// taken over. The run lists it as failing; no state is kept for it.
func (m *userModel) upnTaken(u *usersync.User, state map[int64]*usersync.Provisioned) bool {
	for _, st := range state {
		if st.UserID != u.ID && strings.EqualFold(st.Props()["userPrincipalName"], u.Email) && st.State != usersync.StateDeleted {
			return true
		}
	}
	return false
}
