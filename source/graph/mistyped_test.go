package graph

import (
	"context"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/pull"
)

// A mistyped attribute name is refused by Graph (400), and the error names
// the option and the property most likely meant.
func TestMistypedPropertyNamed(t *testing.T) {
	tenant := graphemu.Generate(2, 20, 2)
	_, cfg := start(t, tenant, graphemu.Options{})
	c := newClient(t, cfg)
	d := dirtest.SQLite(t)
	for _, m := range []struct {
		mapping    Mapping
		flag, want string
	}{
		{Mapping{UsernameAttr: "userPrincipleName"}, "--username-attr", `"userPrincipalName"`},
		{Mapping{EmailAttr: "mial"}, "--email-attr", `"mail"`},
		// A --map-attr-to-group attribute is one of the custom attributes
		// read, and its typo was reported as --custom-user-attribute's.
		{Mapping{CustomAttrs: []string{"departmnt"}, GroupAttrs: []string{"departmnt"}}, "--map-attr-to-group", `"department"`},
		{Mapping{CustomAttrs: []string{"departmnt"}}, "--custom-user-attribute", `"department"`},
	} {
		_, err := pull.Sync(context.Background(), d, NewSource(c, m.mapping), "All Users", pull.Options{AutoCreate: pull.CreateAll})
		if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), m.flag) || !strings.Contains(err.Error(), "did you mean "+m.want) {
			t.Fatalf("%+v: %v", m.mapping, err)
		}
	}
	if _, n, _ := d.FindUsers(context.Background(), usersync.UserFilter{}); n != 0 {
		t.Fatalf("%d users written", n)
	}
}

// A transformation of an attribute the pull does not fill did nothing,
// silently: it is refused, naming the attribute.
func TestTransformationOfNothingRefused(t *testing.T) {
	tr, err := ParseTransformations(`[{'attr_name': 'trusted_server_usrname', 'action': '^(.*)@'}]`)
	if err != nil {
		t.Fatal(err)
	}
	m := Mapping{TrustedServerUsernameAttr: "userPrincipalName", CustomAttrs: []string{"costCenter"}, Transformations: tr}
	if err := m.Check(); usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), `"trusted_server_usrname" is no attribute`) || !strings.Contains(err.Error(), `did you mean "trusted_server_username"`) {
		t.Fatalf("a typo in attr_name: %v", err)
	}
	tr[0].Attr = "trusted_server_username"
	m.TrustedServerUsernameAttr = ""
	if err := m.Check(); err == nil || !strings.Contains(err.Error(), "--trusted-server-username-attr") {
		t.Fatalf("trusted_server_username without --trusted-server-username-attr: %v", err)
	}
	for _, ok := range []Mapping{
		{TrustedServerUsernameAttr: "userPrincipalName", Transformations: tr},
		{CustomAttrs: []string{"costCenter"}, Transformations: []Transformation{{Attr: "costCenter", Pattern: tr[0].Pattern}}},
		{},
	} {
		if err := ok.Check(); err != nil {
			t.Fatalf("%+v: %v", ok, err)
		}
	}
}
