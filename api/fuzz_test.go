package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/jobs"
	"github.com/usersync/usersync/server"
)

// FuzzAPI sends arbitrary bodies, path segments and query values to the
// API: nothing may panic or answer 5xx (a bad request is the client's
// fault and says so).
func FuzzAPI(f *testing.F) {
	for _, s := range []struct{ body, name, query string }{
		{`{"username":"a@b.c","email":"a@b.c"}`, "a@b.c", "cursor=x"},
		{`{"name":"app:g","members":["a@b.c"],"groups":["app:g"]}`, "app:g", "limit=0"},
		{`{"add":["nobody"],"addGroups":["app:g"]}`, "Default Group", "transitive=maybe"},
		{`{"attributes":{"x":null,"":"y"}}`, "app", "after=-1&wait=999"},
		{`{"username":"a\u0000b"}`, "%00", "search=%ff"},
		{`[1,2`, "", ""},
		{`{"name":"s","cron":"* * * * *","command":["o365","provision","G"]}`, "1", ""},
		{`{"allow":true}`, "1", ""},
		{`{"group":"app:g"}`, "o365", ""},
		{`{"cron":"0 0/40 * * * ?","timeZone":"Mars/Base","paused":true}`, "s", ""},
	} {
		f.Add(s.body, s.name, s.query)
	}
	// Every input goes to both backends: a NUL reached PostgreSQL (500)
	// where SQLite stored it, and this target ran on SQLite alone.
	var targets []func(t *testing.T, body, name, query string)
	for _, d := range []usersync.Directory{dirtest.SQLite(f), dirtest.Postgres(f)} {
		targets = append(targets, fuzzTarget(f, d))
	}
	f.Fuzz(func(t *testing.T, body, name, query string) {
		for _, target := range targets {
			target(t, body, name, query)
		}
	})
}

// fuzzTarget serves the API over d and returns what one input sends it.
func fuzzTarget(f *testing.F, d usersync.Directory) func(t *testing.T, body, name, query string) {
	ctx := context.Background()
	admin := &usersync.User{Username: "admin", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); err != nil {
		f.Fatal(err)
	}
	token, _, _ := d.CreateToken(ctx, admin.ID, "fuzz")
	// What serve gives the API, minus the pulls and tenants.
	opts := api.Options{
		CheckCommand: func(ctx context.Context, command []string) error {
			return usersync.Errorf(usersync.EINVALID, "%q is not a pull", command)
		},
		RunNow: func(ctx context.Context, name, by string) (bool, error) {
			_, err := d.FindSchedule(ctx, name)
			return false, err
		},
		Decide: func(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
			return jobs.Reject(ctx, d, id, "fuzz")
		},
		Retry: func(ctx context.Context, provisioner, group string) error {
			_, err := d.FindProvisioner(ctx, provisioner)
			return err
		},
	}
	h := server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{API: opts})
	send := func(t *testing.T, method, target, body string) {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body.String())
		}
	}
	return func(t *testing.T, body, name, query string) {
		q := url.Values{}
		if parsed, err := url.ParseQuery(query); err == nil {
			q = parsed
		}
		seg := url.PathEscape(name)
		for _, c := range []struct{ method, path string }{
			{"POST", "/users"}, {"PATCH", "/users/" + seg}, {"GET", "/users?" + q.Encode()}, {"DELETE", "/users/" + seg + "x"},
			{"POST", "/groups"}, {"PATCH", "/groups/" + seg}, {"PATCH", "/groups/" + seg + "/members"}, {"GET", "/groups/" + seg + "/members?" + q.Encode()},
			{"PATCH", "/folders/" + seg}, {"PUT", "/folders/" + seg}, {"DELETE", "/folders/" + seg + "x"},
			{"PUT", "/settings/" + seg}, {"DELETE", "/settings/" + seg}, {"POST", "/tokens"},
			{"POST", "/schedules"}, {"PATCH", "/schedules/" + seg}, {"POST", "/schedules/" + seg + "/runs"},
			{"POST", "/runs/" + seg + "/decision"}, {"POST", "/provisioners/" + seg + "/retries"},
		} {
			send(t, c.method, "/api/v1"+c.path, body)
		}
		q.Set("wait", "0")
		send(t, "GET", "/api/v1/changes?"+q.Encode(), "")
	}
}
