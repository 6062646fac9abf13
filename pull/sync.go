package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// AutoCreate says what a sync may create in the directory.
type AutoCreate string

const (
	// CreateUsers (the flag absent): groups missing in the directory are
	// skipped; users of existing groups are created and updated.
	CreateUsers AutoCreate = ""
	// CreateGroups: groups are created; only existing users are updated and added.
	CreateGroups AutoCreate = "groups"
	// CreateAll: groups and users are created.
	CreateAll AutoCreate = "all"
)

// Options shape a sync run; the zero value is the seeds' defaults except
// SyncUserLimit, which callers set (the CLI's default is 10000).
type Options struct {
	UserType         usersync.UserType // type of created users; default regular
	AutoCreate       AutoCreate
	Force            bool // overwrite profiles of users this source does not own, and apply mass removals
	TargetGroup      string
	SkipDefaultGroup bool
	SyncUserLimit    int      // a group with more users is refused whole; 0: no limit
	MapAttrToGroup   []string // each user also joins the group named by each of these attributes
	// OnlyUser limits the sync to one username: its profile and its
	// membership of the group; no other member is added or removed.
	OnlyUser string

	DryRun bool // plan only: nothing is written, no delta state is saved
	// Full reads the group in full even when a delta state is saved;
	// FullEvery does so when the last full read is older (0: never by age).
	Full      bool
	FullEvery time.Duration
	// KeepActions keeps every planned action in the Result (for a full
	// summary); counts are always kept. OnAction sees each as it is planned.
	KeepActions bool
	OnAction    func(Action)
	// Progress is called as pages arrive and are applied.
	Progress func(Progress)
}

// Progress is how far a full read has come.
type Progress struct {
	Group   string
	Total   int // users the source announced; -1 when unknown
	Pages   int // pages fetched
	Fetched int // users fetched
	Applied int // users planned and written
}

// Mass-removal guard: a sync that would remove more than this share of a
// group's members, and more than MassRemovalMin of them, or empty a group,
// removes nobody without Force.
const (
	MassRemovalShare = 0.2
	MassRemovalMin   = 10
)

// applyChunk bounds the users written in one transaction when a group is
// held whole before writing; ten of it bound a group commit.
const applyChunk = 2000

// ActionKind names one step of a sync.
type ActionKind string

const (
	CreateUser   ActionKind = "create-user"
	UpdateUser   ActionKind = "update-user"
	SkipUser     ActionKind = "skip-user"
	CreateGroup  ActionKind = "create-group"
	AddMember    ActionKind = "add-member"
	RemoveMember ActionKind = "remove-member"
)

// Action is one planned change and why.
type Action struct {
	Kind   ActionKind                      `json:"action"`
	User   string                          `json:"user,omitempty"`
	Group  string                          `json:"group,omitempty"`
	Reason string                          `json:"reason"`
	Fields map[string]usersync.FieldChange `json:"fields,omitempty"`
}

// Modes of a sync.
const (
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// Result is what syncing one group changed or, in a dry run, would change.
type Result struct {
	Source      string               `json:"source"`
	SourceGroup string               `json:"sourceGroup"`
	SourceID    string               `json:"sourceGroupId"`
	Group       string               `json:"group"` // the directory group
	Mode        string               `json:"mode,omitempty"`
	FullReason  string               `json:"fullReason,omitempty"` // why the group was read in full
	SourceUsers int                  `json:"sourceUsers"`          // users read (full) or changes received (incremental)
	Skipped     string               `json:"skipped,omitempty"`    // why the group is not synced at all
	Counts      map[ActionKind]int   `json:"counts"`
	Actions     []Action             `json:"actions,omitempty"`
	Warnings    []string             `json:"warnings,omitempty"`
	Written     usersync.BatchResult `json:"written"`
}

// syncer holds one group's sync while it runs.
type syncer struct {
	dir    usersync.Directory
	src    Source
	o      Options
	r      *Result
	owner  string
	target *usersync.Group // nil until created (or, in a dry run, never)

	groups   []usersync.GroupUpsert // groups to create with the next batch
	mapped   map[string]bool        // mapped group name key → usable
	current  map[string]member      // members of the target group, by username key
	inSource map[string]bool        // username keys seen in the source this run
	reasonIn string
	applied  int
}

type member struct {
	username, source, sourceID string
}

// Sync brings one directory group in line with a source group: in full, or
// from the changes since the last run when the source can tell them. A full
// read is applied page by page as pages arrive, so directory writes overlap
// the fetches; removals are applied once the whole group is known.
func Sync(ctx context.Context, dir usersync.Directory, src Source, name string, o Options) (*Result, error) {
	sg, err := src.FindGroup(ctx, name)
	if err != nil {
		return nil, err
	}
	r := &Result{Source: src.Owner(), SourceGroup: sg.Name, SourceID: sg.ID, Group: sg.Name, Counts: map[ActionKind]int{}}
	if o.TargetGroup != "" {
		r.Group = o.TargetGroup
	}
	if o.UserType == "" {
		o.UserType = usersync.UserRegular
	}
	s := &syncer{dir: dir, src: src, o: o, r: r, owner: src.Owner(), mapped: map[string]bool{}, current: map[string]member{},
		inSource: map[string]bool{}, reasonIn: "in source group " + sg.Name}
	target, err := dir.FindGroupByName(ctx, r.Group)
	switch {
	case usersync.ErrorCode(err) == usersync.ENOTFOUND && o.AutoCreate == CreateUsers:
		r.Skipped = fmt.Sprintf("group %q does not exist in the directory (--auto-create creates it)", r.Group)
		return r, nil
	case usersync.ErrorCode(err) == usersync.ENOTFOUND:
		s.act(Action{Kind: CreateGroup, Group: r.Group, Reason: "missing in the directory"})
		s.groups = append(s.groups, usersync.GroupUpsert{Create: true, Group: usersync.Group{
			Name: r.Group, Description: sg.Description, Alias: sg.ID, Source: s.owner, SourceID: sg.ID}})
	case err != nil:
		return nil, err
	default:
		s.target = target
		if err := s.loadMembers(ctx); err != nil {
			return nil, err
		}
	}
	s.mapped[usersync.GroupNameKey(r.Group)] = true

	ds, tracks := src.(DeltaSource)
	tracks = tracks && o.OnlyUser == ""
	record := o.OnlyUser == "" && !o.DryRun // remember the group for runs naming only a user
	var saved usersync.SyncState
	if tracks {
		var reason string
		saved, reason, err = s.savedState(ctx)
		if err != nil {
			return nil, err
		}
		if reason == "" {
			ch, err := ds.Changes(ctx, sg, saved.Value)
			if err == nil {
				err = s.applyChanges(ctx, ch)
				if errors.Is(err, ErrFullSyncNeeded) {
					reason = "changes the delta cannot place (renamed users or members this source does not own)"
				} else {
					if err == nil && !o.DryRun {
						saved.Value = s.stateValue(ch.State)
						err = dir.SaveSyncState(ctx, saved)
					}
					return r, err
				}
			} else if errors.Is(err, ErrFullSyncNeeded) {
				reason = "the saved delta token expired"
				if why, ok := strings.CutPrefix(err.Error(), ErrFullSyncNeeded.Error()+": "); ok {
					reason = why // the source says why
				}
			} else {
				return nil, err
			}
		}
		r.FullReason = reason
	}
	r.Mode = ModeFull
	counted := s.count(ctx, sg) // in parallel with DeltaStart: they are independent
	var start string
	if tracks && !o.DryRun {
		var ok bool
		if start, ok, err = ds.DeltaStart(ctx, sg); err != nil {
			return nil, err
		} else if !ok {
			tracks = false
			r.FullReason = "the group has nested groups; it is always read in full"
		}
	}
	if err := s.full(ctx, sg, counted); err != nil {
		return nil, err
	}
	if record {
		return r, dir.SaveSyncState(ctx, usersync.SyncState{Source: s.owner, Key: sg.ID, Value: s.stateValue(start), FullAt: time.Now()})
	}
	return r, nil
}

// engineState wraps a source's delta state with a fingerprint of the
// options it was made under: other options need a full read.
type engineState struct {
	Options string `json:"options"`
	Target  string `json:"target"` // the directory group
	Source  string `json:"source"` // "": the group is not tracked by deltas
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
		var es engineState
		json.Unmarshal([]byte(st.Value), &es)
		out = append(out, SyncedGroup{SourceID: st.Key, Target: es.Target})
	}
	return out, nil
}

func (s *syncer) fingerprint() string {
	o := s.o
	h := sha256.Sum256([]byte(strings.Join([]string{string(o.UserType), string(o.AutoCreate), strconv.FormatBool(o.Force),
		usersync.GroupNameKey(o.TargetGroup), strconv.FormatBool(o.SkipDefaultGroup), strings.Join(o.MapAttrToGroup, ",")}, "\x00")))
	return hex.EncodeToString(h[:8])
}

func (s *syncer) stateValue(source string) string {
	b, _ := json.Marshal(engineState{Options: s.fingerprint(), Target: s.r.Group, Source: source})
	return string(b)
}

// savedState loads the group's delta state and says why it cannot be used
// ("" when it can).
func (s *syncer) savedState(ctx context.Context) (usersync.SyncState, string, error) {
	st, err := s.dir.SyncState(ctx, s.owner, s.r.SourceID)
	switch {
	case usersync.ErrorCode(err) == usersync.ENOTFOUND:
		return st, "first run: no saved delta state", nil
	case err != nil:
		return st, "", err
	case s.target == nil:
		return st, "the directory group is missing", nil
	case s.o.Full:
		return st, "--full", nil
	case s.o.FullEvery > 0 && time.Since(st.FullAt) > s.o.FullEvery:
		return st, fmt.Sprintf("the last full read was %s ago (full reconcile every %s)", time.Since(st.FullAt).Round(time.Minute), s.o.FullEvery), nil
	}
	var es engineState
	if json.Unmarshal([]byte(st.Value), &es) != nil || es.Options != s.fingerprint() {
		return st, "the options differ from the last run", nil
	}
	if es.Source == "" {
		return st, "the group has nested groups; it is always read in full", nil
	}
	st.Value = es.Source
	return st, "", nil
}

func (s *syncer) loadMembers(ctx context.Context) error {
	members, err := s.dir.MemberRefs(ctx, s.target.ID)
	if err != nil {
		return err
	}
	s.current = make(map[string]member, len(members))
	for _, m := range members {
		s.current[usersync.UsernameKey(m.Username)] = member{username: m.Username, source: m.Source, sourceID: m.SourceID}
	}
	return nil
}

func (s *syncer) act(a Action) {
	s.r.Counts[a.Kind]++
	if s.o.KeepActions {
		s.r.Actions = append(s.r.Actions, a)
	}
	if s.o.OnAction != nil {
		s.o.OnAction(a)
	}
}

func (s *syncer) warn(format string, args ...any) {
	s.r.Warnings = append(s.r.Warnings, fmt.Sprintf(format, args...))
}

// full reads the whole group. When the group's size is known and within the
// limit, each page is planned and written as it arrives while the next is
// fetched; otherwise the group is held until its size is known, so a group
// over the limit is refused with nothing of it written.
func (s *syncer) full(ctx context.Context, sg Group, counted <-chan countResult) error {
	limit := s.o.SyncUserLimit
	total := -1
	if c := <-counted; c.err != nil {
		s.warn("could not count the group's members first (%s); it is read whole before writing", usersync.ErrorMessage(c.err))
	} else {
		total = c.n
	}
	tooMany := func(n int) error {
		return usersync.Errorf(usersync.EINVALID, "group %q has %d users, more than the --sync-user-limit of %d; nothing of it was applied", sg.Name, n, limit)
	}
	if limit > 0 && total > limit {
		return tooMany(total)
	}
	stream := limit == 0 || total >= 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Up to 16 pages wait for the writer: when it falls behind, they are
	// committed together (see below), and bigger transactions write each
	// randomly placed index page once instead of once per page.
	pages := make(chan []User, 16)
	fetched := make(chan error, 1)
	go func() {
		defer close(pages)
		fetched <- s.src.Members(ctx, sg, func(p []User) error {
			select {
			case pages <- p:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	stop := func(err error) error {
		cancel()
		for range pages {
		}
		<-fetched
		return err
	}
	var held []User
	prog := Progress{Group: sg.Name, Total: total}
	for page := range pages {
		prog.Pages++
		// Group commit: when writing fell behind fetching, take every page
		// that is waiting into one transaction (fewer, larger commits).
		for more := true; more && len(page) < applyChunk*10; {
			select {
			case next, ok := <-pages:
				if !ok {
					more = false
					break
				}
				page = append(page[:len(page):len(page)], next...)
				prog.Pages++
			default:
				more = false
			}
		}
		prog.Fetched += len(page)
		if limit > 0 && prog.Fetched > limit {
			if stream {
				return stop(usersync.Errorf(usersync.EINVALID, "group %q grew past the --sync-user-limit of %d while it was read (%d users announced); the pages read before were applied, nothing was removed",
					sg.Name, limit, total))
			}
			return stop(tooMany(prog.Fetched))
		}
		if !stream {
			held = append(held, page...)
		} else if err := s.applyUsers(ctx, page, true); err != nil {
			return stop(err)
		}
		prog.Applied = s.applied
		s.progress(prog)
	}
	if err := <-fetched; err != nil {
		return err
	}
	for len(held) > 0 {
		n := min(applyChunk, len(held))
		if err := s.applyUsers(ctx, held[:n], true); err != nil {
			return err
		}
		held = held[n:]
		prog.Applied = s.applied
		s.progress(prog)
	}
	s.r.SourceUsers = prog.Fetched
	if len(s.inSource) == 0 && s.target == nil && !s.o.DryRun {
		// An empty source group still gets its directory group.
		if err := s.write(ctx, &usersync.Batch{}); err != nil {
			return err
		}
	}
	var leave []string
	for key, m := range s.current {
		if (s.o.OnlyUser == "" || key == usersync.UsernameKey(s.o.OnlyUser)) && !s.inSource[key] {
			leave = append(leave, m.username)
		}
	}
	return s.remove(ctx, leave, len(s.inSource) == 0 && s.o.OnlyUser == "")
}

type countResult struct {
	n   int // -1: the source cannot count
	err error
}

// count asks the source for the group's size in the background.
func (s *syncer) count(ctx context.Context, sg Group) <-chan countResult {
	ch := make(chan countResult, 1)
	c, ok := s.src.(Counter)
	if !ok {
		ch <- countResult{n: -1}
		return ch
	}
	go func() {
		n, err := c.CountMembers(ctx, sg)
		ch <- countResult{n, err}
	}()
	return ch
}

func (s *syncer) progress(p Progress) {
	if s.o.Progress != nil {
		s.o.Progress(p)
	}
}

// applyChanges applies a delta: joiners are planned like a page of a full
// read, changed profiles of members are updated, leavers are removed.
func (s *syncer) applyChanges(ctx context.Context, ch *Changes) error {
	s.r.Mode = ModeIncremental
	bySourceID := make(map[string]member, len(s.current))
	foreign := 0 // members this source does not own: their source ids are unknown
	for _, m := range s.current {
		if m.source == s.owner {
			bySourceID[m.sourceID] = m
		} else {
			foreign++
		}
	}
	users := append([]User(nil), ch.Added...)
	added := map[string]bool{}
	for _, u := range ch.Added {
		added[u.ID] = true
	}
	for _, u := range ch.Updated {
		m, isMember := bySourceID[u.ID]
		if !isMember {
			if cur, ok := s.current[usersync.UsernameKey(u.Username)]; ok && cur.source != s.owner {
				m, isMember = cur, true
			}
		}
		if !isMember || added[u.ID] {
			continue
		}
		if usersync.UsernameKey(m.username) != usersync.UsernameKey(u.Username) {
			return ErrFullSyncNeeded // renamed: the old name must leave the group
		}
		users = append(users, u)
	}
	var leave []string
	for _, id := range ch.Removed {
		if m, ok := bySourceID[id]; ok && !added[id] {
			leave = append(leave, m.username)
		} else if !ok && foreign > 0 {
			return ErrFullSyncNeeded
		}
	}
	s.r.SourceUsers = len(users) + len(leave)
	for len(users) > 0 {
		n := min(applyChunk, len(users))
		if err := s.applyUsers(ctx, users[:n], true); err != nil {
			return err
		}
		users = users[n:]
	}
	return s.remove(ctx, leave, false)
}

// applyUsers plans one page of source users — creates, updates, membership
// of the target, Default and mapped groups — and writes it in one batch.
func (s *syncer) applyUsers(ctx context.Context, page []User, join bool) error {
	names := make([]string, 0, len(page))
	for _, u := range page {
		if u.Username != "" {
			names = append(names, u.Username)
		}
	}
	existing, err := s.dir.UsersByUsername(ctx, names)
	if err != nil {
		return err
	}
	b := &usersync.Batch{}
	for _, su := range page {
		if s.o.OnlyUser != "" && usersync.UsernameKey(su.Username) != usersync.UsernameKey(s.o.OnlyUser) {
			continue
		}
		key := usersync.UsernameKey(su.Username)
		if su.Username == "" {
			s.warn("source user %s has no username attribute; skipped", su.ID)
			continue
		}
		if s.inSource[key] {
			s.warn("source users share the username %q; the first is used", su.Username)
			continue
		}
		s.inSource[key] = true
		next := usersync.User{Username: su.Username, Email: su.Email, FirstName: su.FirstName, LastName: su.LastName, Enabled: su.Enabled,
			Type: s.o.UserType, AuthMethod: usersync.AuthSSO, Source: s.owner, SourceID: su.ID, Attributes: su.Attributes}
		cur, exists := existing[key]
		switch {
		case !exists && s.o.AutoCreate == CreateGroups:
			s.act(Action{Kind: SkipUser, User: su.Username, Reason: "not in the directory; --auto-create groups creates only groups"})
			continue
		case !exists && su.NoCreate != "":
			s.act(Action{Kind: SkipUser, User: su.Username, Reason: su.NoCreate})
			continue
		case !exists:
			s.act(Action{Kind: CreateUser, User: su.Username, Reason: s.reasonIn})
			b.Users = append(b.Users, usersync.UserUpsert{User: next, Create: true})
		case cur.Source == s.owner || s.o.Force:
			fields := usersync.ProfileFields
			reason := "owned by " + s.owner
			if cur.Source != s.owner {
				fields |= usersync.FieldSource
				reason = "--force: profile taken over from " + cur.Source
			}
			if diff := profileDiff(cur, &next, fields); len(diff) > 0 {
				s.act(Action{Kind: UpdateUser, User: cur.Username, Reason: reason, Fields: diff})
				b.Users = append(b.Users, usersync.UserUpsert{User: next, Update: fields})
			}
		}
		if _, isMember := s.current[key]; !isMember && join {
			s.act(Action{Kind: AddMember, User: su.Username, Group: s.r.Group, Reason: s.reasonIn})
			b.Members = append(b.Members, usersync.MemberChange{Group: s.r.Group, Username: su.Username})
			s.current[key] = member{username: su.Username, source: s.owner, sourceID: su.ID}
		}
		if !s.o.SkipDefaultGroup {
			b.Members = append(b.Members, usersync.MemberChange{Group: usersync.DefaultGroupName, Username: su.Username})
		}
		for _, attr := range s.o.MapAttrToGroup {
			if g := su.Attributes[attr]; g != "" {
				ok, err := s.mappedGroup(ctx, g)
				if err != nil {
					return err
				}
				if ok {
					b.Members = append(b.Members, usersync.MemberChange{Group: g, Username: su.Username})
				}
			}
		}
	}
	s.applied += len(page)
	return s.write(ctx, b)
}

// mappedGroup says whether users may join the group named by an attribute
// value, planning its creation the first time when auto-create allows.
// Mapped groups are only joined, never mirrored.
func (s *syncer) mappedGroup(ctx context.Context, name string) (bool, error) {
	key := usersync.GroupNameKey(name)
	if ok, seen := s.mapped[key]; seen {
		return ok, nil
	}
	_, err := s.dir.FindGroupByName(ctx, name)
	switch {
	case err == nil:
		s.mapped[key] = true
	case usersync.ErrorCode(err) != usersync.ENOTFOUND:
		return false, err
	case usersync.ValidatePath("group name", name, usersync.MaxGroupNameLength) != nil:
		s.mapped[key] = false
		s.warn("attribute value %q cannot be a group name; its memberships are skipped", name)
	case s.o.AutoCreate == CreateUsers:
		s.mapped[key] = false
		s.warn("mapped group %q does not exist (--auto-create creates it); its memberships are skipped", name)
	default:
		s.mapped[key] = true
		s.act(Action{Kind: CreateGroup, Group: name, Reason: "named by a mapped attribute"})
		s.groups = append(s.groups, usersync.GroupUpsert{Create: true, Group: usersync.Group{Name: name, Source: s.owner}})
	}
	return s.mapped[key], nil
}

// remove takes leavers out of the target group, unless that looks like a
// mistake: emptying the group, or removing more than the guard allows.
func (s *syncer) remove(ctx context.Context, leave []string, emptied bool) error {
	if len(leave) == 0 {
		return nil
	}
	sort.Strings(leave)
	n := len(leave)
	if !s.o.Force && s.o.OnlyUser == "" && (emptied || (n > MassRemovalMin && float64(n) > MassRemovalShare*float64(len(s.current)))) {
		return usersync.Errorf(usersync.ECONFLICT, "syncing group %q would remove %d of its %d members (source group %q); removals refused as a likely mistake — run with --force to apply them",
			s.r.Group, n, len(s.current), s.r.SourceGroup)
	}
	b := &usersync.Batch{}
	for _, name := range leave {
		s.act(Action{Kind: RemoveMember, User: name, Group: s.r.Group, Reason: "no longer in source group " + s.r.SourceGroup})
		b.Members = append(b.Members, usersync.MemberChange{Group: s.r.Group, Username: name, Remove: true})
	}
	return s.write(ctx, b)
}

// write applies a batch, with the groups planned so far, unless this is a
// dry run; then the target group counts as existing.
func (s *syncer) write(ctx context.Context, b *usersync.Batch) error {
	b.Groups, s.groups = s.groups, nil
	if s.o.DryRun || (len(b.Users) == 0 && len(b.Groups) == 0 && len(b.Members) == 0 && s.target != nil) {
		return nil
	}
	res, err := s.dir.ApplyBatch(ctx, b)
	if err != nil {
		return err
	}
	w := &s.r.Written
	w.UsersCreated += res.UsersCreated
	w.UsersUpdated += res.UsersUpdated
	w.UsersUnchanged += res.UsersUnchanged
	w.UsersSkipped += res.UsersSkipped
	w.GroupsCreated += res.GroupsCreated
	w.GroupsUpdated += res.GroupsUpdated
	w.GroupsUnchanged += res.GroupsUnchanged
	w.GroupsSkipped += res.GroupsSkipped
	w.MembersAdded += res.MembersAdded
	w.MembersRemoved += res.MembersRemoved
	w.RowsWritten += res.RowsWritten
	if s.target == nil {
		if s.target, err = s.dir.FindGroupByName(ctx, s.r.Group); err != nil {
			return err
		}
	}
	return nil
}

// profileDiff lists the fields an upsert with these field flags would change.
func profileDiff(cur, next *usersync.User, f usersync.UserFields) map[string]usersync.FieldChange {
	out := map[string]usersync.FieldChange{}
	cmp := func(flag usersync.UserFields, name, a, b string) {
		if f&flag != 0 && a != b {
			out[name] = usersync.FieldChange{From: a, To: b}
		}
	}
	cmp(usersync.FieldEmail, "email", cur.Email, next.Email)
	cmp(usersync.FieldFirstName, "firstName", cur.FirstName, next.FirstName)
	cmp(usersync.FieldLastName, "lastName", cur.LastName, next.LastName)
	cmp(usersync.FieldEnabled, "enabled", strconv.FormatBool(cur.Enabled), strconv.FormatBool(next.Enabled))
	cmp(usersync.FieldSource, "source", cur.Source, next.Source)
	cmp(usersync.FieldSource, "sourceId", cur.SourceID, next.SourceID)
	if f&usersync.FieldAttributes != 0 {
		for k, v := range next.Attributes {
			if cur.Attributes[k] != v && !(v == "" && cur.Attributes[k] == "") {
				out["attributes."+k] = usersync.FieldChange{From: cur.Attributes[k], To: v}
			}
		}
	}
	return out
}
