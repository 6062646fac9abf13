package scim_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/server"
)

// FuzzSCIM sends arbitrary filters, PATCH paths and bodies to the server:
// nothing may panic or answer 5xx.
func FuzzSCIM(f *testing.F) {
	for _, s := range []struct{ filter, path, value string }{
		{`userName eq "a"`, `name.givenName`, `"x"`},
		{`emails[type eq "work"]`, `emails[type eq "work"].value`, `"a@b"`},
		{`not (active eq true) or externalId pr`, `members[value eq "1"]`, `[{"value":"1"}]`},
		{`displayName eq "G"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `{"value":"x"}`},
		{`meta.created gt "2020-01-01T00:00:00Z"`, ``, `{"active":"False","name.familyName":"y"}`},
		{`displayName eq "Default Group"`, `displayName`, `"Renamed"`},
		{`members[value eq "2" and type eq "User"] or not (members pr)`, `members`, `[{"value":"2"}]`},
		// Member paths that once dereferenced nil (the value was read before its type was checked).
		{`members pr`, `members[value pr]`, `null`},
		{`members[value eq "1"]`, `members[value eq "1" or value eq "2"]`, `[]`},
		{`displayName pr`, `members[not (value eq "1")]`, `"x"`},
		// Text that cannot be stored faithfully.
		{"userName eq \"a\x00b\"", `name.givenName`, `"a\u0000b"`},
		{"userName eq \"caf\xe9\"", `displayName`, "\"caf\xe9\""},
		// The profile, value filters on it, cursors, sorting, Bulk.
		{`phoneNumbers[type eq "work"].value eq "1"`, `phoneNumbers[type eq "work"].value`, `"555"`},
		{`addresses.locality sw "H"`, `addresses`, `[{"type":"home","primary":true},{"primary":true}]`},
		{`eyJmIjoidXNlcm5hbWUiLCJ2IjoiYSIsImkiOjF9`, `name.familyName`, `{"userName":"bulk"}`},
		{`members.value eq "g1"`, `members[type eq "Group"]`, `[{"value":"g1","type":"User"}]`},
		{`x509Certificates[value pr]`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`, `[{"value":"boss"}]`},
	} {
		f.Add(s.filter, s.path, s.value)
	}
	// Every input goes to both backends: a NUL in a filter answered 500 on
	// PostgreSQL only, and this target ran on SQLite alone.
	var targets []func(t *testing.T, filter, path, value string)
	for _, d := range []usersync.Directory{dirtest.SQLite(f), dirtest.Postgres(f)} {
		targets = append(targets, fuzzTarget(f, d))
	}
	f.Fuzz(func(t *testing.T, filter, path, value string) {
		for _, target := range targets {
			target(t, filter, path, value)
		}
	})
}

// fuzzTarget serves SCIM over d and returns what one input sends it.
func fuzzTarget(f *testing.F, d usersync.Directory) func(t *testing.T, filter, path, value string) {
	ctx := context.Background()
	admin := &usersync.User{Username: "admin", Email: "a@x.example", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); err != nil {
		f.Fatal(err)
	}
	token, _, _ := d.CreateToken(ctx, admin.ID, "fuzz")
	member := &usersync.User{Username: "m", Email: "m@x.example", Enabled: true}
	d.CreateUser(ctx, member)
	g := &usersync.Group{Name: "G"}
	d.CreateGroup(ctx, g)
	builtIn, err := d.FindGroupByName(ctx, usersync.DefaultGroupName)
	if err != nil {
		f.Fatal(err)
	}
	h := server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{SCIMLogDir: f.TempDir()})
	send := func(t *testing.T, method, target, body string) {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body.String())
		}
	}
	return func(t *testing.T, filter, path, value string) {
		q := url.Values{"filter": {filter}}.Encode()
		send(t, "GET", server.SCIMPath+"/Users?"+q, "")
		send(t, "GET", server.SCIMPath+"/Groups?"+q, "")
		op := `{"Operations":[{"op":"replace","path":` + quote(path) + `,"value":` + value + `}]}`
		send(t, "PATCH", server.SCIMPath+"/Users/"+itoa(member.ID), op)
		send(t, "PATCH", server.SCIMPath+"/Groups/"+itoa(g.ID), op)
		send(t, "PATCH", server.SCIMPath+"/Groups/"+itoa(builtIn.ID), op)
		remove := `{"Operations":[{"op":"remove","path":` + quote(path) + `}]}`
		send(t, "PATCH", server.SCIMPath+"/Groups/"+itoa(g.ID), remove)
		send(t, "POST", server.SCIMPath+"/Users", `{"userName":`+quote(filter)+`,"emails":[{"value":`+value+`}]}`)
		add := `{"Operations":[{"op":"add","path":` + quote(path) + `,"value":` + value + `}]}`
		send(t, "PATCH", server.SCIMPath+"/Users/"+itoa(member.ID), add)
		send(t, "PUT", server.SCIMPath+"/Users/"+itoa(member.ID), `{"userName":"m","title":`+value+`,"phoneNumbers":`+value+`}`)
		send(t, "GET", server.SCIMPath+"/Users?"+url.Values{"cursor": {filter}, "sortBy": {path}}.Encode(), "")
		send(t, "POST", server.SCIMPath+"/Users/.search", `{"filter":`+quote(filter)+`,"sortBy":`+quote(path)+`}`)
		send(t, "POST", server.SCIMPath+"/Bulk", `{"Operations":[{"method":"POST","path":"/Users","bulkId":"b","data":`+value+`},`+
			`{"method":"PATCH","path":"/Users/bulkId:b","data":`+op+`},{"method":"POST","path":"/Groups","bulkId":"c","data":{"displayName":`+quote(filter)+`,"members":`+value+`}}]}`)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
