package pull

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
)

// memSource is a Source whose groups are plain slices.
type memSource struct {
	groups map[string][]User
}

func (m *memSource) Owner() string { return "mem:test" }

func (m *memSource) FindGroup(ctx context.Context, name string) (Group, error) {
	if _, ok := m.groups[name]; !ok {
		return Group{}, usersync.Errorf(usersync.ENOTFOUND, "group %q not found", name)
	}
	return Group{ID: "id-" + name, Name: name, Description: "from mem"}, nil
}

func (m *memSource) Members(ctx context.Context, g Group, fn func([]User) error) error {
	us := m.groups[g.Name]
	for i := 0; i < len(us); i += 3 { // pages of 3
		if err := fn(us[i:min(i+3, len(us))]); err != nil {
			return err
		}
	}
	return nil
}

func people(n int, attrs ...string) []User {
	var out []User
	for i := 0; i < n; i++ {
		u := User{ID: fmt.Sprint("s", i), Username: fmt.Sprintf("p%02d@x.example", i), Email: fmt.Sprintf("p%02d@x.example", i), FirstName: "P", LastName: fmt.Sprint(i), Enabled: true,
			Attributes: map[string]string{}}
		for j := 0; j+1 < len(attrs); j += 2 {
			u.Attributes[attrs[j]] = attrs[j+1]
		}
		out = append(out, u)
	}
	return out
}

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

func sync(t *testing.T, d usersync.Directory, src Source, group string, o Options) (*Result, *usersync.BatchResult) {
	t.Helper()
	o.KeepActions = true
	r, err := Sync(context.Background(), d, src, group, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, &r.Written
}

func members(t *testing.T, d usersync.Directory, group string) []string {
	g, err := d.FindGroupByName(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	us, _, _ := d.Members(context.Background(), g.ID, 0, 0)
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func TestAutoCreateModes(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		src := &memSource{groups: map[string][]User{"Sales": people(4)}}

		d := openDir(t)
		p, _ := sync(t, d, src, "Sales", Options{})
		if p.Skipped == "" || !strings.Contains(p.Skipped, "--auto-create") {
			t.Fatalf("missing group without --auto-create: %+v", p)
		}
		if _, err := d.FindGroupByName(ctx, "Sales"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
			t.Fatal("a skipped group was created")
		}
		// Existing group, no --auto-create: users are created.
		d.CreateGroup(ctx, &usersync.Group{Name: "Sales"})
		p, res := sync(t, d, src, "Sales", Options{})
		if res.UsersCreated != 4 || len(members(t, d, "Sales")) != 4 || p.Counts[CreateUser] != 4 {
			t.Fatalf("users of an existing group: %+v", res)
		}

		// groups: the group is made, only existing users join.
		d = openDir(t)
		d.CreateUser(ctx, &usersync.User{Username: "p01@x.example", Email: "mine@x.example"})
		p, res = sync(t, d, src, "Sales", Options{AutoCreate: CreateGroups})
		if res.GroupsCreated != 1 || res.UsersCreated != 0 || p.Counts[SkipUser] != 3 {
			t.Fatalf("--auto-create groups: %+v %v", res, p.Counts)
		}
		if m := members(t, d, "Sales"); len(m) != 1 || m[0] != "p01@x.example" {
			t.Fatalf("members %v", m)
		}
		if u, _ := d.FindUserByUsername(ctx, "p01@x.example"); u.Email != "mine@x.example" {
			t.Fatal("a user the source does not own was overwritten without --force")
		}

		// all: both are created; users are SSO users of the given type owned by the source.
		d = openDir(t)
		_, res = sync(t, d, src, "Sales", Options{AutoCreate: CreateAll, UserType: usersync.UserPowerUser})
		u, _ := d.FindUserByUsername(ctx, "p02@x.example")
		if res.UsersCreated != 4 || u.Type != usersync.UserPowerUser || u.AuthMethod != usersync.AuthSSO || u.Source != "mem:test" || u.SourceID != "s2" {
			t.Fatalf("--auto-create all: %+v %+v", res, u)
		}
		if m := members(t, d, usersync.DefaultGroupName); len(m) != 4 {
			t.Fatalf("Default Group has %d members", len(m))
		}
		g, _ := d.FindGroupByName(ctx, "Sales")
		if g.Alias != "id-Sales" || g.Source != "mem:test" {
			t.Fatalf("created group %+v", g)
		}
	})
}

func TestNoOpRerunAndUpdates(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		src := &memSource{groups: map[string][]User{"Eng": people(7)}}
		d := openDir(t)
		sync(t, d, src, "Eng", Options{AutoCreate: CreateAll})
		seq, _ := d.LastChangeSeq(ctx)
		p, res := sync(t, d, src, "Eng", Options{AutoCreate: CreateAll})
		if len(p.Actions) != 0 || res.RowsWritten != 0 {
			t.Fatalf("no-op re-run planned %v and wrote %d rows", p.Actions, res.RowsWritten)
		}
		if s, _ := d.LastChangeSeq(ctx); s != seq {
			t.Fatal("no-op re-run logged changes")
		}
		src.groups["Eng"][3].LastName = "Changed"
		src.groups["Eng"][4].Enabled = false
		p, res = sync(t, d, src, "Eng", Options{AutoCreate: CreateAll})
		if res.UsersUpdated != 2 || p.Counts[UpdateUser] != 2 {
			t.Fatalf("updates: %+v %v", res, p.Actions)
		}
		if p.Actions[0].Fields["lastName"].To != "Changed" && p.Actions[1].Fields["lastName"].To != "Changed" {
			t.Fatalf("plan does not say what changes: %+v", p.Actions)
		}
	})
}

func TestForceTakesOverProfiles(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		d := openDir(t)
		d.CreateUser(ctx, &usersync.User{Username: "p00@x.example", Email: "hand@x.example"})
		src := &memSource{groups: map[string][]User{"G": people(1)}}
		sync(t, d, src, "G", Options{AutoCreate: CreateAll})
		if u, _ := d.FindUserByUsername(ctx, "p00@x.example"); u.Email != "hand@x.example" || u.Source != usersync.SourceLocal {
			t.Fatalf("overwritten without --force: %+v", u)
		}
		sync(t, d, src, "G", Options{AutoCreate: CreateAll, Force: true})
		if u, _ := d.FindUserByUsername(ctx, "p00@x.example"); u.Email != "p00@x.example" || u.Source != "mem:test" {
			t.Fatalf("--force did not take over: %+v", u)
		}
	})
}

func TestMirrorAndMassRemovalGuard(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		src := &memSource{groups: map[string][]User{"Big": people(60)}}
		d := openDir(t)
		sync(t, d, src, "Big", Options{AutoCreate: CreateAll})
		src.groups["Big"] = src.groups["Big"][:55] // 5 leave: within the threshold
		p, res := sync(t, d, src, "Big", Options{AutoCreate: CreateAll})
		if res.MembersRemoved != 5 || p.Counts[RemoveMember] != 5 || len(members(t, d, "Big")) != 55 {
			t.Fatalf("mirror: %+v", res)
		}
		if _, err := d.FindUserByUsername(ctx, "p59@x.example"); err != nil {
			t.Fatal("a user who left the group was deleted")
		}
		src.groups["Big"] = src.groups["Big"][:20] // 35 of 55 would go
		_, err := Sync(ctx, d, src, "Big", Options{AutoCreate: CreateAll})
		if usersync.ErrorCode(err) != usersync.ECONFLICT || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("mass removal: %v", err)
		}
		src.groups["Big"] = nil
		if _, err := Sync(ctx, d, src, "Big", Options{AutoCreate: CreateAll}); usersync.ErrorCode(err) != usersync.ECONFLICT {
			t.Fatalf("emptied group: %v", err)
		}
		if len(members(t, d, "Big")) != 55 {
			t.Fatal("refused removals changed the group")
		}
		_, res = sync(t, d, src, "Big", Options{AutoCreate: CreateAll, Force: true})
		if res.MembersRemoved != 55 {
			t.Fatalf("--force removal: %+v", res)
		}
	})
}

func TestLimitTargetAndMapping(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		src := &memSource{groups: map[string][]User{"Staff": append(people(3, "dept", "Ops"), people(5, "dept", "Dev")[3:]...)}}
		d := openDir(t)
		_, err := Sync(ctx, d, src, "Staff", Options{AutoCreate: CreateAll, SyncUserLimit: 4})
		if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), "--sync-user-limit") {
			t.Fatalf("limit: %v", err)
		}
		if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 0 {
			t.Fatal("a refused group was half-applied")
		}
		sync(t, d, src, "Staff", Options{AutoCreate: CreateAll, TargetGroup: "app:staff", MapAttrToGroup: []string{"dept"}, SkipDefaultGroup: true})
		if _, err := d.FindGroupByName(ctx, "Staff"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
			t.Fatal("--target-group also created the source's name")
		}
		if len(members(t, d, "app:staff")) != 5 || len(members(t, d, "Ops")) != 3 || len(members(t, d, "Dev")) != 2 {
			t.Fatalf("target %v, Ops %v, Dev %v", members(t, d, "app:staff"), members(t, d, "Ops"), members(t, d, "Dev"))
		}
		if len(members(t, d, usersync.DefaultGroupName)) != 0 {
			t.Fatal("--skip-default-group added to the Default Group")
		}
	})
}
