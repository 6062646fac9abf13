// Command usersync is the usersync identity provisioning hub: one binary for
// managing the directory, pulling users and groups from identity providers,
// serving SCIM, and pushing to targets. This package only wires the others.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
)

// usageError marks a mistake in how the command was called (exit status 2).
type usageError struct{ error }

// app carries what every subcommand shares.
type app struct {
	dbFlag string
	output string
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, stdin: stdin}
	root := a.rootCommand()
	root.SetArgs(joinOptionalValues(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(usersync.WithActor(ctx, cliActor()))
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "usersync: %v\nRun 'usersync --help' for usage.\n", err)
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "usersync: %s\n", usersync.ErrorMessage(err))
	if usersync.ErrorCode(err) == usersync.EINTERNAL {
		fmt.Fprintf(stderr, "usersync: details: %v\n", err)
	}
	return 1
}

// optionalValues are the flags whose value may be left out (argparse's
// nargs='?' in the seeds). As argparse does, such a flag takes the next word
// as its value unless that word is an option: "--auto-create all" means
// --auto-create=all and "--auto-create Sales" is a usage error, while a bare
// "--auto-create" before another flag or at the end means all. pflag itself
// only takes such values after "=".
var optionalValues = map[string]func(next string) bool{
	"--auto-create": notAnOption,
	"-a":            notAnOption,
	"--okta-token":  notAnOption,
	"-P":            notAnOption,
}

func notAnOption(v string) bool { return !strings.HasPrefix(v, "-") }

func joinOptionalValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(out, args[i:]...)
		}
		if takes, ok := optionalValues[args[i]]; ok && i+1 < len(args) && takes(args[i+1]) {
			out = append(out, args[i]+"="+args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// exitError ends the command with a status after it has reported its own outcome.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "usersync",
		Short: "Keep users and groups in step between identity providers and applications",
		Long: `usersync is an identity provisioning hub. It keeps a directory of users,
groups, folders and memberships, pulls groups and their users from Microsoft
365 and Okta, receives SCIM pushes, and records every change in a change log.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&a.dbFlag, "db", "", "directory database: a SQLite file path or a postgres:// URL (env USERSYNC_DB; default "+sqlstore.DefaultPath+")")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if a.output != "table" && a.output != "json" {
			return usageError{fmt.Errorf("--output must be table or json, not %q", a.output)}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.usersCommand(), a.groupsCommand(), a.foldersCommand(), a.tokensCommand(),
		a.settingsCommand(), a.changesCommand(), a.o365Command(), a.oktaCommand(), a.serveCommand(), a.benchCommand(), a.emulateCommand(), a.demoCommand())
	markUsage(root)
	return root
}

// markUsage makes argument-count errors usage errors (exit status 2) everywhere.
func markUsage(c *cobra.Command) {
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	if c.HasSubCommands() && c.RunE == nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return usageError{fmt.Errorf("%q needs a subcommand", cmd.CommandPath())}
		}
		c.Args = cobra.ArbitraryArgs
	}
	for _, sub := range c.Commands() {
		markUsage(sub)
	}
}

// dsn returns the database named by --db, then USERSYNC_DB, then the default.
func (a *app) dsn() string {
	if a.dbFlag != "" {
		return a.dbFlag
	}
	return os.Getenv("USERSYNC_DB")
}

// open opens the directory; the caller closes it.
func (a *app) open(ctx context.Context) (*sqlstore.DB, error) {
	return sqlstore.Open(ctx, a.dsn())
}

// withDB runs fn with an open directory.
func (a *app) withDB(fn func(ctx context.Context, d *sqlstore.DB, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		d, err := a.open(cmd.Context())
		if err != nil {
			return err
		}
		defer d.Close()
		return fn(cmd.Context(), d, args)
	}
}
