package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	graphemu "github.com/usersync/usersync/emulate/graph"
	oktaemu "github.com/usersync/usersync/emulate/okta"
)

// demoDB is the demo's own SQLite file, made afresh on every run unless
// --db (or USERSYNC_DB) names another directory.
const demoDB = "usersync-demo.db"

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Pull groups from an emulated Microsoft 365 tenant and Okta org, change them, pull again; then receive a SCIM push (no network, no setup)",
		Long: `Start the Graph emulator in-process on loopback with a generated tenant, run
"o365 provision --auto-create all --full-summary" of a sample group into an
embedded SQLite directory (` + demoDB + `, made afresh, unless --db names
another), change the tenant, and run it again: the second run is incremental
and applies only that change. Then the same with the Okta emulator and
"okta provision": a user deprovisioned in Okta is disabled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.demo(cmd.Context())
		},
	}
}

func (a *app) demo(ctx context.Context) error {
	w := a.stdout
	db := a.dbFlag
	if db == "" && os.Getenv("USERSYNC_DB") == "" {
		db = demoDB
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(db + suffix); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("demo: cannot start afresh: %w", err)
			}
		}
	} else if db == "" {
		db = os.Getenv("USERSYNC_DB")
	}

	tenant := graphemu.Generate(7, 200, 6)
	const clientID, secret = "usersync-demo", "demo-secret-not-for-production"
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: clientID, ClientSecret: secret})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start the Graph emulator on loopback: %w", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	const group = "Group 3"
	g := tenant.GroupsNamed(group)[0]
	fmt.Fprintf(w, "Graph emulator (in-process) at %s: tenant %s, 200 users, 6 groups; %q has %d members.\n", url, tenant.ID, group, len(g.Members))
	fmt.Fprintf(w, "Directory: %s (SQLite)\n", db)

	provision := func() error {
		fmt.Fprintf(w, "\n$ usersync o365 provision --auto-create all --full-summary %q\n", group)
		before := emu.Requests()["http"]
		args := []string{"--db", db, "o365", "provision", "--authority-url", url, "--graph-url", url, "--tenant", tenant.ID,
			"--client-id", clientID, "--client-secret", secret, "--auto-create", "all", "--full-summary", group}
		if code := run(ctx, args, strings.NewReader(""), w, a.stderr); code != 0 {
			return exitError{code}
		}
		fmt.Fprintf(w, "(%d Graph requests)\n", emu.Requests()["http"]-before)
		return nil
	}
	if err := provision(); err != nil {
		return err
	}

	changed, _ := tenant.User(g.Members[0])
	leaver, _ := tenant.User(g.Members[1])
	var joiner graphemu.User
	all := tenant.GroupsNamed("All Users")[0]
	for _, id := range all.Members {
		if !contains(g.Members, id) {
			joiner, _ = tenant.User(id)
			break
		}
	}
	tenant.UpdateUser(changed.ID, func(u *graphemu.User) { u.Surname += "-Smith" })
	tenant.RemoveMember(g.ID, leaver.ID)
	tenant.AddMember(g.ID, joiner.ID)
	fmt.Fprintf(w, "\nIn the tenant: %s's surname becomes %q; %s leaves %q; %s joins it.\n",
		changed.UserPrincipalName, changed.Surname+"-Smith", leaver.UserPrincipalName, group, joiner.UserPrincipalName)
	if err := provision(); err != nil {
		return err
	}
	if err := a.demoOkta(ctx, db); err != nil {
		return err
	}
	if err := a.demoSCIM(ctx, db); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nLook around: usersync --db %s users list; usersync --db %s changes\n", db, db)
	return nil
}

// demoOkta pulls a group from an emulated Okta org into the same directory,
// then deprovisions one of its users in Okta and pulls again.
func (a *app) demoOkta(ctx context.Context, db string) error {
	w := a.stdout
	org := oktaemu.Generate(7, 200, 4)
	const token = "00demo-token-not-for-production"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start the Okta emulator on loopback: %w", err)
	}
	srv := &http.Server{Handler: oktaemu.NewServer(org, oktaemu.Options{Token: token}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	host := "http://" + ln.Addr().String()
	const group = "Group 2"
	g := org.GroupsNamed(group)[0]
	fmt.Fprintf(w, "\n\nOkta emulator (in-process) at %s: 200 users, 4 groups; %q has %d members.\n", host, group, len(g.Members))
	provision := func(extra ...string) error {
		fmt.Fprintf(w, "\n$ usersync okta provision --okta-host %s --auto-create all %s%q\n", host, strings.Join(append(extra, ""), " "), group)
		args := append([]string{"--db", db, "okta", "provision", "-H", host, "-P", token, "--auto-create", "all"}, append(extra, group)...)
		if code := run(ctx, args, strings.NewReader(""), w, a.stderr); code != 0 {
			return exitError{code}
		}
		return nil
	}
	if err := provision(); err != nil {
		return err
	}
	var leaver oktaemu.User
	for _, id := range g.Members {
		if u, _ := org.User(id); u.Status == oktaemu.StatusActive {
			leaver = u
			break
		}
	}
	org.UpdateUser(leaver.ID, func(u *oktaemu.User) { u.Status = oktaemu.StatusDeprovisioned })
	fmt.Fprintf(w, "\nIn Okta: %s is deprovisioned.\n", leaver.Profile["login"])
	return provision("--full-summary")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
