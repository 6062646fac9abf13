package okta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	oktaemu "github.com/usersync/usersync/emulate/okta"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/internal/pullmodel"
	"github.com/usersync/usersync/pull"
)

// TestPullModel is the Okta pull's model-based test. It changes a running
// emulated org only through the writes Okta's API documents — users
// created, deleted, given a login another had, renamed, rotating logins,
// suspended, deactivated, reactivated, moved and churned between groups —
// and interleaves full and killed runs, the org reached as 127.0.0.1 or as
// localhost. After each completed run the directory group must hold the
// group's members as Okta has them (a DEPROVISIONED user is never created;
// one held already is disabled), one directory user per Okta user, all
// under the org's id, and every difference must be listed as unresolved.
func TestPullModel(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		for seed := int64(1); seed <= int64(*pullmodel.Seeds); seed++ {
			t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
				m := newOktaModel(t, seed, open(t))
				for step := 0; step < *pullmodel.Steps; step++ {
					m.step()
				}
				t.Logf("%d steps: %d runs completed, %d killed", *pullmodel.Steps, m.Runs, m.Kills)
			})
		}
	})
}

type oktaModel struct {
	pullmodel.Model
	org     *oktaemu.Org
	base    string
	sources [2]interface {
		pull.Source
		pull.Identity
	}
	users  []string  // live Okta user ids
	groups [2]string // group ids
	next   int
}

func newOktaModel(t *testing.T, seed int64, d usersync.Directory) *oktaModel {
	org := oktaemu.NewOrg()
	_, srv := start(t, org, oktaemu.Options{RateLimit: 1 << 30}) // the model's own writes count too
	m := &oktaModel{Model: pullmodel.Model{T: t, R: rand.New(rand.NewSource(seed)), Dir: d}, org: org, base: srv.URL}
	for i, host := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		m.sources[i] = newClient(t, Config{Host: host, Token: token}).Source(Mapping{})
	}
	for g := range m.groups {
		var out map[string]any
		m.call("POST", "/api/v1/groups", map[string]any{"profile": map[string]any{"name": fmt.Sprintf("Model %d", g+1)}}, &out)
		m.groups[g] = out["id"].(string)
	}
	for i := 0; i < 16; i++ {
		id := m.create(fmt.Sprintf("u%d@example.okta", i))
		for _, g := range m.groups {
			if m.R.Intn(2) == 0 {
				m.call("PUT", "/api/v1/groups/"+g+"/users/"+id, nil, nil)
			}
		}
	}
	return m
}

// call sends one of Okta's documented writes to the emulator; out, when
// set, receives the answer. It returns the status.
func (m *oktaModel) call(method, path string, body any, out any) int {
	m.T.Helper()
	var rd bytes.Buffer
	if body != nil {
		json.NewEncoder(&rd).Encode(body)
	}
	req, _ := http.NewRequest(method, m.base+path, &rd)
	req.Header.Set("Authorization", "SSWS "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.T.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (m *oktaModel) create(login string) string {
	var out map[string]any
	if code := m.call("POST", "/api/v1/users?activate=true", map[string]any{"profile": map[string]any{
		"login": login, "email": login, "firstName": "U", "lastName": fmt.Sprint("L", m.R.Intn(100))}}, &out); code != 200 {
		m.Fatalf("create %s: %d %v", login, code, out)
	}
	id := out["id"].(string)
	m.users = append(m.users, id)
	m.Note("%s is created as %s", login, id)
	return id
}

func (m *oktaModel) pick() (oktaemu.User, bool) {
	if len(m.users) == 0 {
		return oktaemu.User{}, false
	}
	u, _ := m.org.User(m.users[m.R.Intn(len(m.users))])
	return u, true
}

func login(u oktaemu.User) string { s, _ := u.Profile["login"].(string); return s }

func (m *oktaModel) rename(id, to string) {
	m.Note("%s is renamed %s", id, to)
	if code := m.call("POST", "/api/v1/users/"+id, map[string]any{"profile": map[string]any{"login": to, "email": to}}, nil); code != 200 {
		m.Fatalf("rename %s to %s: %d", id, to, code)
	}
}

func (m *oktaModel) remove(id string) {
	m.Note("%s is deleted", id)
	m.call("DELETE", "/api/v1/users/"+id, nil, nil) // deactivates first, when it is not
	m.call("DELETE", "/api/v1/users/"+id, nil, nil)
	m.users = slices.DeleteFunc(m.users, func(x string) bool { return x == id })
}

func (m *oktaModel) step() {
	g := m.groups[m.R.Intn(2)]
	switch op := m.R.Intn(14); op {
	case 0:
		m.next++
		m.call("PUT", "/api/v1/groups/"+g+"/users/"+m.create(fmt.Sprintf("n%d@example.okta", m.next)), nil, nil)
	case 1:
		if u, ok := m.pick(); ok {
			m.remove(u.ID)
		}
	case 2: // a new person gets a login another had
		if u, ok := m.pick(); ok {
			m.remove(u.ID)
			m.call("PUT", "/api/v1/groups/"+g+"/users/"+m.create(login(u)), nil, nil)
		}
	case 3:
		if u, ok := m.pick(); ok {
			m.next++
			m.rename(u.ID, fmt.Sprintf("r%d@example.okta", m.next))
		}
	case 4: // two or three users rotate their logins, through a temporary one
		ids := slices.Clone(m.users)
		m.R.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		n := min(len(ids), 2+m.R.Intn(2))
		if n < 2 {
			return
		}
		names := make([]string, n)
		for i := range n {
			u, _ := m.org.User(ids[i])
			names[i] = login(u)
		}
		m.rename(ids[0], "tmp@example.okta")
		for i := 1; i < n; i++ {
			m.rename(ids[i], names[i-1])
		}
		m.rename(ids[0], names[n-1])
	case 5, 6:
		if u, ok := m.pick(); ok {
			grp, _ := m.org.Group(g)
			if slices.Contains(grp.Members, u.ID) {
				m.Note("%s leaves %s", u.ID, g)
				m.call("DELETE", "/api/v1/groups/"+g+"/users/"+u.ID, nil, nil)
			} else {
				m.Note("%s joins %s", u.ID, g)
				m.call("PUT", "/api/v1/groups/"+g+"/users/"+u.ID, nil, nil)
			}
		}
	case 7: // a lifecycle step, where the status allows it
		if u, ok := m.pick(); ok {
			op := []string{"suspend", "unsuspend", "deactivate", "activate"}[m.R.Intn(4)]
			code := m.call("POST", "/api/v1/users/"+u.ID+"/lifecycle/"+op, nil, nil)
			m.Note("%s %s: %d", op, u.ID, code)
		}
	case 8:
		if u, ok := m.pick(); ok {
			m.Note("%s moves from %s to %s", u.ID, m.groups[0], m.groups[1])
			m.call("DELETE", "/api/v1/groups/"+m.groups[0]+"/users/"+u.ID, nil, nil)
			m.call("PUT", "/api/v1/groups/"+m.groups[1]+"/users/"+u.ID, nil, nil)
		}
	case 9:
		if u, ok := m.pick(); ok {
			m.call("POST", "/api/v1/users/"+u.ID, map[string]any{"profile": map[string]any{"lastName": fmt.Sprint("L", m.R.Intn(1000))}}, nil)
		}
	default:
		m.run(g, op == 10)
	}
}

func (m *oktaModel) run(g string, kill bool) {
	r := m.Run(m.sources[m.R.Intn(2)], "okta:"+m.org.ID, g, pull.Options{}, kill)
	if r == nil {
		return // killed
	}
	m.checkGroup(r)
	if len(r.Unresolved) > 0 {
		m.Resolve(func(id string) bool { _, ok := m.org.User(id); return ok })
	}
}

func (m *oktaModel) checkGroup(r *pull.Result) {
	ctx := context.Background()
	unresolved := map[string]bool{}
	for _, a := range r.Unresolved {
		unresolved[a.SourceID] = true
	}
	got := m.Members(r.Group)
	grp, _ := m.org.Group(r.SourceID)
	for _, id := range grp.Members {
		u, _ := m.org.User(id)
		d := got[id]
		held, _ := m.Dir.UsersBySource(ctx, "okta:"+m.org.ID, []string{id})
		if d == nil && u.Status == oktaemu.StatusDeprovisioned && held[id] == nil {
			continue // never created
		}
		enabled := u.Status != oktaemu.StatusSuspended && u.Status != oktaemu.StatusDeprovisioned
		if d != nil && d.Username == login(u) && d.LastName == u.Profile["lastName"] && d.Enabled == enabled {
			delete(got, id)
			continue
		}
		if !unresolved[id] {
			m.Fatalf("Okta user %s (%s, %s) is %+v in the directory group, and not listed as unresolved", id, login(u), u.Status, d)
		}
		delete(got, id)
	}
	for id, d := range got {
		m.Fatalf("directory member %s (Okta user %s) is not in the Okta group", d.Username, id)
	}
}
