package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	graphemu "github.com/usersync/usersync/emulate/graph"
	oktaemu "github.com/usersync/usersync/emulate/okta"
)

func (a *app) emulateCommand() *cobra.Command {
	c := &cobra.Command{Use: "emulate", Short: "Serve emulated identity providers on loopback for demos, staging and benchmarks"}
	var listen, tenantID, clientID, clientSecret, tenantFile string
	var users, groups int
	var seed int64
	var o graphemu.Options
	g := &cobra.Command{
		Use:   "graph --listen ADDR [--users N --groups N --seed S]",
		Short: "Serve a generated tenant over the Microsoft Graph and token-endpoint wire protocols",
		Long: `Serve a generated tenant over the Microsoft Graph and token-endpoint wire
protocols. One address answers both roles: point a client at it with
--authority-url http://ADDR --graph-url http://ADDR. The tenant holds "All
Users" (every user) and groups "Group 1", "Group 2", … of halving sizes.`,
		Args: cobra.NoArgs,
	}
	fl := g.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:9001", "address to listen on")
	fl.IntVar(&users, "users", 1000, "users in the generated tenant")
	fl.IntVar(&groups, "groups", 10, "groups in the generated tenant, All Users included")
	fl.Int64Var(&seed, "seed", 1, "seed of the generated tenant")
	fl.StringVar(&tenantFile, "tenant-file", "", `serve this tenant instead of a generated one: JSON {"id", "users": [...], "groups": [...]}`)
	fl.StringVar(&tenantID, "tenant", "", "tenant id (default: derived from the seed)")
	fl.StringVar(&clientID, "client-id", "", "accepted client id (default: generated and printed)")
	fl.StringVar(&clientSecret, "client-secret", "", "accepted client secret (default: generated and printed)")
	fl.DurationVar(&o.Latency, "latency", 0, "added to every Graph request, e.g. 50ms")
	fl.IntVar(&o.RequestBudget, "throttle", 0, "answer 429 with Retry-After past this many requests per 10 s (0: never)")
	fl.Float64Var(&o.FailRate, "fail-rate", 0, "share of Graph requests answered 503, e.g. 0.1")
	g.RunE = func(cmd *cobra.Command, args []string) error {
		if users < 0 || groups < 1 || o.FailRate < 0 || o.FailRate > 1 {
			return usageError{errors.New("--users must be ≥ 0, --groups ≥ 1 and --fail-rate between 0 and 1")}
		}
		tenant := graphemu.Generate(seed, users, groups)
		if tenantFile != "" {
			f, err := os.Open(tenantFile)
			if err != nil {
				return usageError{fmt.Errorf("--tenant-file: %w", err)}
			}
			tenant, err = graphemu.LoadTenant(f)
			f.Close()
			if err != nil {
				return usageError{fmt.Errorf("--tenant-file %s: %w", tenantFile, err)}
			}
		}
		if tenantID != "" {
			tenant.ID = tenantID
		}
		if clientID == "" {
			clientID = randomHex(8)
		}
		if clientSecret == "" {
			clientSecret = randomHex(16)
		}
		o.ClientID, o.ClientSecret, o.Seed = clientID, clientSecret, seed
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", listen, err)
		}
		addr := "http://" + ln.Addr().String()
		fmt.Fprintf(a.stdout, "Graph emulator listening on %s\n", addr)
		nu, ng := tenant.Size()
		fmt.Fprintf(a.stdout, "  tenant %s: %d users, %d groups\n", tenant.ID, nu, ng)
		fmt.Fprintf(a.stdout, "  usersync o365 provision --authority-url %s --graph-url %s --tenant %s --client-id %s --client-secret %s --auto-create all \"All Users\"\n",
			addr, addr, tenant.ID, clientID, clientSecret)
		return serve(cmd.Context(), ln, graphemu.NewServer(tenant, o))
	}
	c.AddCommand(g, a.emulateOktaCommand())
	return c
}

func (a *app) emulateOktaCommand() *cobra.Command {
	var listen, token, orgFile string
	var users, groups int
	var seed int64
	var o oktaemu.Options
	c := &cobra.Command{
		Use:   "okta --listen ADDR [--users N --groups N --seed S]",
		Short: "Serve a generated Okta org over the Okta management API",
		Long: `Serve a generated (or --org-file) Okta org over the Okta management API.
Point a client at it with --okta-host http://ADDR. The org holds the built-in
group Everyone (every user) and groups "Group 1", "Group 2", … of halving
sizes; about 3% of users are SUSPENDED, 3% DEPROVISIONED, 2% LOCKED_OUT.`,
		Args: cobra.NoArgs,
	}
	fl := c.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:9002", "address to listen on")
	fl.IntVar(&users, "users", 1000, "users in the generated org")
	fl.IntVar(&groups, "groups", 10, "groups in the generated org, Everyone included")
	fl.Int64Var(&seed, "seed", 1, "seed of the generated org")
	fl.StringVar(&orgFile, "org-file", "", `serve this org instead of a generated one: JSON {"users": [...], "groups": [...]}`)
	fl.StringVar(&token, "token", "", "accepted API token (default: generated and printed)")
	fl.IntVar(&o.RateLimit, "rate-limit", 600, "requests per minute per endpoint family; over it, 429 E0000047")
	fl.DurationVar(&o.Latency, "latency", 0, "added to every API request, e.g. 100ms")
	fl.Float64Var(&o.FailRate, "fail-rate", 0, "share of API requests answered 500, e.g. 0.1")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if users < 0 || groups < 1 || o.RateLimit < 1 || o.FailRate < 0 || o.FailRate > 1 {
			return usageError{errors.New("--users must be ≥ 0, --groups ≥ 1, --rate-limit ≥ 1 and --fail-rate between 0 and 1")}
		}
		org := oktaemu.Generate(seed, users, groups)
		if orgFile != "" {
			f, err := os.Open(orgFile)
			if err != nil {
				return usageError{fmt.Errorf("--org-file: %w", err)}
			}
			org, err = oktaemu.LoadOrg(f)
			f.Close()
			if err != nil {
				return usageError{fmt.Errorf("--org-file %s: %w", orgFile, err)}
			}
		}
		if token == "" {
			token = "00" + randomHex(20)
		}
		o.Token, o.Seed = token, seed
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", listen, err)
		}
		addr := "http://" + ln.Addr().String()
		nu, ng := org.Size()
		fmt.Fprintf(a.stdout, "Okta emulator listening on %s\n", addr)
		fmt.Fprintf(a.stdout, "  org: %d users, %d groups; %d requests per minute per endpoint family\n", nu, ng, o.RateLimit)
		fmt.Fprintf(a.stdout, "  usersync okta provision --okta-host %s --okta-token %s --auto-create all Everyone\n", addr, token)
		return serve(cmd.Context(), ln, oktaemu.NewServer(org, o))
	}
	return c
}

// serve answers on ln until ctx ends.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
