package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/jobs"
	"github.com/usersync/usersync/schedule"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) schedulesCommand() *cobra.Command {
	c := &cobra.Command{Use: "schedules", Short: "Run pulls on a schedule, as jobs of usersync serve"}
	for _, sub := range []*cobra.Command{a.schedulesCreate(), a.schedulesList(), a.schedulesShow(), a.schedulesUpdate(), a.schedulesDelete(),
		a.schedulesPause(true), a.schedulesPause(false), a.schedulesRun()} {
		c.AddCommand(remote(sub))
	}
	return c
}

// secretFlags are the flags that would put a secret in a stored command
// line, and where the secret belongs instead.
var secretFlags = map[string]string{
	"client-secret": "O365_USERSYNC_CLIENT_SECRET",
	"okta-token":    "OKTA_USERSYNC_TOKEN",
	"P":             "OKTA_USERSYNC_TOKEN",
}

// checkCommand checks a schedule's command line as the command itself
// reads it: a pull (o365 provision or okta provision), flags it knows,
// groups named, no secret in it, and the secret it needs set.
func (a *app) checkCommand(ctx context.Context, d *sqlstore.DB, command []string) error {
	if len(command) < 2 || command[1] != "provision" || (command[0] != "o365" && command[0] != "okta") {
		return usageError{fmt.Errorf("a schedule runs a pull: give `-- o365 provision …` or `-- okta provision …` after the flags, not %q", strings.Join(command, " "))}
	}
	for _, arg := range command {
		name := strings.TrimLeft(strings.SplitN(arg, "=", 2)[0], "-")
		if key, ok := secretFlags[name]; ok && strings.HasPrefix(arg, "-") {
			return usageError{fmt.Errorf("a schedule's command line is stored and shown: it must not hold a secret (%s); set %s with `usersync settings set` (stored sealed) or in serve's environment", arg, key)}
		}
	}
	root := (&app{stdout: io.Discard, stderr: io.Discard}).rootCommand()
	cmd, rest, err := root.Find(command)
	if err != nil || cmd.Name() != "provision" {
		return usageError{fmt.Errorf("%q is not a usersync command", strings.Join(command, " "))}
	}
	args := rest
	if cmd.Annotations[annArgparse] != "" {
		cmd.InitDefaultHelpFlag()
		if args, err = argparseArgs(cmd, rest); err != nil {
			return usageError{fmt.Errorf("the schedule's command line: %w", err)}
		}
	}
	if err := cmd.ParseFlags(args); err != nil {
		return usageError{fmt.Errorf("the schedule's command line: %w", err)}
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return usageError{fmt.Errorf("the schedule's command line: %w", err)}
	}
	key := "O365_USERSYNC_CLIENT_SECRET"
	if command[0] == "okta" {
		key = "OKTA_USERSYNC_TOKEN"
	}
	if v, err := credential(ctx, d, "", key); err != nil {
		return err
	} else if v == "" {
		return usersync.Errorf(usersync.EINVALID, "the schedule would run without its secret: set %s with `usersync settings set %s` (stored sealed), or in the environment of usersync serve, first", key, key)
	}
	return nil
}

func checkCron(spec, tz string) error {
	if _, err := schedule.Parse(spec, tz); err != nil {
		return usageError{err}
	}
	return nil
}

func (a *app) schedulesCreate() *cobra.Command {
	var cronSpec, tz string
	var paused bool
	c := &cobra.Command{
		Use:   "create NAME --cron SPEC [--time-zone TZ] -- o365|okta provision [flags] GROUP...",
		Short: "Create a schedule: a pull that usersync serve runs on a cron schedule",
		Long: `Create a schedule. The cron is standard (five fields: "*/40 * * * *") or the
Quartz form with seconds ("0 0/40 * * * ?"), in --time-zone (default UTC).
The command line after -- is checked as the command reads it. It must not
hold secrets: the pull takes them from the settings (O365_USERSYNC_CLIENT_SECRET,
OKTA_USERSYNC_TOKEN) or serve's environment.`,
		Args: cobra.MinimumNArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			name, command := args[0], args[1:]
			if err := usersync.ValidateScheduleName(name); err != nil {
				return err
			}
			if err := checkCron(cronSpec, tz); err != nil {
				return err
			}
			// The command line is checked where the schedule is stored: here,
			// or by the server with --server.
			s, err := o.CreateSchedule(ctx, api.NewSchedule{Name: name, Cron: cronSpec, TimeZone: tz, Command: command, Paused: paused})
			if err != nil {
				return err
			}
			return a.emit(s, func(w io.Writer) { row(w, "created schedule", s.Name, "("+nextRun(s)+")") })
		}),
	}
	c.Flags().StringVar(&cronSpec, "cron", "", "when to run: five-field cron or Quartz with seconds (required)")
	c.Flags().StringVar(&tz, "time-zone", "", "IANA time zone the cron is read in (default UTC)")
	c.Flags().BoolVar(&paused, "paused", false, "create it paused")
	c.MarkFlagRequired("cron")
	return c
}

// nextRun says when a schedule runs next.
func nextRun(s *usersync.Schedule) string {
	return schedule.NextRun(s.Cron, s.TimeZone, s.Paused, time.Now())
}

func (a *app) schedulesList() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the schedules", Args: cobra.NoArgs,
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			list, err := o.ListSchedules(ctx)
			if err != nil {
				return err
			}
			return a.emit(nonNil(list), func(w io.Writer) {
				row(w, "NAME", "CRON", "TIME ZONE", "NEXT", "COMMAND")
				for _, s := range list {
					row(w, s.Name, s.Cron, orDash(s.TimeZone), nextRun(s), strings.Join(s.Command, " "))
				}
			})
		})}
}

func (a *app) schedulesShow() *cobra.Command {
	return &cobra.Command{Use: "show NAME", Short: "Show a schedule and its latest runs", Args: cobra.ExactArgs(1),
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			s, err := o.GetSchedule(ctx, args[0])
			if err != nil {
				return err
			}
			runs, err := o.ListRuns(ctx, s.Name, 10)
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"schedule": s, "runs": nonNil(runs)}, func(w io.Writer) {
				row(w, "name:", s.Name)
				row(w, "cron:", s.Cron, orDash(s.TimeZone))
				row(w, "command:", strings.Join(s.Command, " "))
				row(w, "state:", nextRun(s))
				printRuns(w, runs)
			})
		})}
}

func printRuns(w io.Writer, runs []*usersync.Run) {
	row(w, "RUN", "SCHEDULE", "TRIGGER", "STARTED", "OUTCOME", "ERROR")
	for _, r := range runs {
		row(w, r.ID, r.Schedule, r.Trigger, r.StartedAt.Format(time.RFC3339), r.Outcome, orDash(r.Error))
	}
}

func (a *app) schedulesUpdate() *cobra.Command {
	var cronSpec, tz string
	c := &cobra.Command{Use: "update NAME [--cron SPEC] [--time-zone TZ] [-- COMMAND...]", Short: "Change a schedule", Args: cobra.MinimumNArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			cur, err := o.GetSchedule(ctx, args[0])
			if err != nil {
				return err
			}
			var ch api.ScheduleChange
			spec, zone := cur.Cron, cur.TimeZone
			if c := cronSpec; c != "" {
				ch.Cron, spec = &c, c
			}
			if tz != "" {
				ch.TimeZone, zone = &tz, tz
			}
			if err := checkCron(spec, zone); err != nil {
				return err
			}
			if len(args) > 1 {
				command := args[1:]
				ch.Command = &command
			}
			s, err := o.UpdateSchedule(ctx, cur.Name, ch, cur.Version)
			if err != nil {
				return err
			}
			return a.emit(s, func(w io.Writer) { row(w, "updated schedule", s.Name, "("+nextRun(s)+")") })
		})}
	c.Flags().StringVar(&cronSpec, "cron", "", "new cron")
	c.Flags().StringVar(&tz, "time-zone", "", "new time zone")
	return c
}

func (a *app) schedulesDelete() *cobra.Command {
	return &cobra.Command{Use: "delete NAME", Short: "Delete a schedule (its runs stay on record)", Args: cobra.ExactArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			if err := o.DeleteSchedule(ctx, args[0]); err != nil {
				return err
			}
			return a.emit(map[string]string{"deleted": args[0]}, func(w io.Writer) { row(w, "deleted schedule", args[0]) })
		})}
}

func (a *app) schedulesPause(pause bool) *cobra.Command {
	verb, short := "resume", "Resume a paused schedule"
	if pause {
		verb, short = "pause", "Pause a schedule: serve no longer starts it (a run in progress finishes)"
	}
	return &cobra.Command{Use: verb + " NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			s, err := o.UpdateSchedule(ctx, args[0], api.ScheduleChange{Paused: &pause}, 0)
			if err != nil {
				return err
			}
			return a.emit(s, func(w io.Writer) { row(w, verb+"d schedule", s.Name, "("+nextRun(s)+")") })
		})}
}

// schedulesRun runs a schedule now and waits for it: in this process on
// the database, or queued on serve's replicas with --server.
func (a *app) schedulesRun() *cobra.Command {
	var wait time.Duration
	c := &cobra.Command{Use: "run NAME", Short: "Run a schedule now, wait, and print the result", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.serverURL() != "" {
				return a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
					return a.queueRun(ctx, o, args[0], wait)
				})(cmd, args)
			}
			return a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
				s, err := d.FindSchedule(ctx, args[0])
				if err != nil {
					return err
				}
				done, runErr, err := jobs.Record(ctx, d, &usersync.Run{Schedule: s.Name, Trigger: "cli", StartedBy: cliActor()}, s.Command, a.runner())
				if err != nil {
					return err
				}
				return a.ranSchedule(done, runErr)
			})(cmd, args)
		}}
	c.Flags().DurationVar(&wait, "wait", 10*time.Minute, "with --server: how long to wait for the queued run to end")
	return c
}

// ranSchedule prints a run that ended, and fails when it did.
func (a *app) ranSchedule(done *usersync.Run, runErr error) error {
	if err := a.emit(done, func(w io.Writer) {
		row(w, "run", done.ID, "of", done.Schedule+":", done.Outcome)
		if done.Output != "" {
			fmt.Fprintln(w, strings.TrimSpace(done.Output))
		}
	}); err != nil {
		return err
	}
	switch {
	case done.Outcome == usersync.RunQuarantined:
		return usersync.Errorf(usersync.ECONFLICT, "schedule %s, run %d: %s", done.Schedule, done.ID, done.Error)
	case runErr != nil:
		return fmt.Errorf("schedule %s failed (run %d): %w", done.Schedule, done.ID, runErr)
	case done.Outcome == usersync.RunFailed:
		return usersync.Errorf(usersync.ECONFLICT, "schedule %s failed (run %d): %s", done.Schedule, done.ID, done.Error)
	}
	return nil
}

// queueRun asks serve for a run now and waits for it: the first run of the
// schedule that starts after the request (or the one already going, when
// the request was a duplicate) is the one reported.
func (a *app) queueRun(ctx context.Context, o api.Operations, name string, wait time.Duration) error {
	before, err := o.ListRuns(ctx, name, 1)
	if err != nil {
		return err
	}
	var last int64
	if len(before) > 0 {
		last = before[0].ID
		if before[0].Outcome == usersync.RunRunning {
			last-- // a duplicate request waits for the run in progress
		}
	}
	dup, err := o.RunSchedule(ctx, name)
	if err != nil {
		return err
	}
	if dup {
		fmt.Fprintf(a.stderr, "A run of %s was already waiting or running: waiting for it.\n", name)
	}
	deadline := time.Now().Add(wait)
	for {
		runs, err := o.ListRuns(ctx, name, 5)
		if err != nil {
			return err
		}
		for i := len(runs) - 1; i >= 0; i-- { // oldest first
			if r := runs[i]; r.ID > last && r.Outcome != usersync.RunRunning {
				return a.ranSchedule(r, nil)
			}
		}
		if time.Now().After(deadline) {
			return usersync.Errorf(usersync.EUNAVAILABLE, "no run of %s ended within --wait %s: it is queued or running on serve; see `usersync runs list --schedule %s`", name, wait, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// runsDecide answers a quarantined run: allow runs its command again with
// --allow-removals (recorded as a run of its own: here on the database,
// queued on serve with --server); reject leaves the directory as it is.
// Either way the held run records the decision.
func (a *app) runsDecide(allow bool) *cobra.Command {
	verb, short := "reject", "Reject the removals a quarantined run held: nothing is removed"
	if allow {
		verb, short = "allow-removals", "Apply the removals a quarantined run held: its command runs again with --allow-removals"
	}
	return remote(&cobra.Command{Use: verb + " RUN", Short: short, Args: cobra.ExactArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("a run id is a number, not %q", args[0])}
			}
			done, err := o.DecideRun(ctx, id, allow)
			if err != nil {
				return err
			}
			return a.emit(done, func(w io.Writer) {
				switch {
				case !allow:
					row(w, "run", id, "rejected: nothing was removed")
				case done.ID == id: // queued on serve
					row(w, "run", id, "allowed: a run that applies its removals is queued (see `usersync runs list --schedule "+done.Schedule+"`)")
				default:
					row(w, "run", done.ID, "applied the removals run", id, "held")
				}
			})
		})})
}

// runner runs a schedule's command line in this process, on this
// directory, and returns its JSON output.
func (a *app) runner() jobs.Runner {
	dsn := a.dsn()
	return func(ctx context.Context, command []string) (string, error) {
		var out, errOut bytes.Buffer
		args := []string{"-o", "json"}
		if dsn != "" {
			args = append(args, "--db", dsn)
		}
		if code := run(ctx, append(args, command...), strings.NewReader(""), &out, &errOut); code != 0 {
			if held := heldRemovals(out.Bytes()); held != nil {
				return out.String(), held
			}
			msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(errOut.String()), "usersync: "))
			if msg == "" {
				msg = "exit status " + strconv.Itoa(code)
			}
			if code == exitUnresolved {
				return out.String(), &jobs.Unresolved{Detail: msg}
			}
			return out.String(), errors.New(msg)
		}
		return out.String(), nil
	}
}

func (a *app) runsCommand() *cobra.Command {
	c := &cobra.Command{Use: "runs", Short: "The record of schedule runs"}
	var schedName string
	var limit int
	list := &cobra.Command{Use: "list", Short: "List runs, latest first", Args: cobra.NoArgs,
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			runs, err := o.ListRuns(ctx, schedName, limit)
			if err != nil {
				return err
			}
			return a.emit(nonNil(runs), func(w io.Writer) { printRuns(w, runs) })
		})}
	list.Flags().StringVar(&schedName, "schedule", "", "only this schedule's runs")
	list.Flags().IntVar(&limit, "limit", 20, "at most this many runs (0: all)")
	show := &cobra.Command{Use: "show ID", Short: "Show a run with its output", Args: cobra.ExactArgs(1),
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("a run id is a number, not %q", args[0])}
			}
			r, err := o.GetRun(ctx, id)
			if err != nil {
				return err
			}
			return a.emit(r, func(w io.Writer) {
				printRuns(w, []*usersync.Run{r})
				if r.EndedAt != nil {
					row(w, "ended:", r.EndedAt.Format(time.RFC3339), "by", r.StartedBy, "attempt", r.Attempt)
				}
				if r.Output != "" {
					fmt.Fprintln(w, strings.TrimSpace(r.Output))
				}
			})
		})}
	c.AddCommand(remote(list), remote(show), a.runsDecide(true), a.runsDecide(false))
	return c
}

// servingHolder names this serve process in runs and River.
func servingHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("serve:%s:%d", host, os.Getpid())
}

// heldRemovals reads a pull's JSON summary for groups whose removals the
// mass-removal guard held; nil when there are none (the run failed
// otherwise, or did not).
func heldRemovals(output []byte) *jobs.Held {
	var summary struct {
		Groups []groupOutcome `json:"groups"`
	}
	if json.Unmarshal(output, &summary) != nil {
		return nil
	}
	var parts []string
	for _, g := range summary.Groups {
		if g.Error != "" && g.HeldRemovals == nil {
			return nil // a group failed for another reason: the run failed
		}
		if g.HeldRemovals == nil {
			continue
		}
		h := g.HeldRemovals
		parts = append(parts, fmt.Sprintf("group %q would lose %d of its %d members (%s…)", h.Group, h.Remove, h.Total, strings.Join(h.Sample[:min(3, len(h.Sample))], ", ")))
	}
	if len(parts) == 0 {
		return nil
	}
	return &jobs.Held{Detail: "removals held: " + strings.Join(parts, "; ") + "; the other changes applied"}
}
