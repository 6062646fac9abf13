package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/sqlstore"
)

type result struct {
	code           int
	stdout, stderr string
}

// cli runs usersync in-process against the database db.
func cli(t testing.TB, db string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if db != "" {
		args = append([]string{"--db", db}, args...)
	}
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func ok(t testing.TB, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

func fails(t *testing.T, r result, code int, says string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, says) {
		t.Fatalf("exit %d, stderr %q; want exit %d saying %q", r.code, r.stderr, code, says)
	}
}

func TestCLIWorkflow(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "users", "create", "--username", "alice@example.com", "--email", "alice@example.com", "--first-name", "Alice", "--type", "administrator", "--attr", "dept=IT"))
	ok(t, cli(t, db, "", "users", "create", "--username", "bob", "--email", "bob@example.com"))
	ok(t, cli(t, db, "", "groups", "create", "app:test:group5", "--description", "five"))
	r := ok(t, cli(t, db, "", "groups", "members", "add", "app:test:group5", "alice@example.com", "BOB"))
	if strings.TrimSpace(r.stdout) != "added 2 users" {
		t.Fatalf("members add said %q", r.stdout)
	}
	r = ok(t, cli(t, db, "", "-o", "json", "groups", "members", "list", "app:test:group5"))
	var members struct {
		Total   int `json:"total"`
		Members []struct {
			Username string `json:"username"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &members); err != nil || members.Total != 2 || members.Members[0].Username != "alice@example.com" {
		t.Fatalf("members JSON %q: %v", r.stdout, err)
	}
	r = ok(t, cli(t, db, "", "users", "show", "ALICE@example.com"))
	for _, want := range []string{"administrator", "dept=IT", "app:test:group5"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("users show lacks %q:\n%s", want, r.stdout)
		}
	}
	ok(t, cli(t, db, "", "users", "update", "bob", "--disable", "--last-name", "Builder", "--unset-attr", "none"))
	r = ok(t, cli(t, db, "", "-o", "json", "users", "show", "bob"))
	if !strings.Contains(r.stdout, `"enabled": false`) || !strings.Contains(r.stdout, `"lastName": "Builder"`) {
		t.Fatalf("update not applied: %s", r.stdout)
	}
	r = ok(t, cli(t, db, "", "folders", "list"))
	if !strings.Contains(r.stdout, "app:test") {
		t.Fatalf("folders: %s", r.stdout)
	}
	ok(t, cli(t, db, "", "folders", "set-attr", "app", "owner=it", "tier=1"))
	r = ok(t, cli(t, db, "", "folders", "show", "app"))
	if !strings.Contains(r.stdout, "owner=it, tier=1") {
		t.Fatalf("folder attrs: %s", r.stdout)
	}

	// tokens create prints the clear token alone on stdout.
	r = ok(t, cli(t, db, "", "tokens", "create", "--user", "alice@example.com", "--name", "entra"))
	token := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(token, "ust_") || strings.Contains(token, "\n") || strings.Contains(r.stderr, token) {
		t.Fatalf("token output %q / %q", r.stdout, r.stderr)
	}
	r = ok(t, cli(t, db, "", "tokens", "list"))
	if strings.Contains(r.stdout, token) || !strings.Contains(r.stdout, token[len(token)-4:]) {
		t.Fatalf("tokens list shows the token or lacks its hint: %s", r.stdout)
	}
	ok(t, cli(t, db, "", "tokens", "revoke", "1"))

	// Secrets are set from stdin and never shown.
	ok(t, cli(t, db, "hunter2\n", "settings", "set", "O365_USERSYNC_CLIENT_SECRET", "-"))
	for _, args := range [][]string{{"settings", "list"}, {"settings", "get", "O365_USERSYNC_CLIENT_SECRET"}, {"-o", "json", "settings", "list"}} {
		if r := ok(t, cli(t, db, "", args...)); strings.Contains(r.stdout, "hunter2") {
			t.Fatalf("%v shows the secret", args)
		}
	}
	if r := ok(t, cli(t, db, "", "settings", "get", "--reveal", "O365_USERSYNC_CLIENT_SECRET")); strings.TrimSpace(r.stdout) != "hunter2" {
		t.Fatalf("--reveal: %q", r.stdout)
	}

	r = ok(t, cli(t, db, "", "changes", "--after", "0"))
	for _, want := range []string{"user.created", "member.added", "folder.updated", "user.updated", `lastName: ""→"Builder"`} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("changes lacks %q:\n%s", want, r.stdout)
		}
	}
	ok(t, cli(t, db, "", "groups", "delete", "app:test:group5"))
	ok(t, cli(t, db, "", "users", "delete", "bob"))
}

// TestCLIBadInput checks that mistakes get a message naming the problem, a
// non-zero exit, and change nothing.
func TestCLIBadInput(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "users", "create", "--username", "carol", "--email", "carol@example.com"))
	ok(t, cli(t, db, "", "groups", "create", "Sales"))
	before := ok(t, cli(t, db, "", "-o", "json", "changes")).stdout

	fails(t, cli(t, db, "", "users", "create", "--username", "CAROL", "--email", "c2@example.com"), 1, `user "CAROL" already exists`)
	fails(t, cli(t, db, "", "users", "create", "--username", "dan", "--email", "not-an-email"), 1, `email "not-an-email" is not a valid address`)
	fails(t, cli(t, db, "", "users", "create", "--username", "dan", "--type", "root"), 1, `user type "root" is not one of`)
	fails(t, cli(t, db, "", "groups", "members", "add", "Marketing", "carol"), 1, `group "Marketing" not found`)
	fails(t, cli(t, db, "", "groups", "members", "add", "Sales", "carol", "nobody"), 1, `user "nobody" not found`)
	fails(t, cli(t, db, "", "groups", "delete", "Default Group"), 1, "built in and cannot be deleted")
	fails(t, cli(t, db, "", "settings", "set", "SCIM_REMOVE_USER_ON_SOFT_DELETE", "perhaps"), 1, `takes Y or N, not "perhaps"`)
	fails(t, cli(t, db, "", "settings", "set", "NO_SUCH_SETTING", "1"), 1, `unknown setting "NO_SUCH_SETTING"`)
	fails(t, cli(t, db, "", "tokens", "revoke", "abc"), 2, `token ID "abc" is not a number`)
	fails(t, cli(t, db, "", "users", "show"), 2, "accepts 1 arg")
	fails(t, cli(t, db, "", "users", "create", "--email", "x@example.com"), 2, "needs --username")
	fails(t, cli(t, db, "", "users", "list", "--bogus"), 2, "unknown flag: --bogus")
	fails(t, cli(t, db, "", "users", "frobnicate"), 2, `unknown command "frobnicate"`)
	fails(t, cli(t, db, "", "-o", "yaml", "users", "list"), 2, "--output must be table or json")
	fails(t, cli(t, db, "", "users", "update", "carol", "--attr", "novalue"), 2, `attribute "novalue" is not in the form name=value`)

	if after := ok(t, cli(t, db, "", "-o", "json", "changes")).stdout; after != before {
		t.Fatalf("refused commands changed the directory:\nbefore %s\nafter %s", before, after)
	}
	r := ok(t, cli(t, db, "", "-o", "json", "groups", "members", "list", "Sales"))
	if !strings.Contains(r.stdout, `"total": 0`) {
		t.Fatalf("a failed members add added someone: %s", r.stdout)
	}
	if s := ok(t, cli(t, db, "", "settings", "get", "SCIM_REMOVE_USER_ON_SOFT_DELETE")).stdout; strings.TrimSpace(s) != "N" {
		t.Fatalf("a refused setting changed it to %q", s)
	}

	fails(t, cli(t, "mysql://db.example.com/x", "", "users", "list"), 1, `unsupported scheme "mysql"`)
	fails(t, cli(t, filepath.Join(t.TempDir(), "no", "such", "dir.db"), "", "users", "list"), 1, "does not exist")
	fails(t, cli(t, "postgres://u:secretpw@[bad", "", "users", "list"), 1, "malformed")
	if r := cli(t, "postgres://u:secretpw@[bad", "", "users", "list"); strings.Contains(r.stderr, "secretpw") {
		t.Fatalf("the database password reached the error: %s", r.stderr)
	}
}

func TestCLIDemo(t *testing.T) {
	// As a new user runs it: no --db, in an empty folder.
	t.Chdir(t.TempDir())
	t.Setenv("USERSYNC_DB", "")
	var pullsOut string
	for round := 0; round < 2; round++ { // a second demo starts afresh
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"demo"}, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("demo exit %d: %s", code, errOut.String())
		}
		pullsOut = out.String()
		pulls, scimPart, found := strings.Cut(out.String(), "SCIM 2.0 endpoint")
		if !found || strings.Count(scimPart, "→ 201 ") != 2 || !regexp.MustCompile(`PATCH /Groups/g\d+ +\(Add members\) +→ 200`).MatchString(scimPart) ||
			!strings.Contains(scimPart, "displayName Ada King") || !strings.Contains(scimPart, "userName ada.lovelace@contoso.com, displayName Ada King, active false") ||
			!strings.Contains(scimPart, "the soft-deleted user is deleted_ada.lovelace@contoso.com (enabled false)") ||
			!strings.Contains(scimPart, "→ 400 invalidPath") || strings.Contains(scimPart, "ust_") {
			t.Fatalf("demo round %d, SCIM part:\n%s", round, scimPart)
		}
		graphPart, oktaPart, found := strings.Cut(pulls, "Okta emulator (in-process)")
		if !found || !strings.Contains(oktaPart, "users created 0, updated 1, skipped 1") || !strings.Contains(oktaPart, `enabled: "true"→"false"`) {
			t.Fatalf("demo round %d, Okta part:\n%s", round, oktaPart)
		}
		graphPart, pushPart, found := strings.Cut(graphPart, "Pushing groups out")
		if !found || !strings.Contains(pushPart, `In the tenant: group "CRM - Sales: Sales team" (mailNickname apps-crm-sales) with members ada.dijkstra44@contoso.example, donald.hopper38@contoso.example, edsger.ritchie46@contoso.example`) ||
			!strings.Contains(pushPart, "add-member 1, remove-member 1") || !strings.Contains(pushPart, "failing groups:  none") ||
			!strings.Contains(pushPart, "members ada.dijkstra44@contoso.example, edsger.ritchie46@contoso.example, radia.thompson56@contoso.example") || strings.Contains(pushPart, "demo-secret-not-for-production") {
			t.Fatalf("demo round %d, push part:\n%s", round, pushPart)
		}
		first, second, found := strings.Cut(graphPart, "In the tenant:")
		if !found || !strings.Contains(first, "25 source users; users created 25, updated 0, skipped 0; groups created 1; members added 25, removed 0; joined the Default Group or mapped groups 25") ||
			strings.Count(first, "create-user ") != 25 || !strings.Contains(first, "--graph-url http://127.0.0.1:") || !strings.Contains(first, "--client-secret ") {
			t.Fatalf("demo round %d, first run:\n%s", round, first)
		}
		if !strings.Contains(second, "incremental, 2 changed users and 1 left; users created 1, updated 1, skipped 0; groups created 0; members added 1, removed 1; joined the Default Group or mapped groups 1") ||
			!strings.Contains(second, `-Smith" (owned by o365:`) || strings.Count(second, "      ") != 6 || !strings.Contains(second, "join-group    barbara.dijkstra0@contoso.example in Default Group") {
			t.Fatalf("demo round %d, second run shows more than the change:\n%s", round, second)
		}
	}
	// The Office 365 part: the seed's rule checked, the creates approved
	// (one user adopted, two created, Josh licensed), Ann suspended.
	for _, want := range []string{"josh.ames@contoso.example  Will be mapped", "adopt:done 1, create:done 2, licenses:done 1; 0 failed",
		"In the tenant: josh.ames@contoso.example (Josh Ames), enabled true, 3 licenses", "suspend:done 1; 0 failed"} {
		if !strings.Contains(pullsOut, want) {
			t.Fatalf("the demo's Office 365 part lacks %q:\n%s", want, pullsOut)
		}
	}
	m := regexp.MustCompile(`then open http://127\.0\.0\.1:8443/admin and sign in as ` + demoConsoleUser + ` with the password (\S+)`).FindStringSubmatch(pullsOut)
	if m == nil {
		t.Fatalf("the demo does not say how to open the console:\n%s", pullsOut)
	}
	d, err := sqlstore.Open(context.Background(), demoDB)
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := d.SignInState(context.Background(), demoConsoleUser)
	d.Close()
	if err != nil || bcrypt.CompareHashAndPassword([]byte(st.PasswordHash), []byte(m[1])) != nil {
		t.Fatalf("the console password the demo printed does not sign in: %v", err)
	}
	if !strings.Contains(pullsOut, "Look around: go run ./cmd/usersync --db "+demoDB) {
		t.Fatalf("the closing hint does not say how to run usersync as it was run (go run): %s", pullsOut[max(0, len(pullsOut)-400):])
	}
	pasteDemoCommands(t, pullsOut)
	r := ok(t, cli(t, demoDB, "", "-o", "json", "users", "list"))
	if !strings.Contains(r.stdout, `"total": 80`) { // 26 from the tenant, Josh and Ann made for Office 365, 49 from Okta, the SCIM client's admin and its user, the console's admin
		t.Fatalf("the demo directory: %.200s", r.stdout)
	}
	// USERSYNC_DB names the directory of real use: the demo never writes to
	// it, and refuses a --db it did not make.
	real := filepath.Join(t.TempDir(), "real.db")
	ok(t, cli(t, real, "", "users", "create", "--username", "keep@example.com", "--email", "keep@example.com"))
	seq := func() string { return ok(t, cli(t, real, "", "-o", "json", "changes")).stdout }
	before := seq()
	t.Setenv("USERSYNC_DB", real)
	var refused, refusedErr bytes.Buffer
	if code := run(context.Background(), []string{"demo"}, strings.NewReader(""), &refused, &refusedErr); code != 0 {
		t.Fatalf("demo with USERSYNC_DB set: exit %d: %s", code, refusedErr.String())
	}
	if code := run(context.Background(), []string{"--db", real, "demo"}, strings.NewReader(""), &refused, &refusedErr); code != 1 ||
		!strings.Contains(refusedErr.String(), "did not make") || !strings.Contains(refusedErr.String(), "nothing was changed") {
		t.Fatalf("demo --db of another directory: exit %d: %s", code, refusedErr.String())
	}
	if seq() != before {
		t.Fatal("the demo wrote to a directory it did not make")
	}
	t.Setenv("USERSYNC_DB", "")
	// Named with --db, a directory the demo made is kept: the SCIM client
	// finds what it made before and creates nothing.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--db", demoDB, "demo"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("demo --db exit %d: %s", code, errOut.String())
	}
	if _, scimPart, _ := strings.Cut(out.String(), "SCIM 2.0 endpoint"); strings.Count(scimPart, "→ 200 totalResults 1") != 2 || strings.Contains(scimPart, "POST") {
		t.Fatalf("demo --db, SCIM part:\n%s", scimPart)
	}
}

// A usage error points to the help of the command that was mistyped, not
// to the top-level help (it always said 'usersync --help').
func TestUsageErrorNamesTheCommandsHelp(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	fails(t, cli(t, db, "", "users", "set-password"), 2, "Run 'usersync users set-password --help' for usage.")
	fails(t, cli(t, db, "", "okta", "provision", "--nope"), 2, "Run 'usersync okta provision --help' for usage.")
	fails(t, cli(t, db, "", "bogus"), 2, "Run 'usersync --help' for usage.")
}

// pasteDemoCommands does what the demo's closing lines offer: it starts the
// emulators again with the command lines printed, then pastes the pulls
// the demo printed, and the secret file its provisioner commands name.
// (Issue 26, item 13: the file was deleted, and a standalone emulator
// refused the client id.)
func pasteDemoCommands(t *testing.T, out string) {
	t.Helper()
	words := func(line string) []string { // the quoting shellJoin writes: '…' with '\'' inside
		var out []string
		for _, m := range regexp.MustCompile(`'((?:[^']|'\\'')*)'|(\S+)`).FindAllStringSubmatch(line, -1) {
			if m[2] != "" {
				out = append(out, m[2])
			} else {
				out = append(out, strings.ReplaceAll(m[1], `'\''`, "'"))
			}
		}
		return out
	}
	after := func(line, marker string) []string {
		_, rest, _ := strings.Cut(line, marker)
		return words(marker + rest)
	}
	var emulators, pulls [][]string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, " emulate graph --listen ") || strings.Contains(line, " emulate okta --listen "):
			emulators = append(emulators, after(line, "emulate "))
		case strings.HasPrefix(line, "$ ") && (strings.Contains(line, " o365 provision ") || strings.Contains(line, " okta provision ")):
			pulls = append(pulls, after(line, "--db "))
		case strings.HasPrefix(line, "$ ") && strings.Contains(line, "--client-secret-file "):
			f := after(line, "--client-secret-file ")[1]
			if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) != "demo-secret-not-for-production" {
				t.Fatalf("the secret file a printed command names: %q %v", b, err)
			}
		}
	}
	if len(emulators) != 2 || len(pulls) != 4 {
		t.Fatalf("the demo printed %d emulator and %d pull command lines:\n%s", len(emulators), len(pulls), out[max(0, len(out)-800):])
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, args := range emulators {
		go func() { run(ctx, args, strings.NewReader(""), io.Discard, io.Discard); done <- struct{}{} }()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })
	for _, args := range emulators { // wait for them to listen
		addr := args[slices.Index(args, "--listen")+1]
		for i := 0; ; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			} else if i == 100 {
				t.Fatalf("%v did not start: %v", args, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, args := range pulls {
		var o, e bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &o, &e); code != 0 {
			t.Fatalf("pasting %v: exit %d\n%s%s", args, code, o.String(), e.String())
		}
	}
}
