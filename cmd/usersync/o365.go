package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/netfail"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/pull"
	"github.com/usersync/usersync/source/graph"
	"github.com/usersync/usersync/sqlstore"
)

// provisionFlags are the flags that o365 and okta provision share (the seeds' common set).
type provisionFlags struct {
	verbose, dryRun, noSummary, fullSummary   bool
	userType                                  string
	autoCreate                                string
	force, skipDefault, rebind, allowRemovals bool
	syncUserLimit                             int
	targetGroup                               string
}

func (f *provisionFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "write diagnostics (every planned action, warnings) to standard error")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "plan only: print what would change and write nothing (implies -v)")
	fl.BoolVarP(&f.noSummary, "no-summary", "q", false, "do not print the summary at the end")
	fl.BoolVar(&f.fullSummary, "full-summary", false, "list every affected user and group in the summary")
	fl.StringVarP(&f.userType, "user-type", "t", "regular", "type of created users: regular, administrator or power_user")
	fl.StringVarP(&f.autoCreate, "auto-create", "a", "", "all (or no value): create missing groups and users; groups: create groups, only update existing users; absent: only users of existing groups are created and updated")
	fl.Lookup("auto-create").NoOptDefVal = "all"
	c.RegisterFlagCompletionFunc("auto-create", cobra.FixedCompletions([]string{"all\tcreate missing groups and users", "groups\tcreate groups; only update existing users"}, cobra.ShellCompDirectiveNoFileComp))
	types := make([]string, len(usersync.UserTypes))
	for i, t := range usersync.UserTypes {
		types[i] = string(t)
	}
	c.RegisterFlagCompletionFunc("user-type", cobra.FixedCompletions(types, cobra.ShellCompDirectiveNoFileComp))
	fl.BoolVar(&f.force, "force", false, "overwrite profiles of users this source does not own, and apply removals of more than 20% of a group")
	fl.BoolVar(&f.allowRemovals, "allow-removals", false, "apply removals of more than 20% of a group, which are otherwise held (unlike --force, profiles are not taken over)")
	fl.BoolVar(&f.skipDefault, "skip-default-group", false, "do not add synced users to the Default Group")
	fl.IntVar(&f.syncUserLimit, "sync-user-limit", 10000, "refuse, whole, a group with more users than this")
	fl.StringVar(&f.targetGroup, "target-group", "", "sync into this directory group instead of one named like the source group (several source groups may share one: it holds their union)")
	fl.BoolVar(&f.rebind, "rebind", false, "let a directory group that follows another source group of the same name follow this one (its members are replaced)")
	seedFlag(fl, "verbose", "dry-run", "no-summary", "full-summary", "user-type", "auto-create", "force", "skip-default-group", "sync-user-limit", "target-group")
	optionalValue(fl, "auto-create", "--auto-create=all")
	c.Annotations = map[string]string{annArgparse: "true"}
}

func (f *provisionFlags) options() (pull.Options, error) {
	o := pull.Options{Force: f.force, AllowRemovals: f.allowRemovals, SkipDefaultGroup: f.skipDefault, SyncUserLimit: f.syncUserLimit, TargetGroup: f.targetGroup, Rebind: f.rebind}
	if err := usersync.ValidateUserType(f.userType); err != nil {
		return o, usageError{fmt.Errorf("--user-type: %v", err)}
	}
	o.UserType = usersync.UserType(f.userType)
	switch f.autoCreate {
	case "":
		o.AutoCreate = pull.CreateUsers
	case "all":
		o.AutoCreate = pull.CreateAll
	case "groups":
		o.AutoCreate = pull.CreateGroups
	default:
		return o, usageError{fmt.Errorf("--auto-create takes all or groups, not %q", f.autoCreate)}
	}
	if f.syncUserLimit < 1 {
		return o, usageError{fmt.Errorf("--sync-user-limit must be at least 1, not %d", f.syncUserLimit)}
	}
	if f.dryRun {
		f.verbose = true
	}
	return o, nil
}

// credential returns the flag's value, else the environment's, else the setting's.
func credential(ctx context.Context, d *sqlstore.DB, flag, key string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := os.Getenv(key); v != "" {
		return v, nil
	}
	if d == nil { // no directory: no settings
		return "", nil
	}
	s, err := d.Setting(ctx, key)
	return s.Value, err
}

func (a *app) o365Command() *cobra.Command {
	c := &cobra.Command{Use: "o365", Short: "Pull groups and users from Microsoft 365 / Entra ID (Microsoft Graph)"}
	var pf provisionFlags
	var tenant, clientID, clientSecret, authority, graphURL, proxy string
	var m graph.Mapping
	var customAttrs, mapAttrs, transforms, username string
	var full bool
	var fullEvery time.Duration
	p := &cobra.Command{
		Use:   "provision [flags] GROUP...",
		Short: "Sync the named Entra groups (names or object ids) and their users into the directory",
		Long: `Sync the named Entra groups and their users into the directory.

Membership is mirrored: users no longer in the source group leave the
directory group (they are not deleted). A plan that would remove more than
20% (and more than 10) of a group's members, or empty it, is refused unless
--force is given. A user who exists already and is not owned by this tenant
joins the group and keeps its profile; --force overwrites the profile and
makes this tenant its owner. A group name shared by several Entra groups is
an error that lists their object ids; pass one of them instead.

Runs after the first are incremental: Graph delta links kept in the directory
bring only what changed (membership and user profiles). A group is read in
full on the first run, with --full-read, when the last full read is older than
--full-every, when the options change, when Graph says the delta token expired,
and always for groups with nested groups.

With --username and no group, the user is synced in every group synced before
from this tenant.

Credentials come from the flags, else the environment or settings
O365_USERSYNC_TENANT, O365_USERSYNC_CLIENT_ID, O365_USERSYNC_CLIENT_SECRET.
Prefer the environment or settings for the secret: flags show in process lists.

Exit status: 0 every group synced (skipped groups are warned about),
1 a group failed (the others still apply), 2 usage error, 3 every group
synced but users are left that only an administrator can resolve (listed
as UNRESOLVED), 130 interrupted.`,
		Args: cobra.ArbitraryArgs,
	}
	pf.register(p)
	fl := p.Flags()
	fl.StringVar(&tenant, "tenant", "", "directory (tenant) id, GUID or domain name")
	fl.StringVar(&clientID, "client-id", "", "application (client) id")
	fl.StringVar(&clientSecret, "client-secret", "", "client secret value")
	fl.StringVar(&m.UsernameAttr, "username-attr", "userPrincipalName", "user property for the username")
	fl.StringVar(&m.FirstNameAttr, "first-name-attr", "givenName", "user property for the first name")
	fl.StringVar(&m.LastNameAttr, "last-name-attr", "surname", "user property for the last name")
	fl.StringVar(&m.EmailAttr, "email-attr", "mail", "user property for the email address")
	fl.StringVar(&customAttrs, "custom-user-attribute", "", "custom attributes to sync, comma-separated: attr1,attr2")
	fl.StringVar(&mapAttrs, "map-attr-to-group", "", "also add each user to the group named by these attributes' values: attr1,attr2")
	fl.StringVar(&m.CustomAttrAppID, "custom-attr-app-id", "", "application id whose directory extensions hold the custom attributes")
	fl.StringVar(&m.TrustedServerUsernameAttr, "trusted-server-username-attr", "", "user property stored as the attribute trusted_server_username")
	fl.StringVar(&transforms, "attributes-transformation", "", `transformations: [{'attr_name': 'trusted_server_username', 'action': '^([a-zA-Z0-9._%+-]+)@'}] (the first capture group becomes the value)`)
	fl.StringVar(&username, "username", "", "sync only this user: its profile and its membership of the named groups, or of every group synced before")
	fl.BoolVar(&full, "full-read", false, "read the groups in full instead of the changes since the last run")
	fl.DurationVar(&fullEvery, "full-every", 24*time.Hour, "read a group in full when its last full read is older than this (0: only when needed)")
	fl.StringVar(&proxy, "proxy", "", "HTTPS proxy URL (default: HTTPS_PROXY from the environment)")
	fl.StringVar(&authority, "authority-url", envOr("O365_USERSYNC_AUTHORITY_URL", msgraph.DefaultAuthorityURL), "identity platform host (national clouds, emulator); env O365_USERSYNC_AUTHORITY_URL")
	fl.StringVar(&graphURL, "graph-url", envOr("O365_USERSYNC_GRAPH_URL", msgraph.DefaultGraphURL), "Microsoft Graph host (national clouds, emulator); env O365_USERSYNC_GRAPH_URL")
	seedFlag(fl, "tenant", "client-id", "client-secret", "username-attr", "first-name-attr", "last-name-attr", "email-attr", "custom-user-attribute",
		"map-attr-to-group", "custom-attr-app-id", "trusted-server-username-attr", "attributes-transformation", "username")
	p.RunE = func(cmd *cobra.Command, groups []string) error {
		o, err := pf.options()
		if err != nil {
			return err
		}
		if len(groups) == 0 && username == "" {
			return usageError{fmt.Errorf("o365 provision needs at least one group name or object id (or --username)")}
		}
		if fullEvery < 0 {
			return usageError{fmt.Errorf("--full-every must not be negative")}
		}
		o.OnlyUser, o.Full, o.FullEvery = username, full, fullEvery
		o.MapAttrToGroup = splitList(mapAttrs)
		m.CustomAttrs = append(splitList(customAttrs), o.MapAttrToGroup...)
		m.GroupAttrs = o.MapAttrToGroup
		if m.Transformations, err = graph.ParseTransformations(transforms); err != nil {
			return usageError{err}
		}
		if err := m.Check(); err != nil {
			return usageError{err}
		}
		ctx := cmd.Context()
		open := a.open
		if pf.dryRun {
			open = a.openExisting // a dry run leaves nothing behind
		}
		d, err := open(ctx)
		if err != nil {
			return err
		}
		defer d.Close()
		cfg, err := graphConfig(ctx, d, graphFlags{tenant, clientID, clientSecret, authority, graphURL, proxy})
		if err != nil {
			return err
		}
		if pf.verbose {
			cfg.OnRetry = func(what, why string, wait time.Duration) {
				fmt.Fprintf(a.stderr, "retry: %s: %s; trying again in %s\n", what, why, wait.Round(100*time.Millisecond))
			}
		}
		client, err := msgraph.New(cfg)
		if err != nil {
			if usersync.ErrorCode(err) == usersync.EINVALID {
				return usageError{err}
			}
			return err
		}
		src := graph.NewSource(client, m)
		if err := a.adopt(ctx, d, src, pf.dryRun); err != nil {
			return err
		}
		refs := make([]groupRef, len(groups))
		for i, g := range groups {
			refs[i] = groupRef{Name: g}
		}
		if len(groups) == 0 {
			synced, err := pull.SyncedGroups(ctx, d, src.Owner())
			if err != nil {
				return err
			}
			if len(synced) == 0 {
				return fmt.Errorf("--username %q without a group: no group of tenant %q was synced before; name the groups", username, cfg.Tenant)
			}
			for _, g := range synced {
				refs = append(refs, groupRef{Name: g.SourceID, Target: g.Target})
			}
		}
		return a.provision(usersync.WithActor(ctx, src.Owner()), d, src, refs, o, &pf)
	}
	c.AddCommand(p, a.o365CheckCommand())
	return c
}

// adopt identifies the source (a tenant's id, an Okta org's id) and moves
// to that name what the directory keeps under another spelling of it,
// saying so.
func (a *app) adopt(ctx context.Context, d usersync.Directory, src pull.Source, dryRun bool) error {
	notes, warnings, err := pull.Adopt(ctx, d, src, dryRun)
	for _, n := range notes {
		fmt.Fprintf(a.stderr, "usersync: %s\n", n)
	}
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "usersync: warning: %s\n", w)
	}
	return err
}

// proxyClient returns an HTTP client that goes through proxy, or nil (the
// client's default, which honours HTTPS_PROXY) when proxy is empty.
func proxyClient(proxy string) (*http.Client, error) {
	if proxy == "" {
		return nil, nil
	}
	pu, err := url.Parse(proxy)
	if err != nil || pu.Host == "" {
		return nil, usageError{fmt.Errorf("--proxy %q is not a URL", proxy)}
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), ResponseHeaderTimeout: netfail.ResponseTimeout}}, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// groupOutcome is one group's result, for the summary.
type groupOutcome struct {
	Name   string       `json:"name"`
	Result *pull.Result `json:"result,omitempty"`
	Error  string       `json:"error,omitempty"`
	// HeldRemovals are the removals the mass-removal guard held.
	HeldRemovals *pull.MassRemoval `json:"heldRemovals,omitempty"`
}

// provision syncs each group in turn; one group's failure does not stop the
// others. It prints the summary and sets the exit status.
// groupRef names a source group to sync and, when it differs from the
// options', the directory group it goes into.
type groupRef struct {
	Name, Target string
}

func (a *app) provision(ctx context.Context, d usersync.Directory, src pull.Source, groups []groupRef, o pull.Options, pf *provisionFlags) error {
	o.DryRun = pf.dryRun
	o.KeepActions = pf.fullSummary
	if pf.verbose {
		label := "applied:"
		if pf.dryRun {
			label = "plan:"
		}
		o.OnAction = func(act pull.Action) { fmt.Fprintf(a.stderr, "%s %s %s\n", label, act.Kind, describe(act)) }
	}
	var outcomes []groupOutcome
	failed := false
	var interrupted *groupOutcome
	for _, g := range groups {
		name, o := g.Name, o
		if g.Target != "" {
			o.TargetGroup = g.Target
		}
		out := groupOutcome{Name: name}
		bar := a.progress(name, pf)
		o.Progress = bar.update
		res, err := pull.Sync(ctx, d, src, name, o)
		bar.done()
		out.Result = res
		switch {
		case err != nil && ctx.Err() != nil:
			out.Error = "interrupted"
			outcomes = append(outcomes, out)
			interrupted = &outcomes[len(outcomes)-1]
		case err != nil:
			failed = true
			out.Error = usersync.ErrorMessage(err)
			errors.As(err, &out.HeldRemovals)
			if usersync.ErrorCode(err) == usersync.EINTERNAL {
				out.Error += " (" + err.Error() + ")"
			}
			fmt.Fprintf(a.stderr, "usersync: group %q failed: %s\n", name, out.Error)
		case pf.verbose || pf.noSummary:
			a.logResult(res, pf)
		}
		if interrupted != nil {
			break
		}
		outcomes = append(outcomes, out)
	}
	unresolved := 0
	for _, out := range outcomes {
		if out.Result != nil {
			unresolved += len(out.Result.Unresolved)
		}
	}
	if !pf.noSummary {
		if a.output == "json" {
			a.emit(map[string]any{"source": src.Owner(), "dryRun": pf.dryRun, "interrupted": interrupted != nil, "unresolved": unresolved, "groups": outcomes}, nil)
		} else {
			a.printSummary(outcomes, pf)
		}
	}
	if interrupted != nil {
		fmt.Fprintf(a.stderr, "usersync: interrupted while syncing group %q; %s before the stop. Run the same command again to complete it.\n",
			interrupted.Name, writtenSoFar(outcomes))
		return exitError{130}
	}
	if o.OnlyUser != "" && !failed {
		found := false
		for _, out := range outcomes {
			found = found || (out.Result != nil && out.Result.Skipped == "")
		}
		if !found {
			return usersync.Errorf(usersync.ENOTFOUND, "user %q is in none of the groups synced (neither at the source nor in the directory); check the name", o.OnlyUser)
		}
	}
	if failed {
		return exitError{1}
	}
	if unresolved > 0 {
		fmt.Fprintf(a.stderr, "usersync: %d user(s) could not be synced and will not be until an administrator resolves them (listed above); exit status %d\n", unresolved, exitUnresolved)
		return exitError{exitUnresolved}
	}
	return nil
}

// exitUnresolved is the exit status of a pull that synced every group but
// left users only an administrator can resolve: cron mails on it.
const exitUnresolved = 3

// writtenSoFar says what the groups of a stopped run wrote.
func writtenSoFar(outcomes []groupOutcome) string {
	var w usersync.BatchResult
	for _, o := range outcomes {
		if o.Result == nil {
			continue
		}
		r := o.Result.Written
		w.UsersCreated += r.UsersCreated
		w.UsersUpdated += r.UsersUpdated
		w.MembersAdded += r.MembersAdded
		w.MembersRemoved += r.MembersRemoved
	}
	if w.UsersCreated+w.UsersUpdated+w.MembersAdded+w.MembersRemoved == 0 {
		return "nothing was written"
	}
	return fmt.Sprintf("%d users created, %d updated, %d memberships added and %d removed were written", w.UsersCreated, w.UsersUpdated, w.MembersAdded, w.MembersRemoved)
}

// logResult writes a group's diagnostics to standard error: with -v, why it
// was read in full; with -q (no summary), its warnings.
func (a *app) logResult(r *pull.Result, pf *provisionFlags) {
	if r.Skipped != "" {
		fmt.Fprintf(a.stderr, "warning: skipping %s\n", r.Skipped)
		return
	}
	if pf.noSummary {
		for _, w := range r.Warnings {
			fmt.Fprintf(a.stderr, "warning: %s\n", w)
		}
	}
	if r.FullReason != "" && pf.verbose {
		fmt.Fprintf(a.stderr, "read %q in full: %s\n", r.SourceGroup, r.FullReason)
	}
}

func describe(act pull.Action) string {
	s := act.User
	if act.Group != "" && act.User != "" {
		s += " in " + act.Group
	} else if act.Group != "" {
		s = act.Group
	}
	keys := make([]string, 0, len(act.Fields))
	for k := range act.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s += fmt.Sprintf(" %s: %q→%q", k, act.Fields[k].From, act.Fields[k].To)
	}
	return s + " (" + act.Reason + ")"
}

func (a *app) printSummary(outcomes []groupOutcome, pf *provisionFlags) {
	w := a.stdout
	if pf.dryRun {
		fmt.Fprintln(w, "Dry run: nothing was written. Planned:")
	} else {
		fmt.Fprintln(w, "Summary:")
	}
	for _, o := range outcomes {
		switch {
		case o.Error != "" && (o.Result == nil || len(o.Result.Counts) == 0):
			fmt.Fprintf(w, "  %s: FAILED: %s\n", o.Name, o.Error)
		case o.Result.Skipped != "":
			fmt.Fprintf(w, "  %s: skipped: %s\n", o.Name, o.Result.Skipped)
		default:
			r := o.Result
			c := r.Counts
			read := fmt.Sprintf("%d source users", r.SourceUsers)
			if r.Mode == pull.ModeIncremental {
				read = fmt.Sprintf("incremental, %d changed users", r.SourceUsers-r.Left)
				if r.Left > 0 {
					read += fmt.Sprintf(" and %d left", r.Left)
				}
			}
			line := fmt.Sprintf("  %s → %s: %s; users created %d, updated %d, skipped %d; groups created %d; members added %d, removed %d",
				r.SourceGroup, r.Group, read, c[pull.CreateUser], c[pull.UpdateUser], c[pull.SkipUser], c[pull.CreateGroup], c[pull.AddMember], c[pull.RemoveMember])
			if n := c[pull.KeepMember]; n > 0 {
				line += fmt.Sprintf(", kept %d (another source group holds them)", n)
			}
			if n := c[pull.JoinGroup]; n > 0 {
				line += fmt.Sprintf("; joined the Default Group or mapped groups %d", n)
			}
			if o.Error != "" {
				line += "; FAILED: " + o.Error + " (the counts are what was written before)"
			}
			fmt.Fprintln(w, line)
			for _, warn := range r.Warnings {
				fmt.Fprintf(w, "      warning: %s\n", warn)
			}
			for _, act := range r.Unresolved {
				fmt.Fprintf(w, "      UNRESOLVED %s: %s\n", act.User, act.Reason)
			}
			if pf.fullSummary {
				for _, act := range r.Actions {
					fmt.Fprintf(w, "      %-13s %s\n", act.Kind, describe(act))
				}
			}
		}
	}
}
