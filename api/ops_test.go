package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/jobs"
)

// The Operations behave the same done in process (api.Local, what the
// command line uses on the database) and through the API (api.Client, what
// it uses with --server): one suite runs on both, on both backends, and
// the client's traffic is checked against the OpenAPI document.
func TestOperations(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		for _, via := range []string{"local", "client"} {
			t.Run(via, func(t *testing.T) {
				d := open(t)
				opts := api.Options{
					CheckCommand: func(ctx context.Context, command []string) error {
						if command[0] != "o365" {
							return usersync.Errorf(usersync.EINVALID, "not a pull: %q", command[0])
						}
						return nil
					},
					Decide: func(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
						return jobs.Reject(ctx, d, id, "test")
					},
				}
				var o api.Operations = &api.Local{Dir: d, Options: opts}
				if via == "client" {
					admin, regular := startWith(t, d, opts)
					hc := &http.Client{Transport: checked{t, admin.router}}
					c, err := api.NewClient(strings.TrimSuffix(admin.base, api.Path), admin.token, hc)
					if err != nil {
						t.Fatal(err)
					}
					o = c
					bad, _ := api.NewClient(admin.base, "ust_not-a-token", hc)
					if _, err := bad.ListUsers(context.Background(), api.UserQuery{}); usersync.ErrorCode(err) != usersync.EUNAUTHORIZED || !strings.Contains(err.Error(), "refused the API token") {
						t.Fatalf("a wrong token: %v", err)
					}
					if strings.Contains(errText(bad.GetUser(context.Background(), "x")), "ust_not-a-token") {
						t.Fatal("the token is in an error message")
					}
					plain, _ := api.NewClient(regular.base, regular.token, hc)
					if _, err := plain.ListUsers(context.Background(), api.UserQuery{}); usersync.ErrorCode(err) != usersync.EFORBIDDEN {
						t.Fatalf("a regular user's token: %v", err)
					}
				}
				operationsSuite(t, d, o)
			})
		}
	})
}

func errText[T any](_ T, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if usersync.ErrorCode(err) != code {
		t.Fatalf("%s: want %s, got %v (%s)", what, code, err, usersync.ErrorCode(err))
	}
}

func operationsSuite(t *testing.T, d usersync.Directory, o api.Operations) {
	ctx := usersync.WithActor(context.Background(), "test")
	for _, n := range []string{"ops-ann", "ops-bob", "ops-cid"} {
		if _, err := o.CreateUser(ctx, api.NewUser{Username: n, Email: n + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := o.CreateUser(ctx, api.NewUser{Username: "OPS-ANN"})
	wantCode(t, "the same username again", err, usersync.ECONFLICT)
	u, err := o.GetUser(ctx, "Ops-Ann")
	if err != nil || u.Username != "ops-ann" || u.Type != usersync.UserRegular || !u.Enabled {
		t.Fatalf("get user: %+v %v", u, err)
	}
	_, err = o.GetUser(ctx, "nobody")
	wantCode(t, "an unknown user", err, usersync.ENOTFOUND)

	// Pages by cursor neither skip nor repeat.
	var seen []string
	q := api.UserQuery{Search: "ops-", Paging: api.Paging{Limit: 2}}
	for {
		p, err := o.ListUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 3 {
			t.Fatalf("total %d, want 3", p.Total)
		}
		for _, u := range p.Items {
			seen = append(seen, u.Username)
		}
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if !slices.Equal(seen, []string{"ops-ann", "ops-bob", "ops-cid"}) {
		t.Fatalf("paged users: %v", seen)
	}

	no := false
	if _, err := o.UpdateUser(ctx, "ops-cid", api.UserChange{Enabled: &no}, 0); err != nil {
		t.Fatal(err)
	}
	if p, err := o.ListUsers(ctx, api.UserQuery{Search: "ops-", Enabled: "false"}); err != nil || p.Total != 1 || p.Items[0].Username != "ops-cid" {
		t.Fatalf("disabled users: %+v %v", p, err)
	}
	if p, err := o.ListUsers(ctx, api.UserQuery{Search: "ops-", Type: "regular", Enabled: "true"}); err != nil || p.Total != 2 {
		t.Fatalf("enabled regular users: %+v %v", p, err)
	}
	yes := true
	o.UpdateUser(ctx, "ops-cid", api.UserChange{Enabled: &yes}, 0)

	// A write that names an old version changes nothing.
	first := "Ann"
	if _, err := o.UpdateUser(ctx, "ops-ann", api.UserChange{FirstName: &first}, u.Version+7); usersync.ErrorCode(err) != usersync.ESTALE {
		t.Fatalf("update at a stale version: %v", err)
	}
	next, err := o.UpdateUser(ctx, "ops-ann", api.UserChange{FirstName: &first}, u.Version)
	if err != nil || next.FirstName != "Ann" || next.Version <= u.Version {
		t.Fatalf("update at the version read: %+v %v", next, err)
	}
	wantCode(t, "delete at a stale version", o.DeleteUser(ctx, "ops-ann", u.Version), usersync.ESTALE)
	if _, err := o.GetUser(ctx, "ops-ann"); err != nil {
		t.Fatalf("a stale delete removed the user: %v", err)
	}
	bad := "sometimes"
	_, err = o.UpdateUser(ctx, "ops-bob", api.UserChange{Type: &bad}, 0)
	wantCode(t, "an unknown user type", err, usersync.EINVALID)

	// Groups and members, all or nothing.
	g, err := o.CreateGroup(ctx, api.NewGroup{Name: "app:team", Members: []string{"ops-ann"}})
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := d.LastChangeSeq(ctx)
	_, err = o.ChangeMembers(ctx, "app:team", api.MembersChange{Add: []string{"ops-bob", "nobody"}}, 0)
	wantCode(t, "an unknown member", err, usersync.EINVALID)
	if s, _ := d.LastChangeSeq(ctx); s != seq {
		t.Fatal("a refused change of members was half applied")
	}
	ch, err := o.ChangeMembers(ctx, "app:team", api.MembersChange{Add: []string{"ops-bob", "ops-ann"}}, 0)
	if err != nil || ch.Added != 1 || ch.Group.Name != "app:team" {
		t.Fatalf("add one new member of two: %+v %v", ch, err)
	}
	if _, err := o.CreateGroup(ctx, api.NewGroup{Name: "app:outer", Groups: []string{"app:team"}, Members: []string{"ops-cid"}}); err != nil {
		t.Fatal(err)
	}
	ch, err = o.ChangeMembers(ctx, "app:outer", api.MembersChange{RemoveGroups: []string{"app:team"}}, 0)
	if err != nil || ch.RemovedGroups != 1 {
		t.Fatalf("remove a nested group: %+v %v", ch, err)
	}
	_, err = o.ChangeMembers(ctx, "app:team", api.MembersChange{AddGroups: []string{"app:team"}}, 0)
	wantCode(t, "a group in itself", err, usersync.EINVALID)
	mp, err := o.ListMembers(ctx, "app:team", api.MemberQuery{Paging: api.Paging{Limit: 1}})
	if err != nil || mp.Total != 2 || len(mp.Users) != 1 || mp.NextCursor == "" {
		t.Fatalf("a page of one member: %+v %v", mp, err)
	}
	if groups, err := o.UserGroups(ctx, "ops-bob"); err != nil || !slices.Equal(groups, []string{"app:team"}) {
		t.Fatalf("groups of a user: %v %v", groups, err)
	}
	top, err := o.ListGroups(ctx, api.GroupQuery{Folder: "app"})
	if err != nil || top.Total != 2 {
		t.Fatalf("groups in folder app: %+v %v", top, err)
	}
	if p, err := o.ListGroups(ctx, api.GroupQuery{Top: true, Search: "team"}); err != nil || p.Total != 0 {
		t.Fatalf("groups in no folder named like team: %+v %v", p, err)
	}
	wantCode(t, "delete a group at a stale version", o.DeleteGroup(ctx, "app:team", g.Version), usersync.ESTALE)
	if _, err := o.GetGroup(ctx, "app:team"); err != nil {
		t.Fatalf("a stale delete removed the group: %v", err)
	}

	// Folders.
	if _, err := o.CreateFolder(ctx, "hr:eu"); err != nil {
		t.Fatal(err)
	}
	v := "true"
	if f, err := o.SetFolderAttributes(ctx, "hr:eu", map[string]*string{"o365Sync": &v}); err != nil || f.Attributes["o365Sync"] != "true" {
		t.Fatalf("folder attributes: %+v %v", f, err)
	}
	if fs, err := o.ListFolders(ctx, "hr"); err != nil || len(fs) != 1 || fs[0].Path != "hr:eu" {
		t.Fatalf("folders under hr: %+v %v", fs, err)
	}
	wantCode(t, "delete a folder with groups", o.DeleteFolder(ctx, "app"), usersync.ECONFLICT)
	if err := o.DeleteFolder(ctx, "hr:eu"); err != nil {
		t.Fatal(err)
	}

	// Tokens: the clear token once, never in listings.
	tok, err := o.CreateToken(ctx, "ops-cid", "script")
	if err != nil || !strings.HasPrefix(tok.Token, "ust_") || tok.Info.Username != "ops-cid" {
		t.Fatalf("create token: %+v %v", tok, err)
	}
	if ts, err := o.ListTokens(ctx, "ops-cid"); err != nil || len(ts) != 1 || ts[0].Hint != tok.Token[len(tok.Token)-4:] {
		t.Fatalf("tokens of ops-cid: %+v %v", ts, err)
	}
	if err := o.RevokeToken(ctx, tok.Info.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "revoke it again", o.RevokeToken(ctx, tok.Info.ID), usersync.ENOTFOUND)

	// Settings: secrets masked on the way out, types checked on the way in.
	st, err := o.SetSetting(ctx, "O365_USERSYNC_CLIENT_SECRET", "s3cr3t-value")
	if err != nil || st.Value != "********" || !st.IsSet || !st.Secret {
		t.Fatalf("set a secret: %+v %v", st, err)
	}
	if clear, _ := d.Setting(ctx, "O365_USERSYNC_CLIENT_SECRET"); clear.Value != "s3cr3t-value" {
		t.Fatal("the secret was not stored")
	}
	all, err := o.Settings(ctx)
	if err != nil || len(all) != len(usersync.SettingDefs) {
		t.Fatalf("settings: %d %v", len(all), err)
	}
	for _, s := range all {
		if strings.Contains(s.Value, "s3cr3t") {
			t.Fatal("a listing shows a secret")
		}
	}
	_, err = o.SetSetting(ctx, "SCIM_REQUIRE_EMAIL", "perhaps")
	wantCode(t, "a bool setting set to perhaps", err, usersync.EINVALID)
	_, err = o.Setting(ctx, "NO_SUCH_SETTING")
	wantCode(t, "an unknown setting", err, usersync.EINVALID)
	if st, err := o.ResetSetting(ctx, "O365_USERSYNC_CLIENT_SECRET"); err != nil || st.IsSet || st.Value != "" {
		t.Fatalf("reset: %+v %v", st, err)
	}

	// The change log, and a long poll that a change ends.
	last, _ := d.LastChangeSeq(ctx)
	go func() {
		time.Sleep(300 * time.Millisecond)
		d.CreateUser(ctx, &usersync.User{Username: "ops-late", Enabled: true})
	}()
	cs, err := o.Changes(ctx, last, 10, 10*time.Second)
	if err != nil || len(cs) != 1 || cs[0].Kind != usersync.UserCreated || cs[0].Object.Name != "ops-late" {
		t.Fatalf("long poll: %+v %v", cs, err)
	}

	// Schedules: checked before they are stored.
	_, err = o.CreateSchedule(ctx, api.NewSchedule{Name: "sales", Cron: "*/40 * * *", Command: []string{"o365", "provision", "Sales"}})
	wantCode(t, "a cron of four fields", err, usersync.EINVALID)
	_, err = o.CreateSchedule(ctx, api.NewSchedule{Name: "sales", Cron: "*/40 * * * *", Command: []string{"rm", "-rf"}})
	wantCode(t, "a command that is no pull", err, usersync.EINVALID)
	sc, err := o.CreateSchedule(ctx, api.NewSchedule{Name: "sales", Cron: "0 0/40 * * * ?", TimeZone: "Europe/Paris", Command: []string{"o365", "provision", "Sales"}})
	if err != nil || sc.TimeZone != "Europe/Paris" {
		t.Fatalf("create schedule: %+v %v", sc, err)
	}
	paused := true
	if _, err := o.UpdateSchedule(ctx, "sales", api.ScheduleChange{Paused: &paused}, sc.Version+1); usersync.ErrorCode(err) != usersync.ESTALE {
		t.Fatalf("pause at a stale version: %v", err)
	}
	zone := "Mars/Olympus"
	_, err = o.UpdateSchedule(ctx, "sales", api.ScheduleChange{TimeZone: &zone}, 0)
	wantCode(t, "an unknown time zone", err, usersync.EINVALID)
	if sc, err := o.UpdateSchedule(ctx, "sales", api.ScheduleChange{Paused: &paused}, sc.Version); err != nil || !sc.Paused {
		t.Fatalf("pause: %+v %v", sc, err)
	}
	if list, err := o.ListSchedules(ctx); err != nil || len(list) != 1 || !list[0].Paused {
		t.Fatalf("schedules: %+v %v", list, err)
	}
	_, err = o.RunSchedule(ctx, "sales")
	wantCode(t, "run now where nothing runs schedules", err, usersync.EUNAVAILABLE)

	// Runs, and a decision on a quarantined one.
	r := &usersync.Run{Schedule: "sales", Trigger: "schedule", StartedBy: "test"}
	if err := d.StartRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := d.FinishRun(ctx, r.ID, usersync.RunQuarantined, "{}", "removals held"); err != nil {
		t.Fatal(err)
	}
	done, err := o.DecideRun(ctx, r.ID, false)
	if err != nil || done.Outcome != usersync.RunRemovalsRejected {
		t.Fatalf("reject: %+v %v", done, err)
	}
	_, err = o.DecideRun(ctx, r.ID, false)
	wantCode(t, "decide twice", err, usersync.ECONFLICT)
	if runs, err := o.ListRuns(ctx, "sales", 10); err != nil || len(runs) != 1 || runs[0].ID != r.ID {
		t.Fatalf("runs: %+v %v", runs, err)
	}
	if err := o.DeleteSchedule(ctx, "sales"); err != nil {
		t.Fatal(err)
	}
	if got, err := o.GetRun(ctx, r.ID); err != nil || got.Schedule != "sales" {
		t.Fatalf("a run outlives its schedule: %+v %v", got, err)
	}

	// Provisioners.
	if ps, err := o.ListProvisioners(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("provisioners: %+v %v", ps, err)
	}
	_, err = o.ProvisionerStatus(ctx, "nope")
	wantCode(t, "an unknown provisioner", err, usersync.ENOTFOUND)
	_, err = o.RetryProvisioner(ctx, "nope", "app:team")
	wantCode(t, "retry where no provisioner runs", err, usersync.EUNAVAILABLE)
}
