package api

import (
	"context"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/provision"
)

// Local does the Operations on a directory, in this process: the API's
// handlers call it, and so does the command line without --server.
type Local struct {
	Dir usersync.Directory
	Options
}

var _ Operations = (*Local)(nil)

func (l *Local) ListUsers(ctx context.Context, q UserQuery) (*UserPage, error) {
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return nil, err
	}
	var where usersync.All
	if q.Type != "" {
		where = append(where, usersync.Match{Field: "type", Op: usersync.OpEq, Value: q.Type})
	}
	switch q.Enabled {
	case "":
	case "true", "false":
		where = append(where, usersync.Match{Field: "enabled", Op: usersync.OpEq, Value: q.Enabled == "true"})
	default:
		return nil, usersync.Errorf(usersync.EINVALID, "enabled is true or false, not %q", q.Enabled)
	}
	f := usersync.UserFilter{Search: q.Search, Source: q.Source, Limit: pageSize(q.Limit), After: after}
	if len(where) > 0 {
		f.Where = where
	}
	users, total, err := l.Dir.FindUsers(ctx, f)
	if err != nil {
		return nil, err
	}
	p := &UserPage{Items: nonNil(users), Total: total}
	if len(users) == pageSize(q.Limit) {
		last := users[len(users)-1]
		p.NextCursor = encodeCursor(last.SortValue("username"), last.ID)
	}
	return p, nil
}

// pageSize is a page's size: the default for 0.
func pageSize(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, 1000)
}

func (l *Local) GetUser(ctx context.Context, username string) (*usersync.User, error) {
	return l.Dir.FindUserByUsername(ctx, username)
}

func (l *Local) UserGroups(ctx context.Context, username string) ([]string, error) {
	u, err := l.Dir.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	groups, err := l.Dir.GroupsOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	return names, nil
}

func (l *Local) CreateUser(ctx context.Context, b NewUser) (*usersync.User, error) {
	u := &usersync.User{Username: b.Username, Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, Type: usersync.UserType(b.Type),
		Enabled: b.Enabled == nil || *b.Enabled, AuthMethod: usersync.AuthMethod(b.AuthMethod), Attributes: b.Attributes}
	if u.Type == "" {
		u.Type = usersync.UserRegular
	}
	if u.AuthMethod == "" {
		u.AuthMethod = usersync.AuthPassword
	}
	if err := l.Dir.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

func (l *Local) UpdateUser(ctx context.Context, username string, b UserChange, version int64) (*usersync.User, error) {
	u, err := l.Dir.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	upd := usersync.UserUpdate{Username: b.Username, Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, Enabled: b.Enabled, Attributes: b.Attributes}
	if b.Type != nil {
		t := usersync.UserType(*b.Type)
		upd.Type = &t
	}
	if b.AuthMethod != nil {
		m := usersync.AuthMethod(*b.AuthMethod)
		upd.AuthMethod = &m
	}
	return l.Dir.UpdateUser(ctx, u.ID, upd, version)
}

func (l *Local) DeleteUser(ctx context.Context, username string, version int64) error {
	u, err := l.Dir.FindUserByUsername(ctx, username)
	if err != nil {
		return err
	}
	return l.Dir.DeleteUser(ctx, u.ID, version)
}

func (l *Local) ListGroups(ctx context.Context, q GroupQuery) (*GroupPage, error) {
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return nil, err
	}
	f := usersync.GroupFilter{Search: q.Search, Source: q.Source, Limit: pageSize(q.Limit), After: after}
	switch {
	case q.Top && q.Folder != "":
		return nil, usersync.Errorf(usersync.EINVALID, "top (groups in no folder) and folder %q exclude each other", q.Folder)
	case q.Top:
		f.Folder = new(string)
	case q.Folder != "":
		f.Folder = &q.Folder
	}
	groups, total, err := l.Dir.FindGroups(ctx, f)
	if err != nil {
		return nil, err
	}
	p := &GroupPage{Items: nonNil(groups), Total: total}
	if len(groups) == f.Limit {
		last := groups[len(groups)-1]
		p.NextCursor = encodeCursor(last.SortValue("name"), last.ID)
	}
	return p, nil
}

func (l *Local) GetGroup(ctx context.Context, name string) (*usersync.Group, error) {
	return l.Dir.FindGroupByName(ctx, name)
}

func (l *Local) CreateGroup(ctx context.Context, b NewGroup) (*usersync.Group, error) {
	users, groups, err := l.resolve(ctx, b.Members, b.Groups)
	if err != nil {
		return nil, err
	}
	g := &usersync.Group{Name: b.Name, Description: b.Description, Alias: b.Alias, Attributes: b.Attributes}
	if err := l.Dir.CreateGroupWith(ctx, g, usersync.GroupChange{Add: users, AddGroups: groups}); err != nil {
		return nil, err
	}
	return g, nil
}

func (l *Local) UpdateGroup(ctx context.Context, name string, b GroupChange, version int64) (*usersync.Group, error) {
	g, err := l.Dir.FindGroupByName(ctx, name)
	if err != nil {
		return nil, err
	}
	return l.Dir.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: b.Name, Description: b.Description, Alias: b.Alias, Attributes: b.Attributes}, version)
}

func (l *Local) DeleteGroup(ctx context.Context, name string, version int64) error {
	g, err := l.Dir.FindGroupByName(ctx, name)
	if err != nil {
		return err
	}
	return l.Dir.DeleteGroup(ctx, g.ID, version)
}

func (l *Local) ListMembers(ctx context.Context, group string, q MemberQuery) (*MemberPage, error) {
	g, err := l.Dir.FindGroupByName(ctx, group)
	if err != nil {
		return nil, err
	}
	offset := 0
	if q.Cursor != "" {
		pos, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		offset = int(pos.ID)
	}
	list := l.Dir.Members
	if q.Transitive {
		list = l.Dir.EffectiveMembers
	}
	users, total, err := list(ctx, g.ID, offset, pageSize(q.Limit))
	if err != nil {
		return nil, err
	}
	p := &MemberPage{Users: nonNil(users), Total: total, Groups: []string{}}
	if !q.Transitive {
		nested, err := l.Dir.MemberGroups(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		for _, n := range nested {
			p.Groups = append(p.Groups, n.Name)
		}
	}
	if offset+len(users) < total {
		p.NextCursor = encodeCursor(nil, int64(offset+len(users)))
	}
	return p, nil
}

func (l *Local) ChangeMembers(ctx context.Context, group string, b MembersChange, version int64) (*MembersChanged, error) {
	g, err := l.Dir.FindGroupByName(ctx, group)
	if err != nil {
		return nil, err
	}
	add, addGroups, err := l.resolve(ctx, b.Add, b.AddGroups)
	if err != nil {
		return nil, err
	}
	remove, removeGroups, err := l.resolve(ctx, b.Remove, b.RemoveGroups)
	if err != nil {
		return nil, err
	}
	out := &MembersChanged{}
	// Adding or removing users alone says exactly how many changed.
	if version == 0 && len(addGroups)+len(removeGroups) == 0 && (len(add) == 0) != (len(remove) == 0) {
		if len(add) > 0 {
			out.Added, err = l.Dir.AddMembers(ctx, g.ID, add)
		} else {
			out.Removed, err = l.Dir.RemoveMembers(ctx, g.ID, remove)
		}
		if err != nil {
			return nil, err
		}
		out.Group, err = l.Dir.FindGroupByID(ctx, g.ID)
		return out, err
	}
	// Otherwise one transaction does it all, and the counts compare the
	// group before and after (another writer at the same time blurs them).
	u0, g0, err := l.count(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	if out.Group, err = l.Dir.ChangeGroup(ctx, g.ID, usersync.GroupChange{Add: add, Remove: remove, AddGroups: addGroups, RemoveGroups: removeGroups}, version); err != nil {
		return nil, err
	}
	u1, g1, err := l.count(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	if len(remove) > 0 {
		out.Removed = u0 - u1
	} else {
		out.Added = u1 - u0
	}
	if len(removeGroups) > 0 {
		out.RemovedGroups = g0 - g1
	} else {
		out.AddedGroups = g1 - g0
	}
	return out, nil
}

func (l *Local) count(ctx context.Context, groupID int64) (users, groups int, err error) {
	if users, err = l.Dir.CountMembers(ctx, groupID); err != nil {
		return 0, 0, err
	}
	gs, err := l.Dir.MemberGroups(ctx, groupID)
	return users, len(gs), err
}

// resolve finds users by username and groups by name; one that does not
// exist fails the request before anything is written.
func (l *Local) resolve(ctx context.Context, usernames, groupNames []string) ([]int64, []int64, error) {
	var users, groups []int64
	if len(usernames) > 0 {
		found, err := l.Dir.UsersByUsername(ctx, usernames)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range usernames {
			u := found[usersync.UsernameKey(n)]
			if u == nil {
				return nil, nil, usersync.Errorf(usersync.EINVALID, "user %q not found; nothing was changed", n)
			}
			users = append(users, u.ID)
		}
	}
	for _, n := range groupNames {
		g, err := l.Dir.FindGroupByName(ctx, n)
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			return nil, nil, usersync.Errorf(usersync.EINVALID, "group %q not found; nothing was changed", n)
		} else if err != nil {
			return nil, nil, err
		}
		groups = append(groups, g.ID)
	}
	return users, groups, nil
}

func (l *Local) ListFolders(ctx context.Context, under string) ([]*usersync.Folder, error) {
	fs, err := l.Dir.FindFolders(ctx, under)
	return nonNil(fs), err
}

func (l *Local) GetFolder(ctx context.Context, path string) (*usersync.Folder, error) {
	return l.Dir.FindFolder(ctx, path)
}

func (l *Local) CreateFolder(ctx context.Context, path string) (*usersync.Folder, error) {
	return l.Dir.CreateFolder(ctx, path)
}

func (l *Local) DeleteFolder(ctx context.Context, path string) error {
	return l.Dir.DeleteFolder(ctx, path)
}

func (l *Local) SetFolderAttributes(ctx context.Context, path string, attrs map[string]*string) (*usersync.Folder, error) {
	return l.Dir.SetFolderAttributes(ctx, path, attrs)
}

func (l *Local) ListTokens(ctx context.Context, user string) ([]*usersync.Token, error) {
	var id int64
	if user != "" {
		u, err := l.Dir.FindUserByUsername(ctx, user)
		if err != nil {
			return nil, err
		}
		id = u.ID
	}
	ts, err := l.Dir.FindTokens(ctx, id)
	return nonNil(ts), err
}

func (l *Local) CreateToken(ctx context.Context, user, name string) (*CreatedToken, error) {
	u, err := l.Dir.FindUserByUsername(ctx, user)
	if err != nil {
		return nil, err
	}
	clear, t, err := l.Dir.CreateToken(ctx, u.ID, name)
	if err != nil {
		return nil, err
	}
	return &CreatedToken{Token: clear, Info: t}, nil
}

func (l *Local) RevokeToken(ctx context.Context, id int64) error { return l.Dir.RevokeToken(ctx, id) }

// masked is a setting as it may be shown: a secret's value masked.
func masked(st usersync.Setting, err error) (usersync.Setting, error) {
	st.Value = st.Shown()
	return st, err
}

func (l *Local) Settings(ctx context.Context) ([]usersync.Setting, error) {
	all, err := l.Dir.Settings(ctx)
	for i := range all {
		all[i], _ = masked(all[i], nil)
	}
	return all, err
}

func (l *Local) Setting(ctx context.Context, key string) (usersync.Setting, error) {
	return masked(l.Dir.Setting(ctx, key))
}

func (l *Local) SetSetting(ctx context.Context, key, value string) (usersync.Setting, error) {
	return masked(l.Dir.SetSetting(ctx, key, value))
}

func (l *Local) ResetSetting(ctx context.Context, key string) (usersync.Setting, error) {
	if err := l.Dir.ResetSetting(ctx, key); err != nil {
		return usersync.Setting{}, err
	}
	return masked(l.Dir.Setting(ctx, key))
}

func (l *Local) Changes(ctx context.Context, after int64, limit int, wait time.Duration) ([]*usersync.Change, error) {
	cs, err := longPoll(ctx, wait, func() ([]*usersync.Change, error) { return l.Dir.ChangesAfter(ctx, after, limit) })
	return nonNil(cs), err
}

func (l *Local) ListSchedules(ctx context.Context) ([]*usersync.Schedule, error) {
	sc, err := l.Dir.ListSchedules(ctx)
	return nonNil(sc), err
}

func (l *Local) GetSchedule(ctx context.Context, name string) (*usersync.Schedule, error) {
	return l.Dir.FindSchedule(ctx, name)
}

func (l *Local) CreateSchedule(ctx context.Context, b NewSchedule) (*usersync.Schedule, error) {
	if err := usersync.ValidateScheduleName(b.Name); err != nil {
		return nil, err
	}
	if err := checkCron(b.Cron, b.TimeZone); err != nil {
		return nil, err
	}
	if err := l.checkCommand(ctx, b.Command); err != nil {
		return nil, err
	}
	sc := &usersync.Schedule{Name: b.Name, Cron: b.Cron, TimeZone: b.TimeZone, Command: b.Command, Paused: b.Paused}
	if err := l.Dir.CreateSchedule(ctx, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

func (l *Local) checkCommand(ctx context.Context, command []string) error {
	if l.CheckCommand == nil {
		return usersync.Errorf(usersync.EUNAVAILABLE, "this server cannot check command lines: change schedules with the usersync command line on the directory")
	}
	return l.CheckCommand(ctx, command)
}

func (l *Local) UpdateSchedule(ctx context.Context, name string, ch ScheduleChange, version int64) (*usersync.Schedule, error) {
	cur, err := l.Dir.FindSchedule(ctx, name)
	if err != nil {
		return nil, err
	}
	spec, zone := cur.Cron, cur.TimeZone
	if ch.Cron != nil {
		spec = *ch.Cron
	}
	if ch.TimeZone != nil {
		zone = *ch.TimeZone
	}
	if err := checkCron(spec, zone); err != nil {
		return nil, err
	}
	if ch.Command != nil {
		if err := l.checkCommand(ctx, *ch.Command); err != nil {
			return nil, err
		}
	}
	return l.Dir.UpdateSchedule(ctx, cur.Name, usersync.ScheduleUpdate{Cron: ch.Cron, TimeZone: ch.TimeZone, Command: ch.Command, Paused: ch.Paused}, version)
}

func (l *Local) DeleteSchedule(ctx context.Context, name string) error {
	return l.Dir.DeleteSchedule(ctx, name)
}

func (l *Local) RunSchedule(ctx context.Context, name string) (bool, error) {
	if l.RunNow == nil {
		return false, usersync.Errorf(usersync.EUNAVAILABLE, "this server runs no schedules (usersync serve --no-schedules): run it with `usersync schedules run`")
	}
	return l.RunNow(ctx, name, usersync.ActorFrom(ctx))
}

func (l *Local) ListRuns(ctx context.Context, schedule string, limit int) ([]*usersync.Run, error) {
	rs, err := l.Dir.ListRuns(ctx, schedule, limit)
	return nonNil(rs), err
}

func (l *Local) GetRun(ctx context.Context, id int64) (*usersync.Run, error) {
	return l.Dir.FindRun(ctx, id)
}

func (l *Local) DecideRun(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
	if l.Decide == nil {
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "this server runs no schedules (usersync serve --no-schedules): decide with `usersync runs allow-removals|reject` on the directory")
	}
	return l.Decide(ctx, id, allow)
}

func (l *Local) ListProvisioners(ctx context.Context) ([]*usersync.Provisioner, error) {
	ps, err := l.Dir.FindProvisioners(ctx)
	return nonNil(ps), err
}

func (l *Local) ProvisionerStatus(ctx context.Context, name string) (*ProvisionerStatus, error) {
	p, err := l.Dir.FindProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	cursor, err := l.Dir.Cursor(ctx, usersync.ProvisionerCursor(p.Name))
	if err != nil {
		return nil, err
	}
	last, err := l.Dir.LastChangeSeq(ctx)
	if err != nil {
		return nil, err
	}
	items, err := l.Dir.ProvisionerItems(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	holds, err := l.Dir.Holds(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	st := &ProvisionerStatus{Provisioner: p, Cursor: cursor, LastChange: last, Backlog: max(last-cursor, 0), Items: nonNil(items), Holds: nonNil(holds)}
	if st.Backlog > 0 {
		oldest, err := l.Dir.ChangesAfter(ctx, cursor, 1)
		if err != nil {
			return nil, err
		}
		if len(oldest) == 1 {
			st.LagSeconds = max(time.Since(oldest[0].At).Seconds(), 0)
		}
	}
	return st, nil
}

func (l *Local) ProvisionerLinks(ctx context.Context, name string) ([]usersync.Link, error) {
	p, err := l.Dir.FindProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	links, err := provision.Links(ctx, l.Dir, p)
	return nonNil(links), err
}

func (l *Local) RetryProvisioner(ctx context.Context, name, group string) (*ProvisionerStatus, error) {
	if l.Retry == nil {
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "this server cannot reach the provisioners' tenants: retry with `usersync provisioners retry` on the directory")
	}
	if _, err := l.Dir.FindGroupByName(ctx, group); err != nil {
		return nil, err
	}
	if err := l.Retry(ctx, name, group); err != nil {
		return nil, err
	}
	return l.ProvisionerStatus(ctx, name)
}
