// Package entra is the outbound target that pushes marked directory groups
// and their members to Entra ID (Grouper's Azure provisioner, seed 003): a
// change-log consumer that follows the directory's change log from its
// cursor, folds the events per group, and writes each group's changes
// through the shared Graph client (msgraph). A reconcile compares Entra
// with the directory for every covered group and repairs drift both ways.
//
// A group is covered when it, or a folder above it, carries the
// provisioner's marker attribute. Its Entra id is kept on the group in the
// provisioner's remote id attribute. Commit order is Entra write → remote
// id → cursor, and a group is looked up by its mailNickname (the anchor)
// before it is created, so a crash anywhere replays without duplicates.
package entra

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/jexl"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/provision"
	"github.com/usersync/usersync/pull"
)

// ActionKind names one step of a provisioner run.
type ActionKind string

const (
	CreateGroup  ActionKind = "create-group"
	AdoptGroup   ActionKind = "adopt-group" // found in Entra by its mailNickname (an earlier run created it)
	UpdateGroup  ActionKind = "update-group"
	DeleteGroup  ActionKind = "delete-group"
	AddMember    ActionKind = "add-member"
	RemoveMember ActionKind = "remove-member"
	FailMember   ActionKind = "member-failed" // this member could not be written; the others were
	StopGroup    ActionKind = "stop-group"    // the marker was removed: no more sync, the Entra group stays
	// Found by reconcile: Entra groups that carry this provisioner's
	// uniqueName but that no directory group links to.
	KeepOrphan   ActionKind = "keep-orphan"   // its directory group is unmarked: it stays, as an unmarked group's does
	DeleteOrphan ActionKind = "delete-orphan" // its directory group is gone (planned; done with DeleteOrphans)
	AdoptOrphan  ActionKind = "adopt-orphan"  // its directory group is covered and has no Entra group: linked
)

// Action is one write (or, in a dry run, planned write) and why.
type Action struct {
	Kind     ActionKind `json:"action"`
	Group    string     `json:"group"`
	Member   string     `json:"member,omitempty"` // a user principal name
	RemoteID string     `json:"remoteId,omitempty"`
	Reason   string     `json:"reason"`
}

// Failure is a group that failed in a run.
type Failure struct {
	Group       string `json:"group"`
	Error       string `json:"error"`
	Failures    int    `json:"failures"`
	Quarantined bool   `json:"quarantined,omitempty"`
}

// Result is what a run did (or, in a dry run, would do).
type Result struct {
	Provisioner string             `json:"provisioner"`
	DryRun      bool               `json:"dryRun"`
	FromSeq     int64              `json:"fromSeq"`
	ToSeq       int64              `json:"toSeq"`
	Events      int                `json:"events"`
	Groups      int                `json:"groups"` // groups looked at
	Counts      map[ActionKind]int `json:"counts"`
	Actions     []Action           `json:"actions,omitempty"`
	Failures    []Failure          `json:"failures,omitempty"`
}

// Options shape a run.
type Options struct {
	DryRun bool // plan only: read Entra and the directory, write neither, keep the cursor
	Force  bool // reconcile: apply removals beyond the mass-removal guard
	// DeleteOrphans: a reconcile deletes the Entra groups it made whose
	// directory group is gone (else it lists them, kept).
	DeleteOrphans bool
	KeepActions   bool
	OnAction      func(Action)
	Now           func() time.Time
	// LeaseWait is how long a run waits for another run of the
	// provisioner to end (default provision.DefaultWait); a dry run writes
	// nothing and takes no lease.
	LeaseWait time.Duration
}

func leaseWait(d time.Duration) time.Duration {
	if d == 0 {
		return provision.DefaultWait
	}
	return max(d, 0)
}

// leased runs fn under the provisioner's lease unless o is a dry run.
func (g *Groups) leased(ctx context.Context, o Options, fn func(ctx context.Context) (*Result, error)) (res *Result, err error) {
	if o.DryRun {
		return fn(ctx)
	}
	err = provision.Hold(ctx, g.dir, g.p.Name, leaseWait(o.LeaseWait), func(ctx context.Context) error {
		res, err = fn(ctx)
		return err
	})
	if res == nil {
		res = &Result{Provisioner: g.p.Name, Counts: map[ActionKind]int{}}
	}
	return res, err
}

// Groups is a group provisioner over a directory and a Graph client.
type Groups struct {
	dir    usersync.Directory
	client *msgraph.Client
	p      *usersync.Provisioner
	expr   *Expressions
}

// groupVars and subjectVars are the variables expressions may use.
var (
	groupVars   = []string{"group", "consumerName", "tenantId", "domain", "idAttribute"}
	subjectVars = []string{"subject", "subjectIdValue", "consumerName", "tenantId", "domain", "idAttribute"}
)

// stemShape and groupShape are the naming model's properties, checked
// when an expression is compiled.
var stemShape, groupShape = func() (jexl.Shape, jexl.Shape) {
	stem := jexl.Shape{"name": nil, "extension": nil, "displayName": nil, "displayExtension": nil, "description": nil, "id": nil}
	stem["parentStem"] = stem
	group := jexl.Shape{"parentStem": stem}
	for k := range stem {
		if k != "parentStem" {
			group[k] = nil
		}
	}
	return stem, group
}()

var shapes = map[string]jexl.Shape{"group": groupShape, "subject": {}}

// Expressions are a provisioner's compiled expressions; nil for those not set.
type Expressions struct {
	Name, MailNickname, Description *jexl.Program // groupJexl, mailNicknameJexl, descriptionJexl
	Subject                         *jexl.Program // subjectJexl
}

// Compile checks a provisioner's expressions: a syntax error names the
// expression, the position and what was expected.
func Compile(c usersync.ProvisionerConfig) (*Expressions, error) {
	var err error
	compile := func(what, src string, vars []string) *jexl.Program {
		if err != nil || src == "" {
			return nil
		}
		var p *jexl.Program
		if p, err = jexl.CompileShaped(src, shapes, vars...); err != nil {
			err = usersync.Errorf(usersync.EINVALID, "%s: %v", what, err)
		}
		return p
	}
	x := &Expressions{
		Name:         compile("groupJexl", c.GroupJexl, groupVars),
		MailNickname: compile("mailNicknameJexl", c.MailNicknameJexl, groupVars),
		Description:  compile("descriptionJexl", c.DescriptionJexl, groupVars),
		Subject:      compile("subjectJexl", c.SubjectJexl, subjectVars),
	}
	if err != nil {
		return nil, err
	}
	return x, nil
}

// New returns the provisioner p over dir, writing through client.
func New(dir usersync.Directory, client *msgraph.Client, p *usersync.Provisioner) (*Groups, error) {
	x, err := Compile(p.Config)
	if err != nil {
		return nil, err
	}
	return &Groups{dir: dir, client: client, p: p, expr: x}, nil
}

// run is one run's state.
type run struct {
	*Groups
	ctx     context.Context
	o       Options
	r       *Result
	folders map[string]*usersync.Folder // by path key; nil entries: no such folder
	names   map[string]string           // Entra object id → principal name, for actions
	upnIDs  map[string]string           // lower-case principal name → Entra object id, "" for none: looked up once a run
	// relookup: principal names are looked up afresh, not taken from the
	// member links (a reconcile).
	relookup bool
	// reconciledAt is, per group reconciled in this run, the change
	// counter before it read the directory: its member events up to there
	// (in later batches) are in Entra already.
	reconciledAt map[int64]int64
	items        map[int64]usersync.ProvisionerItem // failing groups by id, read once a run (nil until then)
	runID        string                             // names the run in the provisioning log
	pendingLog   []usersync.LogEntry                // the current group's actions, logged when it settles
	memberFails  map[string][]string                // by group name: members that could not be written, and why
	log          []usersync.LogEntry                // settled entries not written yet
}

func (g *Groups) newRun(ctx context.Context, o Options) *run {
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx = usersync.WithActor(ctx, usersync.ProvisionerCursor(g.p.Name))
	return &run{Groups: g, ctx: ctx, o: o, folders: map[string]*usersync.Folder{}, names: map[string]string{}, upnIDs: map[string]string{}, reconciledAt: map[int64]int64{},
		r: &Result{Provisioner: g.p.Name, DryRun: o.DryRun, Counts: map[ActionKind]int{}}, runID: runName(o.Now())}
}

func (r *run) act(a Action) {
	if !r.o.DryRun {
		e := usersync.LogEntry{Provisioner: r.p.Name, Run: r.runID, Group: a.Group, Username: a.Member, Action: string(a.Kind), Reason: a.Reason, Status: StatusDone, At: r.o.Now()}
		switch a.Kind {
		case AddMember:
			e.Modified = map[string]usersync.FieldChange{"members": {To: a.Member}}
		case RemoveMember:
			e.Modified = map[string]usersync.FieldChange{"members": {From: a.Member}}
		case FailMember:
			e.Status, e.Error = StatusFailed, a.Reason
			if r.memberFails == nil {
				r.memberFails = map[string][]string{}
			}
			r.memberFails[a.Group] = append(r.memberFails[a.Group], a.Member+": "+a.Reason)
		}
		r.pendingLog = append(r.pendingLog, e)
	}
	r.r.Counts[a.Kind]++
	if r.o.KeepActions {
		r.r.Actions = append(r.r.Actions, a)
	}
	if r.o.OnAction != nil {
		r.o.OnAction(a)
	}
}

// batchSize bounds the change events read at a time.
const batchSize = 5000

// work is what a run has to do for one group, folded from its events.
type work struct {
	id             int64
	name           string
	deleted        bool
	remoteID       string // when deleted: the Entra id it had
	full           bool   // read both sides and repair: created, (re)marked, a member gone from the directory
	props          bool   // names or description changed
	unmarked       bool
	renamed        bool
	markedAtDelete bool             // the deleted group carried the marker itself
	adds, remove   map[int64]bool   // members by user id (the latest event wins)
	usernames      map[int64]string // the members' usernames as the events name them
}

// Run processes the change events after the provisioner's cursor once,
// first retrying the groups that failed before and are due. The cursor
// moves past each batch once its writes are done; a group that fails is
// retried later on its own (retryOnError) rather than holding the cursor.
func (g *Groups) Run(ctx context.Context, o Options) (*Result, error) {
	return g.leased(ctx, o, func(ctx context.Context) (*Result, error) { return g.run(ctx, o) })
}

func (g *Groups) run(ctx context.Context, o Options) (res *Result, err error) {
	r := g.newRun(ctx, o)
	defer r.flushOnReturn(&err)
	if err := r.retryDue(); err != nil {
		return r.r, err
	}
	cursor, err := g.dir.Cursor(ctx, usersync.ProvisionerCursor(g.p.Name))
	if err != nil {
		return r.r, err
	}
	r.r.FromSeq, r.r.ToSeq = cursor, cursor
	for {
		events, err := g.dir.ChangesAfter(ctx, cursor, batchSize)
		if err != nil || len(events) == 0 {
			return r.r, err
		}
		r.r.Events += len(events)
		ws, err := r.fold(events)
		if err != nil {
			return r.r, err
		}
		if err := r.apply(ws); err != nil {
			return r.r, err
		}
		cursor = events[len(events)-1].Seq
		r.r.ToSeq = cursor
		if !o.DryRun {
			if err := g.dir.SetCursor(ctx, usersync.ProvisionerCursor(g.p.Name), cursor); err != nil {
				return r.r, err
			}
		}
	}
}

// fold reads a batch of events into work per group. A marker set or
// removed on a folder makes every group below it a full reconcile; a
// folder's display name or description only updates their properties.
func (r *run) fold(events []*usersync.Change) (map[int64]*work, error) {
	out := map[int64]*work{}
	get := func(ref usersync.ObjectRef) *work {
		w := out[ref.ID]
		if w == nil {
			w = &work{id: ref.ID, name: ref.Name, adds: map[int64]bool{}, remove: map[int64]bool{}, usernames: map[int64]string{}}
			out[ref.ID] = w
		}
		w.name = ref.Name
		return w
	}
	marker, remoteAttr := "attributes."+r.p.Config.SyncAttribute, "attributes."+r.p.Config.RemoteIDAttribute
	type touched struct {
		path     string
		unmarked bool
		props    bool // only names and descriptions below may change
	}
	var folders []touched
	for _, e := range events {
		switch {
		case e.Kind == usersync.GroupCreated:
			get(e.Object).full = true
		case e.Kind == usersync.GroupDeleted:
			w := get(e.Object)
			w.deleted, w.remoteID = true, e.Fields[remoteAttr].From
			_, w.markedAtDelete = e.Fields[marker]
		case e.Kind == usersync.GroupUpdated:
			for f, ch := range e.Fields {
				switch {
				case f == marker && ch.To != "":
					get(e.Object).full = true // marked (again): reconcile
				case f == marker:
					get(e.Object).unmarked = true
				case f == "name":
					// A rename may move the group into a marked folder after
					// changes made while it was not followed: read both sides.
					w := get(e.Object)
					w.props, w.renamed, w.full = true, true, true
				case f == "description" || f == "attributes."+usersync.AttrDisplayExtension:
					get(e.Object).props = true // what the naming model shows
				}
			}
		case (e.Kind == usersync.MemberAdded || e.Kind == usersync.MemberRemoved) && e.Member != nil && e.Member.Type == usersync.ObjectUser:
			if at, ok := r.reconciledAt[e.Object.ID]; ok && e.Seq <= at {
				continue // a reconcile earlier in this run wrote it
			}
			w := get(e.Object)
			w.usernames[e.Member.ID] = e.Member.Name
			if e.Kind == usersync.MemberAdded {
				w.adds[e.Member.ID], w.remove[e.Member.ID] = true, false
			} else {
				w.remove[e.Member.ID], w.adds[e.Member.ID] = true, false
			}
		case e.Kind == usersync.FolderUpdated || e.Kind == usersync.FolderCreated:
			if ch, ok := e.Fields[marker]; ok {
				folders = append(folders, touched{path: e.Object.Name, unmarked: ch.To == "" && ch.From != ""})
			}
			_, display := e.Fields["attributes."+usersync.AttrDisplayExtension]
			_, desc := e.Fields["attributes."+usersync.AttrDescription]
			if display || desc {
				folders = append(folders, touched{path: e.Object.Name, props: true})
			}
		}
	}
	for _, f := range folders {
		delete(r.folders, usersync.GroupNameKey(f.path)) // read it afresh
		groups, err := r.groupsBelow(f.path)
		if err != nil {
			return nil, fmt.Errorf("listing the groups below folder %q: %w", f.path, err)
		}
		for _, gr := range groups {
			w := get(usersync.ObjectRef{Type: usersync.ObjectGroup, ID: gr.ID, Name: gr.Name})
			if f.props {
				w.props = true
				continue
			}
			w.full = true
			w.unmarked = w.unmarked || f.unmarked
		}
	}
	return out, nil
}

// groupsBelow lists the groups in a folder and every folder under it.
func (r *run) groupsBelow(path string) ([]*usersync.Group, error) {
	groups, _, err := r.dir.FindGroups(r.ctx, usersync.GroupFilter{
		Where: usersync.Any{usersync.Match{Field: "name", Op: usersync.OpSw, Value: path + usersync.FolderSeparator}}})
	// A flat name that starts like the path is in no folder.
	return slices.DeleteFunc(groups, func(g *usersync.Group) bool { return g.Flat }), err
}

// apply does each group's work, in id order; a group that fails is
// recorded and the others go on.
func (r *run) apply(ws map[int64]*work) error {
	ids := make([]int64, 0, len(ws))
	for id := range ws {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		w := ws[id]
		r.r.Groups++
		err := r.applyOne(w)
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.settle(id, w.name, err); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) applyOne(w *work) error {
	if w.deleted {
		// Only a group still followed is deleted in Entra: one whose
		// marker was removed earlier keeps its Entra group.
		if !w.markedAtDelete {
			covered, err := r.coveredName(w.name)
			if err != nil || !covered {
				return err
			}
		}
		reason := "deleted in the directory"
		if w.remoteID == "" {
			// Never linked: never provisioned, or a run made its Entra
			// group and was killed before it kept the id. The key finds it.
			found, err := r.client.GroupByUniqueName(r.ctx, UniqueName(r.p, &usersync.Group{ID: w.id}))
			if isNotFound(err) {
				return nil
			} else if err != nil {
				return err
			}
			w.remoteID, reason = found.ID, "deleted in the directory (its Entra group, never linked, found by its uniqueName)"
		}
		r.act(Action{Kind: DeleteGroup, Group: w.name, RemoteID: w.remoteID, Reason: reason})
		if r.o.DryRun {
			return nil
		}
		return r.client.DeleteGroup(r.ctx, w.remoteID)
	}
	grp, err := r.dir.FindGroupByID(r.ctx, w.id)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		return nil // deleted later in the log: its own event says so
	} else if err != nil {
		return err
	}
	covered, err := r.covered(grp)
	if err != nil {
		return err
	}
	if !covered {
		switch remote := grp.Attributes[r.p.Config.RemoteIDAttribute]; {
		case remote == "":
		case w.unmarked:
			r.act(Action{Kind: StopGroup, Group: grp.Name, RemoteID: remote, Reason: "the marker was removed: no more sync; the Entra group stays"})
		case w.renamed:
			r.act(Action{Kind: StopGroup, Group: grp.Name, RemoteID: remote, Reason: "renamed out of the marked folder: no more sync; the Entra group stays"})
		}
		return nil
	}
	remote := grp.Attributes[r.p.Config.RemoteIDAttribute]
	if remote == "" || w.full {
		return r.reconcile(grp)
	}
	// Members removed from a user that is gone from the directory cannot
	// be named: the group is reconciled instead.
	users, err := r.membersOf(w)
	if err != nil {
		return err
	}
	var add, remove []*usersync.User
	for id, on := range w.adds {
		if u := users[id]; on && u != nil {
			add = append(add, u)
		}
	}
	for id, on := range w.remove {
		if !on {
			continue
		}
		u := users[id]
		if u == nil {
			return r.reconcile(grp)
		}
		remove = append(remove, u)
	}
	if w.props {
		spec, err := r.spec(grp)
		if err != nil {
			return err
		}
		if err := r.updateIfChanged(grp, remote, spec); err != nil {
			return err
		}
	}
	return r.writeMembers(grp, remote, add, remove)
}

// membersOf finds the users a group's member events name, by id: in one
// query by the usernames the events carry, and one by one for those
// renamed since. Users gone from the directory are left out.
func (r *run) membersOf(w *work) (map[int64]*usersync.User, error) {
	names := make([]string, 0, len(w.usernames))
	for id, name := range w.usernames {
		if w.adds[id] || w.remove[id] {
			names = append(names, name)
		}
	}
	byName, err := r.dir.UsersByUsername(r.ctx, names)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*usersync.User, len(names))
	for id, name := range w.usernames {
		if !w.adds[id] && !w.remove[id] {
			continue
		}
		if u := byName[usersync.UsernameKey(name)]; u != nil && u.ID == id {
			out[id] = u
			continue
		}
		u, err := r.dir.FindUserByID(r.ctx, id)
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		out[id] = u
	}
	return out, nil
}

// covered reports whether a group, or a folder above it, carries the marker.
func (r *run) covered(g *usersync.Group) (bool, error) {
	why, err := usersync.CoveredBy(r.p.Config.SyncAttribute, g, r.folder)
	return why != "", err
}

// coveredName reports whether a folder above the group named name carries
// the marker.
func (r *run) coveredName(name string) (bool, error) {
	return r.covered(&usersync.Group{Name: name})
}

func (r *run) folder(path string) (*usersync.Folder, error) {
	key := usersync.GroupNameKey(path)
	if f, ok := r.folders[key]; ok {
		return f, nil
	}
	f, err := r.dir.FindFolder(r.ctx, path)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		f, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.folders[key] = f
	return f, nil
}

// reconcile brings one group's Entra group in line with the directory:
// created (or adopted) when missing, its names and every member.
func (r *run) reconcile(grp *usersync.Group) error {
	seen, err := r.dir.LastChangeSeq(r.ctx)
	if err != nil {
		return err
	}
	if err := r.reconcileOnce(grp); err != nil {
		return err
	}
	r.reconciledAt[grp.ID] = seen
	return nil
}

func (r *run) reconcileOnce(grp *usersync.Group) error {
	spec, err := r.spec(grp)
	if err != nil {
		return err
	}
	want, err := r.memberIDs(grp)
	if err != nil {
		return err
	}
	remote := grp.Attributes[r.p.Config.RemoteIDAttribute]
	var have []string
	if remote != "" {
		current, err := r.client.GroupByID(r.ctx, remote)
		switch {
		case err == nil:
			if err := r.updateIfDiffers(grp, remote, spec, current); err != nil {
				return err
			}
			if have, err = r.client.MemberIDs(r.ctx, remote); err != nil {
				return err
			}
		case isNotFound(err):
			remote = "" // deleted in Entra by hand: made again
		default:
			return err
		}
	}
	if remote == "" {
		if remote, have, err = r.create(grp, spec, want); err != nil {
			return err
		}
	}
	wantSet := map[string]bool{}
	for _, id := range want {
		wantSet[id] = true
	}
	haveSet := map[string]bool{}
	for _, id := range have {
		haveSet[id] = true
	}
	var adds, removes []string
	for _, id := range want {
		if !haveSet[id] {
			adds = append(adds, id)
		}
	}
	for _, id := range have {
		if !wantSet[id] {
			removes = append(removes, id)
		}
	}
	if n := len(removes); n > pull.MassRemovalMin && float64(n) > pull.MassRemovalShare*float64(len(have)) && !r.o.Force {
		return usersync.Errorf(usersync.ECONFLICT, "reconciling group %q would remove %d of the %d members of its Entra group %s; removals refused as a likely mistake — reconcile with --force to apply them",
			grp.Name, n, len(have), remote)
	}
	return r.writeIDs(grp, remote, adds, removes, "in the directory group", "not in the directory group")
}

// create makes the Entra group through Graph's upsert on the group's
// uniqueName (UniqueName), with up to 20 members bound at once, and stores
// its id on the directory group right away. The key is the tenant's own and
// never lags, so a run replayed after a kill, a lagging replica or a
// concurrent run finds the group it made rather than making a second one:
// that is an adopt.
func (r *run) create(grp *usersync.Group, spec msgraph.GroupSpec, want []string) (string, []string, error) {
	key := UniqueName(r.p, grp)
	bound := want[:min(len(want), msgraph.MaxBind)]
	if r.o.DryRun {
		found, err := r.client.GroupByUniqueName(r.ctx, key)
		switch {
		case err == nil:
			r.act(Action{Kind: AdoptGroup, Group: grp.Name, RemoteID: found.ID, Reason: "an Entra group with its uniqueName " + key + " exists (made by an earlier run)"})
			have, err := r.client.MemberIDs(r.ctx, found.ID)
			return found.ID, have, err
		case !isNotFound(err):
			return "", nil, err
		}
		r.act(Action{Kind: CreateGroup, Group: grp.Name, Reason: fmt.Sprintf("covered by %s; %q (uniqueName %s), %d members bound at creation", r.p.Config.SyncAttribute, spec.DisplayName, key, len(bound))})
		for _, id := range bound {
			r.act(Action{Kind: AddMember, Group: grp.Name, Member: r.nameOf(id), Reason: "in the directory group; bound at creation"})
		}
		return "(new)", bound, nil
	}
	g, created, err := r.client.UpsertGroup(r.ctx, key, spec, bound)
	if err != nil {
		return "", nil, err
	}
	if err := r.storeRemoteID(grp, g.ID); err != nil {
		return "", nil, err
	}
	if !created {
		r.act(Action{Kind: AdoptGroup, Group: grp.Name, RemoteID: g.ID, Reason: "an Entra group with its uniqueName " + key + " existed (made by an earlier run that did not keep its id); its names were written"})
		have, err := r.client.MemberIDs(r.ctx, g.ID)
		return g.ID, have, err
	}
	r.act(Action{Kind: CreateGroup, Group: grp.Name, RemoteID: g.ID, Reason: fmt.Sprintf("covered by %s; %q (uniqueName %s), %d members bound at creation", r.p.Config.SyncAttribute, spec.DisplayName, key, len(bound))})
	for _, id := range bound {
		r.act(Action{Kind: AddMember, Group: grp.Name, Member: r.nameOf(id), RemoteID: g.ID, Reason: "in the directory group; bound at creation"})
	}
	return g.ID, bound, nil
}

// UniquePrefix starts the uniqueName of every Entra group provisioner p
// makes: its name and a mark of this provisioner (its name and creation
// time), so that two directories, or a provisioner deleted and made again
// under the same name, never take each other's groups for their own.
func UniquePrefix(p *usersync.Provisioner) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%d", p.Name, p.CreatedAt.UnixMicro())
	name := strings.Map(func(c rune) rune {
		if c < 128 && (c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return c
		}
		return '_'
	}, p.Name)
	return fmt.Sprintf("usersync.%s.%08x.", name, h.Sum32())
}

// UniqueName is the uniqueName of the Entra group provisioner p makes for
// directory group g: the prefix and the group's id, which is never given to
// another group.
func UniqueName(p *usersync.Provisioner, g *usersync.Group) string {
	return UniquePrefix(p) + strconv.FormatInt(g.ID, 10)
}

func (r *run) storeRemoteID(grp *usersync.Group, id string) error {
	if r.o.DryRun {
		return nil
	}
	_, err := r.dir.UpdateGroup(r.ctx, grp.ID, usersync.GroupUpdate{Attributes: map[string]*string{r.p.Config.RemoteIDAttribute: &id}}, 0)
	return err
}

// updateIfChanged patches the Entra group to spec (after a rename or a
// description change in the directory).
func (r *run) updateIfChanged(grp *usersync.Group, remote string, spec msgraph.GroupSpec) error {
	current, err := r.client.GroupByID(r.ctx, remote)
	if err != nil {
		return err
	}
	return r.updateIfDiffers(grp, remote, spec, current)
}

func (r *run) updateIfDiffers(grp *usersync.Group, remote string, spec msgraph.GroupSpec, current msgraph.Group) error {
	if current.DisplayName == spec.DisplayName && current.Description == spec.Description &&
		(spec.MailNickname == "" || current.MailNickname == "" || current.MailNickname == spec.MailNickname) {
		return nil
	}
	r.act(Action{Kind: UpdateGroup, Group: grp.Name, RemoteID: remote, Reason: fmt.Sprintf("names or description differ (%q → %q)", current.DisplayName, spec.DisplayName)})
	if r.o.DryRun {
		return nil
	}
	return r.client.UpdateGroup(r.ctx, remote, spec)
}

// writeMembers adds and removes directory users in the Entra group.
func (r *run) writeMembers(grp *usersync.Group, remote string, add, remove []*usersync.User) error {
	addIDs, err := r.resolve(grp, add)
	if err != nil {
		return err
	}
	removeIDs, err := r.resolveLeavers(grp, remove)
	if err != nil {
		return err
	}
	return r.writeIDs(grp, remote, addIDs, removeIDs, "joined the directory group", "left the directory group")
}

// resolveLeavers turns users who left a group into the Entra objects to
// remove: the object a member link says was written for the user, even
// when the user's principal name has changed since (the name now finds
// another object, or none); else the object its name finds.
func (r *run) resolveLeavers(grp *usersync.Group, users []*usersync.User) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	links, err := r.dir.MemberLinks(r.ctx, r.p.Name, ids)
	if err != nil {
		return nil, err
	}
	var out []string
	var rest []*usersync.User
	for _, u := range users {
		if l, ok := links[u.ID]; ok {
			r.names[l.RemoteID] = l.Principal
			out = append(out, l.RemoteID)
		} else {
			rest = append(rest, u)
		}
	}
	more, err := r.resolve(grp, rest)
	return append(out, more...), err
}

func (r *run) writeIDs(grp *usersync.Group, remote string, adds, removes []string, whyAdd, whyRemove string) error {
	for _, id := range adds {
		r.act(Action{Kind: AddMember, Group: grp.Name, Member: r.nameOf(id), RemoteID: remote, Reason: whyAdd})
	}
	for _, id := range removes {
		r.act(Action{Kind: RemoveMember, Group: grp.Name, Member: r.nameOf(id), RemoteID: remote, Reason: whyRemove})
	}
	if r.o.DryRun {
		return nil
	}
	failed, err := r.client.AddMembers(r.ctx, remote, adds)
	if err != nil {
		return err
	}
	more, err := r.client.RemoveMembers(r.ctx, remote, removes)
	if err != nil {
		return err
	}
	for id, e := range more {
		failed[id] = e
	}
	if len(failed) > 0 { // the Entra user may be gone: look its name up again next time
		gone := make([]string, 0, len(failed))
		for id := range failed {
			gone = append(gone, id)
		}
		if err := r.dir.ForgetMemberLinks(r.ctx, r.p.Name, gone); err != nil {
			return err
		}
	}
	for id, e := range failed {
		r.act(Action{Kind: FailMember, Group: grp.Name, Member: r.nameOf(id), RemoteID: remote, Reason: usersync.ErrorMessage(e)})
	}
	return nil
}

// memberIDs resolves a directory group's user members to Entra object ids.
func (r *run) memberIDs(grp *usersync.Group) ([]string, error) {
	var users []*usersync.User
	for offset := 0; ; offset += 1000 {
		page, total, err := r.dir.Members(r.ctx, grp.ID, offset, 1000)
		if err != nil {
			return nil, err
		}
		users = append(users, page...)
		if len(users) >= total || len(page) == 0 {
			break
		}
	}
	return r.resolve(grp, users)
}

// nameOf is the principal name behind an Entra object id, when known.
func (r *run) nameOf(id string) string {
	if n, ok := r.names[id]; ok {
		return n
	}
	return id
}

// resolve turns users into Entra object ids through their principal names
// (upnAttribute, else subjectJexl, else idAttribute@domain). A user whose
// name cannot be made, or is no user in the tenant, is a failed member:
// reported, and the others go on.
func (r *run) resolve(grp *usersync.Group, users []*usersync.User) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	upns := make([]string, 0, len(users))
	byUPN := map[string]*usersync.User{}
	for _, u := range users {
		upn, err := r.principal(u)
		if err != nil {
			r.act(Action{Kind: FailMember, Group: grp.Name, Member: u.Username, Reason: usersync.ErrorMessage(err)})
			continue
		}
		upns = append(upns, upn)
		byUPN[strings.ToLower(upn)] = u
	}
	if err := r.linked(byUPN); err != nil {
		return nil, err
	}
	var unknown []string
	for _, upn := range upns {
		if _, ok := r.upnIDs[strings.ToLower(upn)]; !ok {
			unknown = append(unknown, upn)
		}
	}
	if len(unknown) > 0 {
		found, err := r.client.UserIDs(r.ctx, unknown)
		if err != nil {
			return nil, err
		}
		var links []usersync.MemberLink
		for _, upn := range unknown {
			key := strings.ToLower(upn)
			r.upnIDs[key] = found[key] // "": not in the tenant
			if id := found[key]; id != "" {
				links = append(links, usersync.MemberLink{UserID: byUPN[key].ID, Principal: upn, RemoteID: id})
			}
		}
		if !r.o.DryRun {
			if err := r.dir.SaveMemberLinks(r.ctx, r.p.Name, links); err != nil {
				return nil, err
			}
		}
	}
	ids := r.upnIDs
	out := make([]string, 0, len(upns))
	for _, upn := range upns {
		id := ids[strings.ToLower(upn)]
		if id == "" {
			r.act(Action{Kind: FailMember, Group: grp.Name, Member: upn, Reason: "not a user in tenant " + r.p.Config.TenantID + " (users are created in Entra by a user provisioner, not this one)"})
			continue
		}
		r.names[id] = upn
		out = append(out, id)
	}
	return out, nil
}

// linked takes from the member links the Entra ids of users whose
// principal name is the one they were found by, so that a membership
// change costs no lookup for a user resolved before (it cost 0.77 lookups
// a change). A reconcile looks every name up afresh.
func (r *run) linked(byUPN map[string]*usersync.User) error {
	if r.relookup {
		return nil
	}
	var ids []int64
	for key, u := range byUPN {
		if _, ok := r.upnIDs[key]; !ok {
			ids = append(ids, u.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	links, err := r.dir.MemberLinks(r.ctx, r.p.Name, ids)
	if err != nil {
		return err
	}
	for key, u := range byUPN {
		if l, ok := links[u.ID]; ok && strings.EqualFold(l.Principal, key) {
			r.upnIDs[key] = l.RemoteID
		}
	}
	return nil
}

// Subject is a directory user as subject expressions see it: its custom
// attributes by name, and its fields username, email, firstName,
// lastName, sourceId; uid is the attribute uid, else the username up to
// its "@".
type Subject struct{ U *usersync.User }

// Attribute returns one of the subject's attributes.
func (s Subject) Attribute(name string) string {
	if v, ok := s.U.Attributes[name]; ok {
		return v
	}
	switch name {
	case "uid":
		local, _, _ := strings.Cut(s.U.Username, "@")
		return local
	case "username":
		return s.U.Username
	case "email":
		return s.U.Email
	case "firstName":
		return s.U.FirstName
	case "lastName":
		return s.U.LastName
	case "sourceId":
		return s.U.SourceID
	}
	return ""
}

// principal makes a user's Entra principal name: upnAttribute as it is,
// else subjectJexl, else idAttribute + "@" + (domain or tenant id).
func (r *run) principal(u *usersync.User) (string, error) {
	return Principal(r.p, r.expr.Subject, u)
}

// Principal makes a user's principal name for provisioner p (subject: its
// compiled subjectJexl, or nil).
func Principal(p *usersync.Provisioner, subject *jexl.Program, u *usersync.User) (string, error) {
	c := p.Config
	s := Subject{u}
	if c.UPNAttribute != "" {
		if v := s.Attribute(c.UPNAttribute); v != "" {
			return v, nil
		}
	}
	id := s.Attribute(c.IDAttribute)
	if subject != nil {
		v, err := subject.Eval(map[string]any{"subject": s, "subjectIdValue": id, "consumerName": p.Name, "tenantId": c.TenantID,
			"domain": c.Domain, "idAttribute": c.IDAttribute})
		if err != nil {
			return "", usersync.Errorf(usersync.EINVALID, "subjectJexl for %s: %v", u.Username, err)
		}
		if v != "" {
			return v, nil
		}
	}
	if id == "" {
		return "", usersync.Errorf(usersync.EINVALID, "no principal name for %s: upnAttribute, subjectJexl and idAttribute %q are all blank", u.Username, c.IDAttribute)
	}
	domain := c.Domain
	if domain == "" {
		domain = c.TenantID
	}
	return id + "@" + domain, nil
}

// GroupVars is what group expressions see of a group: the naming model
// (name, extension, displayName, displayExtension, description, id,
// parentStem with the same fields, up to the root).
func (r *run) groupVars(g *usersync.Group) (map[string]any, error) {
	return GroupVars(r.ctx, r.dir, g, r.folder)
}

// GroupVars builds the naming model of a group; folder reads a folder
// (nil when there is none).
func GroupVars(ctx context.Context, dir usersync.Directory, g *usersync.Group, folder func(string) (*usersync.Folder, error)) (map[string]any, error) {
	if folder == nil {
		folder = func(path string) (*usersync.Folder, error) {
			f, err := dir.FindFolder(ctx, path)
			if usersync.ErrorCode(err) == usersync.ENOTFOUND {
				return nil, nil
			}
			return f, err
		}
	}
	stem := func(path string) (map[string]any, error) {
		var parent map[string]any
		var displays []string
		for _, p := range usersync.FolderPrefixes(path + usersync.FolderSeparator) {
			f, err := folder(p)
			if err != nil {
				return nil, err
			}
			node := map[string]any{"name": p, "extension": last(p), "displayExtension": last(p), "description": ""}
			if f != nil {
				if v := f.Attributes[usersync.AttrDisplayExtension]; v != "" {
					node["displayExtension"] = v
				}
				node["description"] = f.Attributes[usersync.AttrDescription]
				node["id"] = strconv.FormatInt(f.ID, 10)
			}
			displays = append(displays, node["displayExtension"].(string))
			node["displayName"] = strings.Join(displays, usersync.FolderSeparator)
			if parent != nil {
				node["parentStem"] = parent
			}
			parent = node
		}
		return parent, nil
	}
	ext := g.Name
	if !g.Flat {
		ext = last(g.Name)
	}
	out := map[string]any{"id": strconv.FormatInt(g.ID, 10), "name": g.Name, "extension": ext, "displayExtension": ext,
		"description": g.Description}
	if v := g.Attributes[usersync.AttrDisplayExtension]; v != "" {
		out["displayExtension"] = v
	}
	display := out["displayExtension"].(string)
	if dir := g.Folder(); dir != "" {
		parent, err := stem(dir)
		if err != nil {
			return nil, err
		}
		out["parentStem"] = parent
		display = parent["displayName"].(string) + usersync.FolderSeparator + display
	}
	out["displayName"] = display
	return out, nil
}

func last(path string) string { return path[strings.LastIndex(path, usersync.FolderSeparator)+1:] }

// spec computes what the Entra group should be: names and description
// from the expressions, else the defaults (the group's full name, a
// mailNickname made of it, its description), checked against Graph's limits
// before any call.
func (r *run) spec(g *usersync.Group) (msgraph.GroupSpec, error) {
	return Spec(r.ctx, r.dir, r.p, r.expr, g, r.folder)
}

// Spec computes a group's Entra group for provisioner p.
func Spec(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner, x *Expressions, g *usersync.Group, folder func(string) (*usersync.Folder, error)) (msgraph.GroupSpec, error) {
	group, err := GroupVars(ctx, dir, g, folder)
	if err != nil {
		return msgraph.GroupSpec{}, err
	}
	c := p.Config
	vars := map[string]any{"group": group, "consumerName": p.Name, "tenantId": c.TenantID, "domain": c.Domain, "idAttribute": c.IDAttribute}
	eval := func(what string, prog *jexl.Program, def string) (string, error) {
		if prog == nil {
			return def, nil
		}
		v, err := prog.Eval(vars)
		if err != nil {
			return "", usersync.Errorf(usersync.EINVALID, "%s for group %q: %v", what, g.Name, err)
		}
		if v == "" {
			return def, nil
		}
		return v, nil
	}
	spec := msgraph.GroupSpec{Unified: c.GroupType == "Unified", Visibility: c.Visibility}
	if spec.DisplayName, err = eval("groupJexl", x.Name, g.Name); err != nil {
		return spec, err
	}
	if spec.MailNickname, err = eval("mailNicknameJexl", x.MailNickname, DefaultMailNickname(g)); err != nil {
		return spec, err
	}
	if spec.Description, err = eval("descriptionJexl", x.Description, g.Description); err != nil {
		return spec, err
	}
	return spec, CheckSpec(g.Name, spec)
}

// DefaultMailNickname is a group's name with what Graph refuses in a
// mailNickname replaced by "-", cut to fit with the group's id kept, so it
// stays the same run after run (it is the anchor of the Entra group).
func DefaultMailNickname(g *usersync.Group) string {
	var b strings.Builder
	for _, c := range g.Name {
		if c > 127 || c <= ' ' || strings.ContainsRune(`@()\[]";:<>,.`, c) {
			c = '-'
		}
		b.WriteRune(c)
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 64 {
		id := "-" + strconv.FormatInt(g.ID, 10)
		s = s[:64-len(id)] + id
	}
	if s == "" {
		s = "group-" + strconv.FormatInt(g.ID, 10)
	}
	return s
}

// CheckSpec applies Graph's limits (wire facts §5) before any call: a
// violation is an error for that group only.
func CheckSpec(group string, s msgraph.GroupSpec) error {
	switch {
	case strings.TrimSpace(s.DisplayName) == "":
		return usersync.Errorf(usersync.EINVALID, "group %q: its Entra display name is empty", group)
	case utf8.RuneCountInString(s.DisplayName) > 256:
		return usersync.Errorf(usersync.EINVALID, "group %q: its Entra display name %q is %d characters, more than Entra's 256", group, s.DisplayName[:40]+"…", utf8.RuneCountInString(s.DisplayName))
	case utf8.RuneCountInString(s.Description) > 1024:
		return usersync.Errorf(usersync.EINVALID, "group %q: its Entra description is %d characters, more than Entra's 1,024", group, utf8.RuneCountInString(s.Description))
	}
	if msg := checkNickname(s.MailNickname); msg != "" {
		return usersync.Errorf(usersync.EINVALID, "group %q: its mailNickname %q: %s", group, s.MailNickname, msg)
	}
	return nil
}

func checkNickname(s string) string {
	switch {
	case s == "":
		return "it is empty"
	case len(s) > 64:
		return fmt.Sprintf("it is %d characters, more than Entra's 64", len(s))
	}
	for _, c := range s {
		if c > 127 || c <= ' ' || strings.ContainsRune(`@()\[]";:<>,`, c) {
			return fmt.Sprintf("Entra does not allow the character %q in it", c)
		}
	}
	return ""
}

// fatal reports an error no other group can escape: Graph cannot be used
// (not reached, wrong credentials, a permission the app lacks) or the
// directory failed. The run stops there, its cursor where the last
// finished batch left it, and no group is blamed.
func fatal(err error) bool {
	var u *msgraph.Unreachable
	switch {
	case err == nil:
		return false
	case errors.As(err, &u), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	switch usersync.ErrorCode(err) {
	case usersync.EUNAUTHORIZED, usersync.EFORBIDDEN, usersync.EINTERNAL:
		return true
	}
	return false
}

// settle records how a group fared: a success forgets its failures; a
// failure is retried with backoff (retryOnError) and quarantined after
// MaxFailures; without retryOnError it is only recorded.
func (r *run) settle(groupID int64, name string, err error) error {
	// The group's actions go to the provisioning log as done, or, when
	// the group failed, as not done with the reason.
	for _, e := range r.pendingLog {
		if err != nil && e.Status == StatusDone {
			e.Status, e.Error = StatusFailed, "the group failed: "+usersync.ErrorMessage(err)
		}
		r.log = append(r.log, e)
	}
	r.pendingLog = r.pendingLog[:0]
	if len(r.log) >= 500 {
		if lerr := r.flushLog(); lerr != nil {
			return lerr
		}
	}
	if fatal(err) {
		return err
	}
	items, lerr := r.itemsByGroup()
	if lerr != nil {
		return lerr
	}
	it, had := items[groupID]
	fails := r.memberFails[name]
	delete(r.memberFails, name)
	if err == nil && len(fails) > 0 {
		// The group was written but some members were not (not in the
		// tenant yet, most often): it is retried with backoff, and shown,
		// rather than left until the group changes again.
		if !had {
			it = usersync.ProvisionerItem{Provisioner: r.p.Name, GroupID: groupID}
		}
		it.GroupName, it.Failures, it.Quarantined = name, it.Failures+1, false
		it.LastError = fmt.Sprintf("%d members not written, retried: %s", len(fails), fails[0])
		it.NextAttempt = r.o.Now().Add(time.Duration(1<<min(it.Failures-1, 10)) * 5 * time.Second)
		if !r.p.Config.RetryOnError {
			it.NextAttempt = time.Time{}.Add(1<<62 - 1)
		}
		if r.o.DryRun {
			return nil
		}
		items[groupID] = it
		return r.dir.SaveProvisionerItem(r.ctx, it)
	}
	if err == nil {
		// Only a reconcile of the group (both sides read) repairs what a
		// failure left undone; a later change written alone does not, so
		// the item — and a quarantine — stays until one.
		if _, reconciled := r.reconciledAt[groupID]; had && reconciled && !r.o.DryRun {
			delete(items, groupID)
			return r.dir.DeleteProvisionerItem(r.ctx, r.p.Name, groupID)
		}
		return nil
	}
	if !had {
		it = usersync.ProvisionerItem{Provisioner: r.p.Name, GroupID: groupID}
	}
	it.GroupName, it.Failures, it.LastError = name, it.Failures+1, usersync.ErrorMessage(err)
	it.Quarantined = it.Failures >= r.p.Config.MaxFailures
	wait := time.Duration(1<<min(it.Failures-1, 10)) * 5 * time.Second // 5 s, 10 s, 20 s, … up to about 85 min
	it.NextAttempt = r.o.Now().Add(wait)
	if !r.p.Config.RetryOnError {
		it.NextAttempt = time.Time{}.Add(1<<62 - 1) // recorded for status, never retried
	}
	r.r.Failures = append(r.r.Failures, Failure{Group: name, Error: it.LastError, Failures: it.Failures, Quarantined: it.Quarantined})
	if r.o.DryRun {
		return nil
	}
	if err := r.dir.SaveProvisionerItem(r.ctx, it); err != nil {
		return err
	}
	items[groupID] = it
	return nil
}

// itemsByGroup returns the provisioner's failing groups, read once a run
// and kept in step by settle (one replica runs a provisioner at a time).
func (r *run) itemsByGroup() (map[int64]usersync.ProvisionerItem, error) {
	if r.items != nil {
		return r.items, nil
	}
	items, err := r.dir.ProvisionerItems(r.ctx, r.p.Name)
	if err != nil {
		return nil, err
	}
	r.items = make(map[int64]usersync.ProvisionerItem, len(items))
	for _, it := range items {
		r.items[it.GroupID] = it
	}
	return r.items, nil
}

// retryDue reconciles the failed groups whose next attempt has come.
func (r *run) retryDue() error {
	if !r.p.Config.RetryOnError {
		return nil
	}
	byGroup, err := r.itemsByGroup()
	if err != nil {
		return err
	}
	items := make([]usersync.ProvisionerItem, 0, len(byGroup)) // settle changes the map
	for _, it := range byGroup {
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].GroupID < items[j].GroupID })
	for _, it := range items {
		if it.Quarantined || r.o.Now().Before(it.NextAttempt) {
			continue
		}
		if err := r.retry(it); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) retry(it usersync.ProvisionerItem) error {
	r.r.Groups++
	grp, err := r.dir.FindGroupByID(r.ctx, it.GroupID)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		if r.o.DryRun {
			return nil
		}
		delete(r.items, it.GroupID)
		return r.dir.DeleteProvisionerItem(r.ctx, r.p.Name, it.GroupID)
	} else if err != nil {
		return err
	}
	covered, err := r.covered(grp)
	if err == nil && covered {
		err = r.reconcile(grp)
	}
	return r.settle(grp.ID, grp.Name, err)
}

// Reconcile compares Entra with the directory for every covered group (and
// the quarantined and failing ones) and repairs drift both ways. Groups
// that succeed leave quarantine.
func (g *Groups) Reconcile(ctx context.Context, o Options) (*Result, error) {
	return g.leased(ctx, o, func(ctx context.Context) (*Result, error) { return g.reconcileAll(ctx, o) })
}

func (g *Groups) reconcileAll(ctx context.Context, o Options) (res *Result, err error) {
	r := g.newRun(ctx, o)
	r.relookup = true // a reconcile trusts no remembered id
	defer r.flushOnReturn(&err)
	groups, _, err := g.dir.FindGroups(ctx, usersync.GroupFilter{})
	if err != nil {
		return r.r, err
	}
	for _, grp := range groups {
		covered, err := r.covered(grp)
		if err != nil {
			return r.r, err
		}
		if !covered {
			continue
		}
		r.r.Groups++
		err = r.reconcile(grp)
		if err := ctx.Err(); err != nil {
			return r.r, err
		}
		if err := r.settle(grp.ID, grp.Name, err); err != nil {
			return r.r, err
		}
	}
	return r.r, r.orphans(groups)
}

// orphans finds the Entra groups that carry this provisioner's uniqueName
// and that no directory group links to, and plans each: a covered
// directory group without an Entra group adopts its own; an unmarked one's
// stays, as unmarking leaves it; one whose directory group is gone is
// deleted with DeleteOrphans (listed otherwise), at most
// pull.MassRemovalMin at once without Force. Nothing is deleted without a
// plan line that says why.
func (r *run) orphans(groups []*usersync.Group) error {
	prefix := UniquePrefix(r.p)
	found, err := r.client.GroupsWithUniqueNamePrefix(r.ctx, prefix)
	if err != nil {
		return err
	}
	linked := map[string]bool{}
	for _, g := range groups {
		if id := g.Attributes[r.p.Config.RemoteIDAttribute]; id != "" {
			linked[id] = true
		}
	}
	var deletes []msgraph.Group
	for _, eg := range found {
		if linked[eg.ID] {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(eg.UniqueName, prefix), 10, 64)
		if err != nil {
			continue // not a name this provisioner makes
		}
		grp, err := r.dir.FindGroupByID(r.ctx, id) // afresh: this reconcile may have linked it
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			deletes = append(deletes, eg)
			continue
		} else if err != nil {
			return err
		}
		if grp.Attributes[r.p.Config.RemoteIDAttribute] == eg.ID {
			continue
		}
		covered, err := r.covered(grp)
		if err != nil {
			return err
		}
		if !covered {
			r.act(Action{Kind: KeepOrphan, Group: grp.Name, RemoteID: eg.ID, Reason: fmt.Sprintf("Entra group %q (uniqueName %s) is this provisioner's, and its directory group is not marked: it stays, as an unmarked group's does", eg.DisplayName, eg.UniqueName)})
			continue
		}
		if grp.Attributes[r.p.Config.RemoteIDAttribute] == "" {
			r.act(Action{Kind: AdoptOrphan, Group: grp.Name, RemoteID: eg.ID, Reason: fmt.Sprintf("Entra group %q has its uniqueName %s: linked", eg.DisplayName, eg.UniqueName)})
			if err := r.storeRemoteID(grp, eg.ID); err != nil {
				return err
			}
		}
	}
	if len(deletes) > pull.MassRemovalMin && !r.o.Force && r.o.DeleteOrphans {
		return usersync.Errorf(usersync.ECONFLICT, "reconcile would delete %d Entra groups whose directory groups are gone; refused as a likely mistake — reconcile with --force to apply it", len(deletes))
	}
	for _, eg := range deletes {
		a := Action{Kind: DeleteOrphan, Group: eg.DisplayName, RemoteID: eg.ID,
			Reason: fmt.Sprintf("Entra group made by this provisioner (uniqueName %s) whose directory group is gone", eg.UniqueName)}
		if !r.o.DeleteOrphans {
			a.Kind, a.Reason = KeepOrphan, a.Reason+"; kept: reconcile with --delete-orphans deletes it"
			r.act(a)
			continue
		}
		r.act(a)
		if !r.o.DryRun {
			if err := r.client.DeleteGroup(r.ctx, eg.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Retry clears a group's failures and quarantine and reconciles it now.
func (g *Groups) Retry(ctx context.Context, groupName string, o Options) (*Result, error) {
	return g.leased(ctx, o, func(ctx context.Context) (*Result, error) { return g.retryOne(ctx, groupName, o) })
}

func (g *Groups) retryOne(ctx context.Context, groupName string, o Options) (res *Result, err error) {
	r := g.newRun(ctx, o)
	defer r.flushOnReturn(&err)
	grp, err := g.dir.FindGroupByName(ctx, groupName)
	if err != nil {
		return r.r, err
	}
	if !o.DryRun {
		if err := g.dir.DeleteProvisionerItem(ctx, g.p.Name, grp.ID); err != nil {
			return r.r, err
		}
	}
	return r.r, r.retry(usersync.ProvisionerItem{GroupID: grp.ID, GroupName: grp.Name})
}

func isNotFound(err error) bool {
	var ae *msgraph.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// flushLog writes the settled entries of the provisioning log.
func (r *run) flushLog() error {
	if len(r.log) == 0 {
		return nil
	}
	err := r.dir.AppendLog(context.WithoutCancel(r.ctx), r.log)
	r.log = r.log[:0]
	return err
}

// flushOnReturn writes what is left of the log when a run returns.
func (r *run) flushOnReturn(err *error) {
	r.log, r.pendingLog = append(r.log, r.pendingLog...), nil // actions of no group that settled (a marker removed)
	if ferr := r.flushLog(); *err == nil {
		*err = ferr
	}
}
