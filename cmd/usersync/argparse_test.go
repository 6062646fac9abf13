package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// parsed reads a command line as usersync does: argparse's rules, then
// cobra's flags. It returns the flags set and the positional arguments.
func parsed(t *testing.T, line string) (string, error) {
	t.Helper()
	args := splitLine(line)
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	root := a.rootCommand()
	c, _, err := root.Find(args)
	if err != nil {
		t.Fatal(err)
	}
	c.InitDefaultHelpFlag()
	seedFlag(c.Flags(), "help")
	norm, err := argparseArgs(c, args)
	if err != nil {
		return "", err
	}
	_, rest, _ := root.Find(norm) // drops the command words
	if err := c.ParseFlags(rest); err != nil {
		return "", err
	}
	var set []string
	c.Flags().Visit(func(f *pflag.Flag) { set = append(set, f.Name+"="+f.Value.String()) })
	sort.Strings(set)
	return strings.Join(append(set, c.Flags().Args()...), " "), nil
}

// splitLine splits on spaces; "a b" keeps its space.
func splitLine(line string) []string {
	var out []string
	for i, part := range strings.Split(line, `"`) {
		if i%2 == 1 {
			out = append(out, part)
		} else {
			out = append(out, strings.Fields(part)...)
		}
	}
	return out
}

// Command lines valid for the seeds' mi-o365-usersync and mi-okta-usersync
// (Python argparse) mean the same to usersync. Expectations follow
// argparse: attached short values, unique prefixes of long options resolved
// among the seed's options first, nargs='?' values.
func TestSeedCommandLines(t *testing.T) {
	cases := []struct{ line, want, err string }{
		// The seed's own example.
		{`o365 provision --tenant T --client-id C --client-secret S --auto-create all --full-summary "Group name"`,
			"auto-create=all client-id=C client-secret=S full-summary=true tenant=T Group name", ""},
		// Attached short values and clusters.
		{`o365 provision -aall G`, "auto-create=all G", ""},
		{`o365 provision -agroups G`, "auto-create=groups G", ""},
		{`o365 provision -tadministrator G`, "user-type=administrator G", ""},
		{`o365 provision -t=power_user G`, "user-type=power_user G", ""},
		{`o365 provision -vn G`, "dry-run=true verbose=true G", ""},
		{`o365 provision -vqaall G`, "auto-create=all no-summary=true verbose=true G", ""},
		{`o365 provision -vt regular G`, "user-type=regular verbose=true G", ""},
		// nargs='?': the next word unless it is an option.
		{`o365 provision -a groups G`, "auto-create=groups G", ""},
		{`o365 provision G -a`, "auto-create=all G", ""},
		{`o365 provision -a -v G`, "auto-create=all verbose=true G", ""},
		{`o365 provision --auto-create --force G`, "auto-create=all force=true G", ""},
		{`o365 provision --auto-create=groups G`, "auto-create=groups G", ""},
		{`o365 provision --auto-create Sales`, "auto-create=Sales", ""}, // argparse takes it too; the value is then refused
		// Unique prefixes, as argparse reads them for the seed's options.
		{`o365 provision --dry G`, "dry-run=true G", ""},
		{`o365 provision --full G`, "full-summary=true G", ""}, // not usersync's --full-read
		{`o365 provision --full-s G`, "full-summary=true G", ""},
		{`o365 provision --no G`, "no-summary=true G", ""},
		{`o365 provision --ten=T G`, "tenant=T G", ""},
		{`o365 provision --client-s S G`, "client-secret=S G", ""},
		{`o365 provision --username u@x G`, "username=u@x G", ""},
		{`o365 provision --username-a mail G`, "username-attr=mail G", ""},
		{`o365 provision --skip G`, "skip-default-group=true G", ""},
		{`o365 provision --sync 5 G`, "sync-user-limit=5 G", ""},
		{`o365 provision --target T G`, "target-group=T G", ""},
		{`o365 provision --tr upn G`, "trusted-server-username-attr=upn G", ""},
		{`o365 provision --map dept G`, "map-attr-to-group=dept G", ""},
		{`o365 provision --custom-u a,b G`, "custom-user-attribute=a,b G", ""},
		{`o365 provision --att [] G`, "attributes-transformation=[] G", ""},
		// Prefixes no seed option has: usersync's own.
		{`o365 provision --full-r G`, "full-read=true G", ""},
		{`o365 provision --reb G`, "rebind=true G", ""},
		// Global options pass through.
		{`--db x.db o365 provision --dry G`, "db=x.db dry-run=true G", ""},
		{`o365 provision -ojson G`, "output=json G", ""},
		// What argparse refuses.
		{`o365 provision --client S G`, "", "ambiguous option: --client could match --client-id, --client-secret"},
		{`o365 provision --user X G`, "", "ambiguous option: --user"},
		{`o365 provision --custom a G`, "", "ambiguous option: --custom"},
		{`o365 provision --tenant`, "", "argument --tenant: expected one argument"},
		{`o365 provision --tenant --force G`, "", "argument --tenant: expected one argument"},
		{`o365 provision -t`, "", "argument -t/--user-type: expected one argument"},
		// Okta.
		{`okta provision --okta-host H --okta-token T --auto-create all --full-summary -v "Group name"`,
			"auto-create=all full-summary=true okta-host=H okta-token=T verbose=true Group name", ""},
		{`okta provision -Hexample.okta.com -Ptok G`, "okta-host=example.okta.com okta-token=tok G", ""},
		{`okta provision -P tok G`, "okta-token=tok G", ""},
		{`okta provision -P -v G`, "okta-token-prompt=true verbose=true G", ""},
		{`okta provision G -P`, "okta-token-prompt=true G", ""},
		{`okta provision --okta-t tok G`, "okta-token=tok G", ""},
		{`okta provision --username login G`, "username-attr=login G", ""}, // okta's only --username… option
		{`okta provision --full G`, "full-summary=true G", ""},
		{`okta provision --okta x G`, "", "ambiguous option: --okta could match --okta-host, --okta-token"},
	}
	for _, c := range cases {
		got, err := parsed(t, c.line)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.line, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.line, err)
		case c.err == "" && got != c.want:
			t.Errorf("%s:\n got  %s\n want %s", c.line, got, c.want)
		}
	}
}

// Usage errors exit 2 everywhere, a mistyped command is named with the
// closest one, and the help of okta provision is plain text.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"o365", "provison", "--tenant", "T", "G"}, `unknown command "provison" for "usersync o365"; did you mean "provision"?`},
		{[]string{"uesrs", "list"}, `unknown command "uesrs" for "usersync"; did you mean "users"?`},
		{[]string{"o365", "provision", "--client", "x", "G"}, "ambiguous option"},
		{[]string{"o365", "provision", "--auto-create", "Sales"}, `--auto-create takes all or groups, not "Sales"`},
		{[]string{"users", "list", "--nope"}, "unknown flag: --nope"},
		{[]string{"users", "show"}, "accepts 1 arg"},
		{[]string{"--db", "", "users", "list"}, "--db is empty"},
		{[]string{"o365"}, `"usersync o365" needs a subcommand`},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), c.args, strings.NewReader(""), &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"okta", "provision", "--help"}, strings.NewReader(""), &out, &errOut); code != 0 ||
		strings.ContainsRune(out.String(), 0) || !strings.Contains(out.String(), "-P, --okta-token") {
		t.Errorf("okta provision --help: exit %d, NUL byte: %v\n%s", code, strings.ContainsRune(out.String(), 0), out.String())
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out.Reset()
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "usersync ") {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
	_ = fmt.Sprint
}
