package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/sqlstore"
	"github.com/usersync/usersync/target/entra"
)

// Roles, mappings, user provisioners' rules, approvals and provisioning
// logs: the OneLogin model of seed 004.

func (a *app) rolesCommand() *cobra.Command {
	c := &cobra.Command{Use: "roles", Aliases: []string{"role"}, Short: "Roles: which users an app (a user provisioner) is for",
		Long: `A role says which users an app is for. A user holds a role by hand
("usersync users roles add USER ROLE") or through a mapping ("usersync
mappings create"). A user provisioner provisions the users holding its
--scope-role.`}
	var desc string
	create := &cobra.Command{Use: "create NAME", Short: "Make a role", Args: cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			r := &usersync.Role{Name: args[0], Description: desc}
			if err := d.CreateRole(ctx, r); err != nil {
				return err
			}
			return a.emit(r, func(w io.Writer) { fmt.Fprintf(w, "created role %s\n", r.Name) })
		})}
	create.Flags().StringVar(&desc, "description", "", "what the role is for")
	list := &cobra.Command{Use: "list", Short: "List roles, with how many users hold each by hand and through mappings", Args: cobra.NoArgs,
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			roles, err := d.FindRoles(ctx)
			if err != nil {
				return err
			}
			ms, err := d.FindMappings(ctx)
			if err != nil {
				return err
			}
			via := map[string][]string{}
			for _, m := range ms {
				n, err := rules.CountMapping(ctx, d, m)
				if err != nil {
					return err
				}
				for _, r := range m.Roles {
					k := strings.ToLower(r)
					via[k] = append(via[k], fmt.Sprintf("%s (%d users)", m.Name, n))
				}
			}
			return a.emit(nonNil(roles), func(w io.Writer) {
				row(w, "ROLE", "BY HAND", "MAPPINGS", "DESCRIPTION")
				for _, r := range roles {
					row(w, r.Name, r.Users, orDash(strings.Join(via[strings.ToLower(r.Name)], ", ")), orDash(r.Description))
				}
			})
		})}
	del := &cobra.Command{Use: "delete NAME", Short: "Delete a role (refused while a mapping sets it)", Args: cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			ps, err := d.FindProvisioners(ctx)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Config.Users != nil {
					for _, r := range p.Config.Users.ScopeRoles {
						if strings.EqualFold(r, args[0]) {
							return usersync.Errorf(usersync.ECONFLICT, "role %q is the scope of provisioner %s: change its --scope-role first", args[0], p.Name)
						}
					}
				}
			}
			if err := d.DeleteRole(ctx, args[0]); err != nil {
				return err
			}
			return a.emit(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "deleted role %s\n", args[0]) })
		})}
	c.AddCommand(create, list, del)
	return c
}

func (a *app) usersRoles() *cobra.Command {
	c := &cobra.Command{Use: "roles", Short: "A user's roles: show them, give or take one by hand"}
	show := &cobra.Command{Use: "show USER", Short: "Show a user's roles and how each is held", Args: cobra.ExactArgs(1),
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			u, err := d.FindUserByUsername(ctx, args[0])
			if err != nil {
				return err
			}
			grants, err := rules.Roles(ctx, d, []*usersync.User{u})
			if err != nil {
				return err
			}
			g := nonNil(grants[u.ID])
			return a.emit(g, func(w io.Writer) {
				if len(g) == 0 {
					fmt.Fprintf(w, "%s holds no role\n", u.Username)
					return
				}
				row(w, "ROLE", "HELD")
				for _, x := range g {
					row(w, x.Role, x.Via)
				}
			})
		})}
	change := func(add bool) *cobra.Command {
		use, short := "add USER ROLE", "Give a user a role by hand"
		if !add {
			use, short = "remove USER ROLE", "Take a role held by hand from a user"
		}
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(2),
			RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
				u, err := d.FindUserByUsername(ctx, args[0])
				if err != nil {
					return err
				}
				if add {
					err = d.AssignRole(ctx, u.ID, args[1])
				} else {
					err = d.UnassignRole(ctx, u.ID, args[1])
				}
				if err != nil {
					return err
				}
				verb := map[bool]string{true: "gave", false: "took"}[add]
				return a.emit(map[string]any{"user": u.Username, "role": args[1], "added": add}, func(w io.Writer) {
					fmt.Fprintf(w, "%s %s role %s (provisioners act on it at their next run)\n", verb, u.Username, args[1])
				})
			})}
	}
	c.AddCommand(show, change(true), change(false))
	return c
}

func (a *app) mappingsCommand() *cobra.Command {
	c := &cobra.Command{Use: "mappings", Aliases: []string{"mapping"}, Short: "Mappings: give roles to the users a condition holds for",
		Long: `A mapping gives roles to every user its condition holds for, evaluated in the
database. Mappings apply by themselves: roles are read through them whenever
a provisioner runs, so a new member, a changed attribute or a changed mapping
takes effect at the next run (at once under usersync serve).

Conditions use the SCIM filter syntax over user fields:
  memberOf co "Office 365"           member of a group whose name contains it
  displayName eq "Josh Ames"         first and last name
  attributes.department sw "Sales"   a custom attribute
  not (email pr)                     email is empty
  a and b, a or b, not (a)           all, any, negation
Fields: ` + rules.FieldNames() + `.`}
	var cond string
	var roles []string
	var pos int
	create := &cobra.Command{Use: "create NAME --if CONDITION --set-role ROLE", Short: "Make a mapping", Args: cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if _, err := rules.Parse(cond); err != nil {
				return err
			}
			m := &usersync.Mapping{Name: args[0], Condition: cond, Roles: roles, Position: pos}
			if err := d.CreateMapping(ctx, m); err != nil {
				return err
			}
			n, err := rules.CountMapping(ctx, d, m)
			if err != nil {
				return err
			}
			return a.emit(m, func(w io.Writer) {
				fmt.Fprintf(w, "created mapping %s (position %d): %d users get role %s\n", m.Name, m.Position, n, strings.Join(m.Roles, ", "))
			})
		})}
	create.Flags().StringVar(&cond, "if", "", "the condition (see usersync mappings --help)")
	create.Flags().StringSliceVar(&roles, "set-role", nil, "the role(s) to set (repeatable)")
	create.Flags().IntVar(&pos, "position", 0, "place in the order (default: last)")
	create.MarkFlagRequired("if")
	create.MarkFlagRequired("set-role")
	var ucond string
	var uroles []string
	var upos int
	update := &cobra.Command{Use: "update NAME [--if CONDITION] [--set-role ROLE] [--position N]", Short: "Change a mapping", Args: cobra.ExactArgs(1)}
	update.Flags().StringVar(&ucond, "if", "", "the new condition")
	update.Flags().StringSliceVar(&uroles, "set-role", nil, "the new role(s)")
	update.Flags().IntVar(&upos, "position", 0, "the new place in the order")
	update.RunE = a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		ms, err := d.FindMappings(ctx)
		if err != nil {
			return err
		}
		var m *usersync.Mapping
		for _, x := range ms {
			if strings.EqualFold(x.Name, args[0]) {
				m = x
			}
		}
		if m == nil {
			return usersync.Errorf(usersync.ENOTFOUND, "no mapping named %q", args[0])
		}
		if update.Flags().Changed("if") {
			if _, err := rules.Parse(ucond); err != nil {
				return err
			}
			m.Condition = ucond
		}
		if update.Flags().Changed("set-role") {
			m.Roles = uroles
		}
		m.Position = 0
		if update.Flags().Changed("position") {
			m.Position = upos
		}
		if err := d.UpdateMapping(ctx, m); err != nil {
			return err
		}
		return a.emit(m, func(w io.Writer) { fmt.Fprintf(w, "updated mapping %s (position %d)\n", m.Name, m.Position) })
	})
	list := &cobra.Command{Use: "list", Short: "List mappings in their order, with how many users each holds for", Args: cobra.NoArgs,
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			ms, err := d.FindMappings(ctx)
			if err != nil {
				return err
			}
			counts := make([]int, len(ms))
			for i, m := range ms {
				if counts[i], err = rules.CountMapping(ctx, d, m); err != nil {
					return err
				}
			}
			return a.emit(nonNil(ms), func(w io.Writer) {
				row(w, "#", "MAPPING", "CONDITION", "SET ROLE", "USERS")
				for i, m := range ms {
					row(w, m.Position, m.Name, m.Condition, strings.Join(m.Roles, ", "), counts[i])
				}
			})
		})}
	del := &cobra.Command{Use: "delete NAME", Short: "Delete a mapping", Args: cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if err := d.DeleteMapping(ctx, args[0]); err != nil {
				return err
			}
			return a.emit(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "deleted mapping %s\n", args[0]) })
		})}
	var dry bool
	reapply := &cobra.Command{Use: "reapply [--dry-run]", Short: "Run every user provisioner now, with the mappings and rules as they are (dry: show what would change)", Args: cobra.NoArgs}
	reapply.Flags().BoolVarP(&dry, "dry-run", "n", false, "show what would change in each tenant; change nothing")
	reapply.RunE = func(cmd *cobra.Command, args []string) error {
		run := a.withDB
		if dry {
			run = a.readDB
		}
		return run(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			results, err := entra.ReapplyAll(ctx, d, dry)
			if err != nil {
				return err
			}
			return a.printUserRuns(results, "no user provisioner: nothing to reapply (usersync provisioners create NAME --kind users …)")
		})(cmd, args)
	}
	c.AddCommand(create, update, list, del, reapply)
	return c
}

func describeUserAction(x entra.UserAction) string {
	s := fmt.Sprintf("%-9s %-13s %s: %s", x.Status, x.Kind, x.User, x.Reason)
	if len(x.Modified) > 0 {
		var parts []string
		for _, k := range sortedFields(x.Modified) {
			f := x.Modified[k]
			parts = append(parts, fmt.Sprintf("%s %q → %q", k, f.From, f.To))
		}
		s += " [" + strings.Join(parts, "; ") + "]"
	}
	if x.Approval != 0 {
		s += fmt.Sprintf(" (approval %d: usersync approvals approve %d)", x.Approval, x.Approval)
	}
	if x.Error != "" {
		s += " — " + x.Error
		if x.Code != "" {
			s += " (" + x.Code + ")"
		}
	}
	return s
}

func sortedFields(m map[string]usersync.FieldChange) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func printUserRun(w io.Writer, r *entra.UserResult) {
	for _, x := range r.Actions {
		fmt.Fprintln(w, describeUserAction(x))
	}
	counts := countsText(r.Counts)
	prefix := ""
	if r.DryRun {
		prefix = "dry run, nothing written: "
	}
	fmt.Fprintf(w, "provisioner %s: %s%d users in scope; %s; %d failed, %d waiting for approval\n", r.Provisioner, prefix, r.InScope, counts, r.Failed, r.Pending)
	if r.Held > 0 {
		fmt.Fprintf(w, "  HELD: %s\n", r.HeldReason)
	}
}

// countsText is a run's counts as "kind n, kind n" in order, or "nothing to write".
func countsText[K ~string](counts map[K]int) string {
	kinds := make([]string, 0, len(counts))
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		return "nothing to write"
	}
	return strings.Join(kinds, ", ")
}

// printUserRuns prints user runs (say, when there are none) and exits 1
// when one of them has a failed user.
func (a *app) printUserRuns(results []*entra.UserResult, none string) error {
	failed := false
	for _, r := range results {
		failed = failed || r.Failed > 0
	}
	if err := a.emit(nonNil(results), func(w io.Writer) {
		if len(results) == 0 && none != "" {
			fmt.Fprintln(w, none)
		}
		for _, r := range results {
			printUserRun(w, r)
		}
	}); err != nil {
		return err
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// runUsers runs a user provisioner for "provisioners run|reconcile".
func (a *app) runUsers(ctx context.Context, d usersync.Directory, p *usersync.Provisioner, o entra.UserOptions, verbose bool) error {
	x, err := entra.OpenUsers(ctx, d, p)
	if err != nil {
		return err
	}
	o.KeepActions = true
	if verbose {
		o.OnAction = func(act entra.UserAction) { fmt.Fprintln(a.stderr, describeUserAction(act)) }
	}
	r, err := x.Run(ctx, o)
	if r != nil && (err == nil || len(r.Actions) > 0) {
		if perr := a.emit(r, func(w io.Writer) { printUserRun(w, r) }); perr != nil {
			return perr
		}
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(a.stderr, "usersync: interrupted: what was done before the stop is listed above and kept. Run the same command again to complete it.")
		return exitError{130}
	}
	if err != nil {
		return err
	}
	if r.Failed > 0 || r.Held > 0 {
		return exitError{1}
	}
	return nil
}

// userProvisionerFlags are the settings of a user provisioner.
type userProvisionerFlags struct {
	kind        string
	scopeRoles  []string
	approve     []string
	deprovision string
	params      []string
	immutableID string
	massLimit   int
	massShare   int
	expiry      time.Duration
}

func (f *userProvisionerFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.kind, "kind", usersync.ProvisionerGroups, "groups (push marked groups, Grouper's provisioner) or users (provision users into Office 365 under roles and rules)")
	c.Flags().StringSliceVar(&f.scopeRoles, "scope-role", nil, "--kind users: the role(s) that put a user in scope (repeatable)")
	c.Flags().StringSliceVar(&f.approve, "approve", nil, "--kind users: actions that wait for an administrator: any of create,adopt,update,suspend,delete (adopt: taking over an Entra user with the UPN; create includes it)")
	c.Flags().DurationVar(&f.expiry, "approval-expiry", 0, "--kind users: how long an approval stands, waiting or approved and not yet sent, before a run asks again (default 168h)")
	c.Flags().StringVar(&f.deprovision, "deprovision", "", "--kind users: when a user leaves scope or the directory: delete, suspend (default) or nothing")
	c.Flags().StringArrayVar(&f.params, "param", nil, "--kind users: PROPERTY=EXPRESSION, a JEXL expression over user for an Entra user property (repeatable; e.g. usageLocation='\"US\"', department=user.attributes.dept)")
	c.Flags().StringVar(&f.immutableID, "immutable-id-attribute", "", "--kind users: the user attribute that keeps the ImmutableID (default "+usersync.DefaultImmutableIDAttr+")")
	c.Flags().IntVar(&f.massLimit, "mass-limit", 0, fmt.Sprintf("--kind users: a run that would deprovision more than this many users … (default %d)", usersync.DefaultMassLimit))
	c.Flags().IntVar(&f.massShare, "mass-share", 0, fmt.Sprintf("--kind users: … and more than this percent of those provisioned holds them for an administrator (default %d)", usersync.DefaultMassShare))
}

// apply writes the flags given into c (all of them for a new provisioner).
func (f *userProvisionerFlags) apply(cmd *cobra.Command, c *usersync.UserProvisioning, all bool) error {
	changed := func(name string) bool { return all || cmd.Flags().Changed(name) }
	if changed("scope-role") {
		c.ScopeRoles = f.scopeRoles
	}
	if changed("approve") {
		c.Approve = nil
		for _, x := range f.approve {
			if x = strings.TrimSpace(x); x != "" && x != "none" {
				c.Approve = append(c.Approve, x)
			}
		}
	}
	if changed("deprovision") && f.deprovision != "" {
		c.Deprovision = f.deprovision
	}
	if changed("immutable-id-attribute") && f.immutableID != "" {
		c.ImmutableID = f.immutableID
	}
	if changed("mass-limit") && f.massLimit != 0 {
		c.MassLimit = f.massLimit
	}
	if changed("mass-share") && f.massShare != 0 {
		c.MassShare = f.massShare
	}
	if changed("approval-expiry") && f.expiry != 0 {
		if f.expiry < time.Hour {
			return usageError{fmt.Errorf("--approval-expiry %s: give at least 1h", f.expiry)}
		}
		c.ApprovalExpiryHours = int(f.expiry / time.Hour)
	}
	if c.Parameters == nil {
		c.Parameters = map[string]string{}
	}
	for _, p := range f.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--param %q: write PROPERTY=EXPRESSION, like usageLocation='\"US\"'", p)}
		}
		c.Parameters[strings.TrimSpace(k)] = v
	}
	return nil
}

// checkUsers compiles a user provisioner's parameters and rules and
// checks that its scope roles exist.
func checkUsers(ctx context.Context, d usersync.Directory, p *usersync.Provisioner) error {
	p.Config.Normalize(p.Name)
	if err := p.Validate(); err != nil {
		return err
	}
	if _, _, err := entra.CompileUsers(p); err != nil {
		return err
	}
	roles, err := d.FindRoles(ctx)
	if err != nil {
		return err
	}
	for _, s := range p.Config.Users.ScopeRoles {
		found := false
		for _, r := range roles {
			found = found || strings.EqualFold(r.Name, s)
		}
		if !found {
			return usersync.Errorf(usersync.ENOTFOUND, "provisioner %s: no role named %q (usersync roles create %q makes it)", p.Name, s, s)
		}
	}
	return nil
}

func (a *app) provisionersEntitlements() *cobra.Command {
	var refresh bool
	c := &cobra.Command{Use: "entitlements NAME [--refresh]", Short: "Show a user provisioner's tenant licenses (with free seats) and groups; --refresh reads them from the tenant", Args: cobra.ExactArgs(1)}
	c.Flags().BoolVar(&refresh, "refresh", false, "read the tenant's licenses (subscribedSkus) and groups now, so that rules can name them")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		run := a.readDB
		if refresh {
			run = a.withDB
		}
		return run(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			p, err := d.FindProvisioner(ctx, args[0])
			if err != nil {
				return err
			}
			if p.Config.Users == nil {
				return usersync.Errorf(usersync.EINVALID, "provisioner %s pushes groups: entitlements belong to user provisioners (--kind users)", p.Name)
			}
			if refresh {
				client, err := entra.NewClient(ctx, d, p, "", nil)
				if err != nil {
					return err
				}
				e, err := entra.RefreshEntitlements(ctx, client)
				if err != nil {
					return err
				}
				p.Config.Users.Entitlements = e
				if err := d.UpdateProvisioner(ctx, p, nil); err != nil {
					return err
				}
			}
			e := p.Config.Users.Entitlements
			if e == nil {
				return usersync.Errorf(usersync.ENOTFOUND, "provisioner %s has not read its tenant's entitlements yet: usersync provisioners entitlements %s --refresh", p.Name, p.Name)
			}
			return a.emit(e, func(w io.Writer) {
				fmt.Fprintf(w, "licenses and groups of tenant %s, read %s\n", p.Config.TenantID, fmtTime(e.RefreshedAt))
				row(w, "LICENSE (SKU)", "SEATS", "USED", "FREE", "PLANS")
				for _, s := range e.SKUs {
					row(w, s.PartNumber, s.Enabled, s.Consumed, s.Free(), orDash(strings.Join(s.Plans, ", ")))
				}
				row(w, "GROUP", "ID")
				for _, g := range e.Groups {
					row(w, g.Name, g.ID)
				}
			})
		})(cmd, args)
	}
	return c
}

func (a *app) provisionersRules() *cobra.Command {
	c := &cobra.Command{Use: "rules", Short: "A user provisioner's rules: condition → licenses and groups",
		Long: `Rules give licenses and Entra groups to the users in a user provisioner's
scope. Each has a condition (the language of "usersync mappings --help"; empty:
every user in scope) and sets licenses by SKU part number, with plans left
off after a colon (OFFICESUBSCRIPTION:ONEDRIVESTANDARD+FORMS_PRO), and groups
by name. A user gets what every rule that holds for it gives; licenses and
groups no rule gives any more are taken back (only those usersync gave).
Licenses and groups are checked against the tenant's entitlements
("usersync provisioners entitlements NAME --refresh").`}
	var cond string
	var licenses, groups []string
	add := &cobra.Command{Use: "add NAME RULE [--if CONDITION] [--license SKU[:PLAN+PLAN]]… [--group G]…", Short: "Add a rule at the end", Args: cobra.ExactArgs(2),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			p, err := a.findUserProvisioner(ctx, d, args[0])
			if err != nil {
				return err
			}
			rule := usersync.UserRule{Name: args[1], Condition: cond, Groups: groups}
			for _, l := range licenses {
				sku, plans, _ := strings.Cut(l, ":")
				lic := usersync.License{SKU: strings.TrimSpace(sku)}
				for _, pl := range strings.Split(plans, "+") {
					if pl = strings.TrimSpace(pl); pl != "" {
						lic.DisabledPlans = append(lic.DisabledPlans, pl)
					}
				}
				rule.Licenses = append(rule.Licenses, lic)
			}
			p.Config.Users.Rules = append(p.Config.Users.Rules, rule)
			if err := checkUsers(ctx, d, p); err != nil {
				return err
			}
			if err := d.UpdateProvisioner(ctx, p, nil); err != nil {
				return err
			}
			return a.emit(rule, func(w io.Writer) {
				fmt.Fprintf(w, "added rule %q to provisioner %s (applied at its next run; check it: usersync provisioners rules check %s %q --user USER)\n", rule.Name, p.Name, p.Name, rule.Name)
			})
		})}
	add.Flags().StringVar(&cond, "if", "", "the condition (empty: every user in scope)")
	add.Flags().StringArrayVar(&licenses, "license", nil, "a license to set: SKU part number, optionally :PLAN+PLAN left off (repeatable)")
	add.Flags().StringArrayVar(&groups, "group", nil, "an Entra group to set (repeatable)")
	list := &cobra.Command{Use: "list NAME", Short: "List a user provisioner's rules in order", Args: cobra.ExactArgs(1),
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			p, err := a.findUserProvisioner(ctx, d, args[0])
			if err != nil {
				return err
			}
			rs := p.Config.Users.Rules
			return a.emit(nonNil(rs), func(w io.Writer) {
				row(w, "#", "RULE", "CONDITION", "LICENSES", "GROUPS")
				for i, r := range rs {
					var ls []string
					for _, l := range r.Licenses {
						s := l.SKU
						if len(l.DisabledPlans) > 0 {
							s += " (without " + strings.Join(l.DisabledPlans, ", ") + ")"
						}
						ls = append(ls, s)
					}
					row(w, i+1, r.Name, orDash(r.Condition), orDash(strings.Join(ls, ", ")), orDash(strings.Join(r.Groups, ", ")))
				}
			})
		})}
	del := &cobra.Command{Use: "delete NAME RULE", Short: "Delete a rule (its licenses and groups are taken back at the next run)", Args: cobra.ExactArgs(2),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			p, i, err := a.findRule(ctx, d, args[0], args[1])
			if err != nil {
				return err
			}
			p.Config.Users.Rules = append(p.Config.Users.Rules[:i], p.Config.Users.Rules[i+1:]...)
			if err := d.UpdateProvisioner(ctx, p, nil); err != nil {
				return err
			}
			return a.emit(map[string]string{"deleted": args[1]}, func(w io.Writer) { fmt.Fprintf(w, "deleted rule %q of provisioner %s\n", args[1], p.Name) })
		})}
	var users []string
	check := &cobra.Command{Use: "check NAME RULE --user USER…", Short: "Check rule with users: Will be mapped or Will not be mapped, and why", Args: cobra.ExactArgs(2),
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			p, i, err := a.findRule(ctx, d, args[0], args[1])
			if err != nil {
				return err
			}
			if len(users) == 0 {
				return usageError{fmt.Errorf("name the users to check: --user USER (repeatable, or comma-separated)")}
			}
			v, err := entra.CheckRule(ctx, d, p, i, users)
			if err != nil {
				return err
			}
			return a.emit(v, func(w io.Writer) {
				row(w, "USER", "RESULT", "WHY")
				for _, x := range v {
					res := "Will not be mapped"
					if x.Holds {
						res = "Will be mapped"
					}
					row(w, x.Username, res, x.Because)
				}
			})
		})}
	check.Flags().StringSliceVar(&users, "user", nil, "a username to check (repeatable)")
	c.AddCommand(add, list, del, check)
	return c
}

// findRule finds a user provisioner and the index of one of its rules.
func (a *app) findRule(ctx context.Context, d usersync.Directory, provisioner, rule string) (*usersync.Provisioner, int, error) {
	p, err := a.findUserProvisioner(ctx, d, provisioner)
	if err != nil {
		return nil, 0, err
	}
	i := ruleIndex(p, rule)
	if i < 0 {
		return nil, 0, usersync.Errorf(usersync.ENOTFOUND, "provisioner %s has no rule %q", p.Name, rule)
	}
	return p, i, nil
}

func ruleIndex(p *usersync.Provisioner, name string) int {
	for i, r := range p.Config.Users.Rules {
		if strings.EqualFold(r.Name, name) {
			return i
		}
	}
	return -1
}

func (a *app) findUserProvisioner(ctx context.Context, d usersync.Directory, name string) (*usersync.Provisioner, error) {
	p, err := d.FindProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	if p.Config.Users == nil {
		return nil, usersync.Errorf(usersync.EINVALID, "provisioner %s pushes groups; rules, entitlements and logs belong to user provisioners (--kind users)", p.Name)
	}
	return p, nil
}

func (a *app) provisionersLog() *cobra.Command {
	var f usersync.LogFilter
	c := &cobra.Command{Use: "log NAME [--user U] [--group G] [--status S] [--run R]", Short: "A provisioner's log: every action with its reason, status and the properties it modified", Args: cobra.ExactArgs(1)}
	c.Flags().StringVar(&f.Username, "user", "", "only this user (a group provisioner's: this member)")
	c.Flags().StringVar(&f.Group, "group", "", "only this group (group provisioners)")
	c.Flags().StringVar(&f.Status, "status", "", "only this status: done, failed, pending-approval, held")
	c.Flags().StringVar(&f.Run, "run", "", "only this run")
	c.Flags().IntVar(&f.Limit, "limit", 100, "show at most this many entries, newest first")
	c.RunE = a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		if _, err := d.FindProvisioner(ctx, args[0]); err != nil {
			return err
		}
		f.Provisioner = args[0]
		entries, err := d.FindLog(ctx, f)
		if err != nil {
			return err
		}
		return a.emit(nonNil(entries), func(w io.Writer) {
			row(w, "AT", "RUN", "GROUP", "USER", "ACTION", "STATUS", "REASON", "MODIFIED", "ERROR")
			for _, e := range entries {
				var mod []string
				for _, k := range sortedFields(e.Modified) {
					mod = append(mod, fmt.Sprintf("%s: %q → %q", k, e.Modified[k].From, e.Modified[k].To))
				}
				msg := e.Error
				if e.ErrorCode != "" {
					msg += " (" + e.ErrorCode + ")"
				}
				row(w, fmtTime(e.At), e.Run, orDash(e.Group), orDash(e.Username), e.Action, e.Status, e.Reason, orDash(strings.Join(mod, "; ")), orDash(msg))
			}
		})
	})
	return c
}

func (a *app) approvalsCommand() *cobra.Command {
	c := &cobra.Command{Use: "approvals", Aliases: []string{"approval"}, Short: "Actions of user provisioners that wait for an administrator",
		Long: `A user provisioner made with --approve create,update,suspend,delete (any of
them) does not send those actions: each waits here as pending. Approve sends
it at once; reject keeps it from being sent (a later run asks again only if
the plan changes), whether approvals stay on or are turned off, until it is
reopened. An approval is for that one action with exactly the properties it
shows: once sent it is used up, and the same action later asks again. An
approval nobody uses within the provisioner's --approval-expiry (7 days by
default) expires. A pending action that the state overtook (the user left
scope, its properties changed) is dropped, never sent stale. Turning
approvals off sends nothing rejected or still pending: decide those first.`}
	var all bool
	var prov string
	list := &cobra.Command{Use: "list [--all] [--provisioner P]", Short: "List pending approvals (--all: decided ones too)", Args: cobra.NoArgs,
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			status := usersync.ApprovalPending
			if all {
				status = ""
			}
			as, err := d.FindApprovals(ctx, prov, status)
			if err != nil {
				return err
			}
			return a.emit(nonNil(as), func(w io.Writer) {
				if len(as) == 0 {
					fmt.Fprintln(w, "no approvals pending")
					return
				}
				row(w, "ID", "PROVISIONER", "USER", "ACTION", "STATUS", "CREATED", "DECIDED BY", "REASON")
				for _, x := range as {
					row(w, x.ID, x.Provisioner, x.Username, x.Action, x.Status, fmtTime(x.CreatedAt), orDash(x.DecidedBy), x.Reason)
				}
			})
		})}
	list.Flags().BoolVar(&all, "all", false, "decided approvals too")
	list.Flags().StringVar(&prov, "provisioner", "", "only this provisioner's")
	decide := func(approve bool) *cobra.Command {
		use, short := "approve ID…", "Approve pending actions: they are sent at once"
		if !approve {
			use, short = "reject ID…", "Reject pending actions: they are not sent"
		}
		return &cobra.Command{Use: use, Short: short, Args: cobra.MinimumNArgs(1),
			RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
				return a.decideApprovals(ctx, d, args, approve)
			})}
	}
	reopen := &cobra.Command{Use: "reopen ID…", Short: "Reopen rejected actions: they wait for a decision again", Args: cobra.MinimumNArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			ids, err := approvalIDs(args)
			if err != nil {
				return err
			}
			for _, id := range ids {
				x, err := d.DecideApproval(ctx, id, usersync.ApprovalPending)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "reopened approval %d: %s %s waits for a decision\n", x.ID, x.Action, x.Username)
			}
			return nil
		})}
	c.AddCommand(list, decide(true), decide(false), reopen)
	return c
}

// approvalIDs reads approval ids, space- or comma-separated.
func approvalIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, s := range args {
		for _, part := range strings.Split(s, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil {
				return nil, usageError{fmt.Errorf("approval id %q is not a number (usersync approvals list --all shows them)", part)}
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// decideApprovals decides approvals (entra.Decide) and prints what was
// sent for the approved ones.
func (a *app) decideApprovals(ctx context.Context, d usersync.Directory, args []string, approve bool) error {
	ids, err := approvalIDs(args)
	if err != nil {
		return err
	}
	list, results, err := entra.Decide(ctx, d, ids, approve)
	for _, x := range list {
		fmt.Fprintf(a.stderr, "%s approval %d: %s %s\n", x.Status, x.ID, x.Action, x.Username)
	}
	if err != nil {
		return err
	}
	if !approve {
		return a.emit(list, func(w io.Writer) { fmt.Fprintf(w, "rejected %d actions: they are not sent\n", len(list)) })
	}
	return a.printUserRuns(results, "")
}

// retryUser clears a user's failures or quarantine in a user provisioner
// and provisions that user now.
func (a *app) retryUser(ctx context.Context, d usersync.Directory, p *usersync.Provisioner, username string) error {
	client, err := entra.NewClient(ctx, d, p, "", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "retrying %s in provisioner %s\n", username, p.Name)
	r, err := entra.RetryUser(ctx, d, client, p, username)
	if err != nil {
		return err
	}
	if err := a.emit(r, func(w io.Writer) { printUserRun(w, r) }); err != nil {
		return err
	}
	if r.Failed > 0 {
		return exitError{1}
	}
	return nil
}

// userStatus shows a user provisioner's users by state, its failing and
// quarantined users, and its pending approvals.
func (a *app) userStatus(ctx context.Context, d usersync.Directory, p *usersync.Provisioner) error {
	state, err := d.ProvisionedUsers(ctx, p.Name)
	if err != nil {
		return err
	}
	pending, err := d.FindApprovals(ctx, p.Name, usersync.ApprovalPending)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var failing []*usersync.Provisioned
	for _, st := range state {
		counts[st.State]++
		if st.Failures > 0 || st.Quarantined {
			failing = append(failing, st)
		}
	}
	sort.Slice(failing, func(i, j int) bool { return failing[i].Username < failing[j].Username })
	holds, err := d.Holds(ctx, p.Name)
	if err != nil {
		return err
	}
	out := struct {
		Provisioner string                  `json:"provisioner"`
		States      map[string]int          `json:"states"`
		Failing     []*usersync.Provisioned `json:"failing"`
		Pending     int                     `json:"pendingApprovals"`
		Holds       []usersync.Hold         `json:"holds"`
	}{p.Name, counts, nonNil(failing), len(pending), nonNil(holds)}
	return a.emit(out, func(w io.Writer) {
		row(w, "provisioner:", p.Name+" (users into tenant "+p.Config.TenantID+")")
		row(w, "users:", fmt.Sprintf("%d active, %d suspended, %d deleted", counts[usersync.StateActive], counts[usersync.StateSuspended], counts[usersync.StateDeleted]))
		row(w, "pending approvals:", len(pending))
		for _, h := range holds {
			row(w, "held:", fmt.Sprintf("%d %ss since %s: %s", h.Count, h.What, fmtTime(h.Since), h.Reason))
		}
		if len(failing) == 0 {
			row(w, "failing users:", "none")
			return
		}
		row(w, "USER", "FAILURES", "STATE", "NEXT ATTEMPT", "LAST ERROR")
		for _, st := range failing {
			state, next := "retrying", fmtTime(st.NextAttempt)
			if st.Quarantined {
				state, next = "quarantined", "after: usersync provisioners retry "+p.Name+" "+st.Username
			}
			row(w, st.Username, st.Failures, state, next, st.LastError)
		}
	})
}
