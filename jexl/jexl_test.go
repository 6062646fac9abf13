package jexl

import (
	"strings"
	"testing"
)

type subject map[string]string

func (s subject) Attribute(name string) string { return s[name] }

// seedGroup is the group of seed 003's examples.
func seedGroup() map[string]any {
	root := map[string]any{"name": "app:test:grp-2607:provision:groupTypes", "extension": "groupTypes", "displayExtension": "Group Types"}
	parent := map[string]any{"name": "app:test:grp-2607:provision:groupTypes:o365Sync", "extension": "o365Sync", "displayExtension": "Security Groups", "parentStem": root}
	return map[string]any{"id": "a1b2", "name": "app:test:grp-2607:provision:groupTypes:o365Sync:group5", "extension": "group5",
		"displayName": "Group 5", "displayExtension": "Group 5", "description": "Testing of Azure Security Groups", "parentStem": parent}
}

// The seed's examples give the seed's results.
func TestSeedExamples(t *testing.T) {
	vars := map[string]any{"group": seedGroup(), "domain": "example.edu", "tenantId": "t", "idAttribute": "uid", "consumerName": "o365"}
	for _, c := range []struct{ src, want string }{
		{`group.name.replaceAll("^app:test:grp-2607:provision:", "").replaceAll(":", " / ")`, "groupTypes / o365Sync / group5"},
		{`(group.name.length() <= 64 + 11) ? "GROUPER-SECURITY-" + group.name.replaceAll("^app:test:grp-2607:provision:", "").replaceAll(":", "-") : group.id`,
			"GROUPER-SECURITY-groupTypes-o365Sync-group5"},
		{`group.parentStem.parentStem.displayExtension + " - " + group.parentStem.displayExtension + " - " + group.displayExtension + (group.description ? ": " + group.description : "")`,
			"Group Types - Security Groups - Group 5: Testing of Azure Security Groups"},
	} {
		p, err := Compile(c.src, "group", "domain", "tenantId", "idAttribute", "consumerName")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Eval(vars); err != nil || got != c.want {
			t.Fatalf("%s\n got %q, %v\n want %q", c.src, got, err, c.want)
		}
	}
	// Without a description the ternary's condition is false (JEXL truth).
	g := seedGroup()
	g["description"] = ""
	p, _ := Compile(`group.displayExtension + (group.description ? ": " + group.description : "")`, "group")
	if got, _ := p.Eval(map[string]any{"group": g}); got != "Group 5" {
		t.Fatalf("empty description: %q", got)
	}
}

func TestSubjectExamples(t *testing.T) {
	vars := func(s subject) map[string]any {
		return map[string]any{"subject": s, "subjectIdValue": "jdoe", "domain": "example.edu"}
	}
	p, err := Compile(`subject.getAttributeValue('azurePrincipal') ?: subjectIdValue + '@' + domain`, "subject", "subjectIdValue", "domain")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[*subject]string{
		{"azurePrincipal": "john.doe@example.onmicrosoft.com"}: "john.doe@example.onmicrosoft.com",
		{}:                     "jdoe@example.edu",
		{"azurePrincipal": ""}: "jdoe@example.edu",
	} {
		if got, err := p.Eval(vars(*s)); err != nil || got != want {
			t.Fatalf("%v: %q %v, want %q", *s, got, err, want)
		}
	}
	p, err = Compile(`subjectIdValue + '@' + ({'WGA': 'wga.example.edu', 'WGR': 'wgr.example.edu'}.get(subject.getAttributeValue('school')) ?: 'example.edu')`, "subject", "subjectIdValue", "domain")
	if err != nil {
		t.Fatal(err)
	}
	for school, want := range map[string]string{"WGA": "jdoe@wga.example.edu", "WGR": "jdoe@wgr.example.edu", "XYZ": "jdoe@example.edu", "": "jdoe@example.edu"} {
		if got, err := p.Eval(vars(subject{"school": school})); err != nil || got != want {
			t.Fatalf("school %q: %q %v, want %q", school, got, err, want)
		}
	}
}

// A syntax error names the expression, the position and what was expected.
func TestSyntaxErrors(t *testing.T) {
	for _, src := range []string{`group.name.replaceAll("a", `, `group.name +`, `(group.name`, `group..name`, ``} {
		_, err := Compile(src, "group")
		e, ok := err.(*Error)
		if !ok || e.Position < 1 || e.Expr != src || !strings.Contains(err.Error(), "at character") {
			t.Fatalf("%q: %v", src, err)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{`group.name.replaceAll("^a:", "").replaceAll(":", " / ")`, `a ?: b`, `x ? y : z`, `{'a': 'b'}.get(k) ?: 'c'`, `s.substring(1, 2)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, "group", "subject", "k", "s", "a", "b", "x", "y", "z")
		if err != nil {
			return
		}
		p.Eval(map[string]any{"group": seedGroup(), "subject": subject{"a": "b"}, "s": "hello"}) // must not panic
	})
}

// A variable the expression was not given is named at compile time.
func TestUnknownVariable(t *testing.T) {
	_, err := Compile(`grop.name + '-x'`, "group", "domain")
	if e, ok := err.(*Error); !ok || !strings.Contains(e.Message, `unknown variable "grop"`) || e.Position != 1 {
		t.Fatalf("%v", err)
	}
	if _, err := Compile(`group.name.replaceAll(':', '-')`, "group"); err != nil {
		t.Fatal(err)
	}
}

// A property the variable does not have is an error when compiled, not a
// null at run time; methods and the properties of plain values are not
// checked.
func TestShapeChecked(t *testing.T) {
	stem := Shape{"name": nil, "displayExtension": nil}
	stem["parentStem"] = stem
	shapes := map[string]Shape{"group": {"name": nil, "parentStem": stem}, "subject": {}}
	for _, ok := range []string{`group.name.replaceAll("a", "b")`, `group.parentStem.parentStem.displayExtension`, `subject.getAttributeValue('x')`, `group.name.length() > 2 ? "x" : "y"`} {
		if _, err := CompileShaped(ok, shapes, "group", "subject"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for src, want := range map[string]string{
		`group.nme`:                        `group has no property "nme" (it has: name, parentStem) at character 7`,
		`group.parentStem.parentStem.nam`:  `group.parentStem.parentStem has no property "nam"`,
		`subject.name`:                     `subject has no property "name"`,
		`"x" + group.parentStem.extension`: `group.parentStem has no property "extension"`,
	} {
		_, err := CompileShaped(src, shapes, "group", "subject")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

// Issue "Writes into a tenant that can never hit the wrong object", item
// 11: the seed's description expression failed for a group fewer than two
// folders deep ("cannot fetch displayExtension from <nil>"), where
// Grouper's JEXL navigates to null and null adds as nothing to a string.
func TestNavigationPastTheRootIsNull(t *testing.T) {
	src := `group.parentStem.parentStem.displayExtension + " - " + group.parentStem.displayExtension + " - " + group.displayExtension + (group.description ? ": " + group.description : "")`
	p, err := Compile(src, "group")
	if err != nil {
		t.Fatal(err)
	}
	shallow := map[string]any{"name": "apps:g", "displayExtension": "g", "description": "", "parentStem": map[string]any{"name": "apps", "displayExtension": "Apps"}}
	for group, want := range map[string]map[string]any{
		" - Apps - g": shallow,
		" -  - top":   {"name": "top", "displayExtension": "top", "description": ""},
	} {
		got, err := p.Eval(map[string]any{"group": want})
		if err != nil || got != group {
			t.Errorf("%v: %q, %v; want %q", want["name"], got, err, group)
		}
	}
	for src, want := range map[string]string{`1 + 2`: "3", `1 + 2.5`: "3.5", `"a" + 1`: "a1", `group.x.y + group.z`: ""} {
		p, err := Compile(src, "group")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Eval(map[string]any{"group": map[string]any{}}); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", src, got, err, want)
		}
	}
}
