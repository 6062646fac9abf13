package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usersync/usersync"

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
Users" (every user) and groups "Group 1", "Group 2", … of halving sizes.
Groups can be written too (what a provisioner sends); what was asked of the
emulator, requests by endpoint and accepted writes by kind, is served as JSON
at http://ADDR` + graphemu.CountsPath + `.`,
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
	fl.IntVar(&o.WriteBudget, "write-budget", 0, "answer writes 429 with Retry-After past this many per --write-window (Graph: 3000 per 150s; 0: no quota)")
	fl.DurationVar(&o.WriteWindow, "write-window", 150*time.Second, "the window of --write-budget")
	fl.DurationVar(&o.ReplicationLag, "replication-lag", 0, "a group created less than this ago answers 404, as Graph's replicas do, e.g. 2s")
	var tf tlsFlags
	tf.register(fl)
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
		ln, addr, err := a.listenEmulator(listen, tf)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Graph emulator listening on %s\n", addr)
		nu, ng := tenant.Size()
		fmt.Fprintf(a.stdout, "  tenant %s: %d users, %d groups\n", tenant.ID, nu, ng)
		if group, size := tenant.LargestGroup(); group != "" {
			fmt.Fprintf(a.stdout, "  %s\n", shellJoin(append([]string{selfCommand(), "o365", "provision", "--authority-url", addr, "--graph-url", addr, "--tenant", tenant.ID,
				"--client-id", clientID, "--client-secret", clientSecret, "--auto-create", "all"}, append(userLimit(size), group)...)))
		}
		fmt.Fprintf(a.stdout, "  what was sent: %s%s\n", addr, graphemu.CountsPath)
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
	var tf tlsFlags
	tf.register(fl)
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
		ln, addr, err := a.listenEmulator(listen, tf)
		if err != nil {
			return err
		}
		nu, ng := org.Size()
		fmt.Fprintf(a.stdout, "Okta emulator listening on %s\n", addr)
		fmt.Fprintf(a.stdout, "  org: %d users, %d groups; %d requests per minute per endpoint family\n", nu, ng, o.RateLimit)
		if group, size := org.LargestGroup(); group != "" {
			fmt.Fprintf(a.stdout, "  %s\n", shellJoin(append([]string{selfCommand(), "okta", "provision", "--okta-host", addr, "--okta-token", token, "--auto-create", "all"},
				append(userLimit(size), group)...)))
		}
		return serve(cmd.Context(), ln, oktaemu.NewServer(org, o))
	}
	return c
}

// userLimit is the --sync-user-limit a group of n users needs (none up to
// the default of 10,000).
func userLimit(n int) []string {
	if n <= 10000 {
		return nil
	}
	return []string{"--sync-user-limit", strconv.Itoa(n)}
}

// tlsFlags let an emulator serve HTTPS, as the official SDKs require.
type tlsFlags struct {
	cert, key  string
	selfSigned bool
}

func (f *tlsFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.cert, "tls-cert", "", "serve HTTPS with this certificate (PEM); with --tls-key")
	fl.StringVar(&f.key, "tls-key", "", "the private key of --tls-cert (PEM)")
	fl.BoolVar(&f.selfSigned, "tls-self-signed", false, "serve HTTPS with a certificate made now for 127.0.0.1 and localhost; its file and SHA-256 fingerprint are printed")
}

// listenEmulator listens on addr, over TLS when asked, and returns the
// listener and the base URL clients use.
func (a *app) listenEmulator(addr string, tf tlsFlags) (net.Listener, string, error) {
	if tf.selfSigned && (tf.cert != "" || tf.key != "") {
		return nil, "", usageError{errors.New("--tls-self-signed makes its own certificate: leave out --tls-cert and --tls-key")}
	}
	conf, err := loadTLS(tf.cert, tf.key)
	if err != nil {
		return nil, "", err
	}
	if tf.selfSigned {
		var file, fingerprint string
		if conf, file, fingerprint, err = makeSelfSigned(); err != nil {
			return nil, "", err
		}
		fmt.Fprintf(a.stdout, "TLS: a self-signed certificate, SHA-256 fingerprint %s\n  in %s (clients trust it with SSL_CERT_FILE=%s)\n", fingerprint, file, file)
	}
	ln, err := listenOn(addr)
	if err != nil {
		return nil, "", err
	}
	if conf == nil {
		return ln, "http://" + ln.Addr().String(), nil
	}
	return tls.NewListener(ln, conf), "https://" + ln.Addr().String(), nil
}

// makeSelfSigned makes a certificate for the loopback names, writes it to a
// file (PEM) and returns a TLS configuration serving it.
func makeSelfSigned() (*tls.Config, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "usersync emulator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", "", err
	}
	f, err := os.CreateTemp("", "usersync-emulator-*.pem")
	if err != nil {
		return nil, "", "", usersync.Errorf(usersync.EUNAVAILABLE, "cannot write the emulator's certificate: %v", err)
	}
	pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	f.Close()
	sum := sha256.Sum256(der)
	fp := strings.ToUpper(hex.EncodeToString(sum[:]))
	var pairs []string
	for i := 0; i < len(fp); i += 2 {
		pairs = append(pairs, fp[i:i+2])
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, f.Name(), strings.Join(pairs, ":"), nil
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
