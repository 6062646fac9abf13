package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/sqlstore"
	"github.com/usersync/usersync/target/entra"
)

// provisionersHold decides what a user provisioner's mass-deprovision
// guard holds back.
func (a *app) provisionersHold() *cobra.Command {
	return &cobra.Command{Use: "hold NAME allow|reject", Short: "Allow or reject the mass deprovision a user provisioner holds back",
		Long: `A run of a user provisioner that would suspend or delete more users than its
--mass-limit and --mass-share allow holds them all back; "provisioners status"
lists the hold. allow runs the provisioner now with the guard lifted for that
run; reject keeps every held user as it is in Entra, quarantined with the
reason ("provisioners retry NAME USER" resumes one).`,
		Args: cobra.ExactArgs(2), ValidArgs: []string{"allow", "reject"},
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if args[1] != "allow" && args[1] != "reject" {
				return usageError{fmt.Errorf("decide a hold with allow or reject, not %q", args[1])}
			}
			p, err := a.findUserProvisioner(ctx, d, args[0])
			if err != nil {
				return err
			}
			client, err := entra.NewClient(ctx, d, p, "", nil)
			if err != nil {
				return err
			}
			r, err := entra.DecideHold(ctx, d, client, p, args[1] == "allow")
			if err != nil {
				return err
			}
			if r == nil {
				fmt.Fprintf(a.stdout, "rejected: the held users stay as they are in Entra, quarantined (usersync provisioners status %s lists them)\n", p.Name)
				return nil
			}
			return a.emit(r, func(w io.Writer) { printUserRun(w, r) })
		})}
}

// provisionersLinks lists what a provisioner keeps of each directory object
// it writes.
func (a *app) provisionersLinks() *cobra.Command {
	return &cobra.Command{Use: "links NAME", Short: "List the directory objects a provisioner writes, the remote object each is linked to, and its state", Args: cobra.ExactArgs(1),
		Long: `A link is what a provisioner keeps of one directory object it writes: the
id of its Entra group (group provisioners) or Entra user (user provisioners),
and its state. Directory ids are never given to another object, so a link
never passes to a group or user created later under the same name. A group
provisioner's link is the group's remote id attribute; unmarking a group keeps
it (the Entra group stays, no longer followed). A user provisioner keeps a
user's link after the user leaves the directory, until its Entra user is
deprovisioned.`,
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			links, err := o.ProvisionerLinks(ctx, args[0])
			if err != nil {
				return err
			}
			return a.emit(links, func(w io.Writer) {
				if len(links) == 0 {
					fmt.Fprintln(w, "no links: the provisioner has written nothing yet")
					return
				}
				row(w, "OBJECT", "ID", "NAME", "REMOTE ID", "STATE", "DETAIL")
				for _, l := range links {
					row(w, l.Object, l.ID, l.Name, orDash(l.RemoteID), l.State, orDash(l.Detail))
				}
			})
		})}
}
