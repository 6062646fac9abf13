// Package pullmodel is what the pulls' model-based tests share: the flags
// that size them, a trace of the steps shown when a check fails, one run
// (adopt, sync, perhaps killed), and the checks that hold for every source.
package pullmodel

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/pull"
)

// Steps and Seeds size a model run: small in the test command, thousands
// of steps with -pullmodel.steps for a long run.
var (
	Steps = flag.Int("pullmodel.steps", 60, "steps of each model-based pull run (thousands for a long run)")
	Seeds = flag.Int("pullmodel.seeds", 2, "seeds of the model-based pull test")
)

// Model is the state every pull model keeps.
type Model struct {
	T     testing.TB
	R     *rand.Rand
	Dir   usersync.Directory
	Runs  int // runs completed
	Kills int // runs killed
	trace []string
}

// Note records a step, for Fatalf.
func (m *Model) Note(format string, args ...any) {
	m.trace = append(m.trace, fmt.Sprintf(format, args...))
}

// Fatalf fails the test with every step that led there.
func (m *Model) Fatalf(format string, args ...any) {
	m.T.Helper()
	m.T.Fatalf("%s\nsteps:\n  %s", fmt.Sprintf(format, args...), strings.Join(m.trace, "\n  "))
}

// Run adopts src's other spellings and syncs group with o (creating what
// is missing, removals allowed, every action kept), killed after a random
// number of actions when kill is set. It returns the result of a run that
// completed, nil for one killed, after checking that src's directory users
// are one per source user under owner either way.
func (m *Model) Run(src pull.Source, owner, group string, o pull.Options, kill bool) *pull.Result {
	m.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, _, err := pull.Adopt(ctx, m.Dir, src, false); err != nil {
		m.Fatalf("adopt: %v", err)
	}
	o.AutoCreate, o.AllowRemovals, o.SkipDefaultGroup, o.KeepActions = pull.CreateAll, true, true, true
	if kill {
		after := m.R.Intn(4)
		o.OnAction = func(pull.Action) {
			if after--; after < 0 {
				cancel()
			}
		}
	}
	r, err := pull.Sync(ctx, m.Dir, src, group, o)
	if r != nil {
		m.Note("run %s full=%v kill=%v: mode %s (%s), counts %v, unresolved %d, err %v", group, o.Full, kill, r.Mode, r.FullReason, r.Counts, len(r.Unresolved), err)
		for _, a := range r.Actions {
			m.Note("    %s %s: %s", a.Kind, a.User, a.Reason)
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		m.Kills++
		m.checkIdentities(owner)
		return nil
	case err != nil:
		m.Fatalf("run of %s: %v", group, err)
	}
	m.Runs++
	m.checkIdentities(owner)
	return r
}

// checkIdentities: one directory user per source user, all under the
// source's owner name, whatever spelling ran.
func (m *Model) checkIdentities(owner string) {
	m.T.Helper()
	all, _, err := m.Dir.FindUsers(context.Background(), usersync.UserFilter{})
	if err != nil {
		m.T.Fatal(err)
	}
	seen := map[string]string{}
	for _, u := range all {
		if u.Source != owner {
			m.Fatalf("user %s is kept under %q, not %q", u.Username, u.Source, owner)
		}
		if other, dup := seen[u.SourceID]; dup {
			m.Fatalf("source user %s is two directory users: %s and %s", u.SourceID, other, u.Username)
		}
		seen[u.SourceID] = u.Username
	}
}

// Resolve does what an unresolved skip asks of an administrator: the
// directory users whose source user is gone (exists says) are deleted.
func (m *Model) Resolve(exists func(sourceID string) bool) {
	m.T.Helper()
	ctx := context.Background()
	all, _, err := m.Dir.FindUsers(ctx, usersync.UserFilter{})
	if err != nil {
		m.T.Fatal(err)
	}
	for _, u := range all {
		if !exists(u.SourceID) {
			if err := m.Dir.DeleteUser(ctx, u.ID, 0); err != nil {
				m.T.Fatal(err)
			}
		}
	}
}

// Members returns a directory group's members by source id.
func (m *Model) Members(group string) map[string]*usersync.User {
	m.T.Helper()
	ctx := context.Background()
	g, err := m.Dir.FindGroupByName(ctx, group)
	if err != nil {
		m.T.Fatal(err)
	}
	members, _, err := m.Dir.Members(ctx, g.ID, 0, 0)
	if err != nil {
		m.T.Fatal(err)
	}
	out := make(map[string]*usersync.User, len(members))
	for _, u := range members {
		out[u.SourceID] = u
	}
	return out
}
