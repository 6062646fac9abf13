package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Nested groups from the command line: a group added to a group, the
// effective members with --transitive, and a cycle refused with a reason.
func TestNestedGroupsCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	for _, u := range []string{"ann", "bob"} {
		ok(t, cli(t, db, "", "users", "create", "--username", u, "--email", u+"@example.com"))
	}
	for _, g := range []string{"Staff", "Engineering"} {
		ok(t, cli(t, db, "", "groups", "create", g))
	}
	ok(t, cli(t, db, "", "groups", "members", "add", "Engineering", "bob"))
	r := ok(t, cli(t, db, "", "groups", "members", "add", "Staff", "ann", "--group", "Engineering"))
	if got := strings.TrimSpace(r.stdout); got != "added 1 of 1 users and 1 of 1 groups" {
		t.Fatalf("members add --group said %q", got)
	}
	var list struct {
		Total   int      `json:"total"`
		Groups  []string `json:"groups"`
		Members []struct {
			Username string `json:"username"`
		} `json:"members"`
	}
	usernames := func() []string {
		var out []string
		for _, m := range list.Members {
			out = append(out, m.Username)
		}
		return out
	}
	r = ok(t, cli(t, db, "", "-o", "json", "groups", "members", "list", "Staff"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.Total != 1 || !slices.Equal(list.Groups, []string{"Engineering"}) || !slices.Equal(usernames(), []string{"ann"}) {
		t.Fatalf("direct members %s: %v", r.stdout, err)
	}
	list.Groups = nil
	r = ok(t, cli(t, db, "", "-o", "json", "groups", "members", "list", "Staff", "--transitive"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.Total != 2 || !slices.Equal(usernames(), []string{"ann", "bob"}) {
		t.Fatalf("effective members %s: %v", r.stdout, err)
	}
	fails(t, cli(t, db, "", "groups", "members", "add", "Engineering", "--group", "Staff"), 1, `cannot be a member of "Engineering"`)
	fails(t, cli(t, db, "", "groups", "members", "add", "Engineering"), 1, "name at least one user")
	ok(t, cli(t, db, "", "groups", "members", "remove", "Staff", "--group", "Engineering"))
	r = ok(t, cli(t, db, "", "-o", "json", "groups", "members", "list", "Staff", "--transitive"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.Total != 1 {
		t.Fatalf("after removing Engineering %s: %v", r.stdout, err)
	}
	r = ok(t, cli(t, db, "", "changes"))
	if !strings.Contains(r.stdout, "Engineering") || !strings.Contains(r.stdout, "member.added") {
		t.Fatalf("change log does not show the group joining:\n%s", r.stdout)
	}
}
