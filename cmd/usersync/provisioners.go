package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/schedule"
	"github.com/usersync/usersync/sqlstore"
	"github.com/usersync/usersync/target/entra"
)

// SecretEnv holds a provisioner's client secret when --client-secret-file
// is not given.
const provisionerSecretEnv = "USERSYNC_PROVISIONER_CLIENT_SECRET"

// setting is one provisioner setting: its flag, its name in Grouper's
// grouper-loader.properties, and where it lives in the config.
type setting struct {
	flag, property, usage string
	str                   func(*usersync.ProvisionerConfig) *string
	num                   func(*usersync.ProvisionerConfig) *int
	boolean               func(*usersync.ProvisionerConfig) *bool
}

var settings = []setting{
	{flag: "tenant-id", property: "tenantId", usage: "the Entra tenant (id or domain)", str: func(c *usersync.ProvisionerConfig) *string { return &c.TenantID }},
	{flag: "client-id", property: "clientId", usage: "the application (client) id of the Entra app", str: func(c *usersync.ProvisionerConfig) *string { return &c.ClientID }},
	{flag: "sync-attribute-name", property: "syncAttributeName", usage: "the marker: a folder or group with this attribute (any value) is provisioned (default " + usersync.DefaultSyncAttribute + ")", str: func(c *usersync.ProvisionerConfig) *string { return &c.SyncAttribute }},
	{flag: "domain", property: "domain", usage: "the domain of members' principal names (idAttribute@domain; default the tenant id)", str: func(c *usersync.ProvisionerConfig) *string { return &c.Domain }},
	{flag: "id-attribute", property: "idAttribute", usage: "the user attribute before the @ of a principal name (default uid: the attribute uid, else the username up to its @)", str: func(c *usersync.ProvisionerConfig) *string { return &c.IDAttribute }},
	{flag: "upn-attribute", property: "upnAttribute", usage: "a user attribute that holds the whole principal name (used first when set)", str: func(c *usersync.ProvisionerConfig) *string { return &c.UPNAttribute }},
	{flag: "group-jexl", property: "groupJexl", usage: "JEXL expression for the Entra display name (default the group's full name)", str: func(c *usersync.ProvisionerConfig) *string { return &c.GroupJexl }},
	{flag: "mail-nickname-jexl", property: "mailNicknameJexl", usage: "JEXL expression for the mailNickname (default the full name with disallowed characters as -)", str: func(c *usersync.ProvisionerConfig) *string { return &c.MailNicknameJexl }},
	{flag: "description-jexl", property: "descriptionJexl", usage: "JEXL expression for the description (default the group's description)", str: func(c *usersync.ProvisionerConfig) *string { return &c.DescriptionJexl }},
	{flag: "subject-jexl", property: "subjectJexl", usage: "JEXL expression for a member's principal name (after upnAttribute, before idAttribute@domain)", str: func(c *usersync.ProvisionerConfig) *string { return &c.SubjectJexl }},
	{flag: "group-type", property: "groupType", usage: "Security or Unified (a Microsoft 365 group)", str: func(c *usersync.ProvisionerConfig) *string { return &c.GroupType }},
	{flag: "visibility", property: "visibility", usage: "Unified groups: Public, Private or HiddenMembership (default Public)", str: func(c *usersync.ProvisionerConfig) *string { return &c.Visibility }},
	{flag: "proxy-type", property: "proxyType", usage: "http or socks: reach Graph through a proxy", str: func(c *usersync.ProvisionerConfig) *string { return &c.ProxyType }},
	{flag: "proxy-host", property: "proxyHost", usage: "the proxy's host", str: func(c *usersync.ProvisionerConfig) *string { return &c.ProxyHost }},
	{flag: "proxy-port", property: "proxyPort", usage: "the proxy's port", num: func(c *usersync.ProvisionerConfig) *int { return &c.ProxyPort }},
	{flag: "quartz-cron", property: "quartzCron", usage: "when usersync serve runs it, Quartz cron with seconds (default every 5 s: \"" + usersync.DefaultQuartzCron + "\")", str: func(c *usersync.ProvisionerConfig) *string { return &c.QuartzCron }},
	{flag: "retry-on-error", property: "retryOnError", usage: "retry a failing group with backoff (else its change is logged and passed)", boolean: func(c *usersync.ProvisionerConfig) *bool { return &c.RetryOnError }},
	{flag: "authority-url", property: "authorityUrl", usage: "identity platform host (national clouds, the emulator; default " + msgraph.DefaultAuthorityURL + ")", str: func(c *usersync.ProvisionerConfig) *string { return &c.AuthorityURL }},
	{flag: "graph-url", property: "graphUrl", usage: "Microsoft Graph host (national clouds, the emulator; default " + msgraph.DefaultGraphURL + ")", str: func(c *usersync.ProvisionerConfig) *string { return &c.GraphURL }},
	{flag: "remote-id-attribute", property: "remoteIdAttribute", usage: "the group attribute that keeps the Entra group id (default " + usersync.DefaultRemoteIDAttr + ", with :NAME for a provisioner not named o365)", str: func(c *usersync.ProvisionerConfig) *string { return &c.RemoteIDAttribute }},
	{flag: "max-failures", property: "maxFailures", usage: "failures after which a group is quarantined until reconcile or retry", num: func(c *usersync.ProvisionerConfig) *int { return &c.MaxFailures }},
	{flag: "write-quota", property: "writeQuota", usage: "Graph's write quota per app and tenant that writes are paced under: up to this many go out at once (default 3000)", num: func(c *usersync.ProvisionerConfig) *int { return &c.WriteQuota }},
	{flag: "write-window", property: "writeWindowSeconds", usage: "the seconds over which --write-quota refills (default 150)", num: func(c *usersync.ProvisionerConfig) *int { return &c.WriteWindowSeconds }},
}

// register binds every setting's flag into c.
func registerSettings(fs *pflag.FlagSet, c *usersync.ProvisionerConfig) {
	for _, s := range settings {
		switch {
		case s.str != nil:
			fs.StringVar(s.str(c), s.flag, "", s.usage)
		case s.num != nil:
			fs.IntVar(s.num(c), s.flag, 0, s.usage)
		default:
			fs.BoolVar(s.boolean(c), s.flag, true, s.usage)
		}
	}
}

// copyChanged copies the settings given on the command line from src.
func copyChanged(fs *pflag.FlagSet, dst, src *usersync.ProvisionerConfig) {
	for _, s := range settings {
		if !fs.Changed(s.flag) {
			continue
		}
		switch {
		case s.str != nil:
			*s.str(dst) = *s.str(src)
		case s.num != nil:
			*s.num(dst) = *s.num(src)
		default:
			*s.boolean(dst) = *s.boolean(src)
		}
	}
}

// checkProvisioner fills the defaults and checks everything that can be
// checked without Graph: the settings, the expressions, the schedule.
func checkProvisioner(p *usersync.Provisioner) error {
	p.Config.Normalize(p.Name)
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := entra.Compile(p.Config); err != nil {
		return usersync.Errorf(usersync.EINVALID, "provisioner %s: %v", p.Name, usersync.ErrorMessage(err))
	}
	if _, err := schedule.ParseQuartz(p.Config.QuartzCron); err != nil {
		return usersync.Errorf(usersync.EINVALID, "provisioner %s: quartzCron: %v", p.Name, err)
	}
	return nil
}

// readSecret reads a client secret from a file, standard input (-) or
// the environment; "" when none is given.
func (a *app) readClientSecret(file string) (string, error) {
	if file == "" {
		return os.Getenv(provisionerSecretEnv), nil
	}
	var b []byte
	var err error
	if f, ok := a.stdin.(*os.File); ok && file == "-" && term.IsTerminal(int(f.Fd())) {
		return a.readSecret("client secret (not shown): ")
	}
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(a.stdin, 1<<16))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "read the client secret: %v", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", usersync.Errorf(usersync.EINVALID, "the client secret from %s is empty", map[bool]string{true: "standard input", false: file}[file == "-"])
	}
	return s, nil
}

func (a *app) provisionersCommand() *cobra.Command {
	c := &cobra.Command{Use: "provisioners", Aliases: []string{"provisioner"},
		Short: "Push groups, or users with licenses, to Entra ID / Office 365 (outbound provisioners)",
		Long: `A group provisioner (--kind groups, the default) pushes the groups under a
marked folder (or marked themselves) and their members to Entra ID, following
the directory's change log. Its settings have the names of Grouper's
changeLog.consumer.NAME.* properties; "usersync provisioners import" reads a
grouper-loader.properties file.

A user provisioner (--kind users) provisions the users holding its scope
role(s) into an Office 365 tenant: it creates (or adopts) them, keeps their
properties in line, gives licenses and groups by rules, and suspends or
deletes those who leave scope; chosen actions wait for an administrator's
approval ("usersync approvals").

"usersync serve" runs every provisioner on its schedule, and as soon as the
directory changes.`}
	c.AddCommand(a.provisionersCreate(), a.provisionersImport(), remote(a.provisionersList()), remote(a.provisionersShow()), a.provisionersUpdate(),
		a.provisionersDelete(), a.provisionersRun(false), a.provisionersRun(true), remote(a.provisionersStatus()), a.provisionersEval(), remote(a.provisionersRetry()),
		a.provisionersEntitlements(), a.provisionersRules(), a.provisionersLog(), a.provisionersHold(), remote(a.provisionersLinks()))
	return c
}

func (a *app) provisionersCreate() *cobra.Command {
	var cfg usersync.ProvisionerConfig
	var secretFile string
	var noVerify bool
	var uf userProvisionerFlags
	c := &cobra.Command{Use: "create NAME --tenant-id T --client-id C --client-secret-file FILE [--kind users --domain D --scope-role R] [flags]", Short: "Make a provisioner", Args: cobra.ExactArgs(1),
		Long: `Make a provisioner that pushes marked groups to Entra ID. The client secret
comes from --client-secret-file FILE (- reads standard input) or from
` + provisionerSecretEnv + `; it is stored sealed and never printed. Unless
--no-verify, usersync signs in to the tenant first and makes nothing when that
fails. The Entra app needs the application permissions Group.ReadWrite.All,
GroupMember.ReadWrite.All and User.Read.All, with admin consent; a user
provisioner needs User.ReadWrite.All, Group.ReadWrite.All, Organization.Read.All
and Domain.Read.All. A user provisioner's --domain must be a verified domain
of the tenant (checked when signing in).`}
	registerSettings(c.Flags(), &cfg)
	uf.register(c)
	c.Flags().StringVar(&secretFile, "client-secret-file", "", "file holding the client secret (- for standard input; else env "+provisionerSecretEnv+")")
	c.Flags().BoolVar(&noVerify, "no-verify", false, "store the provisioner without signing in to the tenant first")
	c.RunE = a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		p := &usersync.Provisioner{Name: args[0], Kind: uf.kind, Config: cfg}
		if uf.kind == usersync.ProvisionerUsers {
			p.Config.Users = &usersync.UserProvisioning{}
			if err := uf.apply(c, p.Config.Users, true); err != nil {
				return err
			}
		} else if uf.kind != usersync.ProvisionerGroups {
			return usageError{fmt.Errorf("--kind %q is not groups or users", uf.kind)}
		} else if len(uf.scopeRoles)+len(uf.approve)+len(uf.params) > 0 || uf.deprovision != "" {
			return usageError{fmt.Errorf("--scope-role, --approve, --deprovision and --param are settings of user provisioners: add --kind users")}
		}
		secret, err := a.readClientSecret(secretFile)
		if err != nil {
			return err
		}
		if secret == "" {
			return usageError{fmt.Errorf("provisioner %s needs its client secret: --client-secret-file FILE, --client-secret-file - (standard input), or %s", p.Name, provisionerSecretEnv)}
		}
		if err := a.storeProvisioner(ctx, d, p, &secret, !noVerify, true); err != nil {
			return err
		}
		return a.emit(p, func(w io.Writer) {
			if u := p.Config.Users; u != nil {
				approve := "none"
				if len(u.Approve) > 0 {
					approve = strings.Join(u.Approve, ", ")
				}
				fmt.Fprintf(w, "created user provisioner %s: users holding role %s are provisioned into tenant %s (domain %s); approval needed for: %s; leaving scope: %s\n",
					p.Name, strings.Join(u.ScopeRoles, ", "), p.Config.TenantID, p.Config.Domain, approve, u.Deprovision)
				fmt.Fprintf(w, "next: usersync provisioners entitlements %s --refresh (licenses and groups for rules), then usersync provisioners run %s --dry-run\n", p.Name, p.Name)
				return
			}
			fmt.Fprintf(w, "created provisioner %s: groups marked with %s are pushed to tenant %s as %s groups\n", p.Name, p.Config.SyncAttribute, p.Config.TenantID, p.Config.GroupType)
		})
	})
	return c
}

// storeProvisioner checks p, signs in with its credentials when verify,
// and creates or updates it. Nothing is stored when a check fails.
func (a *app) storeProvisioner(ctx context.Context, d usersync.Directory, p *usersync.Provisioner, secret *string, verify, create bool) error {
	if p.Kind == usersync.ProvisionerUsers {
		if err := checkUsers(ctx, d, p); err != nil {
			return err
		}
	} else if err := checkProvisioner(p); err != nil {
		return err
	}
	if verify {
		s := ""
		if secret != nil {
			s = *secret
		}
		client, err := entra.NewClient(ctx, d, p, s, nil)
		if err != nil {
			return err
		}
		if err := client.SignIn(ctx); err != nil {
			return usersync.Errorf(usersync.ErrorCode(err), "provisioner %s not saved: %s (--no-verify saves it without signing in)", p.Name, usersync.ErrorMessage(err))
		}
		if p.Kind == usersync.ProvisionerUsers {
			domains, err := client.VerifiedDomains(ctx)
			if err != nil {
				return usersync.Errorf(usersync.ErrorCode(err), "provisioner %s not saved: %s (--no-verify saves it without checking)", p.Name, usersync.ErrorMessage(err))
			}
			ok := false
			for _, dm := range domains {
				ok = ok || strings.EqualFold(dm, p.Config.Domain)
			}
			if !ok {
				return usersync.Errorf(usersync.EINVALID, "provisioner %s not saved: %s is not a verified domain of tenant %s (its verified domains: %s)", p.Name, p.Config.Domain, p.Config.TenantID, strings.Join(domains, ", "))
			}
		}
	}
	if create {
		return d.CreateProvisioner(ctx, p, *secret)
	}
	return d.UpdateProvisioner(ctx, p, secret)
}

func (a *app) provisionersUpdate() *cobra.Command {
	var cfg usersync.ProvisionerConfig
	var secretFile string
	var noVerify bool
	var uf userProvisionerFlags
	c := &cobra.Command{Use: "update NAME [flags]", Short: "Change a provisioner's settings (only those given)", Args: cobra.ExactArgs(1)}
	registerSettings(c.Flags(), &cfg)
	uf.register(c)
	c.Flags().StringVar(&secretFile, "client-secret-file", "", "replace the client secret with the one in this file (- for standard input)")
	c.Flags().BoolVar(&noVerify, "no-verify", false, "save without signing in to the tenant first")
	c.RunE = a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		p, err := d.FindProvisioner(ctx, args[0])
		if err != nil {
			return err
		}
		copyChanged(c.Flags(), &p.Config, &cfg)
		if c.Flags().Changed("kind") && uf.kind != p.Kind {
			return usageError{fmt.Errorf("provisioner %s is of kind %s; its kind does not change (make another provisioner)", p.Name, p.Kind)}
		}
		if p.Config.Users != nil {
			if err := uf.apply(c, p.Config.Users, false); err != nil {
				return err
			}
		}
		var secret *string
		if secretFile != "" {
			s, err := a.readClientSecret(secretFile)
			if err != nil {
				return err
			}
			secret = &s
		}
		credentials := secret != nil || c.Flags().Changed("tenant-id") || c.Flags().Changed("client-id") || c.Flags().Changed("authority-url") ||
			c.Flags().Changed("graph-url") || c.Flags().Changed("proxy-type") || c.Flags().Changed("proxy-host") || c.Flags().Changed("proxy-port")
		if err := a.storeProvisioner(ctx, d, p, secret, credentials && !noVerify, false); err != nil {
			return err
		}
		return a.emit(p, func(w io.Writer) {
			fmt.Fprintf(w, "updated provisioner %s (version %d)\n", p.Name, p.Version+1)
			for _, f := range []string{"group-jexl", "mail-nickname-jexl", "description-jexl", "subject-jexl", "upn-attribute", "id-attribute", "domain", "visibility"} {
				if c.Flags().Changed(f) {
					fmt.Fprintf(w, "--%s changed: groups already in Entra are brought in line by: usersync provisioners reconcile %s\n", f, p.Name)
					break
				}
			}
		})
	})
	return c
}

func (a *app) provisionersList() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List provisioners", Args: cobra.NoArgs,
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			ps, err := o.ListProvisioners(ctx)
			if err != nil {
				return err
			}
			return a.emit(nonNil(ps), func(w io.Writer) {
				row(w, "NAME", "KIND", "TENANT", "SCOPE", "GROUP TYPE", "SCHEDULE")
				for _, p := range ps {
					if u := p.Config.Users; u != nil {
						row(w, p.Name, p.Kind, p.Config.TenantID, "role "+strings.Join(u.ScopeRoles, ", "), "-", p.Config.QuartzCron)
						continue
					}
					kind := p.Config.GroupType
					if p.Config.Visibility != "" && kind == "Unified" {
						kind += "/" + p.Config.Visibility
					}
					row(w, p.Name, p.Kind, p.Config.TenantID, "marker "+p.Config.SyncAttribute, kind, p.Config.QuartzCron)
				}
			})
		})}
}

func (a *app) provisionersShow() *cobra.Command {
	return &cobra.Command{Use: "show NAME", Short: "Show a provisioner's settings (the secret masked)", Args: cobra.ExactArgs(1),
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			st, err := o.ProvisionerStatus(ctx, args[0])
			if err != nil {
				return err
			}
			p := st.Provisioner
			return a.emit(p, func(w io.Writer) {
				row(w, "name:", p.Name)
				groupOnly := map[string]bool{"syncAttributeName": true, "idAttribute": true, "upnAttribute": true, "groupJexl": true, "mailNicknameJexl": true,
					"descriptionJexl": true, "subjectJexl": true, "groupType": true, "visibility": true, "remoteIdAttribute": true}
				for _, s := range settings {
					if p.Config.Users != nil && groupOnly[s.property] {
						continue // settings of group provisioners
					}
					var v string
					switch {
					case s.str != nil:
						v = orDash(*s.str(&p.Config))
					case s.num != nil:
						v = strconv.Itoa(*s.num(&p.Config))
					default:
						v = strconv.FormatBool(*s.boolean(&p.Config))
					}
					row(w, s.property+":", v)
				}
				if u := p.Config.Users; u != nil {
					row(w, "kind:", p.Kind)
					row(w, "scopeRoles:", strings.Join(u.ScopeRoles, ", "))
					row(w, "approve:", orDash(strings.Join(u.Approve, ", ")))
					row(w, "deprovision:", u.Deprovision)
					row(w, "immutableIdAttribute:", u.ImmutableID)
					row(w, "massDeprovisionGuard:", fmt.Sprintf("more than %d users and %d%%", u.MassLimit, u.MassShare))
					for _, k := range usersync.UserParameters {
						v, set := u.Parameters[k]
						if !set {
							v = usersync.DefaultUserParameters[k] + " (default)"
						}
						if v != " (default)" {
							row(w, "parameter "+k+":", v)
						}
					}
					row(w, "rules:", len(u.Rules))
				}
				row(w, "clientSecret:", "******** (sealed)")
				row(w, "created:", fmtTime(p.CreatedAt))
				row(w, "updated:", fmtTime(p.UpdatedAt))
			})
		})}
}

func (a *app) provisionersDelete() *cobra.Command {
	return &cobra.Command{Use: "delete NAME", Short: "Delete a provisioner (its Entra groups, and their ids on the directory groups, stay)", Args: cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if err := d.DeleteProvisioner(ctx, args[0]); err != nil {
				return err
			}
			return a.emit(map[string]any{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "deleted provisioner %s\n", args[0]) })
		})}
}

// provisioner opens a stored provisioner with its Graph client.
func (a *app) provisioner(ctx context.Context, d usersync.Directory, name string, verbose bool) (*entra.Groups, *usersync.Provisioner, error) {
	p, err := d.FindProvisioner(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	var onRetry func(what, why string, wait time.Duration)
	if verbose {
		onRetry = func(what, why string, wait time.Duration) {
			fmt.Fprintf(a.stderr, "retry: %s: %s; trying again in %s\n", what, why, wait.Round(100*time.Millisecond))
		}
	}
	client, err := entra.NewClient(ctx, d, p, "", onRetry)
	if err != nil {
		return nil, nil, err
	}
	g, err := entra.New(d, client, p)
	return g, p, err
}

func (a *app) provisionersRun(reconcile bool) *cobra.Command {
	var dryRun, verbose, force, deleteOrphans bool
	use, short := "run NAME", "Process the pending changes once and print what was done"
	if reconcile {
		use, short = "reconcile NAME", "Compare Entra with the directory for every covered group and repair drift both ways"
	}
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1)}
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "plan only: read Entra and the directory, print every write with its reason, change nothing")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every write as it is made, and retries, to standard error")
	if reconcile {
		c.Flags().BoolVar(&force, "force", false, "apply removals of more than 20% of an Entra group's members (user provisioners: deprovisions beyond the mass-deprovision guard)")
		c.Flags().BoolVar(&deleteOrphans, "delete-orphans", false, "delete the Entra groups this provisioner made whose directory groups are gone (listed, kept, without it)")
	} else {
		c.Flags().BoolVar(&force, "force", false, "user provisioners: apply deprovisions beyond the mass-deprovision guard")
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		run := a.withDB
		if dryRun {
			run = a.readDB
		}
		return run(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if p, err := d.FindProvisioner(ctx, args[0]); err == nil && p.Kind == usersync.ProvisionerUsers {
				// A user provisioner compares the whole scope with what it
				// wrote every run: run and reconcile are one.
				// reconcile also reads every provisioned user back from Entra.
				return a.runUsers(ctx, d, p, entra.UserOptions{DryRun: dryRun, Force: force, ReadBack: reconcile}, verbose)
			}
			g, p, err := a.provisioner(ctx, d, args[0], verbose)
			if err != nil {
				return err
			}
			bar := a.lineBar(verbose)
			o := entra.Options{DryRun: dryRun, Force: force, DeleteOrphans: deleteOrphans, KeepActions: dryRun || reconcile || a.output == "json"}
			writes := 0
			o.OnAction = func(act entra.Action) {
				writes++
				if verbose {
					fmt.Fprintln(a.stderr, describeAction(act, dryRun))
				}
				bar.show(fmt.Sprintf("%s: %d writes so far (%s)", p.Name, writes, truncate(act.Group, 40)))
			}
			var r *entra.Result
			if reconcile {
				r, err = g.Reconcile(ctx, o)
			} else {
				r, err = g.Run(ctx, o)
			}
			bar.done()
			if r != nil && (err == nil || r.Groups > 0) {
				if perr := a.printRun(r, reconcile); perr != nil {
					return perr
				}
			}
			if errors.Is(err, context.Canceled) {
				fmt.Fprintf(a.stderr, "usersync: interrupted: %d writes were made before the stop (counted above); the cursor stays before what was not finished. Run the same command again to complete it.\n", writes)
				return exitError{130}
			}
			if err != nil {
				return err
			}
			if len(r.Failures) > 0 {
				return exitError{1}
			}
			return nil
		})(cmd, args)
	}
	return c
}

func describeAction(act entra.Action, dryRun bool) string {
	verb := string(act.Kind)
	if dryRun {
		verb = "would " + verb
	}
	s := verb + " " + act.Group
	if act.Member != "" {
		s += " " + act.Member
	}
	if act.RemoteID != "" && act.RemoteID != "(new)" {
		s += " [" + act.RemoteID + "]"
	}
	return s + ": " + act.Reason
}

func (a *app) printRun(r *entra.Result, reconcile bool) error {
	return a.emit(r, func(w io.Writer) {
		what := fmt.Sprintf("change events %d–%d (%d)", r.FromSeq+1, r.ToSeq, r.Events)
		switch {
		case r.Events == 0:
			what = "no pending change events"
		case r.ToSeq <= r.FromSeq:
			what = fmt.Sprintf("%d change events read, their batch not finished", r.Events)
		}
		if reconcile {
			what = "reconcile"
		}
		prefix := ""
		if r.DryRun {
			prefix = "dry run, nothing written: "
			for _, act := range r.Actions {
				fmt.Fprintln(w, describeAction(act, true))
			}
		}
		fmt.Fprintf(w, "provisioner %s: %s%s; %d groups looked at: %s\n", r.Provisioner, prefix, what, r.Groups, countsText(r.Counts))
		if !r.DryRun {
			for _, act := range r.Actions { // what reconcile found in the tenant, always shown
				if act.Kind == entra.KeepOrphan || act.Kind == entra.DeleteOrphan || act.Kind == entra.AdoptOrphan {
					fmt.Fprintln(w, "  "+describeAction(act, false))
				}
			}
		}
		for _, f := range r.Failures {
			q := ""
			if f.Quarantined {
				q = ", quarantined"
			}
			fmt.Fprintf(w, "  failed: %s (%d failures%s): %s\n", f.Group, f.Failures, q, f.Error)
		}
	})
}

func (a *app) provisionersStatus() *cobra.Command {
	return &cobra.Command{Use: "status NAME", Short: "Show a provisioner's cursor, backlog, and failing and quarantined groups (user provisioners: users by state, failing users, pending approvals)", Args: cobra.ExactArgs(1),
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			if d, isLocal := o.(*api.Local); isLocal {
				if p, err := d.Dir.FindProvisioner(ctx, args[0]); err == nil && p.Kind == usersync.ProvisionerUsers {
					return a.userStatus(ctx, d.Dir, p)
				}
			}
			st, err := o.ProvisionerStatus(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printStatus(st)
		})}
}

// printStatus shows a provisioner's cursor, backlog and failing groups.
func (a *app) printStatus(st *api.ProvisionerStatus) error {
	p, items := st.Provisioner, st.Items
	return a.emit(struct {
		Provisioner string                     `json:"provisioner"`
		Cursor      int64                      `json:"cursor"`
		LastChange  int64                      `json:"lastChange"`
		Backlog     int64                      `json:"backlog"`
		LagSeconds  float64                    `json:"lagSeconds"`
		Items       []usersync.ProvisionerItem `json:"items"`
	}{p.Name, st.Cursor, st.LastChange, st.Backlog, st.LagSeconds, nonNil(items)}, func(w io.Writer) {
		row(w, "provisioner:", p.Name)
		row(w, "cursor:", fmt.Sprintf("change %d of %d", st.Cursor, st.LastChange))
		row(w, "backlog:", fmt.Sprintf("up to %d change events", st.Backlog))
		if st.Backlog > 0 {
			row(w, "lag:", fmt.Sprintf("the oldest has waited %s", (time.Duration(st.LagSeconds*float64(time.Second))).Round(time.Second)))
		}
		if len(items) == 0 {
			row(w, "failing groups:", "none")
			return
		}
		row(w, "GROUP", "FAILURES", "STATE", "NEXT ATTEMPT", "LAST ERROR")
		for _, it := range items {
			state, next := "retrying", fmtTime(it.NextAttempt)
			switch {
			case it.Quarantined:
				state, next = "quarantined", "after reconcile or retry"
			case !p.Config.RetryOnError:
				state, next = "passed", "not retried (retryOnError is off)"
			}
			row(w, it.GroupName, it.Failures, state, next, it.LastError)
		}
	})
}

func (a *app) provisionersEval() *cobra.Command {
	var group, subject string
	c := &cobra.Command{Use: "eval NAME (--group G | --subject USERNAME) 'EXPR'", Short: "Evaluate a JEXL expression as the provisioner would, on a group or a user", Args: cobra.RangeArgs(1, 2),
		Long: `Evaluate a JEXL expression with the variables a provisioner's expressions see:
on a group (--group: group, consumerName, tenantId, domain, idAttribute) or
on a user (--subject: subject, subjectIdValue and the same). Without an
expression, print what the provisioner makes of the group (display name,
mailNickname, description) or of the user (principal name).`}
	c.Flags().StringVar(&group, "group", "", "a directory group")
	c.Flags().StringVar(&subject, "subject", "", "a directory user's username")
	c.RunE = a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		if (group == "") == (subject == "") {
			return usageError{fmt.Errorf("give one of --group or --subject")}
		}
		p, err := d.FindProvisioner(ctx, args[0])
		if err != nil {
			return err
		}
		if len(args) == 1 {
			return a.evalDefaults(ctx, d, p, group, subject)
		}
		var v string
		if group != "" {
			v, err = entra.EvalGroup(ctx, d, p, group, args[1])
		} else {
			v, err = entra.EvalSubject(ctx, d, p, subject, args[1])
		}
		if err != nil {
			return err
		}
		return a.emit(map[string]string{"value": v}, func(w io.Writer) { fmt.Fprintln(w, v) })
	})
	return c
}

func (a *app) evalDefaults(ctx context.Context, d usersync.Directory, p *usersync.Provisioner, group, subject string) error {
	if subject != "" {
		upn, err := entra.PrincipalOf(ctx, d, p, subject)
		if err != nil {
			return err
		}
		return a.emit(map[string]string{"userPrincipalName": upn}, func(w io.Writer) { row(w, "userPrincipalName:", upn) })
	}
	g, err := d.FindGroupByName(ctx, group)
	if err != nil {
		return err
	}
	x, err := entra.Compile(p.Config)
	if err != nil {
		return err
	}
	spec, err := entra.Spec(ctx, d, p, x, g, nil)
	if err != nil {
		return err
	}
	return a.emit(spec, func(w io.Writer) {
		row(w, "displayName:", spec.DisplayName)
		row(w, "mailNickname:", spec.MailNickname)
		row(w, "description:", orDash(spec.Description))
	})
}

func (a *app) provisionersRetry() *cobra.Command {
	return &cobra.Command{Use: "retry NAME GROUP|USER", Short: "Clear a group's (or, for a user provisioner, a user's) failures or quarantine and provision it now", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.serverURL() != "" { // serve reconciles it, and answers the status after
				return a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
					st, err := o.RetryProvisioner(ctx, args[0], args[1])
					if err != nil {
						return err
					}
					if err := a.printStatus(st); err != nil {
						return err
					}
					for _, it := range st.Items {
						if usersync.GroupNameKey(it.GroupName) == usersync.GroupNameKey(args[1]) {
							return exitError{1} // it failed again
						}
					}
					return nil
				})(cmd, args)
			}
			return a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
				if p, err := d.FindProvisioner(ctx, args[0]); err == nil && p.Kind == usersync.ProvisionerUsers {
					return a.retryUser(ctx, d, p, args[1])
				}
				g, _, err := a.provisioner(ctx, d, args[0], false)
				if err != nil {
					return err
				}
				r, err := g.Retry(ctx, args[1], entra.Options{KeepActions: a.output == "json"})
				if err != nil {
					return err
				}
				if err := a.printRun(r, true); err != nil {
					return err
				}
				if len(r.Failures) > 0 {
					return exitError{1}
				}
				return nil
			})(cmd, args)
		}}
}

// lineBar is a one-line progress display for provisioner runs on a terminal.
func (a *app) lineBar(verbose bool) *progressBar {
	if verbose || a.output == "json" {
		return &progressBar{}
	}
	return a.progress("", &provisionFlags{})
}
