package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"

	graphemu "github.com/usersync/usersync/emulate/graph"
	oktaemu "github.com/usersync/usersync/emulate/okta"
)

// demoDB is the demo's own SQLite file, made afresh on every run unless
// --db names another.
const demoDB = "usersync-demo.db"

// demoMark is what the demo records in the directories it makes.
const demoMark = "usersync demo"

// demoDirectory returns the directory the demo writes to: one it makes
// itself. USERSYNC_DB is not looked at: it names the directory of real use.
// Without --db that is demoDB, made afresh; with --db, a new one, or one an
// earlier demo made. Anything else is refused, never written to.
func (a *app) demoDirectory(ctx context.Context) (db string, reused bool, err error) {
	db = a.dbFlag
	if db == "" {
		db = demoDB
		if _, err := a.demoOwns(ctx, db); err != nil {
			return "", false, err
		}
		for _, suffix := range []string{"", "-wal", "-shm", ".key"} {
			if err := os.Remove(db + suffix); err != nil && !os.IsNotExist(err) {
				return "", false, fmt.Errorf("demo: cannot start afresh: %w", err)
			}
		}
	} else if reused, err = a.demoOwns(ctx, db); err != nil {
		return "", false, err
	}
	d, err := sqlstore.Open(ctx, db)
	if err != nil {
		return "", false, err
	}
	defer d.Close()
	return db, reused, d.SetMeta(ctx, sqlstore.MetaMadeBy, demoMark)
}

// demoOwns checks that db does not exist (false) or is a directory a demo
// made (true).
func (a *app) demoOwns(ctx context.Context, db string) (bool, error) {
	d, err := sqlstore.OpenWith(ctx, db, sqlstore.Options{Existing: true})
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("demo: %w", err)
	}
	defer d.Close()
	made, err := d.Meta(ctx, sqlstore.MetaMadeBy)
	if err != nil || made == demoMark {
		return err == nil, err
	}
	how := "Run it without --db (it uses " + demoDB + " in the current folder), or give --db a path that does not exist yet"
	if db == demoDB {
		how = "Move that file away, or run the demo in another folder"
	}
	return false, usersync.Errorf(usersync.ECONFLICT, "demo: %s is a directory the demo did not make; the demo writes only to a directory of its own, so nothing was changed. %s", d.Where(), how)
}

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Pull groups from an emulated Microsoft 365 tenant and Okta org, push a group back out, receive a SCIM push (no network, no setup)",
		Long: `Start the Graph emulator in-process on loopback with a generated tenant, run
"o365 provision --auto-create all --full-summary" of a sample group into an
embedded SQLite directory (` + demoDB + `, made afresh, unless --db names
another), change the tenant, and run it again: the second run is incremental
and applies only that change. Then a provisioner pushes a marked folder's
group to the emulated tenant and follows a member change. Then the same pull
with the Okta emulator and "okta provision": a user deprovisioned in Okta is
disabled. Then a SCIM push like Microsoft Entra's. Last, it prints how to
open the admin console, with a password made for this run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.demo(cmd.Context())
		},
	}
}

func (a *app) demo(ctx context.Context) error {
	w := a.stdout
	db, _, err := a.demoDirectory(ctx)
	if err != nil {
		return err
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
		before := emu.Requests()["http"]
		args := []string{"--db", db, "o365", "provision", "--authority-url", url, "--graph-url", url, "--tenant", tenant.ID,
			"--client-id", clientID, "--client-secret", secret, "--auto-create", "all", "--full-summary", group}
		fmt.Fprintf(w, "\n$ %s %s\n", selfCommand(), shellJoin(args))
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
	g, _ = tenant.Group(g.ID)
	if err := a.demoPush(ctx, db, url, emu, g, clientID, secret); err != nil {
		return err
	}
	var pulled string // a user the pull brought in, with a mail: in the tenant already
	for _, id := range g.Members[4:] {
		if u, _ := tenant.User(id); u.Mail != nil {
			pulled = u.UserPrincipalName
			break
		}
	}
	if err := a.demoUsers(ctx, db, url, emu, pulled, clientID, secret); err != nil {
		return err
	}
	oktaHost, err := a.demoOkta(ctx, db)
	if err != nil {
		return err
	}
	if err := a.demoSCIM(ctx, db); err != nil {
		return err
	}
	if err := a.demoConsole(ctx, db); err != nil {
		return err
	}
	self := selfCommand()
	fmt.Fprintf(w, "\nLook around: %s --db %s users list; %s --db %s changes\n", self, db, self, db)
	fmt.Fprintf(w, "The emulators stopped with the demo. To paste the commands above, start them again at the same\n"+
		"addresses, with the same tenant, org and credentials (each in a terminal of its own):\n"+
		"  %s emulate graph --listen %s --users 200 --groups 6 --seed 7 --client-id %s --client-secret %s\n"+
		"  %s emulate okta --listen %s --users 200 --groups 4 --seed 7 --token %s\n",
		self, strings.TrimPrefix(url, "http://"), clientID, secret, self, strings.TrimPrefix(oktaHost, "http://"), demoOktaToken)
	return nil
}

// demoSecretFile writes the demo's client secret to a file beside its
// directory, kept so that the printed commands naming it can be pasted.
func demoSecretFile(db, secret string) (string, error) {
	f := filepath.Join(filepath.Dir(db), "usersync-demo-client-secret.txt")
	return f, os.WriteFile(f, []byte(secret+"\n"), 0o600)
}

// demoOktaToken is the emulated Okta org's API token.
const demoOktaToken = "00demo-token-not-for-production"

// demoOkta pulls a group from an emulated Okta org into the same directory,
// then deprovisions one of its users in Okta and pulls again.
func (a *app) demoOkta(ctx context.Context, db string) (string, error) {
	w := a.stdout
	org := oktaemu.Generate(7, 200, 4)
	const token = demoOktaToken
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo: start the Okta emulator on loopback: %w", err)
	}
	srv := &http.Server{Handler: oktaemu.NewServer(org, oktaemu.Options{Token: token}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	host := "http://" + ln.Addr().String()
	const group = "Group 2"
	g := org.GroupsNamed(group)[0]
	fmt.Fprintf(w, "\n\nOkta emulator (in-process) at %s: 200 users, 4 groups; %q has %d members.\n", host, group, len(g.Members))
	provision := func(extra ...string) error {
		args := append([]string{"--db", db, "okta", "provision", "-H", host, "-P", token, "--auto-create", "all"}, append(extra, group)...)
		fmt.Fprintf(w, "\n$ %s %s\n", selfCommand(), shellJoin(args))
		if code := run(ctx, args, strings.NewReader(""), w, a.stderr); code != 0 {
			return exitError{code}
		}
		return nil
	}
	if err := provision(); err != nil {
		return "", err
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
	return host, provision("--full-summary")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// selfCommand is how the user can run this usersync again: "go run
// ./cmd/usersync" when it was started that way, "usersync" when that is on
// the PATH, else the path it was started by.
func selfCommand() string {
	exe, _ := os.Executable()
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/usersync"
	}
	if p, err := exec.LookPath("usersync"); err == nil {
		if a, b := resolved(p), resolved(exe); a == b {
			return "usersync"
		}
	}
	return os.Args[0]
}

func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// shellJoin quotes args for a POSIX shell where needed.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
