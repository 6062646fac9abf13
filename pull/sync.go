package pull

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
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
	UserType   usersync.UserType // type of created users; default regular
	AutoCreate AutoCreate
	Force      bool // overwrite profiles of users this source does not own, and apply mass removals
	// AllowRemovals applies removals the mass-removal guard would hold,
	// and nothing else that Force does (an administrator's answer to a
	// held run).
	AllowRemovals    bool
	TargetGroup      string
	SkipDefaultGroup bool
	SyncUserLimit    int      // a group with more users is refused whole; 0: no limit
	MapAttrToGroup   []string // each user also joins the group named by each of these attributes
	// OnlyUser limits the sync to one username: its profile and its
	// membership of the group; no other member is added or removed.
	OnlyUser string
	// Rebind lets a directory group bound to another source group (it was
	// synced from it) follow this one: its members become this group's.
	Rebind bool

	DryRun bool // plan only: nothing is written, no delta state is saved
	// Full reads the group in full even when a delta state is saved;
	// FullEvery does so when the last full read is older (0: never by age).
	Full      bool
	FullEvery time.Duration
	// KeepActions keeps every action in the Result (for a full summary);
	// counts are always kept. OnAction sees each action once it is written
	// (in a dry run, as it is planned).
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

// MassRemoval is the mass-removal guard's refusal: the removals it held.
// It is an ECONFLICT domain error too.
type MassRemoval struct {
	Group       string   `json:"group"`
	SourceGroup string   `json:"sourceGroup"`
	Remove      int      `json:"remove"` // members the sync would have removed
	Total       int      `json:"total"`  // members the group had
	Sample      []string `json:"sample"` // up to 20 of them, by username
	err         error
}

func (e *MassRemoval) Error() string { return e.err.Error() }
func (e *MassRemoval) Unwrap() error { return e.err }

// applyChunk bounds the users written in one transaction when a group is
// held whole before writing.
const applyChunk = 2000

// groupCommit bounds the users of the pages a full read commits together
// when writing falls behind fetching. Larger commits bought no time (at
// 20,000 a 100,000-member sync took as long) and held more: usersync's peak
// resident set at 300,000 members was 300 MiB at 20,000 and 241 MiB at this.
const groupCommit = 2 * applyChunk

// ActionKind names one step of a sync.
type ActionKind string

const (
	CreateUser   ActionKind = "create-user"
	UpdateUser   ActionKind = "update-user"
	SkipUser     ActionKind = "skip-user"
	CreateGroup  ActionKind = "create-group"
	UpdateGroup  ActionKind = "update-group" // bound or re-bound to the source group
	AddMember    ActionKind = "add-member"   // joins the target group
	RemoveMember ActionKind = "remove-member"
	// KeepMember: the user left this source group but stays in the target,
	// which another source group also feeds and still holds the user.
	KeepMember ActionKind = "keep-member"
	// JoinGroup: a membership of the Default Group or of a group named by
	// --map-attr-to-group; those are added, never mirrored.
	JoinGroup ActionKind = "join-group"
)

// Action is one planned change and why.
type Action struct {
	Kind   ActionKind                      `json:"action"`
	User   string                          `json:"user,omitempty"`
	Group  string                          `json:"group,omitempty"`
	Reason string                          `json:"reason"`
	Fields map[string]usersync.FieldChange `json:"fields,omitempty"`
	// Unresolved marks a skip that only an administrator can end (two
	// identities claim one name, a source user without a username): every
	// run skips it again until then. Result.Unresolved lists them.
	Unresolved bool `json:"unresolved,omitempty"`
	// SourceID is the source user's id, on unresolved skips: the next
	// run tries them again (see engineState.Pending).
	SourceID string `json:"sourceId,omitempty"`
}

// Modes of a sync.
const (
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// Result is what syncing one group changed or, in a dry run, would change.
// Counts and Actions hold what was written (planned, in a dry run): when a
// run stops half-way they say how far it came.
type Result struct {
	Source      string               `json:"source"`
	SourceGroup string               `json:"sourceGroup"`
	SourceID    string               `json:"sourceGroupId"`
	Group       string               `json:"group"` // the directory group
	Mode        string               `json:"mode,omitempty"`
	FullReason  string               `json:"fullReason,omitempty"` // why the group was read in full
	SourceUsers int                  `json:"sourceUsers"`          // users read (full) or changes received (incremental: Left included); with OnlyUser, 1 or 0
	Left        int                  `json:"left,omitempty"`       // incremental: of SourceUsers, the members the source says left
	Skipped     string               `json:"skipped,omitempty"`    // why the group is not synced at all
	Counts      map[ActionKind]int   `json:"counts"`
	Actions     []Action             `json:"actions,omitempty"`
	Warnings    []string             `json:"warnings,omitempty"`
	Written     usersync.BatchResult `json:"written"`
	// Unresolved are the users this run could not sync and no run will
	// until an administrator acts (see Action.Unresolved), always listed.
	Unresolved []Action `json:"unresolved,omitempty"`
}

// syncer holds one group's sync while it runs.
type syncer struct {
	dir    usersync.Directory
	src    Source
	o      Options
	r      *Result
	owner  string
	target *usersync.Group // nil until created (or, in a dry run, never)
	// via names the source group on the memberships it brings;
	// rebindFrom, during a --rebind, the source group the target followed.
	via, rebindFrom string

	groups  []usersync.GroupUpsert // groups to create or bind with the next batch
	pending []Action               // actions of the batch being written
	joins   map[string]int64       // Default and mapped groups: name key → id (0: created by this run; -1: not usable)

	// What is known of the target group's members is read as the sync
	// asks (MemberRefsOf), so a run costs what it touches, not the group's
	// size; a full read lists the members once, at its end, to find who left.
	known     map[int64]*member // members read or made this run, by user id
	notMember map[int64]bool    // users known not to be members
	bySID     map[string]int64  // source id → member id, for known members this source owns
	added     int               // members this run adds (counted into the total in a dry run)
	// Who the run has seen is kept as numbers, so that memory stays flat
	// as groups grow: the directory ids of the users found in or created
	// from the source, and a hash of each username key, which tells a
	// source user sharing an earlier one's username (a hit is confirmed
	// exactly, see firstWithName).
	seenIDs    map[int64]struct{}
	nameHashes map[uint64]struct{}
	seen       int             // source users with a username this run
	skipped    map[string]bool // username keys of seen users the directory does not hold (not created, or a dry run)
	hashSeed   maphash.Seed
	dropAttrs  []string // attributes the last run filled and this one does not
	// sourceHasUsers says whether the directory held users of this source
	// when the run first looked (nil: not looked yet); when it held none (a
	// first sync), no user can be found by its source id and the lookups
	// are skipped.
	sourceHasUsers *bool
	reasonIn       string
	applied        int
	// Users put off until the end of the run (deferUser), their username
	// keys, and whether the run has reached its end (nothing waits then).
	deferred []User
	retry    map[string]bool
	final    bool
	gone     map[string]bool // source ids of name holders the source no longer has

	// Missing values, for one warning each at the end.
	noName         []string // source ids of users without a username
	noEmail        int
	withEmail      int
	onlyUserSeen   bool
	onlyUserMember bool // the user named by OnlyUser is a member of the target
}

type member struct {
	id                         int64
	username, source, sourceID string
	via                        []string
}

// Sync brings one directory group in line with a source group: in full, or
// from the changes since the last run when the source can tell them. A full
// read is applied page by page as pages arrive, so directory writes overlap
// the fetches; removals are applied once the whole group is known.
//
// The result is returned even with an error: it says what was written
// before the run stopped.
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
	s := &syncer{dir: dir, src: src, o: o, r: r, owner: src.Owner(), joins: map[string]int64{},
		seenIDs: map[int64]struct{}{}, nameHashes: map[uint64]struct{}{}, skipped: map[string]bool{}, hashSeed: maphash.MakeSeed(),
		reasonIn: "in source group " + sg.Name, via: SourceGroupKey(src.Owner(), sg.ID)}
	s.forget()
	err = s.run(ctx, sg)
	s.finish()
	return r, err
}

// SourceGroupKey names a source group on the memberships it brings
// (usersync.MemberChange.Via): "<owner>/<id at the source>".
func SourceGroupKey(owner, id string) string { return owner + "/" + id }

func (s *syncer) run(ctx context.Context, sg Group) error {
	o, r := s.o, s.r
	target, err := s.dir.FindGroupByName(ctx, r.Group)
	switch {
	case usersync.ErrorCode(err) == usersync.ENOTFOUND && o.AutoCreate == CreateUsers:
		r.Skipped = fmt.Sprintf("group %q does not exist in the directory (--auto-create creates it)", r.Group)
		return nil
	case usersync.ErrorCode(err) == usersync.ENOTFOUND:
		s.act(Action{Kind: CreateGroup, Group: r.Group, Reason: "missing in the directory"})
		s.groups = append(s.groups, usersync.GroupUpsert{Create: true, Group: usersync.Group{
			Name: r.Group, Description: sg.Description, Alias: sg.ID, Source: s.owner, SourceID: sg.ID, Flat: o.TargetGroup == ""}})
	case err != nil:
		return err
	default:
		s.target = target
		if err := s.bind(sg); err != nil {
			return err
		}
	}

	ds, tracks := s.src.(DeltaSource)
	tracks = tracks && o.OnlyUser == ""
	record := o.OnlyUser == "" && !o.DryRun // remember the group for runs naming only a user
	var saved usersync.SyncState
	var reason string
	if o.OnlyUser == "" {
		saved, reason, err = s.savedState(ctx)
		if err != nil {
			return err
		}
	}
	if tracks {
		if reason == "" {
			ch, err := ds.Changes(ctx, sg, saved.Value)
			if err == nil {
				err = s.applyChanges(ctx, ch)
				if errors.Is(err, ErrFullSyncNeeded) {
					reason = "changes the delta cannot place (members this source does not own left)"
				} else {
					if err == nil && !o.DryRun {
						saved.Value = s.stateValue(ch.State)
						err = s.dir.SaveSyncState(ctx, saved)
					}
					return err
				}
			} else if errors.Is(err, ErrFullSyncNeeded) {
				reason = "the source can no longer tell the changes since the last run"
				if why, ok := strings.CutPrefix(err.Error(), ErrFullSyncNeeded.Error()+": "); ok {
					reason = why // the source says why
				}
			} else {
				return err
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
			return err
		} else if !ok {
			r.FullReason = "the group has nested groups; it is always read in full"
		}
	}
	if err := s.full(ctx, sg, counted); err != nil {
		return err
	}
	if !record {
		return nil
	}
	if s.rebindFrom != "" {
		if owner, id, ok := strings.Cut(s.rebindFrom, "/"); ok && owner == s.owner {
			if err := s.dir.DeleteSyncState(ctx, owner, id); err != nil {
				return err
			}
		}
	}
	return s.dir.SaveSyncState(ctx, usersync.SyncState{Source: s.owner, Key: sg.ID, Value: s.stateValue(start), FullAt: time.Now()})
}

// bind checks that the target group follows this source group. A group a
// sync created follows one source group (its source and source id), and a
// group made by hand is bound to the first source group synced into it;
// any other source group of the same name is refused rather than mixed in,
// unless Rebind says so. With TargetGroup the user named the group: several
// source groups may feed it (see usersync.MemberChange.Via).
func (s *syncer) bind(sg Group) error {
	g := s.target
	if s.o.TargetGroup != "" || g.Source == "system" {
		return nil
	}
	if g.Source == s.owner && g.SourceID == sg.ID {
		return nil
	}
	up := usersync.GroupUpsert{Group: *g, Update: usersync.FieldGroupSource | usersync.FieldAlias}
	up.Group.Source, up.Group.SourceID, up.Group.Alias = s.owner, sg.ID, sg.ID
	reason := fmt.Sprintf("bound to source group %s (%s)", sg.ID, s.owner)
	if unbound := g.Source == usersync.SourceLocal || (g.Source == s.owner && g.SourceID == ""); !unbound {
		follows := fmt.Sprintf("follows source group %s of %s", g.SourceID, g.Source)
		if g.SourceID == "" {
			follows = "belongs to " + g.Source
		}
		if !s.o.Rebind {
			return usersync.Errorf(usersync.ECONFLICT, "directory group %q %s, and source group %q is another one (id %s); nothing was changed. Sync it into another directory group with --target-group NAME, or make %q follow it instead with --rebind (its members then become those of %s)",
				g.Name, follows, sg.Name, sg.ID, g.Name, sg.ID)
		}
		s.rebindFrom = SourceGroupKey(g.Source, g.SourceID)
		up.Update |= usersync.FieldDescription
		up.Group.Description = sg.Description
		reason = fmt.Sprintf("--rebind: follows source group %s (%s); it %s before", sg.ID, s.owner, follows)
	}
	s.act(Action{Kind: UpdateGroup, Group: g.Name, Reason: reason})
	s.groups = append(s.groups, up)
	return nil
}

// lookupMembers reads which of ids are members of the target (those not
// known yet).
func (s *syncer) lookupMembers(ctx context.Context, ids []int64) error {
	var ask []int64
	for _, id := range ids {
		if _, ok := s.known[id]; !ok && !s.notMember[id] {
			ask = append(ask, id)
		}
	}
	if len(ask) == 0 || s.target == nil {
		return nil
	}
	refs, err := s.dir.MemberRefsOf(ctx, s.target.ID, usersync.MemberQuery{UserIDs: ask})
	if err != nil {
		return err
	}
	s.remember(refs)
	for _, id := range ask {
		if _, ok := s.known[id]; !ok {
			s.notMember[id] = true
		}
	}
	return nil
}

// lookupMembersBySource reads the members among this source's users with
// these source ids.
func (s *syncer) lookupMembersBySource(ctx context.Context, sids []string) error {
	if len(sids) == 0 || s.target == nil {
		return nil
	}
	refs, err := s.dir.MemberRefsOf(ctx, s.target.ID, usersync.MemberQuery{Source: s.owner, SourceIDs: sids})
	if err != nil {
		return err
	}
	s.remember(refs)
	return nil
}

func (s *syncer) remember(refs []usersync.MemberRef) {
	for _, m := range refs {
		s.addKnown(&member{id: m.UserID, username: m.Username, source: m.Source, sourceID: m.SourceID, via: m.Via})
	}
}

// forget drops what the run knows of members: a full read does so before
// each page, since a page's users are looked up with it and a user is in
// one page only, so that what it holds does not grow with the group.
func (s *syncer) forget() {
	s.known, s.notMember, s.bySID = map[int64]*member{}, map[int64]bool{}, map[string]int64{}
}

// firstWithName says whether this source user is the run's first with
// the username key, and notes it as seen when so. in are the keys of the
// batch being planned; cur is the directory user of that name as read
// before it. The hash only rules out: a hit is confirmed by the batch, by
// the users the directory does not hold, or by the directory user of that
// name having been seen.
func (s *syncer) firstWithName(key string, in map[string]bool, cur *usersync.User) bool {
	if s.retry[key] { // put off earlier in this run (deferUser), and seen then
		delete(s.retry, key)
		in[key] = true
		return true
	}
	h := maphash.String(s.hashSeed, key)
	if _, hit := s.nameHashes[h]; hit {
		if in[key] || s.skipped[key] {
			return false
		}
		if cur != nil {
			if _, seen := s.seenIDs[cur.ID]; seen {
				return false
			}
		}
	}
	s.nameHashes[h] = struct{}{}
	in[key] = true
	s.seen++
	if s.o.DryRun { // nothing is written: the directory cannot confirm
		s.skipped[key] = true
	}
	return true
}

func (s *syncer) addKnown(m *member) {
	s.known[m.id] = m
	delete(s.notMember, m.id)
	if m.source == s.owner && m.sourceID != "" {
		s.bySID[m.sourceID] = m.id
	}
}

// memberTotal is how many members the target has now (with, in a dry
// run, those the run would have added).
func (s *syncer) memberTotal(ctx context.Context) (int, error) {
	if s.target == nil {
		return s.added, nil
	}
	n, err := s.dir.CountMembers(ctx, s.target.ID)
	if s.o.DryRun {
		n += s.added
	}
	return n, err
}

// act records an action of the batch being built; it counts once the
// batch is written (see write).
func (s *syncer) act(a Action) { s.pending = append(s.pending, a) }

func (s *syncer) commitActions() {
	for _, a := range s.pending {
		s.r.Counts[a.Kind]++
		if a.Unresolved {
			s.r.Unresolved = append(s.r.Unresolved, a)
		}
		if s.o.KeepActions {
			s.r.Actions = append(s.r.Actions, a)
		}
		if s.o.OnAction != nil {
			s.o.OnAction(a)
		}
	}
	s.pending = s.pending[:0]
}

func (s *syncer) warn(format string, args ...any) {
	s.r.Warnings = append(s.r.Warnings, fmt.Sprintf(format, args...))
}

// finish turns what was missing into warnings and fills what a run naming
// one user reports.
func (s *syncer) finish() {
	d, _ := s.src.(Describer)
	opt := func(name string) string {
		if d == nil {
			return ""
		}
		v := d.Options()[name]
		hint := fmt.Sprintf(" (%s %q", name, v)
		if sug := d.Suggest(v); sug != "" && sug != v {
			hint += fmt.Sprintf("; did you mean %q?", sug)
		}
		return hint + ")"
	}
	if n := len(s.noName); n > 0 {
		ids := s.noName[:min(n, 5)]
		more := ""
		if n > 5 {
			more = ", …"
		}
		s.warn("%d source users have no value for the username attribute%s and were skipped: %s%s", n, opt("--username-attr"), strings.Join(ids, ", "), more)
	}
	if s.noEmail > 0 {
		hint := ""
		if s.noEmail*2 > s.noEmail+s.withEmail { // most: likely a wrong attribute name
			hint = opt("--email-attr")
		}
		s.warn("%d of the %d users read have no email address%s", s.noEmail, s.noEmail+s.withEmail, hint)
	}
	if s.o.OnlyUser != "" && s.r.Skipped == "" {
		s.r.SourceUsers = 0
		if s.onlyUserSeen {
			s.r.SourceUsers = 1
		} else if !s.onlyUserMember {
			s.r.Skipped = fmt.Sprintf("user %q is neither in source group %q nor in directory group %q", s.o.OnlyUser, s.r.SourceGroup, s.r.Group)
		}
	}
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
	// Up to 16 pages wait for the writer: when it falls behind, a few are
	// committed together (see below), and a transaction of several pages
	// writes each randomly placed index page once instead of once per page.
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
		for more := true; more && len(page) < groupCommit; {
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
		s.r.SourceUsers = prog.Fetched // so far: an interrupted run says how far it read
		if limit > 0 && prog.Fetched > limit {
			if stream {
				return stop(usersync.Errorf(usersync.EINVALID, "group %q grew past the --sync-user-limit of %d while it was read (%d users announced); the pages read before were applied, nothing was removed",
					sg.Name, limit, total))
			}
			return stop(tooMany(prog.Fetched))
		}
		if !stream {
			held = append(held, page...)
		} else if err := s.applyPage(ctx, page); err != nil {
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
		if err := s.applyPage(ctx, held[:n]); err != nil {
			return err
		}
		held = held[n:]
		prog.Applied = s.applied
		s.progress(prog)
	}
	if err := s.applyDeferred(ctx); err != nil {
		return err
	}
	s.r.SourceUsers = prog.Fetched
	if s.target == nil && !s.o.DryRun {
		// An empty source group still gets its directory group.
		if err := s.write(ctx, &usersync.Batch{}); err != nil {
			return err
		}
	}
	// Who left: the members not seen in the source, from one pass over
	// the member list (only the leavers are kept).
	var leave, rebound []*member
	members := 0
	if s.o.DryRun {
		members = s.added // not written, so not in the list
	}
	if s.target != nil && !s.o.DryRun && s.o.OnlyUser == "" && s.rebindFrom == "" {
		// Every user the run saw is a member now, so a group that holds as
		// many members as the run saw users holds no leaver: a count is one
		// index range, the scan below reads every member's user.
		n, err := s.dir.CountMembers(ctx, s.target.ID)
		if err != nil {
			return err
		}
		if n == len(s.seenIDs) {
			return s.removeFrom(ctx, nil, nil, n, s.seen == 0)
		}
	}
	if s.target != nil {
		only := usersync.UsernameKey(s.o.OnlyUser)
		err := s.dir.ScanMemberRefs(ctx, s.target.ID, func(m usersync.MemberRef) error {
			members++
			if s.o.OnlyUser != "" && usersync.UsernameKey(m.Username) != only {
				return nil
			}
			s.onlyUserMember = s.onlyUserMember || s.o.OnlyUser != ""
			mem := &member{id: m.UserID, username: m.Username, source: m.Source, sourceID: m.SourceID, via: m.Via}
			// Seen: by id, or by name for users this run created (they had no id yet).
			_, seen := s.seenIDs[m.UserID] // created by this run too (write notes their ids)
			if !seen {
				leave = append(leave, mem)
			} else if s.rebindFrom != "" && slices.Contains(m.Via, s.rebindFrom) {
				rebound = append(rebound, mem)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.removeFrom(ctx, leave, rebound, members, s.seen == 0 && s.o.OnlyUser == "")
}

// applyPage plans and writes one page of a full read, with nothing kept
// of the pages before but what says who was seen.
func (s *syncer) applyPage(ctx context.Context, page []User) error {
	s.forget()
	return s.applyUsers(ctx, page)
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
// read, changed profiles of members are updated (renames included: users
// are matched by their source id), leavers are removed.
func (s *syncer) applyChanges(ctx context.Context, ch *Changes) error {
	s.r.Mode = ModeIncremental
	added := map[string]bool{}
	for _, u := range ch.Added {
		added[u.ID] = true
	}
	// Which of the users the delta names are members: by their source id,
	// and, for the updated users this source does not own, by name.
	sids := make([]string, 0, len(ch.Updated)+len(ch.Removed))
	for _, u := range ch.Updated {
		sids = append(sids, u.ID)
	}
	sids = append(sids, ch.Removed...)
	if err := s.lookupMembersBySource(ctx, sids); err != nil {
		return err
	}
	var names []string
	for _, u := range ch.Updated {
		if _, ok := s.bySID[u.ID]; !ok && u.Username != "" {
			names = append(names, u.Username)
		}
	}
	var foreign map[string]int64 // username key → id of a member this source does not own
	if len(names) > 0 {
		byName, err := s.dir.UsersByUsername(ctx, names)
		if err != nil {
			return err
		}
		var ids []int64
		for _, u := range byName {
			if u.Source != s.owner {
				ids = append(ids, u.ID)
			}
		}
		if err := s.lookupMembers(ctx, ids); err != nil {
			return err
		}
		foreign = map[string]int64{}
		for key, u := range byName {
			if _, ok := s.known[u.ID]; ok && u.Source != s.owner {
				foreign[key] = u.ID
			}
		}
	}
	users := append([]User(nil), ch.Added...)
	for _, u := range ch.Updated {
		_, isMember := s.bySID[u.ID]
		if !isMember {
			_, isMember = foreign[usersync.UsernameKey(u.Username)]
		}
		if isMember && !added[u.ID] {
			users = append(users, u)
		}
	}
	var leave []*member
	for _, id := range ch.Removed {
		if mid, ok := s.bySID[id]; ok && !added[id] {
			leave = append(leave, s.known[mid])
		} else if !ok && s.target != nil {
			// A leaver this source does not own would be unknown by its
			// source id: only a full read can tell then.
			other, err := s.dir.HasMembersNotFrom(ctx, s.target.ID, s.owner)
			if err != nil {
				return err
			}
			if other {
				return ErrFullSyncNeeded
			}
		}
	}
	s.r.SourceUsers, s.r.Left = len(users)+len(leave), len(leave)
	for len(users) > 0 {
		n := min(applyChunk, len(users))
		if err := s.applyUsers(ctx, users[:n]); err != nil {
			return err
		}
		users = users[n:]
	}
	if err := s.applyDeferred(ctx); err != nil {
		return err
	}
	if len(leave) == 0 {
		return nil
	}
	total, err := s.memberTotal(ctx)
	if err != nil {
		return err
	}
	return s.removeFrom(ctx, leave, nil, total, false)
}

// applyUsers plans one page of source users — creates, updates (renames
// included), membership of the target, of the Default Group and of mapped
// groups — and writes it in one batch. A source user is matched to the
// directory user it made by its source id first, then by username.
func (s *syncer) applyUsers(ctx context.Context, page []User) error {
	names := make([]string, 0, len(page))
	for _, u := range page {
		if u.Username != "" {
			names = append(names, u.Username)
		}
	}
	byName, err := s.dir.UsersByUsername(ctx, names)
	if err != nil {
		return err
	}
	// Users found by name as this source's own need no second look; the
	// others may be this source's users under another name.
	var ask []string
	for _, u := range page {
		if cur, ok := byName[usersync.UsernameKey(u.Username)]; u.ID != "" && (!ok || cur.Source != s.owner || cur.SourceID != u.ID) {
			ask = append(ask, u.ID)
		}
	}
	if len(ask) > 0 && s.sourceHasUsers == nil {
		some, _, err := s.dir.FindUsers(ctx, usersync.UserFilter{Source: s.owner, Limit: 1, Unordered: true, NoCount: true})
		if err != nil {
			return err
		}
		has := len(some) > 0
		s.sourceHasUsers = &has
	}
	if s.sourceHasUsers != nil && !*s.sourceHasUsers {
		ask = ask[:0] // the source had no users when the run began: none to find
	}
	bySID, err := s.dir.UsersBySource(ctx, s.owner, ask)
	if err != nil {
		return err
	}
	// Which of the page's directory users are members of the target.
	ids := make([]int64, 0, len(page))
	for _, u := range page {
		if cur := bySID[u.ID]; cur != nil {
			ids = append(ids, cur.ID)
		} else if cur := byName[usersync.UsernameKey(u.Username)]; cur != nil {
			ids = append(ids, cur.ID)
		}
	}
	if err := s.lookupMembers(ctx, ids); err != nil {
		return err
	}
	moving := s.movingAway(page, byName, bySID)
	b := &usersync.Batch{}
	var joiners []joiner
	missing, deferred := 0, 0
	planned := make(map[string]bool, len(page)) // username keys of this batch
	for _, su := range page {
		if s.o.OnlyUser != "" && usersync.UsernameKey(su.Username) != usersync.UsernameKey(s.o.OnlyUser) {
			continue
		}
		if su.Username == "" {
			missing++
			s.noName = append(s.noName, su.ID)
			s.act(Action{Kind: SkipUser, User: "(id " + su.ID + ")", Reason: "no value for the username attribute", Unresolved: true, SourceID: su.ID})
			continue
		}
		key := usersync.UsernameKey(su.Username)
		if !s.firstWithName(key, planned, byName[key]) {
			s.warn("source users share the username %q; the first is used", su.Username)
			continue
		}
		if s.o.OnlyUser != "" {
			s.onlyUserSeen = true
		}
		if su.Email == "" {
			s.noEmail++
		} else {
			s.withEmail++
		}
		next := usersync.User{Username: su.Username, Email: su.Email, FirstName: su.FirstName, LastName: su.LastName, Enabled: su.Enabled,
			Type: s.o.UserType, AuthMethod: usersync.AuthSSO, Source: s.owner, SourceID: su.ID, Attributes: su.Attributes}
		cur := bySID[su.ID]
		if holder := byName[key]; cur == nil && holder != nil && !moving[holder.ID] {
			cur = holder // the name's holder, unless it leaves the name in this batch
		}
		renamed := cur != nil && usersync.UsernameKey(cur.Username) != key
		if holder, taken := byName[key]; renamed && taken && holder.ID != cur.ID && !moving[holder.ID] {
			if s.deferUser(su, key, holder) {
				deferred++
				continue
			}
			if su.profileOnly {
				continue // read only to free a name, which it cannot
			}
			why := fmt.Sprintf("directory user %q has this source id (%s), and directory user %q (id %d) has its new name; it stays a member under its old name until the name is free (rename or delete %q)", cur.Username, su.ID, holder.Username, holder.ID, holder.Username)
			if gone := s.heldBy(holder); gone != "" {
				why = fmt.Sprintf("directory user %q has this source id (%s) and cannot take its new name: %s; it stays a member under its old name until then", cur.Username, su.ID, gone)
			}
			s.act(Action{Kind: SkipUser, User: su.Username, Reason: why, Unresolved: true, SourceID: su.ID})
			s.skipped[key] = true
			// Still in the source group: it is a member (by its id, under
			// its old name), and a full read must not remove it.
			s.join(b, cur, User{ID: su.ID, Username: cur.Username})
			continue
		}
		// Found by name, but the directory user is another user of this
		// source: a username the source reused (a person gone, a new one
		// given the name) or one that moved in this run. Taking it over
		// would give one person's account to another.
		other := cur != nil && cur.Source == s.owner && cur.SourceID != "" && su.ID != "" && cur.SourceID != su.ID
		if other && !s.o.Force && s.deferUser(su, key, cur) {
			deferred++
			continue
		}
		if other && !s.o.Force {
			why := fmt.Sprintf("directory user %q is source user %s, and source user %s has its username; if %s is gone at the source, delete or rename the directory user, or run with --force to give it to %s", cur.Username, cur.SourceID, su.ID, cur.SourceID, su.ID)
			if gone := s.heldBy(cur); gone != "" {
				why = fmt.Sprintf("source user %s has this username, and %s (or run with --force to give the account to %s)", su.ID, gone, su.ID)
			}
			s.act(Action{Kind: SkipUser, User: su.Username, Reason: why, Unresolved: true, SourceID: su.ID})
			s.skipped[key] = true
			continue
		}
		switch {
		case cur == nil && s.o.AutoCreate == CreateGroups:
			s.act(Action{Kind: SkipUser, User: su.Username, Reason: "not in the directory; --auto-create groups creates only groups"})
			s.skipped[key] = true
			continue
		case cur == nil && su.NoCreate != "":
			s.act(Action{Kind: SkipUser, User: su.Username, Reason: su.NoCreate})
			s.skipped[key] = true
			continue
		case cur == nil:
			s.act(Action{Kind: CreateUser, User: su.Username, Reason: s.reasonIn})
			b.Users = append(b.Users, usersync.UserUpsert{User: next, Create: true})
		case cur.Source == s.owner || s.o.Force:
			fields := usersync.ProfileFields
			reason := "owned by " + s.owner
			if other {
				fields |= usersync.FieldSource
				reason = "--force: taken over from source user " + cur.SourceID
			} else if cur.Source != s.owner {
				fields |= usersync.FieldSource
				reason = "--force: profile taken over from " + cur.Source
			}
			if renamed {
				fields |= usersync.FieldUsername
				reason = "renamed at the source"
				if cur.SoftDeleted {
					reason = "soft-deleted by a SCIM client, and still in the source: restored"
				}
			}
			if len(s.dropAttrs) > 0 {
				next.Attributes = dropped(next.Attributes, cur.Attributes, s.dropAttrs)
			}
			if diff := profileDiff(cur, &next, fields); len(diff) > 0 {
				s.act(Action{Kind: UpdateUser, User: su.Username, Reason: reason, Fields: diff})
				b.Users = append(b.Users, usersync.UserUpsert{ID: cur.ID, User: next, Update: fields})
			}
		}
		if su.profileOnly {
			continue // renamed to free a name; not a member through this run
		}
		s.join(b, cur, su)
		var id int64
		if cur != nil {
			id = cur.ID
		}
		if !s.o.SkipDefaultGroup {
			joiners = append(joiners, joiner{usersync.DefaultGroupName, id, su.Username})
		}
		for _, attr := range s.o.MapAttrToGroup {
			if g := su.Attributes[attr]; g != "" {
				joiners = append(joiners, joiner{g, id, su.Username})
			}
		}
	}
	if missing > 0 && missing*2 > len(page) && s.o.OnlyUser == "" {
		s.pending = s.pending[:0]
		what := "the username attribute"
		if d, ok := s.src.(Describer); ok {
			v := d.Options()["--username-attr"]
			what = fmt.Sprintf("the username attribute (--username-attr %q", v)
			if sug := d.Suggest(v); sug != "" && sug != v {
				what += fmt.Sprintf("; did you mean %q?", sug)
			}
			what += ")"
		}
		s.noName = nil
		return usersync.Errorf(usersync.EINVALID, "%d of %d users read from source group %q have no value for %s; nothing of them was applied",
			missing, len(page), s.r.SourceGroup, what)
	}
	if err := s.joinGroups(ctx, b, joiners); err != nil {
		return err
	}
	s.applied += len(page) - deferred
	return s.write(ctx, b)
}

// movingAway finds the directory users this page renames and that can be
// renamed: each one's new name is free, or held by another user renamed
// away in the same batch (a swap, a chain; the store applies them as one
// change). They are keyed by directory id.
func (s *syncer) movingAway(page []User, byName map[string]*usersync.User, bySID map[string]*usersync.User) map[int64]bool {
	to := map[int64]string{} // directory id → new username key
	for _, su := range page {
		if cur := bySID[su.ID]; cur != nil && su.Username != "" && (cur.Source == s.owner || s.o.Force) {
			if key := usersync.UsernameKey(su.Username); key != usersync.UsernameKey(cur.Username) {
				to[cur.ID] = key
			}
		}
	}
	if len(to) == 0 {
		return nil
	}
	moving := make(map[int64]bool, len(to))
	for id := range to {
		moving[id] = true
	}
	// A rename whose name stays taken cannot move, nor can one waiting on
	// it: drop them until nothing changes.
	for changed := true; changed; {
		changed = false
		for id, key := range to {
			if holder := byName[key]; moving[id] && holder != nil && holder.ID != id && !moving[holder.ID] {
				delete(moving, id)
				changed = true
			}
		}
	}
	return moving
}

// deferUser puts off a source user whose name another user of this source
// holds, when that user may still be renamed by a later page of this run
// (a swap across pages): the run applies the put-off users together at its
// end (see applyDeferred). It reports false when the user cannot wait.
func (s *syncer) deferUser(su User, key string, holder *usersync.User) bool {
	if s.final || s.o.DryRun || holder.Source != s.owner || holder.SourceID == "" {
		return false
	}
	s.deferred = append(s.deferred, su)
	if s.retry == nil {
		s.retry = map[string]bool{}
	}
	s.retry[key] = true
	return true
}

// applyDeferred applies, in one batch, the users put off by deferUser, once
// every page has been applied: the names they wait for are free now, or
// never will be in this run.
func (s *syncer) applyDeferred(ctx context.Context) error {
	if len(s.deferred) == 0 {
		return nil
	}
	s.final = true
	page := s.deferred
	s.deferred = nil
	if lk, ok := s.src.(Lookup); ok {
		moved, err := s.movedHolders(ctx, lk, page)
		if err != nil {
			return err
		}
		page = append(page, moved...)
	}
	s.forget()
	return s.applyUsers(ctx, page)
}

// movedHolders reads at the source the users of this source that hold the
// names the put-off users want and are not among them (not in the group,
// or not in this delta). Those renamed at the source since are returned to
// be renamed in the same batch, which frees their old names; those the
// source no longer has are noted, so the skip says so.
func (s *syncer) movedHolders(ctx context.Context, lk Lookup, page []User) ([]User, error) {
	names := make([]string, 0, len(page))
	in := make(map[string]bool, len(page))
	for _, u := range page {
		names, in[u.ID] = append(names, u.Username), true
	}
	byName, err := s.dir.UsersByUsername(ctx, names)
	if err != nil {
		return nil, err
	}
	held := map[string]*usersync.User{} // source id → directory user
	var ask []string
	for _, h := range byName {
		if h.Source == s.owner && h.SourceID != "" && !in[h.SourceID] && held[h.SourceID] == nil {
			held[h.SourceID] = h
			ask = append(ask, h.SourceID)
		}
	}
	if len(ask) == 0 {
		return nil, nil
	}
	sort.Strings(ask)
	found, err := lk.LookupUsers(ctx, ask)
	if err != nil {
		return nil, err
	}
	var out []User
	for _, sid := range ask {
		u, ok := found[sid]
		switch {
		case !ok:
			if s.gone == nil {
				s.gone = map[string]bool{}
			}
			s.gone[sid] = true
		case u.Username != "" && usersync.UsernameKey(u.Username) != usersync.UsernameKey(held[sid].Username):
			u.profileOnly = true
			out = append(out, u)
		}
	}
	return out, nil
}

// heldBy says, for a skip, who holds a name: the source user behind the
// directory user, and whether the source still has it.
func (s *syncer) heldBy(holder *usersync.User) string {
	if s.gone[holder.SourceID] {
		return fmt.Sprintf("directory user %q belonged to source user %s, which the source no longer has: delete or rename it to free the name", holder.Username, holder.SourceID)
	}
	return ""
}

// join makes a source user a member of the target group through this
// source group: a new member, or one this source group holds too.
func (s *syncer) join(b *usersync.Batch, cur *usersync.User, su User) {
	mc := usersync.MemberChange{Group: s.r.Group, Username: su.Username, Via: s.via}
	if cur != nil {
		mc.UserID = cur.ID // names may move in this batch (swaps): the id does not
	}
	if cur == nil {
		s.act(Action{Kind: AddMember, User: su.Username, Group: s.r.Group, Reason: s.reasonIn})
		b.Members = append(b.Members, mc)
		s.added++
		return
	}
	s.seenIDs[cur.ID] = struct{}{}
	m := s.known[cur.ID] // looked up with the page
	switch {
	case m == nil:
		s.act(Action{Kind: AddMember, User: su.Username, Group: s.r.Group, Reason: s.reasonIn})
		b.Members = append(b.Members, mc)
		s.addKnown(&member{id: cur.ID, username: su.Username, source: s.owner, sourceID: su.ID, via: []string{s.via}})
		s.added++
	case !slices.Contains(m.via, s.via):
		b.Members = append(b.Members, mc) // a member already: note that this source group holds it too
		m.via = append(m.via, s.via)
	}
}

// joiner is a user to add to the Default Group or a mapped group.
type joiner struct {
	group    string
	userID   int64 // 0: created by this batch
	username string
}

// joinGroups plans the Default Group and mapped-group memberships of a
// page: only those not in place already, so they are counted truly.
func (s *syncer) joinGroups(ctx context.Context, b *usersync.Batch, joiners []joiner) error {
	byGroup := map[string][]joiner{}
	var order []string
	for _, j := range joiners {
		key := usersync.GroupNameKey(j.group)
		if _, ok := byGroup[key]; !ok {
			order = append(order, key)
		}
		byGroup[key] = append(byGroup[key], j)
	}
	for _, key := range order {
		list := byGroup[key]
		gid, err := s.joinable(ctx, list[0].group)
		if err != nil {
			return err
		}
		if gid < 0 {
			continue
		}
		var ids []int64
		for _, j := range list {
			if j.userID != 0 {
				ids = append(ids, j.userID)
			}
		}
		in := map[int64]bool{}
		if gid > 0 && len(ids) > 0 {
			refs, err := s.dir.MemberRefsOf(ctx, gid, usersync.MemberQuery{UserIDs: ids})
			if err != nil {
				return err
			}
			for _, m := range refs {
				in[m.UserID] = true
			}
		}
		reason := "every synced user joins it; --skip-default-group leaves it out"
		if key != usersync.GroupNameKey(usersync.DefaultGroupName) {
			reason = "named by a mapped attribute (--map-attr-to-group)"
		}
		for _, j := range list {
			if j.userID != 0 && in[j.userID] {
				continue
			}
			s.act(Action{Kind: JoinGroup, User: j.username, Group: list[0].group, Reason: reason})
			b.Members = append(b.Members, usersync.MemberChange{Group: list[0].group, Username: j.username, UserID: j.userID})
		}
	}
	return nil
}

// joinable returns the id of a Default or mapped group users may join (0
// when this run creates it), or -1 when they may not, planning a mapped
// group's creation the first time when auto-create allows.
func (s *syncer) joinable(ctx context.Context, name string) (int64, error) {
	key := usersync.GroupNameKey(name)
	if id, seen := s.joins[key]; seen {
		return id, nil
	}
	g, err := s.dir.FindGroupByName(ctx, name)
	switch {
	case err == nil:
		s.joins[key] = g.ID
	case usersync.ErrorCode(err) != usersync.ENOTFOUND:
		return 0, err
	case key == usersync.GroupNameKey(s.r.Group):
		s.joins[key] = 0 // the target, created by this run
	case usersync.ValidateGroupName(name, true) != nil:
		s.joins[key] = -1
		s.warn("attribute value %q cannot be a group name; its memberships are skipped", name)
	case s.o.AutoCreate == CreateUsers:
		s.joins[key] = -1
		s.warn("mapped group %q does not exist (--auto-create creates it); its memberships are skipped", name)
	default:
		s.joins[key] = 0
		s.act(Action{Kind: CreateGroup, Group: name, Reason: "named by a mapped attribute"})
		s.groups = append(s.groups, usersync.GroupUpsert{Create: true, Group: usersync.Group{Name: name, Source: s.owner, Flat: true}})
	}
	return s.joins[key], nil
}

// removeFrom takes leavers out of the target group (of total members),
// unless that looks like a mistake: emptying the group, or removing more
// than the guard allows. A leaver that another source group feeding the
// target still holds stays; one this source group never brought (another's
// only) is not its to remove. rebound are members still here that forget the
// source group the target followed before a --rebind.
func (s *syncer) removeFrom(ctx context.Context, leave, rebound []*member, total int, sourceEmpty bool) error {
	ours := func(v string) bool { return v == s.via || (s.rebindFrom != "" && v == s.rebindFrom) }
	var gone, kept []*member
	for _, m := range leave {
		if len(m.via) > 0 && !slices.ContainsFunc(m.via, ours) {
			continue
		}
		if others := slices.DeleteFunc(slices.Clone(m.via), ours); len(others) > 0 {
			kept = append(kept, m)
		} else {
			gone = append(gone, m)
		}
	}
	b := &usersync.Batch{}
	for _, m := range rebound {
		b.Members = append(b.Members, usersync.MemberChange{Group: s.r.Group, Username: m.username, UserID: m.id, Remove: true, Via: s.rebindFrom})
	}
	sortByName := func(list []*member) {
		sort.Slice(list, func(i, j int) bool { return list[i].username < list[j].username })
	}
	sortByName(gone)
	sortByName(kept)
	n := len(gone)
	if n > 0 && !s.o.Force && !s.o.AllowRemovals && s.o.OnlyUser == "" && ((sourceEmpty && n == total) || (n > MassRemovalMin && float64(n) > MassRemovalShare*float64(total))) {
		held := &MassRemoval{Group: s.r.Group, SourceGroup: s.r.SourceGroup, Remove: n, Total: total}
		for _, m := range gone[:min(len(gone), 20)] {
			held.Sample = append(held.Sample, m.username)
		}
		held.err = usersync.Errorf(usersync.ECONFLICT, "syncing group %q would remove %d of its %d members (source group %q); removals refused as a likely mistake — run with --allow-removals (or --force) to apply them",
			s.r.Group, n, total, s.r.SourceGroup)
		return held
	}
	for _, m := range gone {
		s.act(Action{Kind: RemoveMember, User: m.username, Group: s.r.Group, Reason: "no longer in source group " + s.r.SourceGroup})
	}
	for _, m := range kept {
		s.act(Action{Kind: KeepMember, User: m.username, Group: s.r.Group, Reason: "left source group " + s.r.SourceGroup + "; another source group of " + s.r.Group + " still holds the user"})
	}
	for _, m := range append(gone, kept...) {
		for _, v := range []string{s.via, s.rebindFrom} {
			if v != "" && (slices.Contains(m.via, v) || (len(m.via) == 0 && v == s.via)) {
				b.Members = append(b.Members, usersync.MemberChange{Group: s.r.Group, Username: m.username, UserID: m.id, Remove: true, Via: v})
			}
		}
	}
	if len(b.Members) == 0 {
		return nil
	}
	return s.write(ctx, b)
}

// write applies a batch, with the groups planned so far, unless this is a
// dry run; then the target group counts as existing. The batch's actions
// count once it is written.
func (s *syncer) write(ctx context.Context, b *usersync.Batch) error {
	b.Groups, s.groups = s.groups, nil
	if s.o.DryRun || (len(b.Users) == 0 && len(b.Groups) == 0 && len(b.Members) == 0 && s.target != nil) {
		s.commitActions()
		return nil
	}
	res, err := s.dir.ApplyBatch(ctx, b)
	if err != nil {
		s.pending = s.pending[:0]
		return err
	}
	s.commitActions()
	for _, id := range res.CreatedIDs {
		s.seenIDs[id] = struct{}{}
	}
	for _, id := range res.FoundIDs { // made meanwhile by another writer: seen all the same
		s.seenIDs[id] = struct{}{}
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
		s.joins[usersync.GroupNameKey(s.r.Group)] = s.target.ID
	}
	for key, id := range s.joins {
		if id == 0 { // created by this batch
			if g, err := s.dir.FindGroupByName(ctx, key); err == nil {
				s.joins[key] = g.ID
			}
		}
	}
	return nil
}

// dropped returns attrs with an empty value (a removal) for each name in
// drop that cur has: attributes an option no longer fills.
func dropped(attrs, cur map[string]string, drop []string) map[string]string {
	out := make(map[string]string, len(attrs)+len(drop))
	for k, v := range attrs {
		out[k] = v
	}
	for _, a := range drop {
		if _, has := cur[a]; has {
			if _, filled := out[a]; !filled {
				out[a] = ""
			}
		}
	}
	return out
}

// profileDiff lists the fields an upsert with these field flags would change.
func profileDiff(cur, next *usersync.User, f usersync.UserFields) map[string]usersync.FieldChange {
	out := map[string]usersync.FieldChange{}
	cmp := func(flag usersync.UserFields, name, a, b string) {
		if f&flag != 0 && a != b {
			out[name] = usersync.FieldChange{From: a, To: b}
		}
	}
	cmp(usersync.FieldUsername, "username", cur.Username, next.Username)
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
