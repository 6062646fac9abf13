package entra

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
)

// The model-based test of the group provisioner: random sequences of
// directory changes (groups created, deleted, re-created under a reused
// name, renamed in and out of the marked folder, marked and unmarked on the
// folder or the group, members added and removed, a member that is no user
// in the tenant) and tenant drift (a member or a whole group removed in
// Entra by hand), interleaved with runs that are killed part way, run two
// at once, or meet injected 503s and replication lag. Once runs converge,
// the emulated tenant must hold, for each covered directory group, exactly
// one Entra group with its uniqueName, linked, named and with exactly its
// members; every Entra group of the provisioner belongs to a directory
// group that exists; and a group the provisioner does not own is never
// touched.
//
//	go test ./target/entra -run TestModelGroups -model.steps 5000 -model.seeds 1,2,3
var (
	modelSteps = flag.Int("model.steps", 0, "steps per seed of the model-based tests (default: a short run)")
	modelSeeds = flag.String("model.seeds", "", "comma-separated seeds of the model-based tests (default: a few fixed ones)")
)

func modelConfig(defSteps int, defSeeds ...uint64) (int, []uint64) {
	steps, seeds := defSteps, defSeeds
	if *modelSteps > 0 {
		steps = *modelSteps
	}
	if *modelSeeds != "" {
		seeds = nil
		for _, s := range strings.Split(*modelSeeds, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				panic("-model.seeds: " + err.Error())
			}
			seeds = append(seeds, n)
		}
	}
	return steps, seeds
}

// modelNames are the group names the model picks from: names are reused
// after a delete, and a rename may move a group in or out of the marked
// folder "app".
var modelNames = []string{"app:g0", "app:g1", "app:g2", "app:g3", "app:sub:g4", "app:sub:g5", "other:h0", "other:h1", "other:h2"}

var modelMembers = []string{"alice", "bob", "carol", "dave", "erin"} // erin is no user in the tenant

type model struct {
	t       *testing.T
	e       *env
	rng     *rand.Rand
	faults  atomic.Bool  // inject 503s (10 % of requests)
	killAt  atomic.Int64 // cancel the running run after this many more requests (0: no kill)
	mu      sync.Mutex
	kill    context.CancelFunc
	frng    *rand.Rand // the faults' dice, under mu (requests come from the server's goroutines)
	log     []string   // the steps, printed when an invariant fails
	steps   int
	drifted bool // the tenant was changed by hand since the last check: only a reconcile repairs that
}

func newModel(t *testing.T, d usersync.Directory, seed uint64, lag time.Duration) *model {
	m := &model{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), frng: rand.New(rand.NewPCG(seed, 7))}
	m.e = newEnv(t, d, graphemu.Options{ReplicationLag: lag, Fault: m.fault}, nil)
	m.e.tenant.AddGroup(graphemu.Group{ID: "manual", DisplayName: "Made by hand", MailNickname: "manual", Members: []string{"id-alice"}})
	m.e.mark("app")
	return m
}

// fault injects 503s and kills a run after a number of requests: the
// request that kills goes on at Graph, its answer is lost.
func (m *model) fault(r *http.Request) int {
	if n := m.killAt.Load(); n > 0 && m.killAt.Add(-1) == 0 {
		m.mu.Lock()
		if m.kill != nil {
			m.kill()
		}
		m.mu.Unlock()
	}
	if !m.faults.Load() {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.frng.IntN(10) == 0 {
		return http.StatusServiceUnavailable
	}
	return 0
}

func (m *model) note(format string, args ...any) {
	m.log = append(m.log, fmt.Sprintf(format, args...))
}

func (m *model) fatalf(format string, args ...any) {
	m.t.Helper()
	tail := m.log
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	m.t.Fatalf("after %d steps: %s\nlast steps:\n  %s", m.steps, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

func (m *model) pick(list []string) string { return list[m.rng.IntN(len(list))] }

// groupNamed returns the directory group of a name, or nil.
func (m *model) groupNamed(name string) *usersync.Group {
	g, err := m.e.dir.FindGroupByName(ctx, name)
	if err != nil {
		return nil
	}
	return g
}

// step makes one random change, then maybe runs the provisioner.
func (m *model) step() {
	m.steps++
	d, name := m.e.dir, m.pick(modelNames)
	g := m.groupNamed(name)
	switch op := m.rng.IntN(100); {
	case op < 18:
		if g != nil {
			break
		}
		var ids []int64
		for _, uid := range modelMembers {
			if m.rng.IntN(2) == 0 {
				ids = append(ids, m.e.users[uid].ID)
			}
		}
		err := d.CreateGroup(ctx, &usersync.Group{Name: name}, ids...)
		m.note("create %s (%d members): %v", name, len(ids), err)
	case op < 26:
		if g == nil {
			break
		}
		m.note("delete %s (id %d): %v", name, g.ID, d.DeleteGroup(ctx, g.ID, 0))
	case op < 32:
		if g == nil {
			break
		}
		to := m.pick(modelNames)
		if m.groupNamed(to) == nil {
			_, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: &to}, 0)
			m.note("rename %s → %s: %v", name, to, err)
		}
	case op < 37:
		if g == nil {
			break
		}
		if _, marked := g.Attributes[m.e.p.Config.SyncAttribute]; marked {
			_, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Attributes: map[string]*string{m.e.p.Config.SyncAttribute: nil}}, 0)
			m.note("unmark group %s: %v", name, err)
		} else {
			_, err := d.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Attributes: map[string]*string{m.e.p.Config.SyncAttribute: ptr("true")}}, 0)
			m.note("mark group %s: %v", name, err)
		}
	case op < 40:
		f, err := d.FindFolder(ctx, "app")
		if err == nil {
			if _, marked := f.Attributes[m.e.p.Config.SyncAttribute]; marked {
				_, err = d.SetFolderAttributes(ctx, "app", map[string]*string{m.e.p.Config.SyncAttribute: nil})
				m.note("unmark folder app: %v", err)
			} else {
				_, err = d.SetFolderAttributes(ctx, "app", map[string]*string{m.e.p.Config.SyncAttribute: ptr("true")})
				m.note("mark folder app: %v", err)
			}
		}
	case op < 62:
		if g == nil {
			break
		}
		uid := m.pick(modelMembers)
		_, err := d.AddMembers(ctx, g.ID, []int64{m.e.users[uid].ID})
		m.note("add %s to %s: %v", uid, name, err)
	case op < 80:
		if g == nil {
			break
		}
		current, _, err := d.Members(ctx, g.ID, 0, 10)
		if err != nil || len(current) == 0 {
			break
		}
		u := current[m.rng.IntN(len(current))]
		_, err = d.RemoveMembers(ctx, g.ID, []int64{u.ID})
		m.note("remove %s from %s: %v", u.Username, name, err)
	case op < 82:
		// Drift in the tenant: a member removed, or a group deleted, by hand.
		var ours []graphemu.Group
		for _, eg := range m.e.tenant.Groups() {
			if eg.UniqueName != "" {
				ours = append(ours, eg)
			}
		}
		if len(ours) > 0 {
			eg := ours[m.rng.IntN(len(ours))]
			m.drifted = true
			if m.rng.IntN(3) == 0 {
				m.note("drift: delete Entra group %s (%s)", eg.DisplayName, eg.ID)
				m.e.tenant.DeleteGroup(eg.ID)
			} else if len(eg.Members) > 0 {
				member := eg.Members[m.rng.IntN(len(eg.Members))]
				m.note("drift: remove %s from Entra group %s", member, eg.DisplayName)
				m.e.tenant.RemoveMember(eg.ID, member)
			}
		}
	}
	if m.rng.IntN(3) == 0 {
		m.runs()
	}
}

// runs runs the provisioner once in one of several ways.
func (m *model) runs() {
	switch k := m.rng.IntN(10); {
	case k < 4:
		m.run("run", false)
	case k < 6:
		m.faults.Store(true)
		m.run("run with 503s", false)
		m.faults.Store(false)
	case k < 8:
		m.killAt.Store(int64(1 + m.rng.IntN(8)))
		m.run("run killed", false)
		m.killAt.Store(0)
	case k < 9:
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := m.e.provisioner().Run(ctx, m.e.opts())
				if err != nil {
					m.t.Errorf("a concurrent run: %v", err)
				}
			}()
		}
		wg.Wait()
		m.note("two runs at once")
	default:
		m.run("reconcile", true)
	}
	m.e.now = m.e.now.Add(time.Duration(m.rng.IntN(30)) * time.Second)
}

func (m *model) run(what string, reconcile bool) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	m.kill = cancel
	m.mu.Unlock()
	var r *Result
	var err error
	if reconcile {
		r, err = m.e.provisioner().Reconcile(rctx, m.e.opts())
	} else {
		r, err = m.e.provisioner().Run(rctx, m.e.opts())
	}
	m.mu.Lock()
	m.kill = nil
	m.mu.Unlock()
	m.note("%s: %v %v", what, r.Counts, err)
}

var modelWrites = []ActionKind{CreateGroup, AdoptGroup, UpdateGroup, DeleteGroup, AddMember, RemoveMember, DeleteOrphan, AdoptOrphan}

func wrote(r *Result) bool {
	for _, k := range modelWrites {
		if r.Counts[k] > 0 {
			return true
		}
	}
	return false
}

// converge first lets runs alone settle (retries come due; no reconcile),
// when the tenant did not drift: the change log alone must bring the
// tenant in line. Then reconciles, deleting orphans, until one writes
// nothing — which, without drift, must be at once. Each stage checks the
// invariants.
func (m *model) converge(lag time.Duration) {
	m.faults.Store(false)
	m.killAt.Store(0)
	if !m.drifted {
		for round := 0; ; round++ {
			if round == 12 {
				m.fatalf("runs did not settle after %d rounds", round)
			}
			time.Sleep(lag) // what was created has replicated
			m.e.now = m.e.now.Add(3 * time.Hour)
			r, err := m.e.provisioner().Run(ctx, m.e.opts())
			if err != nil {
				m.fatalf("run: %v", err)
			}
			if !wrote(r) && len(r.Failures) == 0 {
				break
			}
		}
		m.check(false)
	}
	// Quarantined groups wait for an administrator (a reconcile, a retry):
	// the reconcile below is what repairs them.
	items, err := m.e.dir.ProvisionerItems(ctx, m.e.p.Name)
	if err != nil {
		m.fatalf("%v", err)
	}
	quarantined := map[string]bool{}
	for _, it := range items {
		quarantined[it.GroupName] = it.Quarantined
	}
	for round := 0; ; round++ {
		if round == 12 {
			m.fatalf("reconciles did not settle after %d rounds", round)
		}
		time.Sleep(lag)
		o := m.e.opts()
		o.DeleteOrphans, o.Force = true, true
		r, err := m.e.provisioner().Reconcile(ctx, o)
		if err != nil {
			m.fatalf("reconcile: %v", err)
		}
		if !wrote(r) && len(r.Failures) == 0 {
			break
		}
		if !m.drifted && round == 0 {
			var fix []string
			for _, a := range r.Actions {
				if a.Kind != DeleteOrphan && !quarantined[a.Group] && slices.Contains(modelWrites, a.Kind) { // an unmarked-then-deleted group's Entra group is an orphan by design
					fix = append(fix, string(a.Kind)+" "+a.Group+" "+a.Member+": "+a.Reason)
				}
			}
			if len(fix) > 0 {
				m.fatalf("the runs had settled, yet a reconcile still repaired:\n  %s", strings.Join(fix, "\n  "))
			}
		}
	}
	m.check(true)
	m.drifted = false
}

// check compares the tenant with the directory. strict: after a
// reconcile that deleted orphans, every Entra group of the provisioner
// belongs to a directory group; else one whose directory group is gone may
// stay (unmarked, then deleted: kept, as unmarking keeps it), and a
// quarantined group (an administrator's to retry) is not compared.
func (m *model) check(strict bool) {
	m.t.Helper()
	d, p := m.e.dir, m.e.p
	prefix := UniquePrefix(p)
	byKey := map[string][]graphemu.Group{}
	for _, eg := range m.e.tenant.Groups() {
		switch {
		case eg.ID == "manual":
			if eg.DisplayName != "Made by hand" || !slices.Equal(eg.Members, []string{"id-alice"}) {
				m.fatalf("a group usersync does not own was changed: %+v", eg)
			}
		case !strings.HasPrefix(eg.UniqueName, prefix):
			m.fatalf("Entra group %q (%s) has no uniqueName of this provisioner (%q)", eg.DisplayName, eg.ID, eg.UniqueName)
		default:
			byKey[eg.UniqueName] = append(byKey[eg.UniqueName], eg)
		}
	}
	groups, _, err := d.FindGroups(ctx, usersync.GroupFilter{})
	if err != nil {
		m.fatalf("%v", err)
	}
	items, err := d.ProvisionerItems(ctx, p.Name)
	if err != nil {
		m.fatalf("%v", err)
	}
	quarantined := map[int64]bool{}
	for _, it := range items {
		quarantined[it.GroupID] = it.Quarantined
	}
	exists := map[int64]bool{}
	for _, g := range groups {
		exists[g.ID] = true
		why, err := usersync.CoveredBy(p.Config.SyncAttribute, g, func(path string) (*usersync.Folder, error) {
			f, err := d.FindFolder(ctx, path)
			if usersync.ErrorCode(err) == usersync.ENOTFOUND {
				return nil, nil
			}
			return f, err
		})
		if err != nil {
			m.fatalf("%v", err)
		}
		if why == "" || (!strict && quarantined[g.ID]) {
			continue
		}
		key := UniqueName(p, g)
		found := byKey[key]
		if len(found) != 1 {
			m.fatalf("covered group %s (id %d) has %d Entra groups with its uniqueName %s", g.Name, g.ID, len(found), key)
		}
		eg := found[0]
		if link := g.Attributes[p.Config.RemoteIDAttribute]; link != eg.ID {
			m.fatalf("covered group %s links to %q, its Entra group is %s", g.Name, link, eg.ID)
		}
		if eg.DisplayName != g.Name {
			m.fatalf("covered group %s: its Entra group is named %q", g.Name, eg.DisplayName)
		}
		var want []string
		for offset := 0; ; offset += 100 {
			page, total, err := d.Members(ctx, g.ID, offset, 100)
			if err != nil {
				m.fatalf("%v", err)
			}
			for _, u := range page {
				if uid := strings.TrimSuffix(u.Username, "@contoso.com"); uid != "erin" {
					want = append(want, uid)
				}
			}
			if offset+100 >= total {
				break
			}
		}
		sort.Strings(want)
		if got := members(eg); !slices.Equal(got, want) {
			m.fatalf("covered group %s: Entra members %v, directory members %v", g.Name, got, want)
		}
	}
	for key, list := range byKey {
		if len(list) > 1 {
			m.fatalf("%d Entra groups share uniqueName %s", len(list), key)
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(key, prefix), 10, 64)
		if err != nil || (strict && !exists[id]) {
			m.fatalf("Entra group %q (uniqueName %s) belongs to no directory group", list[0].DisplayName, key)
		}
	}
}

func TestModelGroups(t *testing.T) {
	steps, seeds := modelConfig(150, 1, 2, 3)
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				lag := time.Duration(0)
				if seed%3 == 0 {
					lag = 150 * time.Millisecond // creates that do not replicate at once
				}
				m := newModel(t, open(t), seed, lag)
				for m.steps < steps {
					m.step()
					if m.steps%25 == 0 {
						m.converge(lag) // invariants hold along the way, not only at the end
					}
				}
				m.converge(lag)
				t.Logf("seed %d: %d steps, %d Entra groups", seed, m.steps, len(m.e.tenant.Groups()))
			})
		}
	})
}
