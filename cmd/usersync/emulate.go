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
		srv := &http.Server{Handler: graphemu.NewServer(tenant, o), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	c.AddCommand(g)
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
