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
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
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
	server string // --server: the API of a usersync serve instead of the database
	token  string
	output string
	usage  string // the command whose --help a usage error points to
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
	a := &app{stdout: stdout, stderr: &lockedWriter{w: stderr}, stdin: stdin}
	root := a.rootCommand()
	if c, _, err := root.Find(args); err == nil && c.Annotations[annArgparse] != "" {
		c.InitDefaultHelpFlag()
		seedFlag(c.Flags(), "help")
		if args, err = argparseArgs(c, args); err != nil {
			return a.exit(err)
		}
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(usersync.WithActor(ctx, cliActor()))
	if err != nil && cmd != nil {
		a.usage = cmd.CommandPath() // the help of the command that was mistyped
	}
	return a.exit(err)
}

// lockedWriter serialises writes: a pull's waits and retries are told
// from the goroutine that fetches pages while actions are printed from the
// one that writes them, both to standard error.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// annArgparse marks commands whose command lines are read as argparse
// reads them (see argparse.go).
const annArgparse = "usersync/argparse"

// exit reports err and returns the exit status.
func (a *app) exit(err error) int {
	stderr := a.stderr
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		usage := a.usage
		if usage == "" {
			usage = "usersync"
		}
		fmt.Fprintf(stderr, "usersync: %v\nRun '%s --help' for usage.\n", err, usage)
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
	root.PersistentFlags().StringVar(&a.server, "server", "", "work through the API of this usersync serve (https://host:port) instead of the database (env "+serverEnv+"); for the directory, settings, tokens, schedules and runs")
	root.PersistentFlags().StringVar(&a.token, "token", "", "with --server: an administrator's API token (env "+tokenEnv+", which keeps it out of the process list)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if a.output != "table" && a.output != "json" {
			return usageError{fmt.Errorf("--output must be table or json, not %q", a.output)}
		}
		if cmd.Flags().Changed("db") && a.dbFlag == "" {
			return usageError{fmt.Errorf("--db is empty: give a SQLite file path or a postgres:// URL (without --db: USERSYNC_DB, else %s)", sqlstore.DefaultPath)}
		}
		return a.checkRemote(cmd)
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.initCommand(), a.usersCommand(), a.groupsCommand(), a.foldersCommand(), a.tokensCommand(),
		a.settingsCommand(), a.changesCommand(), a.o365Command(), a.oktaCommand(), a.provisionersCommand(), a.rolesCommand(), a.mappingsCommand(), a.approvalsCommand(), a.schedulesCommand(), a.runsCommand(), a.serveCommand(), a.benchCommand(), a.emulateCommand(), a.demoCommand(),
		a.versionCommand())
	a.markUsage(root, root)
	return root
}

// markUsage makes argument-count errors usage errors (exit status 2)
// everywhere, and makes a command that only holds others say which word
// it did not know (with the closest one) rather than complain about a flag
// the intended command would have taken.
func (a *app) markUsage(c, root *cobra.Command) {
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
		c.DisableFlagParsing = true // the flags belong to the subcommand that was meant
		c.SuggestionsMinimumDistance = 2
		c.RunE = func(cmd *cobra.Command, args []string) error {
			var word string
			for i := 0; i < len(args); i++ {
				switch arg := args[i]; {
				case arg == "-h" || arg == "--help":
					return cmd.Help()
				case arg == "--version" && cmd == root:
					return a.printVersion()
				case arg == "--db" || arg == "-o" || arg == "--output" || arg == "--server" || arg == "--token":
					i++ // their value is not a command
				case !strings.HasPrefix(arg, "-") && word == "":
					word = arg
				}
			}
			if word == "" {
				return usageError{fmt.Errorf("%q needs a subcommand", cmd.CommandPath())}
			}
			msg := fmt.Sprintf("unknown command %q for %q", word, cmd.CommandPath())
			if s := cmd.SuggestionsFor(word); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return usageError{errors.New(msg)}
		}
		c.Args = cobra.ArbitraryArgs
	}
	for _, sub := range c.Commands() {
		a.markUsage(sub, root)
	}
}

// version is set at build time (-ldflags "-X main.version=v1.2.3"); else
// the module version or VCS revision the binary was built from is shown.
var version = ""

func (a *app) printVersion() error {
	v, rev := version, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "development build"
	}
	if rev != "" {
		v += " (" + rev + ")"
	}
	fmt.Fprintf(a.stdout, "usersync %s, %s\n", v, runtime.Version())
	return nil
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the version of usersync", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return a.printVersion() }}
}

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Make the directory database (--db, USERSYNC_DB, else " + sqlstore.DefaultPath + "), or bring its schema up to date",
		Long: `Make the directory database named by --db (or USERSYNC_DB, else ` + sqlstore.DefaultPath + `): a SQLite
file readable by its owner only, or the tables in a PostgreSQL database.
An existing directory is upgraded to this version's schema; nothing else
changes. Commands that only read, and dry runs, never make a directory.`,
		Args: cobra.NoArgs,
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			v, err := d.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"directory": d.Where(), "backend": d.Dialect(), "schemaVersion": v}, func(w io.Writer) {
				fmt.Fprintf(w, "Directory %s is ready (%s, schema version %d).\n", d.Where(), d.Dialect(), v)
			})
		}),
	}
}

// dsn returns the database named by --db, then USERSYNC_DB, then the default.
func (a *app) dsn() string {
	if a.dbFlag != "" {
		return a.dbFlag
	}
	return os.Getenv("USERSYNC_DB")
}

// open opens the directory, making it when it does not exist; the caller
// closes it. Secret settings are sealed with the key from USERSYNC_SECRET_KEY
// or USERSYNC_SECRET_KEY_FILE, else (SQLite) the key file beside the database.
func (a *app) open(ctx context.Context) (*sqlstore.DB, error) {
	return sqlstore.OpenWith(ctx, a.dsn(), a.openOptions(false))
}

// openExisting opens a directory that exists: reads and dry runs never
// leave one behind.
func (a *app) openExisting(ctx context.Context) (*sqlstore.DB, error) {
	return sqlstore.OpenWith(ctx, a.dsn(), a.openOptions(true))
}

func (a *app) openOptions(existing bool) sqlstore.Options {
	return sqlstore.Options{Existing: existing, SecretKey: os.Getenv(sqlstore.KeyEnv), SecretKeyFile: os.Getenv(sqlstore.KeyFileEnv)}
}

// withDB runs fn with an open directory, made if needed.
func (a *app) withDB(fn func(ctx context.Context, d *sqlstore.DB, args []string) error) func(*cobra.Command, []string) error {
	return a.runWith(a.open, fn)
}

// readDB runs fn with a directory that exists.
func (a *app) readDB(fn func(ctx context.Context, d *sqlstore.DB, args []string) error) func(*cobra.Command, []string) error {
	return a.runWith(a.openExisting, fn)
}

func (a *app) runWith(open func(context.Context) (*sqlstore.DB, error), fn func(ctx context.Context, d *sqlstore.DB, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		d, err := open(cmd.Context())
		if err != nil {
			return err
		}
		defer d.Close()
		return fn(cmd.Context(), d, args)
	}
}
