package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Show the directory at work on the embedded SQLite database: a batch applied, re-applied, changed",
		Args:  cobra.NoArgs,
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			ctx = usersync.WithActor(ctx, "demo")
			w := a.stdout
			fmt.Fprintf(w, "Directory: %s (%s)\n\n", d.Where(), d.Dialect())
			start, err := d.LastChangeSeq(ctx)
			if err != nil {
				return err
			}
			batch := demoBatch()
			step := func(title string) error {
				res, err := d.ApplyBatch(ctx, batch)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s: %d users created, %d updated, %d unchanged; %d groups created; %d memberships added, %d removed; %d rows written\n",
					title, res.UsersCreated, res.UsersUpdated, res.UsersUnchanged, res.GroupsCreated, res.MembersAdded, res.MembersRemoved, res.RowsWritten)
				return nil
			}
			if err := step("1. Apply a batch of 6 users in 2 groups"); err != nil {
				return err
			}
			if err := step("2. Apply the same batch again       "); err != nil {
				return err
			}
			batch.Users[0].User.LastName = "Lovelace-King"
			batch.Members = append(batch.Members, usersync.MemberChange{Group: "demo:Engineering", Username: "grace@example.com", Remove: true})
			if err := step("3. Rename one user, remove a member "); err != nil {
				return err
			}
			fmt.Fprintln(w, "\nGroups and members now:")
			if err := a.printDemoGroups(ctx, d, w); err != nil {
				return err
			}
			fmt.Fprintln(w, "\nChange log of this run (usersync changes --after", start, "shows it again):")
			cs, err := d.ChangesAfter(ctx, start, 0)
			if err != nil {
				return err
			}
			return a.emit(cs, func(tw io.Writer) {
				row(tw, "SEQ", "TIME", "ACTOR", "KIND", "OBJECT", "DETAILS")
				for _, c := range cs {
					printChange(tw, c)
				}
			})
		}),
	}
}

func (a *app) printDemoGroups(ctx context.Context, d *sqlstore.DB, w io.Writer) error {
	for _, name := range []string{"demo:Engineering", "demo:Sales"} {
		g, err := d.FindGroupByName(ctx, name)
		if err != nil {
			return err
		}
		members, _, err := d.Members(ctx, g.ID, 0, 0)
		if err != nil {
			return err
		}
		var names []string
		for _, m := range members {
			names = append(names, m.Username)
		}
		fmt.Fprintf(w, "  %-18s %s\n", g.Name, strings.Join(names, ", "))
	}
	return nil
}

func demoBatch() *usersync.Batch {
	people := []struct{ user, first, last, group string }{
		{"ada@example.com", "Ada", "Lovelace", "demo:Engineering"},
		{"grace@example.com", "Grace", "Hopper", "demo:Engineering"},
		{"alan@example.com", "Alan", "Turing", "demo:Engineering"},
		{"mary@example.com", "Mary", "Jackson", "demo:Sales"},
		{"katherine@example.com", "Katherine", "Johnson", "demo:Sales"},
		{"dorothy@example.com", "Dorothy", "Vaughan", "demo:Sales"},
	}
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{
		{Group: usersync.Group{Name: "demo:Engineering", Description: "Builds things", Source: "demo"}, Create: true, Update: usersync.FieldDescription},
		{Group: usersync.Group{Name: "demo:Sales", Description: "Sells things", Source: "demo"}, Create: true, Update: usersync.FieldDescription},
	}}
	for _, p := range people {
		b.Users = append(b.Users, usersync.UserUpsert{
			User:   usersync.User{Username: p.user, Email: p.user, FirstName: p.first, LastName: p.last, Enabled: true, Source: "demo"},
			Create: true, Update: usersync.ProfileFields,
		})
		b.Members = append(b.Members, usersync.MemberChange{Group: p.group, Username: p.user},
			usersync.MemberChange{Group: usersync.DefaultGroupName, Username: p.user})
	}
	return b
}
