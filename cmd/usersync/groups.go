package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) groupsCommand() *cobra.Command {
	c := &cobra.Command{Use: "groups", Short: "List and manage groups and their members"}
	members := &cobra.Command{Use: "members", Short: "List, add and remove the members of a group"}
	members.AddCommand(a.membersList(), a.membersChange(false), a.membersChange(true))
	c.AddCommand(a.groupsList(), a.groupsShow(), a.groupsCreate(), a.groupsUpdate(), a.groupsDelete(), members)
	return c
}

func (a *app) groupsList() *cobra.Command {
	var f usersync.GroupFilter
	var folder string
	c := &cobra.Command{Use: "list", Short: "List groups ordered by name", Args: cobra.NoArgs}
	c.Flags().StringVar(&f.Source, "source", "", "only groups owned by this source")
	c.Flags().StringVar(&folder, "folder", "", "only groups directly in this folder")
	c.Flags().StringVar(&f.Search, "search", "", "only groups whose name contains this text")
	c.Flags().IntVar(&f.Limit, "limit", 0, "show at most this many groups (0: all)")
	c.Flags().IntVar(&f.Offset, "offset", 0, "skip this many groups")
	c.RunE = a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		if c.Flags().Changed("folder") {
			f.Folder = &folder
		}
		groups, total, err := d.FindGroups(ctx, f)
		if err != nil {
			return err
		}
		return a.emit(map[string]any{"total": total, "groups": nonNil(groups)}, func(w io.Writer) {
			row(w, "NAME", "DESCRIPTION", "ALIAS", "SOURCE")
			for _, g := range groups {
				row(w, g.Name, orDash(g.Description), orDash(g.Alias), g.Source)
			}
			if len(groups) < total {
				row(w, fmt.Sprintf("(%d of %d groups)", len(groups), total))
			}
		})
	})
	return c
}

func (a *app) groupsShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show GROUP",
		Short: "Show one group",
		Args:  cobra.ExactArgs(1),
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			g, err := d.FindGroupByName(ctx, args[0])
			if err != nil {
				return err
			}
			_, n, err := d.Members(ctx, g.ID, 0, 1)
			if err != nil {
				return err
			}
			return a.emit(struct {
				*usersync.Group
				Members int `json:"members"`
			}{g, n}, func(w io.Writer) {
				row(w, "Name:", g.Name)
				row(w, "ID:", g.ID)
				row(w, "Folder:", orDash(usersync.FolderPath(g.Name)))
				row(w, "Description:", orDash(g.Description))
				row(w, "Alias:", orDash(g.Alias))
				row(w, "Source:", g.Source)
				row(w, "Source ID:", orDash(g.SourceID))
				row(w, "Attributes:", fmtAttrs(g.Attributes))
				row(w, "Members:", n)
				row(w, "Created:", fmtTime(g.CreatedAt))
				row(w, "Updated:", fmtTime(g.UpdatedAt))
				row(w, "Version:", g.Version)
			})
		}),
	}
}

func (a *app) groupsCreate() *cobra.Command {
	var g usersync.Group
	var attrs []string
	c := &cobra.Command{
		Use:   "create GROUP",
		Short: "Create a group; a name like app:test:group5 puts it in folder app:test",
		Args:  cobra.ExactArgs(1),
	}
	c.Flags().StringVar(&g.Description, "description", "", "description")
	c.Flags().StringVar(&g.Alias, "alias", "", "alias (for synced groups: the source's object id)")
	c.Flags().StringArrayVar(&attrs, "attr", nil, "attribute name=value (repeatable)")
	c.RunE = a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		g.Name = args[0]
		set, err := parseAttrs(attrs, nil)
		if err != nil {
			return err
		}
		g.Attributes = map[string]string{}
		for k, v := range set {
			g.Attributes[k] = *v
		}
		if err := d.CreateGroup(ctx, &g); err != nil {
			return err
		}
		return a.emit(&g, func(w io.Writer) { row(w, "created group", g.Name, "(id", fmt.Sprint(g.ID)+")") })
	})
	return c
}

func (a *app) groupsUpdate() *cobra.Command {
	var rename, desc, alias string
	var attrs, unset []string
	c := &cobra.Command{Use: "update GROUP [flags]", Short: "Change fields of a group", Args: cobra.ExactArgs(1)}
	c.Flags().StringVar(&rename, "rename", "", "new full name")
	c.Flags().StringVar(&desc, "description", "", "description")
	c.Flags().StringVar(&alias, "alias", "", "alias")
	c.Flags().StringArrayVar(&attrs, "attr", nil, "set attribute name=value (repeatable)")
	c.Flags().StringArrayVar(&unset, "unset-attr", nil, "remove attribute (repeatable)")
	c.RunE = a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		var upd usersync.GroupUpdate
		if c.Flags().Changed("rename") {
			upd.Name = &rename
		}
		if c.Flags().Changed("description") {
			upd.Description = &desc
		}
		if c.Flags().Changed("alias") {
			upd.Alias = &alias
		}
		var err error
		if upd.Attributes, err = parseAttrs(attrs, unset); err != nil {
			return err
		}
		g, err := d.FindGroupByName(ctx, args[0])
		if err != nil {
			return err
		}
		if g, err = d.UpdateGroup(ctx, g.ID, upd, 0); err != nil {
			return err
		}
		return a.emit(g, func(w io.Writer) { row(w, "updated group", g.Name, "(version", fmt.Sprint(g.Version)+")") })
	})
	return c
}

func (a *app) groupsDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a group and its memberships (its users stay)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			g, err := d.FindGroupByName(ctx, args[0])
			if err != nil {
				return err
			}
			if err := d.DeleteGroup(ctx, g.ID); err != nil {
				return err
			}
			return a.emit(map[string]any{"deleted": g.Name}, func(w io.Writer) { row(w, "deleted group", g.Name) })
		}),
	}
}

func (a *app) membersList() *cobra.Command {
	var limit, offset int
	var transitive bool
	c := &cobra.Command{Use: "list GROUP", Short: "List a group's members: its users, and the groups in it", Args: cobra.ExactArgs(1)}
	c.Flags().IntVar(&limit, "limit", 0, "show at most this many members (0: all)")
	c.Flags().IntVar(&offset, "offset", 0, "skip this many members")
	c.Flags().BoolVar(&transitive, "transitive", false, "list the effective members: the users in the group and in every group nested in it, each once")
	c.RunE = a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		g, err := d.FindGroupByName(ctx, args[0])
		if err != nil {
			return err
		}
		list := d.Members
		if transitive {
			list = d.EffectiveMembers
		}
		users, total, err := list(ctx, g.ID, offset, limit)
		if err != nil {
			return err
		}
		var nested []*usersync.Group
		if !transitive {
			if nested, err = d.MemberGroups(ctx, g.ID); err != nil {
				return err
			}
		}
		groupNames := make([]string, 0, len(nested))
		for _, n := range nested {
			groupNames = append(groupNames, n.Name)
		}
		out := map[string]any{"group": g.Name, "total": total, "members": nonNil(users), "transitive": transitive}
		if !transitive {
			out["groups"] = groupNames
		}
		return a.emit(out, func(w io.Writer) {
			row(w, "USERNAME", "EMAIL", "NAME", "ENABLED")
			for _, u := range users {
				row(w, u.Username, orDash(u.Email), orDash(u.FirstName+" "+u.LastName), u.Enabled)
			}
			if len(users) < total {
				row(w, fmt.Sprintf("(%d of %d members)", len(users), total))
			}
			for _, n := range groupNames {
				row(w, "group:", n, "(members list --transitive shows its users)")
			}
		})
	})
	return c
}

// membersChange adds or removes users and nested groups. Every name is
// resolved before anything is written, so an unknown one changes nothing.
func (a *app) membersChange(remove bool) *cobra.Command {
	verb, short := "add", "Add users (and, with --group, groups) to a group"
	if remove {
		verb, short = "remove", "Remove users (and, with --group, groups) from a group"
	}
	var groupArgs []string
	c := &cobra.Command{
		Use:   verb + " GROUP [USERNAME...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if len(args) == 1 && len(groupArgs) == 0 {
				return usersync.Errorf(usersync.EINVALID, "name at least one user, or a group with --group")
			}
			g, err := d.FindGroupByName(ctx, args[0])
			if err != nil {
				return err
			}
			ids := make([]int64, 0, len(args)-1)
			for _, name := range args[1:] {
				u, err := d.FindUserByUsername(ctx, name)
				if err != nil {
					return err
				}
				ids = append(ids, u.ID)
			}
			if len(groupArgs) > 0 {
				return a.nestedChange(ctx, d, g, ids, groupArgs, remove)
			}
			var n int
			if remove {
				n, err = d.RemoveMembers(ctx, g.ID, ids)
			} else {
				n, err = d.AddMembers(ctx, g.ID, ids)
			}
			if err != nil {
				return err
			}
			past := map[bool]string{false: "added", true: "removed"}[remove]
			return a.emit(map[string]any{"group": g.Name, past: n}, func(w io.Writer) {
				row(w, membersChanged(past, n, len(ids), remove))
			})
		}),
	}
	c.Flags().StringArrayVar(&groupArgs, "group", nil, "a group to "+verb+" as a member (nested group; repeatable)")
	return c
}

// nestedChange adds or removes users and groups in one transaction: a
// group that would make a cycle changes nothing.
func (a *app) nestedChange(ctx context.Context, d *sqlstore.DB, g *usersync.Group, users []int64, groupNames []string, remove bool) error {
	gids := make([]int64, 0, len(groupNames))
	for _, name := range groupNames {
		m, err := d.FindGroupByName(ctx, name)
		if err != nil {
			return err
		}
		gids = append(gids, m.ID)
	}
	count := func() (int, int, error) {
		n, err := d.CountMembers(ctx, g.ID)
		if err != nil {
			return 0, 0, err
		}
		gs, err := d.MemberGroups(ctx, g.ID)
		return n, len(gs), err
	}
	u0, g0, err := count()
	if err != nil {
		return err
	}
	ch := usersync.GroupChange{Add: users, AddGroups: gids}
	if remove {
		ch = usersync.GroupChange{Remove: users, RemoveGroups: gids}
	}
	if _, err := d.ChangeGroup(ctx, g.ID, ch, 0); err != nil {
		return err
	}
	u1, g1, err := count()
	if err != nil {
		return err
	}
	past := map[bool]string{false: "added", true: "removed"}[remove]
	du, dg := u1-u0, g1-g0
	if remove {
		du, dg = -du, -dg
	}
	return a.emit(map[string]any{"group": g.Name, past: du, past + "Groups": dg}, func(w io.Writer) {
		row(w, fmt.Sprintf("%s %d of %d users and %d of %d groups", past, du, len(users), dg, len(gids)))
	})
}

// membersChanged says how many of the named users a members add or remove
// changed, and why the others were left alone.
func membersChanged(past string, n, named int, remove bool) string {
	msg := fmt.Sprintf("%s %d of %d users", past, n, named)
	if n == named {
		return fmt.Sprintf("%s %d %s", past, n, map[bool]string{true: "user", false: "users"}[n == 1])
	}
	state := "a member already"
	if remove {
		state = "not a member"
	}
	if named-n > 1 {
		state = map[bool]string{false: "members already", true: "not members"}[remove]
		return fmt.Sprintf("%s (%d were %s)", msg, named-n, state)
	}
	return fmt.Sprintf("%s (1 was %s)", msg, state)
}
