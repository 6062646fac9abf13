package storetest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/usersync/usersync"
)

// testProfiles: a user's profile (what a SCIM client sent beyond the
// directory's fields) is stored and read back exactly, changes are logged
// per attribute, and text that cannot be stored is refused.
func testProfiles(t *testing.T, d usersync.Directory) {
	profile := map[string]any{
		"title":        "Tour Guide",
		"name":         map[string]any{"middleName": "Jane", "honorificPrefix": "Ms."},
		"phoneNumbers": []any{map[string]any{"value": "555-555-5555", "type": "work"}, map[string]any{"value": "555-555-4444", "type": "mobile", "primary": true}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"manager": map[string]any{"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
		"x509Certificates": []any{map[string]any{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}},
		"score":            42.5,
	}
	u := &usersync.User{Username: "babs", Email: "babs@example.com", Profile: profile}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := d.FindUserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Profile, profile) {
		t.Fatalf("profile read back as %#v", got.Profile)
	}
	seq := lastSeq(t, d)
	next := map[string]any{"title": "Chief Guide", "name": profile["name"]}
	if _, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Profile: &next}, 0); err != nil {
		t.Fatal(err)
	}
	cs := changesSince(t, d, seq)
	if len(cs) != 1 {
		t.Fatalf("%d events for one update", len(cs))
	}
	f := cs[0].Fields
	if f["profile.title"].From != `"Tour Guide"` || f["profile.title"].To != `"Chief Guide"` || f["profile.phoneNumbers"].To != "" || !strings.Contains(f["profile.phoneNumbers"].From, "555-555-4444") {
		t.Fatalf("profile changes logged as %+v", f)
	}
	if _, ok := f["profile.name"]; ok {
		t.Fatal("an unchanged profile attribute was logged")
	}
	// The caller's copy in ModifyUser is its own: changing it in place
	// without returning it changes nothing.
	if _, err := d.ModifyUser(ctx, u.ID, 0, func(cur *usersync.User) (usersync.UserUpdate, error) {
		cur.Profile["title"] = "scribbled"
		return usersync.UserUpdate{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.FindUserByID(ctx, u.ID); got.Profile["title"] != "Chief Guide" {
		t.Fatalf("title %v after a modify that returned no change", got.Profile["title"])
	}
	empty := map[string]any{}
	if got, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Profile: &empty}, 0); err != nil || got.Profile != nil {
		t.Fatalf("clearing the profile: %v %v", got.Profile, err)
	}
	if got, _ := d.FindUserByID(ctx, u.ID); got.Profile != nil {
		t.Fatalf("cleared profile read back as %v", got.Profile)
	}
	bad := map[string]any{"title": "a\x00b"}
	_, err = d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Profile: &bad}, 0)
	wantCode(t, err, usersync.EINVALID)
}

// testProfileConditions: conditions on profile values and on elements of
// profile arrays, evaluated by the database.
func testProfileConditions(t *testing.T, d usersync.Directory) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	for name, p := range map[string]map[string]any{
		"babs": {"title": "Tour Guide", "score": 7.0, "vip": true,
			"phoneNumbers": []any{map[string]any{"value": "555-555-5555", "type": "work"}, map[string]any{"value": "555-555-4444", "type": "mobile", "primary": true}},
			ent:            map[string]any{"manager": map[string]any{"value": "m-1"}}},
		"carl": {"title": "", "score": 12.0, "vip": false, "phoneNumbers": []any{map[string]any{"value": "555-555-4444", "type": "work"}}},
		"dora": {"title": "TOUR GUIDE (senior)", "phoneNumbers": []any{}},
		"eve":  nil,
	} {
		if err := d.CreateUser(ctx, &usersync.User{Username: name, Profile: p}); err != nil {
			t.Fatal(err)
		}
	}
	m := func(op usersync.MatchOp, v any, path ...string) usersync.ProfileMatch {
		return usersync.ProfileMatch{Path: path, Op: op, Value: v}
	}
	phone := func(c usersync.Cond) usersync.ProfileEach {
		return usersync.ProfileEach{Path: []string{"phoneNumbers"}, Where: c}
	}
	for _, tc := range []struct {
		name string
		c    usersync.Cond
		want []string
	}{
		{"eq ignores case", m(usersync.OpEq, "tour guide", "title"), []string{"babs"}},
		{"eq case-exact", usersync.ProfileMatch{Path: []string{"title"}, Op: usersync.OpEq, Value: "tour guide", CaseExact: true}, nil},
		{"sw", m(usersync.OpSw, "tour", "title"), []string{"babs", "dora"}},
		{"co", m(usersync.OpCo, "SENIOR", "title"), []string{"dora"}},
		{"ew", m(usersync.OpEw, "guide", "title"), []string{"babs"}},
		{"pr skips empty strings and absent values", m(usersync.OpPresent, nil, "title"), []string{"babs", "dora"}},
		{"pr on arrays skips empty ones", m(usersync.OpPresent, nil, "phoneNumbers"), []string{"babs", "carl"}},
		{"ne holds where the value is absent", m(usersync.OpNe, "tour guide", "title"), []string{"carl", "dora", "eve"}},
		{"number gt", m(usersync.OpGt, 10.0, "score"), []string{"carl"}},
		{"number le", m(usersync.OpLe, 7.0, "score"), []string{"babs"}},
		{"bool eq", m(usersync.OpEq, false, "vip"), []string{"carl"}},
		{"a string is not a number", m(usersync.OpEq, 7.0, "title"), nil},
		{"nested object", m(usersync.OpEq, "m-1", ent, "manager", "value"), []string{"babs"}},
		{"any element", phone(m(usersync.OpEq, "555-555-4444", "value")), []string{"babs", "carl"}},
		{"one element matches both", phone(usersync.All{m(usersync.OpEq, "555-555-4444", "value"), m(usersync.OpEq, "mobile", "type")}), []string{"babs"}},
		{"not the same element", phone(usersync.All{m(usersync.OpEq, "555-555-5555", "value"), m(usersync.OpEq, "mobile", "type")}), nil},
		{"primary", phone(m(usersync.OpEq, true, "primary")), []string{"babs"}},
		{"with a column", usersync.All{usersync.Match{Field: "username", Op: usersync.OpEq, Value: "carl"}, phone(nil)}, []string{"carl"}},
	} {
		users, _, err := d.FindUsers(ctx, usersync.UserFilter{Where: tc.c})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := names(users)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []usersync.Cond{
		usersync.ProfileMatch{Op: usersync.OpEq, Value: "x"},
		m(usersync.OpCo, 3.0, "score"),
		m(usersync.OpGt, true, "vip"),
		usersync.ProfileEach{},
	} {
		_, _, err := d.FindUsers(ctx, usersync.UserFilter{Where: bad})
		wantCode(t, err, usersync.EINVALID)
	}
	_, _, err := d.FindGroups(ctx, usersync.GroupFilter{Where: m(usersync.OpPresent, nil, "title")})
	wantCode(t, err, usersync.EINVALID)
}
