package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/source/okta"
)

func (a *app) oktaCommand() *cobra.Command {
	c := &cobra.Command{Use: "okta", Short: "Pull groups and users from Okta"}
	var pf provisionFlags
	var host, token, proxy string
	var prompt bool
	var m okta.Mapping
	p := &cobra.Command{
		Use:   "provision [flags] GROUP...",
		Short: "Sync the named Okta groups (names or ids) and their users into the directory",
		Long: `Sync the named Okta groups and their users into the directory, as o365
provision does for Entra: the same auto-create modes, mirrored membership with
the mass-removal guard, --force, user limit, dry run, summaries and exit status.

Okta user statuses: SUSPENDED and DEPROVISIONED users are disabled in the
directory, and a DEPROVISIONED user who is not in the directory yet is not
created. All other statuses (ACTIVE, STAGED, PROVISIONED, RECOVERY,
PASSWORD_EXPIRED, LOCKED_OUT) leave the user enabled: LOCKED_OUT is a
temporary sign-in lockout. The status is kept in the attribute okta_status.

The client paces itself by Okta's X-Rate-Limit-* headers: when a window's
requests run out it waits for the reset instead of being refused.

The host and token come from the flags, else the environment or settings
OKTA_USERSYNC_HOST and OKTA_USERSYNC_TOKEN. -P without a value asks for the
token without echo (or reads one line from standard input when it is not a
terminal). Okta API tokens expire after 30 days without use.

Exit status: 0 every group synced, 1 a group failed (the others still apply),
2 usage error, 3 every group synced but users are left that only an
administrator can resolve (listed as UNRESOLVED), 130 interrupted.`,
		Args: cobra.ArbitraryArgs,
	}
	pf.register(p)
	fl := p.Flags()
	fl.StringVarP(&host, "okta-host", "H", "", "Okta org to connect to, e.g. example.okta.com or https://example.okta.com")
	fl.StringVarP(&token, "okta-token", "P", "", "Okta API token; -P alone asks for it without echo")
	fl.BoolVar(&prompt, "okta-token-prompt", false, "ask for the Okta API token without echo (what -P alone does)")
	fl.MarkHidden("okta-token-prompt")
	optionalValue(fl, "okta-token", "--okta-token-prompt")
	fl.StringVar(&m.UsernameAttr, "username-attr", "login", "profile attribute for the username")
	fl.StringVar(&m.FirstNameAttr, "first-name-attr", "firstName", "profile attribute for the first name")
	fl.StringVar(&m.LastNameAttr, "last-name-attr", "lastName", "profile attribute for the last name")
	fl.StringVar(&m.EmailAttr, "email-attr", "email", "profile attribute for the email address")
	fl.StringVar(&proxy, "proxy", "", "HTTPS proxy URL (default: HTTPS_PROXY from the environment)")
	seedFlag(fl, "okta-host", "okta-token", "username-attr", "first-name-attr", "last-name-attr", "email-attr")
	p.RunE = func(cmd *cobra.Command, groups []string) error {
		o, err := pf.options()
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			return usageError{fmt.Errorf("okta provision needs at least one group name or id")}
		}
		if prompt {
			if token, err = a.readSecret("Okta API token: "); err != nil {
				return err
			}
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
		cfg, err := oktaConfig(ctx, d, host, token, proxy)
		if err != nil {
			return err
		}
		if pf.verbose {
			cfg.OnWait = func(what, why string, wait time.Duration) {
				fmt.Fprintf(a.stderr, "wait: %s: %s; waiting %s\n", what, why, wait.Round(100*time.Millisecond))
			}
		}
		client, err := okta.New(cfg)
		if err != nil {
			if usersync.ErrorCode(err) == usersync.EINVALID {
				return usageError{err}
			}
			return err
		}
		refs := make([]groupRef, len(groups))
		for i, g := range groups {
			refs[i] = groupRef{Name: g}
		}
		src := client.Source(m)
		if err := a.adopt(ctx, d, src, pf.dryRun); err != nil {
			return err
		}
		return a.provision(usersync.WithActor(ctx, src.Owner()), d, src, refs, o, &pf)
	}
	c.AddCommand(p, a.oktaCheckCommand())
	return c
}

// readSecret asks for a secret on the terminal without echo, or reads one
// line from standard input when that is not a terminal.
func (a *app) readSecret(prompt string) (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("read the token from the terminal: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the token from standard input: %w", err)
	}
	if strings.TrimSpace(line) == "" {
		return "", usageError{errors.New("-P without a value: no token was given on standard input")}
	}
	return strings.TrimSpace(line), nil
}
