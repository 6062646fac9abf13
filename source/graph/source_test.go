package graph

import (
	"context"
	"testing"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/pull"
)

func TestSeedTransformationAndMapping(t *testing.T) {
	tr, err := ParseTransformations(`[{'attr_name': 'trusted_server_username', 'action': '^([a-zA-Z0-9._%+-]+)@'}]`)
	if err != nil || len(tr) != 1 || tr[0].Attr != "trusted_server_username" {
		t.Fatalf("seed example: %+v %v", tr, err)
	}
	if tr2, err := ParseTransformations(`[{"attr_name": "x", "action": "^(a)"}]`); err != nil || len(tr2) != 1 {
		t.Fatalf("double quotes: %v", err)
	}
	tenant := graphemu.NewTenant("11111111-2222-4333-8444-555555555555")
	mail := "ann@corp.example"
	tenant.AddUser(graphemu.User{ID: "u1", UserPrincipalName: "ann@corp.example", GivenName: "Ann", Surname: "Lee", Mail: &mail, AccountEnabled: false,
		Department: "Ops", Extensions: map[string]string{"extension_0a1b2c3d_costCenter": "CC-9"}})
	tenant.AddGroup(graphemu.Group{ID: "g1", DisplayName: "G", Members: []string{"u1"}})
	_, cfg := start(t, tenant, graphemu.Options{})
	src := NewSource(newClient(t, cfg), Mapping{CustomAttrs: []string{"costCenter"}, CustomAttrAppID: "0a1b-2c3d",
		TrustedServerUsernameAttr: "userPrincipalName", Transformations: tr})
	var got []pull.User
	if err := src.Members(context.Background(), pull.Group{ID: "g1"}, func(p []pull.User) error { got = append(got, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	u := got[0]
	if u.Username != "ann@corp.example" || u.FirstName != "Ann" || u.Email != mail || u.Enabled || u.Attributes["costCenter"] != "CC-9" ||
		u.Attributes["trusted_server_username"] != "ann" || u.ID != "u1" {
		t.Fatalf("mapped user %+v", u)
	}
	src = NewSource(newClient(t, cfg), Mapping{UsernameAttr: "mail", LastNameAttr: "department"})
	got = nil
	src.Members(context.Background(), pull.Group{ID: "g1"}, func(p []pull.User) error { got = append(got, p...); return nil })
	if got[0].Username != mail || got[0].LastName != "Ops" {
		t.Fatalf("custom attribute names: %+v", got[0])
	}
}

func FuzzParseTransformations(f *testing.F) {
	for _, s := range []string{`[{'attr_name': 'a', 'action': '^(x)@'}]`, `[{'attr_name': 'a', 'action': '(['}]`, `[{'attr_name`, `[]`, `{}`, `[{'attr_name': 'it\'s', 'action': '(.)'}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTransformations(s)
		if err != nil {
			if usersync.ErrorCode(err) != usersync.EINVALID {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		for _, x := range tr {
			if x.Attr == "" || x.Pattern.NumSubexp() < 1 {
				t.Fatalf("%q accepted a transformation without name or group: %+v", s, x)
			}
		}
	})
}
