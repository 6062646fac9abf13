package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/jobs"
	"github.com/usersync/usersync/sqlstore"
)

// Environment variables that make directory commands go through a
// usersync serve's API instead of the database.
const (
	serverEnv = "USERSYNC_SERVER"
	tokenEnv  = "USERSYNC_TOKEN"
)

// annRemote marks the commands that also work through the API (--server).
const annRemote = "usersync/remote"

// remote marks c as one that works with --server too.
func remote(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[annRemote] = "yes"
	return c
}

// serverURL is the API named by --server, else USERSYNC_SERVER; "" means
// the database.
func (a *app) serverURL() string {
	if a.server != "" {
		return a.server
	}
	return os.Getenv(serverEnv)
}

// checkRemote refuses, before anything runs, a command that needs the
// database when --server is given.
func (a *app) checkRemote(cmd *cobra.Command) error {
	if a.serverURL() == "" {
		return nil
	}
	if cmd.Flags().Changed("db") {
		return usageError{fmt.Errorf("--db and --server exclude each other: a command works on the database or through usersync serve's API")}
	}
	if cmd.Annotations[annRemote] == "" && cmd.Name() != "help" && cmd.Name() != "completion" && cmd.Name() != "version" {
		return usageError{fmt.Errorf("%q works on the database itself, not through the API: run it where the database is (--db or USERSYNC_DB), without --server or %s", cmd.CommandPath(), serverEnv)}
	}
	return nil
}

// withOps runs fn with the Operations: through the API with --server,
// else on the database (made if needed unless readOnly).
func (a *app) withOps(readOnly bool, fn func(ctx context.Context, o api.Operations, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if srv := a.serverURL(); srv != "" {
			tok := a.token
			if tok == "" {
				tok = os.Getenv(tokenEnv)
			}
			c, err := api.NewClient(srv, tok, nil)
			if err != nil {
				return err
			}
			return fn(ctx, c, args)
		}
		open := a.open
		if readOnly {
			open = a.openExisting
		}
		d, err := open(ctx)
		if err != nil {
			return err
		}
		defer d.Close()
		return fn(ctx, a.local(d), args)
	}
}

// local is the Operations on the database, done in this process: a
// decision on a quarantined run and a provisioner retry run here, now.
func (a *app) local(d *sqlstore.DB) *api.Local {
	return &api.Local{Dir: d, Options: api.Options{
		CheckCommand: func(ctx context.Context, command []string) error { return a.checkCommand(ctx, d, command) },
		Decide: func(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
			if !allow {
				return jobs.Reject(ctx, d, id, cliActor())
			}
			done, runErr, err := jobs.AllowRemovals(ctx, d, id, &usersync.Run{Trigger: "allow-removals", StartedBy: cliActor()}, a.runner())
			if err != nil {
				return nil, err
			}
			if runErr != nil {
				return nil, fmt.Errorf("run %d, allowing the removals of run %d, failed: %w", done.ID, id, runErr)
			}
			return done, nil
		},
	}}
}
