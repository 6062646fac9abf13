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
