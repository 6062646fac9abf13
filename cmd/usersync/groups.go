package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
)

func (a *app) groupsCommand() *cobra.Command {
	c := &cobra.Command{Use: "groups", Short: "List and manage groups and their members"}
	members := &cobra.Command{Use: "members", Short: "List, add and remove the members of a group"}
	for _, sub := range []*cobra.Command{a.membersList(), a.membersChange(false), a.membersChange(true)} {
		members.AddCommand(remote(sub))
	}
	for _, sub := range []*cobra.Command{a.groupsList(), a.groupsShow(), a.groupsCreate(), a.groupsUpdate(), a.groupsDelete()} {
		c.AddCommand(remote(sub))
	}
	c.AddCommand(members)
	return c
}

func (a *app) groupsList() *cobra.Command {
	var q api.GroupQuery
	var limit, offset int
	c := &cobra.Command{Use: "list", Short: "List groups ordered by name", Args: cobra.NoArgs}
	c.Flags().StringVar(&q.Source, "source", "", "only groups owned by this source")
	c.Flags().StringVar(&q.Folder, "folder", "", `only groups directly in this folder ("" for groups in no folder)`)
	c.Flags().StringVar(&q.Search, "search", "", "only groups whose name contains this text")
	c.Flags().IntVar(&limit, "limit", 0, "show at most this many groups (0: all)")
	c.Flags().IntVar(&offset, "offset", 0, "skip this many groups")
	c.RunE = a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
		q.Top = c.Flags().Changed("folder") && q.Folder == ""
		groups, total, err := pages(offset, limit, func(p api.Paging) ([]*usersync.Group, int, string, error) {
			q.Paging = p
			page, err := o.ListGroups(ctx, q)
			if err != nil {
				return nil, 0, "", err
			}
			return page.Items, page.Total, page.NextCursor, nil
		})
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
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			g, err := o.GetGroup(ctx, args[0])
			if err != nil {
				return err
			}
			page, err := o.ListMembers(ctx, g.Name, api.MemberQuery{Paging: api.Paging{Limit: 1}})
			if err != nil {
				return err
			}
			n := page.Total
			return a.emit(struct {
				*usersync.Group
				Members int `json:"members"`
			}{g, n}, func(w io.Writer) {
				row(w, "Name:", g.Name)
				row(w, "ID:", g.ID)
				row(w, "Folder:", orDash(g.Folder()))
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
	var g api.NewGroup
	var attrs []string
	c := &cobra.Command{
		Use:   "create GROUP",
		Short: "Create a group; a name like app:test:group5 puts it in folder app:test",
		Args:  cobra.ExactArgs(1),
	}
	c.Flags().StringVar(&g.Description, "description", "", "description")
	c.Flags().StringVar(&g.Alias, "alias", "", "alias (for synced groups: the source's object id)")
	c.Flags().StringArrayVar(&attrs, "attr", nil, "attribute name=value (repeatable)")
	c.RunE = a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
		g.Name = args[0]
		set, err := parseAttrs(attrs, nil)
		if err != nil {
			return err
		}
		g.Attributes = map[string]string{}
		for k, v := range set {
			g.Attributes[k] = *v
		}
		made, err := o.CreateGroup(ctx, g)
		if err != nil {
			return err
		}
		return a.emit(made, func(w io.Writer) { row(w, "created group", made.Name, "(id", fmt.Sprint(made.ID)+")") })
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
	c.RunE = a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
		var upd api.GroupChange
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
		g, err := o.UpdateGroup(ctx, args[0], upd, 0)
		if err != nil {
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
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			g, err := o.GetGroup(ctx, args[0])
			if err != nil {
				return err
			}
			if err := o.DeleteGroup(ctx, g.Name, g.Version); err != nil {
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
	c.RunE = a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
		g, err := o.GetGroup(ctx, args[0])
		if err != nil {
			return err
		}
		var groupNames []string
		users, total, err := pages(offset, limit, func(p api.Paging) ([]*usersync.User, int, string, error) {
			page, err := o.ListMembers(ctx, g.Name, api.MemberQuery{Transitive: transitive, Paging: p})
			if err != nil {
				return nil, 0, "", err
			}
			groupNames = page.Groups
			return page.Users, page.Total, page.NextCursor, nil
		})
		if err != nil {
			return err
		}
		groupNames = nonNil(groupNames)
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
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			if len(args) == 1 && len(groupArgs) == 0 {
				return usersync.Errorf(usersync.EINVALID, "name at least one user, or a group with --group")
			}
			ch := api.MembersChange{Add: args[1:], AddGroups: groupArgs}
			if remove {
				ch = api.MembersChange{Remove: args[1:], RemoveGroups: groupArgs}
			}
			done, err := o.ChangeMembers(ctx, args[0], ch, 0)
			if err != nil {
				return err
			}
			past := map[bool]string{false: "added", true: "removed"}[remove]
			users, groups := done.Added, done.AddedGroups
			if remove {
				users, groups = done.Removed, done.RemovedGroups
			}
			if len(groupArgs) > 0 {
				return a.emit(map[string]any{"group": done.Group.Name, past: users, past + "Groups": groups}, func(w io.Writer) {
					row(w, fmt.Sprintf("%s %d of %d users and %d of %d groups", past, users, len(args)-1, groups, len(groupArgs)))
				})
			}
			return a.emit(map[string]any{"group": done.Group.Name, past: users}, func(w io.Writer) {
				row(w, membersChanged(past, users, len(args)-1, remove))
			})
		}),
	}
	c.Flags().StringArrayVar(&groupArgs, "group", nil, "a group to "+verb+" as a member (nested group; repeatable)")
	return c
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
