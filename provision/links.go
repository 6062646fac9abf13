package provision

import (
	"context"
	"sort"

	"github.com/usersync/usersync"
)

// Links lists what provisioner p keeps of the directory objects it
// writes: for a group provisioner, every group that carries its remote id
// attribute (the Entra group it is linked to), with its state; for a user
// provisioner, every user it provisioned (kept after the user leaves the
// directory, until its Entra user is deprovisioned).
func Links(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner) ([]usersync.Link, error) {
	if p.Kind == usersync.ProvisionerUsers {
		state, err := dir.ProvisionedUsers(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		out := make([]usersync.Link, 0, len(state))
		for _, st := range state {
			l := usersync.Link{Object: usersync.ObjectUser, ID: st.UserID, Name: st.Username, RemoteID: st.RemoteID, State: st.State}
			switch {
			case st.Quarantined:
				l.State, l.Detail = "quarantined", st.LastError
			case st.Failures > 0:
				l.State, l.Detail = "failing", st.LastError
			}
			out = append(out, l)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	}
	attr := p.Config.RemoteIDAttribute
	groups, _, err := dir.FindGroups(ctx, usersync.GroupFilter{Where: usersync.Match{Field: "attributes." + attr, Op: usersync.OpPresent}})
	if err != nil {
		return nil, err
	}
	items, err := dir.ProvisionerItems(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	byGroup := map[int64]usersync.ProvisionerItem{}
	for _, it := range items {
		byGroup[it.GroupID] = it
	}
	folders := map[string]*usersync.Folder{}
	folder := func(path string) (*usersync.Folder, error) {
		if f, ok := folders[path]; ok {
			return f, nil
		}
		f, err := dir.FindFolder(ctx, path)
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			f, err = nil, nil
		}
		folders[path] = f
		return f, err
	}
	out := make([]usersync.Link, 0, len(groups))
	for _, g := range groups {
		l := usersync.Link{Object: usersync.ObjectGroup, ID: g.ID, Name: g.Name, RemoteID: g.Attributes[attr], State: "linked"}
		why, err := usersync.CoveredBy(p.Config.SyncAttribute, g, folder)
		if err != nil {
			return nil, err
		}
		l.Detail = why
		if why == "" {
			l.State, l.Detail = "unmarked", "no marker on it or above it: its Entra group is kept, not followed"
		}
		if it, ok := byGroup[g.ID]; ok {
			l.State, l.Detail = "failing", it.LastError
			if it.Quarantined {
				l.State = "quarantined"
			}
		}
		out = append(out, l)
	}
	return out, nil
}
