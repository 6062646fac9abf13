package filter

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		`userName eq "bjensen"`:                                          `userName eq "bjensen"`,
		`UserName EQ "Bjensen"`:                                          `UserName eq "Bjensen"`,
		`name.familyName co "O'Malley"`:                                  `name.familyName co "O'Malley"`,
		`title pr`:                                                       `title pr`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`:                    `meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`title pr and userType eq "Employee"`:                            `(title pr and userType eq "Employee")`,
		`title pr or userType eq "Intern"`:                               `(title pr or userType eq "Intern")`,
		`a eq 1 or b eq 2 and c eq 3`:                                    `(a eq 1 or (b eq 2 and c eq 3))`,
		`(a eq 1 or b eq 2) and c eq 3`:                                  `((a eq 1 or b eq 2) and c eq 3)`,
		`userType eq "Employee" and not (emails.value co "example.org")`: `(userType eq "Employee" and not (emails.value co "example.org"))`,
		`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`: `(emails[(type eq "work" and value co "@example.com")] or ims[(type eq "xmpp" and value co "@foo.com")])`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`:             `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`,
		`active eq true`:                `active eq true`,
		`manager eq null`:               `manager eq null`,
		`x eq "quote \" and \\ \u00e9"`: `x eq "quote \" and \\ é"`,
		`members[value eq "2819c223"]`:  `members[value eq "2819c223"]`,
		// Entra's form (Microsoft's SCIM guidance), beyond RFC 7644's ABNF.
		`emails[type eq "work"].value eq "a@b.c"`: `emails[(type eq "work" and value eq "a@b.c")]`,
		`emails[type eq "work"].value pr`:         `emails[(type eq "work" and value pr)]`,
	} {
		e, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%s): %v", in, err)
			continue
		}
		if got := String(e); got != want {
			t.Errorf("Parse(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		``:                              "attribute name",
		`userName`:                      "operator",
		`userName eq`:                   "value",
		`userName equals "x"`:           "operator",
		`userName eq "x`:                "unterminated",
		`userName eq x`:                 "value",
		`(userName eq "x"`:              "expected )",
		`userName eq "x" and`:           "attribute name",
		`not userName eq "x"`:           "( after not",
		`emails[type eq "work"`:         "]",
		`emails[type[value eq 1] eq 2]`: "cannot nest",
		`1abc eq 2`:                     "attribute",
		`a eq 01`:                       "number",
		`a eq "x" b`:                    "unexpected",
		strings.Repeat("(", 40) + `a eq 1` + strings.Repeat(")", 40): "deeper",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want an error about %q", in, err, want)
		}
	}
}

func TestParsePath(t *testing.T) {
	for in, want := range map[string][3]string{
		`members`:                      {"members", "", ""},
		`name.givenName`:               {"name.givenName", "", ""},
		`emails[type eq "work"].value`: {"emails", `type eq "work"`, "value"},
		`members[value eq "2819c223"]`: {"members", `value eq "2819c223"`, ""},
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`: {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "", ""},
	} {
		path, f, sub, err := ParsePath(in)
		got := [3]string{path.String(), "", sub}
		if f != nil {
			got[1] = String(f)
		}
		if err != nil || got != want {
			t.Errorf("ParsePath(%s) = %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `emails[`, `emails[type eq "work"`, `a b`, `emails[type eq "work"].`} {
		if _, _, _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
}

// FuzzParse: no input panics; whatever parses prints to a filter that
// parses to the same tree.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`userName eq "bjensen"`, `a eq 1 or b eq 2 and not (c pr)`, `emails[type eq "work" and value co "@x"]`, `x eq "\u00e9\\"`, `a gt -1.5e3`, `emails[type eq "work"].value eq "a"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		printed := String(e)
		if len(printed) > MaxLength { // escaping can lengthen it past the limit
			return
		}
		again, err := Parse(printed)
		if err != nil || String(again) != printed {
			t.Fatalf("%.200q → %.200s → %v", s, printed, err)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`members[value eq "2819c223"]`, `emails[type eq "work"].value`, `name.givenName`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParsePath(s) // must not panic
	})
}
