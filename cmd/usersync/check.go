package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/source/okta"
	"github.com/usersync/usersync/sqlstore"
)

// settingsOnly opens the directory, if there is one, for credentials kept
// as settings; a missing directory is no error (nil).
func (a *app) settingsOnly(ctx context.Context) *sqlstore.DB {
	d, err := a.openExisting(ctx)
	if err != nil {
		return nil
	}
	return d
}

// graphFlags are the connection flags of the o365 commands.
type graphFlags struct{ tenant, clientID, clientSecret, authority, graphURL, proxy string }

// graphConfig reads the Graph connection from the flags, else the
// environment, else the directory's settings (d may be nil).
func graphConfig(ctx context.Context, d *sqlstore.DB, f graphFlags) (msgraph.Config, error) {
	cfg := msgraph.Config{AuthorityURL: f.authority, GraphURL: f.graphURL}
	var err error
	for _, v := range []struct {
		to        *string
		flag, env string
	}{{&cfg.Tenant, f.tenant, "O365_USERSYNC_TENANT"}, {&cfg.ClientID, f.clientID, "O365_USERSYNC_CLIENT_ID"}, {&cfg.ClientSecret, f.clientSecret, "O365_USERSYNC_CLIENT_SECRET"}} {
		if *v.to, err = credential(ctx, d, v.flag, v.env); err != nil {
			return cfg, err
		}
	}
	cfg.HTTPClient, err = proxyClient(f.proxy)
	return cfg, err
}

// oktaConfig reads the Okta connection the same way.
func oktaConfig(ctx context.Context, d *sqlstore.DB, host, token, proxy string) (okta.Config, error) {
	var cfg okta.Config
	var err error
	if cfg.Host, err = credential(ctx, d, host, "OKTA_USERSYNC_HOST"); err != nil {
		return cfg, err
	}
	if cfg.Token, err = credential(ctx, d, token, "OKTA_USERSYNC_TOKEN"); err != nil {
		return cfg, err
	}
	cfg.HTTPClient, err = proxyClient(proxy)
	return cfg, err
}

func (a *app) o365CheckCommand() *cobra.Command {
	var tenant, clientID, clientSecret, authority, graphURL, proxy string
	c := &cobra.Command{
		Use:   "check",
		Short: "Check the tenant and credentials without naming a group: sign in, read groups and users",
		Long: `Check what o365 provision needs, without syncing anything: the tenant is
known (a domain is resolved to the tenant's id), the application signs in, and
it may read groups and users. The credentials come from the same flags,
environment and settings as o365 provision. Exit status 0 when all hold, 1
with the first that does not.`,
		Args: cobra.NoArgs,
	}
	fl := c.Flags()
	fl.StringVar(&tenant, "tenant", "", "directory (tenant) id, GUID or domain name")
	fl.StringVar(&clientID, "client-id", "", "application (client) id")
	fl.StringVar(&clientSecret, "client-secret", "", "client secret value")
	fl.StringVar(&proxy, "proxy", "", "HTTPS proxy URL (default: HTTPS_PROXY from the environment)")
	fl.StringVar(&authority, "authority-url", envOr("O365_USERSYNC_AUTHORITY_URL", msgraph.DefaultAuthorityURL), "identity platform host (national clouds, emulator)")
	fl.StringVar(&graphURL, "graph-url", envOr("O365_USERSYNC_GRAPH_URL", msgraph.DefaultGraphURL), "Microsoft Graph host (national clouds, emulator)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		d := a.settingsOnly(ctx)
		if d != nil {
			defer d.Close()
		}
		cfg, err := graphConfig(ctx, d, graphFlags{tenant, clientID, clientSecret, authority, graphURL, proxy})
		if err != nil {
			return err
		}
		client, err := msgraph.New(cfg)
		if err != nil {
			return usageError{err}
		}
		id, err := client.TenantID(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "tenant:   %s is %s (its users and groups are kept as o365:%s)\n", cfg.Tenant, id, id)
		if err := client.SignIn(ctx); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "sign-in:  application %s signed in\n", cfg.ClientID)
		if err := client.CanRead(ctx); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "access:   may read groups and users (Group.Read.All, User.Read.All)")
		return nil
	}
	return c
}

func (a *app) oktaCheckCommand() *cobra.Command {
	var host, token, proxy string
	c := &cobra.Command{
		Use:   "check",
		Short: "Check the Okta org and API token without naming a group: the org's id, the token, read access",
		Long: `Check what okta provision needs, without syncing anything: the org answers
and tells its id, the API token is accepted, and it may read groups and the
user profile's schema. The host and token come from the same flags,
environment and settings as okta provision. Exit status 0 when all hold, 1
with the first that does not.`,
		Args: cobra.NoArgs,
	}
	fl := c.Flags()
	fl.StringVarP(&host, "okta-host", "H", "", "Okta org to connect to, e.g. example.okta.com")
	fl.StringVarP(&token, "okta-token", "P", "", "Okta API token (prefer OKTA_USERSYNC_TOKEN: flags show in process lists)")
	fl.StringVar(&proxy, "proxy", "", "HTTPS proxy URL (default: HTTPS_PROXY from the environment)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		d := a.settingsOnly(ctx)
		if d != nil {
			defer d.Close()
		}
		cfg, err := oktaConfig(ctx, d, host, token, proxy)
		if err != nil {
			return err
		}
		client, err := okta.New(cfg)
		if err != nil {
			return usageError{err}
		}
		id, err := client.OrgID(ctx, "")
		switch {
		case err == nil:
			fmt.Fprintf(a.stdout, "org:      %s is org %s (its users and groups are kept as okta:%s)\n", client.Host(), id, id)
		case usersync.ErrorCode(err) == usersync.ENOTFOUND:
			fmt.Fprintf(a.stdout, "org:      %s does not tell its org id; users and groups are kept under its host name\n", client.Host())
		default:
			return err
		}
		if cfg.Token == "" {
			return usersync.Errorf(usersync.EINVALID, "no API token given (--okta-token, OKTA_USERSYNC_TOKEN)")
		}
		if err := client.CanRead(ctx); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "access:   the API token is accepted and may read groups and the user schema")
		return nil
	}
	return c
}
