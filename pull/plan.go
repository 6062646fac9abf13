package pull

import (
	"context"
	"fmt"
	"sort"
	"strconv"

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
}

// Mass-removal guard: a plan that removes more than this share of a group's
// members, and more than MassRemovalMin of them, or that empties a group,
// is refused without Force.
const (
	MassRemovalShare = 0.2
	MassRemovalMin   = 10
)

// ActionKind names one step of a plan.
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

// Plan is what syncing one group would change.
type Plan struct {
	Source      string   `json:"source"`
	SourceGroup string   `json:"sourceGroup"`
	SourceID    string   `json:"sourceGroupId"`
	Group       string   `json:"group"` // the directory group
	SourceUsers int      `json:"sourceUsers"`
	Skipped     string   `json:"skipped,omitempty"` // why the group is not synced at all
	Actions     []Action `json:"actions"`
	Warnings    []string `json:"warnings,omitempty"`

	batch *usersync.Batch
}

// Counts tallies the plan's actions by kind.
func (p *Plan) Counts() map[ActionKind]int {
	out := map[ActionKind]int{}
	for _, a := range p.Actions {
		out[a.Kind]++
	}
	return out
}

// PlanGroup reads one group and its users from src and the directory, and
// returns what a sync would change. It writes nothing.
func PlanGroup(ctx context.Context, dir usersync.Directory, src Source, name string, o Options) (*Plan, error) {
	sg, err := src.FindGroup(ctx, name)
	if err != nil {
		return nil, err
	}
	p := &Plan{Source: src.Owner(), SourceGroup: sg.Name, SourceID: sg.ID, Group: sg.Name, batch: &usersync.Batch{}}
	if o.TargetGroup != "" {
		p.Group = o.TargetGroup
	}
	target, err := dir.FindGroupByName(ctx, p.Group)
	switch {
	case usersync.ErrorCode(err) == usersync.ENOTFOUND && o.AutoCreate == CreateUsers:
		p.Skipped = fmt.Sprintf("group %q does not exist in the directory (--auto-create creates it)", p.Group)
		return p, nil
	case usersync.ErrorCode(err) == usersync.ENOTFOUND:
		p.Actions = append(p.Actions, Action{Kind: CreateGroup, Group: p.Group, Reason: "missing in the directory"})
		p.batch.Groups = append(p.batch.Groups, usersync.GroupUpsert{Create: true, Group: usersync.Group{
			Name: p.Group, Description: sg.Description, Alias: sg.ID, Source: src.Owner(), SourceID: sg.ID}})
		target = nil
	case err != nil:
		return nil, err
	}

	var users []User
	err = src.Members(ctx, sg, func(page []User) error {
		users = append(users, page...)
		if o.SyncUserLimit > 0 && len(users) > o.SyncUserLimit {
			return usersync.Errorf(usersync.EINVALID, "group %q has more than %d users (--sync-user-limit); nothing of it was applied", sg.Name, o.SyncUserLimit)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.SourceUsers = len(users)
	if o.OnlyUser != "" {
		users = onlyUser(users, o.OnlyUser)
	}
	if err := planUsers(ctx, dir, src, p, target, users, o); err != nil {
		return nil, err
	}
	return p, nil
}

func planUsers(ctx context.Context, dir usersync.Directory, src Source, p *Plan, target *usersync.Group, users []User, o Options) error {
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, u.Username)
	}
	existing, err := dir.UsersByUsername(ctx, names)
	if err != nil {
		return err
	}
	current := map[string]*usersync.User{} // members of the target group now
	if target != nil {
		members, _, err := dir.Members(ctx, target.ID, 0, 0)
		if err != nil {
			return err
		}
		for _, m := range members {
			current[usersync.UsernameKey(m.Username)] = m
		}
	}
	userType := o.UserType
	if userType == "" {
		userType = usersync.UserRegular
	}
	inSource := make(map[string]bool, len(users))
	mapped := map[string]bool{} // groups named by --map-attr-to-group
	for _, su := range users {
		key := usersync.UsernameKey(su.Username)
		if su.Username == "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("source user %s has no username attribute; skipped", su.ID))
			continue
		}
		if inSource[key] {
			p.Warnings = append(p.Warnings, fmt.Sprintf("source users share the username %q; the first is used", su.Username))
			continue
		}
		inSource[key] = true
		next := usersync.User{Username: su.Username, Email: su.Email, FirstName: su.FirstName, LastName: su.LastName, Enabled: su.Enabled,
			Type: userType, AuthMethod: usersync.AuthSSO, Source: src.Owner(), SourceID: su.ID, Attributes: su.Attributes}
		cur, exists := existing[key]
		switch {
		case !exists && o.AutoCreate == CreateGroups:
			p.Actions = append(p.Actions, Action{Kind: SkipUser, User: su.Username, Reason: "not in the directory; --auto-create groups creates only groups"})
			continue
		case !exists:
			p.Actions = append(p.Actions, Action{Kind: CreateUser, User: su.Username, Reason: "in source group " + p.SourceGroup})
			p.batch.Users = append(p.batch.Users, usersync.UserUpsert{User: next, Create: true})
		case cur.Source == src.Owner() || o.Force:
			fields := usersync.ProfileFields
			reason := "owned by " + src.Owner()
			if cur.Source != src.Owner() {
				fields |= usersync.FieldSource
				reason = "--force: profile taken over from " + cur.Source
			}
			if diff := profileDiff(cur, &next, fields); len(diff) > 0 {
				p.Actions = append(p.Actions, Action{Kind: UpdateUser, User: cur.Username, Reason: reason, Fields: diff})
				p.batch.Users = append(p.batch.Users, usersync.UserUpsert{User: next, Update: fields})
			}
		}
		if _, member := current[key]; !member {
			p.addMember(p.Group, su.Username, "in source group "+p.SourceGroup)
		}
		if !o.SkipDefaultGroup {
			p.batch.Members = append(p.batch.Members, usersync.MemberChange{Group: usersync.DefaultGroupName, Username: su.Username})
		}
		for _, attr := range o.MapAttrToGroup {
			if g := su.Attributes[attr]; g != "" {
				mapped[g] = true
				p.batch.Members = append(p.batch.Members, usersync.MemberChange{Group: g, Username: su.Username})
			}
		}
	}
	if err := p.planMappedGroups(ctx, dir, src, mapped, o); err != nil {
		return err
	}
	var removals []string
	for key, m := range current {
		if o.OnlyUser != "" && key != usersync.UsernameKey(o.OnlyUser) {
			continue
		}
		if !inSource[key] {
			removals = append(removals, m.Username)
		}
	}
	sort.Strings(removals)
	if n := len(removals); n > 0 && !o.Force && o.OnlyUser == "" && (len(inSource) == 0 || (n > MassRemovalMin && float64(n) > MassRemovalShare*float64(len(current)))) {
		return usersync.Errorf(usersync.ECONFLICT, "syncing group %q would remove %d of its %d members (source group %q has %d users); refused as a likely mistake — run with --force to apply",
			p.Group, n, len(current), p.SourceGroup, len(inSource))
	}
	for _, name := range removals {
		p.Actions = append(p.Actions, Action{Kind: RemoveMember, User: name, Group: p.Group, Reason: "no longer in source group " + p.SourceGroup})
		p.batch.Members = append(p.batch.Members, usersync.MemberChange{Group: p.Group, Username: name, Remove: true})
	}
	return nil
}

func onlyUser(users []User, name string) []User {
	for _, u := range users {
		if usersync.UsernameKey(u.Username) == usersync.UsernameKey(name) {
			return []User{u}
		}
	}
	return nil
}

func (p *Plan) addMember(group, user, reason string) {
	p.Actions = append(p.Actions, Action{Kind: AddMember, User: user, Group: group, Reason: reason})
	p.batch.Members = append(p.batch.Members, usersync.MemberChange{Group: group, Username: user})
}

// planMappedGroups makes sure the groups named by attributes exist, creating
// them when auto-create allows and dropping their memberships otherwise.
func (p *Plan) planMappedGroups(ctx context.Context, dir usersync.Directory, src Source, mapped map[string]bool, o Options) error {
	missing := map[string]bool{}
	for g := range mapped {
		if usersync.GroupNameKey(g) == usersync.GroupNameKey(p.Group) {
			continue
		}
		if _, err := dir.FindGroupByName(ctx, g); usersync.ErrorCode(err) == usersync.ENOTFOUND {
			if err := usersync.ValidatePath("group name", g, usersync.MaxGroupNameLength); err != nil {
				missing[g] = true
				p.Warnings = append(p.Warnings, fmt.Sprintf("attribute value %q cannot be a group name; its memberships are skipped", g))
			} else if o.AutoCreate == CreateUsers {
				missing[g] = true
				p.Warnings = append(p.Warnings, fmt.Sprintf("mapped group %q does not exist (--auto-create creates it); its memberships are skipped", g))
			} else {
				p.Actions = append(p.Actions, Action{Kind: CreateGroup, Group: g, Reason: "named by a mapped attribute"})
				p.batch.Groups = append(p.batch.Groups, usersync.GroupUpsert{Create: true, Group: usersync.Group{Name: g, Source: src.Owner()}})
			}
		} else if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		kept := p.batch.Members[:0]
		for _, m := range p.batch.Members {
			if !missing[m.Group] {
				kept = append(kept, m)
			}
		}
		p.batch.Members = kept
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

// Apply writes a plan to the directory in one transaction. A skipped plan
// writes nothing. The batch re-checks everything against the directory, so
// a plan that went stale only does what is still needed.
func Apply(ctx context.Context, dir usersync.Directory, p *Plan) (*usersync.BatchResult, error) {
	if p.Skipped != "" {
		return &usersync.BatchResult{}, nil
	}
	return dir.ApplyBatch(ctx, p.batch)
}
