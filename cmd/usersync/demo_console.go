package main

import (
	"context"
	"fmt"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/adminui"
	"github.com/usersync/usersync/sqlstore"
)

// demoConsoleUser signs in to the admin console after the demo.
const demoConsoleUser = "console-admin"

// demoConsole gives the demo directory an administrator with a password
// made for this run, and says how to open the console with it.
func (a *app) demoConsole(ctx context.Context, db string) error {
	d, err := sqlstore.Open(ctx, db)
	if err != nil {
		return err
	}
	defer d.Close()
	admin := &usersync.User{Username: demoConsoleUser, Email: "console-admin@example.com", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); usersync.ErrorCode(err) == usersync.ECONFLICT { // a directory named by --db, demoed before
		if admin, err = d.FindUserByUsername(ctx, admin.Username); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("demo: create the console's administrator: %w", err)
	}
	password := usersync.NewSecret("")[:20] // 120 random bits
	hash, err := adminui.HashPassword(password)
	if err != nil {
		return err
	}
	if _, err := d.SetPasswordHash(ctx, admin.ID, hash); err != nil {
		return err
	}
	self := selfCommand()
	fmt.Fprintf(a.stdout, "\nThe admin console: run %s --db %s serve --listen 127.0.0.1:8443\n"+
		"then open http://127.0.0.1:8443/admin and sign in as %s with the password %s\n"+
		"(made for this demo and shown only now; set another with %s --db %s users set-password %s).\n",
		self, db, demoConsoleUser, password, self, db, demoConsoleUser)
	return nil
}
