package rules

import (
	"strings"
	"testing"

	"github.com/usersync/usersync"
)

// The seed's kinds of condition compile to the directory conditions the
// store evaluates.
func TestParse(t *testing.T) {
	for src, want := range map[string]string{
		`memberOf co "Office 365"`:             `{memberOf co Office 365 false}`,
		`displayName eq "Josh Ames"`:           `{displayName eq Josh Ames false}`,
		`not (attributes.department co "IT")`:  `{{attributes.department co IT false}}`,
		`email eq null`:                        `{{email pr <nil> false}}`,
		`email ne null`:                        `{email pr <nil> false}`,
		`attributes.employeeNumber eq 42`:      `{attributes.employeeNumber eq 42 false}`,
		`enabled eq true and role eq "Sales"`:  `[{enabled eq true false} {role eq Sales false}]`,
		`USERNAME sw "a" or lastName ew "son"`: `[{username sw a false} {lastName ew son false}]`,
		``:                                     `true`,
	} {
		c, err := Parse(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got := strings.TrimPrefix(sprint(c.Cond), ""); got != want {
			t.Errorf("%s: %s, want %s", src, got, want)
		}
	}
}

func sprint(c usersync.Cond) string {
	switch c := c.(type) {
	case usersync.All:
		return sprintList(c)
	case usersync.Any:
		return sprintList(c)
	case usersync.Not:
		return "{" + sprint(c.Cond) + "}"
	case usersync.Always:
		if c {
			return "true"
		}
		return "false"
	case usersync.Match:
		return "{" + c.Field + " " + string(c.Op) + " " + valueText(c.Value) + " false}"
	}
	return "?"
}

func valueText(v any) string {
	if v == nil {
		return "<nil>"
	}
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return "?"
}

func sprintList(l []usersync.Cond) string {
	parts := make([]string, len(l))
	for i, c := range l {
		parts[i] = sprint(c)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// A condition that does not parse names the position and what was
// expected; one that names no field says which fields there are.
func TestParseErrors(t *testing.T) {
	for src, want := range map[string]string{
		`memberOf co`:            `at character 12: expected a space and a value after "co"`,
		`displayName eq "Josh`:   `unterminated string`,
		`(email pr`:              `expected )`,
		`manager eq "x"`:         `unknown field "manager": a condition names displayName, email`,
		`emails[type eq "work"]`: `value filters ([…]) are not part of rule conditions`,
		`enabled eq "yes"`:       `enabled is true or false`,
		`urn:x:y:email eq "a"`:   `rule conditions name fields without a schema`,
		`email gt null`:          `only eq and ne compare with null`,
		`enabled co true`:        `applies to strings`,
	} {
		_, err := Parse(src)
		if err == nil || usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want EINVALID saying %q", src, err, want)
		}
	}
}

// Parse never panics, and what it accepts is a valid directory condition.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`memberOf co "Office 365"`, `not (a.b eq "x") or email pr`, `displayName eq "Josh Ames" and (role eq "x" or enabled eq false)`, `((`, `x eq 1e400`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse(src)
		if err != nil {
			if usersync.ErrorCode(err) != usersync.EINVALID {
				t.Fatalf("%q: error %v is not EINVALID", src, err)
			}
			return
		}
		if err := usersync.Validate(c.Cond); err != nil {
			t.Fatalf("%q: accepted, but the condition is invalid: %v", src, err)
		}
	})
}

// A comparison on role holds for a role held by hand or given by a
// mapping: it becomes "by hand, or the mapping's condition"; ne negates
// the whole; a cycle of mappings grants nothing by itself.
func TestExpandRoles(t *testing.T) {
	ms := []*usersync.Mapping{
		{Name: "m1", Condition: `memberOf co "Office 365"`, Roles: []string{"Office 365"}},
		{Name: "m2", Condition: `role eq "office 365"`, Roles: []string{"Licensed"}},
		{Name: "loop", Condition: `role eq "Loop"`, Roles: []string{"Loop"}},
		{Name: "other", Condition: `firstName eq "X"`, Roles: []string{"Sales"}},
	}
	for src, want := range map[string]string{
		`role eq "OFFICE 365"`: `[{role eq OFFICE 365 false} {memberOf co Office 365 false}]`,
		`role eq "Licensed"`:   `[{role eq Licensed false} [{role eq office 365 false} {memberOf co Office 365 false}]]`,
		`role ne "Sales"`:      `{[{role eq Sales false} {firstName eq X false}]}`,
		`role sw "off"`:        `[{role sw off false} {memberOf co Office 365 false}]`,
		`role eq "Loop"`:       `[{role eq Loop false} [{role eq Loop false}]]`,
		`lastName eq "Ames"`:   `{lastName eq Ames false}`,
	} {
		c, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ExpandRoles(c.Cond, ms)
		if err != nil {
			t.Fatal(err)
		}
		if s := sprint(got); s != want {
			t.Errorf("%s: %s, want %s", src, s, want)
		}
	}
	if _, err := ExpandRoles(usersync.Match{Field: "role", Op: usersync.OpEq, Value: "x"}, []*usersync.Mapping{{Name: "bad", Condition: `(`, Roles: []string{"x"}}}); usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), `mapping "bad"`) {
		t.Fatalf("a broken mapping: %v", err)
	}
}
