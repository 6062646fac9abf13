package sqlstore

import (
	"reflect"
	"testing"

	"github.com/usersync/usersync"
)

func TestCreatedFieldsMatchesDiff(t *testing.T) {
	for _, u := range []*usersync.User{
		{Username: "a", Email: "a@x", Type: usersync.UserRegular, Enabled: true, AuthMethod: usersync.AuthSSO, Source: "s", SourceID: "1", Attributes: map[string]string{"dept": "IT", "empty": ""}},
		{Username: "b", Type: usersync.UserAdministrator, AuthMethod: usersync.AuthPassword, Source: "local"},
	} {
		if got, want := createdFields(u), diffFields(nil, userFields(u)); !reflect.DeepEqual(got, want) {
			t.Errorf("createdFields(%s) = %v, want %v", u.Username, got, want)
		}
	}
}
