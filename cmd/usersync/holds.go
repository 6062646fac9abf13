package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

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
