package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// stateFormat versions engineState. A state of another format was saved
// by another usersync (before membership sources were kept, for one): the
// next run reads in full.
const stateFormat = 2

// engineState wraps a source's delta state with everything that decides
// what a sync produces: another value of any of them needs a full read.
type engineState struct {
	Format     int               `json:"format"`
	Options    map[string]string `json:"options"`              // by command-line name
	Attributes []string          `json:"attributes,omitempty"` // custom attributes the source filled
	Target     string            `json:"target"`               // the directory group
	Source     string            `json:"source"`               // "": the group is not tracked by deltas
	// Pending are the source ids of users the run left unresolved. A
	// delta reports a change once, so the next run reads the group in full
	// to try them again rather than forget them.
	Pending []string `json:"pending,omitempty"`
}

// SyncedGroup is a source group a full sync has run for.
type SyncedGroup struct {
	SourceID string // the group's id at the source
	Target   string // the directory group it was synced into
}

// SyncedGroups lists the groups synced from a source before, for runs that
// name a user but no group.
func SyncedGroups(ctx context.Context, dir usersync.Directory, owner string) ([]SyncedGroup, error) {
	states, err := dir.SyncStates(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make([]SyncedGroup, 0, len(states))
	for _, st := range states {
		var es struct {
			Target string `json:"target"`
		}
		json.Unmarshal([]byte(st.Value), &es)
		out = append(out, SyncedGroup{SourceID: st.Key, Target: es.Target})
	}
	return out, nil
}

// options are the values that shape a run's result, by the command-line
// names users know them by: the engine's and the source's own.
func (s *syncer) options() map[string]string {
	o := s.o
	out := map[string]string{
		"--user-type":          string(o.UserType),
		"--auto-create":        string(o.AutoCreate),
		"--force":              strconv.FormatBool(o.Force),
		"--target-group":       usersync.GroupNameKey(o.TargetGroup),
		"--skip-default-group": strconv.FormatBool(o.SkipDefaultGroup),
		"--map-attr-to-group":  strings.Join(o.MapAttrToGroup, ","),
	}
	if d, ok := s.src.(Describer); ok {
		for k, v := range d.Options() {
			out[k] = v
		}
	}
	return out
}

// attributes are the custom attributes this run fills.
func (s *syncer) attributes() []string {
	d, ok := s.src.(Describer)
	if !ok {
		return nil
	}
	a := slices.Clone(d.Attributes())
	sort.Strings(a)
	return slices.Compact(a)
}

func (s *syncer) stateValue(source string) string {
	var pending []string
	for _, a := range s.r.Unresolved {
		if a.SourceID != "" {
			pending = append(pending, a.SourceID)
		}
	}
	b, _ := json.Marshal(engineState{Format: stateFormat, Options: s.options(), Attributes: s.attributes(), Target: s.r.Group, Source: source, Pending: pending})
	return string(b)
}

// savedState loads the group's delta state and says why it cannot be used
// ("" when it can). It also learns the attributes the last run filled, so
// a full read removes those no option fills any more.
func (s *syncer) savedState(ctx context.Context) (usersync.SyncState, string, error) {
	st, err := s.dir.SyncState(ctx, s.owner, s.r.SourceID)
	switch {
	case usersync.ErrorCode(err) == usersync.ENOTFOUND:
		return st, "first run: no saved delta state", nil
	case err != nil:
		return st, "", err
	}
	var es engineState
	parsed := json.Unmarshal([]byte(st.Value), &es) == nil && es.Format == stateFormat
	if parsed {
		s.dropAttrs = nil
		now := s.attributes()
		for _, a := range es.Attributes {
			if !slices.Contains(now, a) {
				s.dropAttrs = append(s.dropAttrs, a)
			}
		}
	}
	switch {
	case s.rebindFrom != "":
		return st, "--rebind: the directory group follows another source group now", nil
	case s.target == nil:
		return st, "the directory group is missing", nil
	case s.o.Full:
		return st, "--full-read", nil
	case s.o.FullEvery > 0 && time.Since(st.FullAt) > s.o.FullEvery:
		return st, fmt.Sprintf("the last full read was %s ago (full reconcile every %s)", time.Since(st.FullAt).Round(time.Minute), s.o.FullEvery), nil
	case !parsed:
		return st, "the saved sync state is from another version of usersync", nil
	}
	if changed := changedOptions(es.Options, s.options()); len(changed) > 0 {
		return st, "the options differ from the last run (" + strings.Join(changed, ", ") + ")", nil
	}
	if es.Source == "" {
		return st, "the group has nested groups; it is always read in full", nil
	}
	if n := len(es.Pending); n > 0 {
		what := fmt.Sprintf("%d users the last run could not sync are", n)
		if n == 1 {
			what = "a user the last run could not sync is"
		}
		return st, fmt.Sprintf("%s tried again (source ids %s)", what, listSome(es.Pending, 5)), nil
	}
	st.Value = es.Source
	return st, "", nil
}

// changedOptions names the options whose values differ, sorted.
func changedOptions(before, now map[string]string) []string {
	var out []string
	for k, v := range now {
		if before[k] != v {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := now[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// listSome joins up to n values, with "…" for the rest.
func listSome(v []string, n int) string {
	if len(v) <= n {
		return strings.Join(v, ", ")
	}
	return strings.Join(v[:n], ", ") + ", …"
}
