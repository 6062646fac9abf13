package pull

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
)

// idSource is a Source whose groups have ids and names of their own, names
// not unique (as in Entra): a name shared by several groups is refused and
// an id is always accepted.
type idSource struct {
	groups []*idGroup
	// opts and attrs make it a Describer when opts is not nil.
	opts  map[string]string
	attrs []string
}

type idGroup struct {
	id, name string
	users    []User
}

func (s *idSource) Owner() string { return "ids:test" }

func (s *idSource) FindGroup(ctx context.Context, nameOrID string) (Group, error) {
	var found []*idGroup
	for _, g := range s.groups {
		if g.id == nameOrID {
			return Group{ID: g.id, Name: g.name, Description: "group " + g.id}, nil
		}
		if g.name == nameOrID {
			found = append(found, g)
		}
	}
	if len(found) != 1 {
		return Group{}, usersync.Errorf(usersync.ECONFLICT, "%d groups named %q", len(found), nameOrID)
	}
	return Group{ID: found[0].id, Name: found[0].name, Description: "group " + found[0].id}, nil
}

func (s *idSource) group(id string) *idGroup {
	for _, g := range s.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

func (s *idSource) Members(ctx context.Context, g Group, fn func([]User) error) error {
	us := s.group(g.ID).users
	for i := 0; i < len(us); i += 4 {
		if err := fn(us[i:min(i+4, len(us))]); err != nil {
			return err
		}
	}
	return nil
}

// describedSource is an idSource that is also a Describer.
type describedSource struct{ *idSource }

func (s describedSource) Options() map[string]string { return s.opts }
func (s describedSource) Attributes() []string       { return s.attrs }
func (s describedSource) Suggest(name string) string {
	return Closest(name, []string{"login", "email", "firstName"})
}

// users returns people i..j-1 (see people), with stable ids.
func users(i, j int) []User { return people(j)[i:] }

func memberNames(t *testing.T, d usersync.Directory, group string) string {
	t.Helper()
	m := members(t, d, group)
	sort.Strings(m)
	return strings.Join(m, " ")
}

func names(from, to int) string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("p%02d@x.example", i))
	}
	return strings.Join(out, " ")
}

// Two source groups with one display name never end in one directory
// group: the second is refused with both ids and the ways out.
func TestSameNameGroupsNotMixed(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		src := &idSource{groups: []*idGroup{{id: "id-a", name: "Sales", users: users(0, 5)}, {id: "id-b", name: "Sales", users: users(5, 10)}}}
		d := openDir(t)
		sync(t, d, src, "id-a", Options{AutoCreate: CreateAll})
		seq, _ := d.LastChangeSeq(ctx)
		_, err := Sync(ctx, d, src, "id-b", Options{AutoCreate: CreateAll})
		if usersync.ErrorCode(err) != usersync.ECONFLICT {
			t.Fatalf("second group of the same name: %v", err)
		}
		for _, want := range []string{"id-a", "id-b", "--target-group", "--rebind"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("the refusal does not name %q: %v", want, err)
			}
		}
		if got := memberNames(t, d, "Sales"); got != names(0, 5) {
			t.Fatalf("members after the refusal: %s", got)
		}
		if s, _ := d.LastChangeSeq(ctx); s != seq {
			t.Fatal("the refused sync wrote to the directory")
		}
		// The ways out: another directory group, or an explicit re-bind.
		sync(t, d, src, "id-b", Options{AutoCreate: CreateAll, TargetGroup: "Sales B"})
		if got := memberNames(t, d, "Sales B"); got != names(5, 10) {
			t.Fatalf("--target-group: %s", got)
		}
		r, _ := sync(t, d, src, "id-b", Options{AutoCreate: CreateAll, Rebind: true})
		g, _ := d.FindGroupByName(ctx, "Sales")
		if got := memberNames(t, d, "Sales"); got != names(5, 10) || g.Alias != "id-b" || g.SourceID != "id-b" || g.Description != "group id-b" || r.Counts[UpdateGroup] != 1 {
			t.Fatalf("--rebind: members %s, group %+v, counts %v", got, g, r.Counts)
		}
		// Bound to id-b now: id-a is the other one.
		if _, err := Sync(ctx, d, src, "id-a", Options{AutoCreate: CreateAll}); usersync.ErrorCode(err) != usersync.ECONFLICT {
			t.Fatalf("after the re-bind, the first group: %v", err)
		}
		// A group made by hand is bound by its first sync.
		d.CreateGroup(ctx, &usersync.Group{Name: "Hand"})
		src.groups = append(src.groups, &idGroup{id: "id-h", name: "Hand", users: users(0, 2)}, &idGroup{id: "id-h2", name: "Hand2", users: users(2, 3)})
		sync(t, d, src, "id-h", Options{})
		if g, _ := d.FindGroupByName(ctx, "Hand"); g.Source != "ids:test" || g.SourceID != "id-h" {
			t.Fatalf("a hand-made group after its first sync: %+v", g)
		}
	})
}

// Several source groups into one --target-group: its members are the
// union, each kept while any of them holds it.
func TestTargetGroupUnion(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		g10 := &idGroup{id: "g10", name: "G10", users: users(0, 5)}
		g11 := &idGroup{id: "g11", name: "G11", users: users(3, 8)}
		src := &idSource{groups: []*idGroup{g10, g11}}
		d := openDir(t)
		o := Options{AutoCreate: CreateAll, TargetGroup: "T"}
		provision := func() (*Result, *Result) {
			t.Helper()
			r10, _ := sync(t, d, src, "G10", o)
			r11, _ := sync(t, d, src, "G11", o)
			return r10, r11
		}
		provision()
		if got := memberNames(t, d, "T"); got != names(0, 8) {
			t.Fatalf("union: %s", got)
		}
		// Again: nothing to do.
		seq, _ := d.LastChangeSeq(ctx)
		if r10, r11 := provision(); r10.Written.RowsWritten+r11.Written.RowsWritten != 0 {
			t.Fatalf("re-run wrote %d + %d rows", r10.Written.RowsWritten, r11.Written.RowsWritten)
		}
		if s, _ := d.LastChangeSeq(ctx); s != seq {
			t.Fatal("re-run logged changes")
		}
		// p03 leaves G10 (G11 still has p03); p00 leaves G10 (nobody has p00).
		g10.users = slices.DeleteFunc(slices.Clone(g10.users), func(u User) bool { return u.Username == "p03@x.example" || u.Username == "p00@x.example" })
		r10, r11 := provision()
		if got := memberNames(t, d, "T"); got != names(1, 8) {
			t.Fatalf("after leaving G10: %s", got)
		}
		if r10.Counts[RemoveMember] != 1 || r10.Counts[KeepMember] != 1 || r11.Counts[RemoveMember]+r11.Counts[AddMember] != 0 {
			t.Fatalf("counts: G10 %v, G11 %v", r10.Counts, r11.Counts)
		}
		// G11 empties out: only what G10 does not hold leaves; the
		// target is not emptied, so this is no mass removal of it.
		g11.users = nil
		_, r11 = provision()
		if got := memberNames(t, d, "T"); got != "p01@x.example p02@x.example p04@x.example" || r11.Counts[RemoveMember] != 4 || r11.Counts[KeepMember] != 1 {
			t.Fatalf("after G11 emptied: %s, %v", got, r11.Counts)
		}
	})
}

// Changing an option that shapes results re-applies it, and attributes no
// option fills any more are removed (the reason a delta source reads in
// full is tested with Graph: TestOptionChangeForcesFullRead).
func TestOptionChangeReapplied(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		base := &idSource{groups: []*idGroup{{id: "g", name: "G", users: users(0, 3)}},
			opts: map[string]string{"--trusted-server-username-attr": "mail"}, attrs: []string{"trusted_server_username"}}
		for i := range base.groups[0].users {
			base.groups[0].users[i].Attributes = map[string]string{"trusted_server_username": fmt.Sprint("t", i)}
		}
		src := describedSource{base}
		d := openDir(t)
		sync(t, d, src, "G", Options{AutoCreate: CreateAll})
		if u, _ := d.FindUserByUsername(ctx, "p01@x.example"); u.Attributes["trusted_server_username"] != "t1" {
			t.Fatalf("attribute not filled: %+v", u)
		}
		// The option is dropped: the attribute goes.
		base.opts = map[string]string{"--trusted-server-username-attr": ""}
		base.attrs = nil
		for i := range base.groups[0].users {
			base.groups[0].users[i].Attributes = map[string]string{}
		}
		r, _ := sync(t, d, src, "G", Options{AutoCreate: CreateAll})
		if u, _ := d.FindUserByUsername(ctx, "p01@x.example"); len(u.Attributes) != 0 || r.Counts[UpdateUser] != 3 {
			t.Fatalf("dropped attribute kept: %+v, %v", u.Attributes, r.Counts)
		}
	})
}

// A mistyped username attribute leaves most users without a name: the
// group fails, naming the attribute and the likely one, with nothing
// written; a few users without one are skipped and counted.
func TestMissingUsernameFails(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		nameless := users(0, 6)
		for i := range nameless {
			nameless[i].Username = ""
		}
		src := describedSource{&idSource{groups: []*idGroup{{id: "g", name: "G", users: nameless}}, opts: map[string]string{"--username-attr": "logn"}}}
		d := openDir(t)
		seq, _ := d.LastChangeSeq(ctx)
		_, err := Sync(ctx, d, src, "G", Options{AutoCreate: CreateAll})
		if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), `--username-attr "logn"`) || !strings.Contains(err.Error(), `"login"`) {
			t.Fatalf("mistyped username attribute: %v", err)
		}
		if s, _ := d.LastChangeSeq(ctx); s != seq {
			t.Fatal("something was written")
		}
		few := users(0, 8)
		few[2].Username = ""
		few[5].Email = ""
		src.groups[0].users = few
		r, _ := sync(t, d, src, "G", Options{AutoCreate: CreateAll})
		if r.Counts[SkipUser] != 1 || r.Counts[CreateUser] != 7 || len(r.Warnings) != 2 ||
			!strings.Contains(r.Warnings[0], "1 source users have no value for the username attribute") || !strings.Contains(r.Warnings[1], "1 of the 7 users read have no email") {
			t.Fatalf("a few without names: %v %q", r.Counts, r.Warnings)
		}
	})
}

// A pull finds the users it made by their source id: a user soft-deleted
// over SCIM (renamed) or renamed at the source stays one user.
func TestPullMatchesBySourceID(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		src := &idSource{groups: []*idGroup{{id: "g", name: "G", users: users(0, 4)}}}
		d := openDir(t)
		sync(t, d, src, "g", Options{AutoCreate: CreateAll})
		u, _ := d.FindUserByUsername(ctx, "p01@x.example")
		name, off, yes := "deleted_p01@x.example", false, true
		if _, err := d.UpdateUser(ctx, u.ID, usersync.UserUpdate{Username: &name, Enabled: &off, SoftDeleted: &yes}, 0); err != nil {
			t.Fatal(err)
		}
		src.groups[0].users[2].Username = "renamed@x.example"
		r, _ := sync(t, d, src, "g", Options{AutoCreate: CreateAll})
		if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 4 || r.Counts[CreateUser] != 0 || r.Counts[AddMember] != 0 || r.Counts[RemoveMember] != 0 {
			t.Fatalf("users %d, counts %v", n, r.Counts)
		}
		back, _ := d.FindUserByID(ctx, u.ID)
		if back.Username != "p01@x.example" || !back.Enabled || back.SoftDeleted {
			t.Fatalf("soft-deleted user after the pull: %+v", back)
		}
		if got := memberNames(t, d, "G"); got != "p00@x.example p01@x.example p03@x.example renamed@x.example" {
			t.Fatalf("members: %s", got)
		}
	})
}

// Default Group and mapped-group memberships are counted as they are
// written, and a re-run counts none.
func TestJoinGroupsCounted(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		src := &memSource{groups: map[string][]User{"Staff": people(5, "dept", "Ops")}}
		d := openDir(t)
		r, _ := sync(t, d, src, "Staff", Options{AutoCreate: CreateAll, MapAttrToGroup: []string{"dept"}})
		if r.Counts[JoinGroup] != 10 || r.Written.MembersAdded != 15 {
			t.Fatalf("first run: %v, written %+v", r.Counts, r.Written)
		}
		r, _ = sync(t, d, src, "Staff", Options{AutoCreate: CreateAll, MapAttrToGroup: []string{"dept"}})
		if r.Counts[JoinGroup] != 0 || r.Written.RowsWritten != 0 {
			t.Fatalf("re-run: %v, written %+v", r.Counts, r.Written)
		}
	})
}

// A run for one user reports that user, and says so when the user is in
// neither the source group nor the directory group.
func TestOnlyUser(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		src := &memSource{groups: map[string][]User{"Staff": people(5)}}
		d := openDir(t)
		sync(t, d, src, "Staff", Options{AutoCreate: CreateAll})
		r, _ := sync(t, d, src, "Staff", Options{AutoCreate: CreateAll, OnlyUser: "P02@x.example"})
		if r.SourceUsers != 1 || r.Skipped != "" {
			t.Fatalf("known user: %+v", r)
		}
		r, _ = sync(t, d, src, "Staff", Options{AutoCreate: CreateAll, OnlyUser: "nobody@x.example"})
		if r.SourceUsers != 0 || !strings.Contains(r.Skipped, "nobody@x.example") {
			t.Fatalf("unknown user: %+v", r)
		}
	})
}

// pagedSource serves its pages one by one; with written set, it sends a
// page only once the run has written the one before (the run reports
// each written action on written), so that the pages are planned and
// written in separate batches rather than group-committed together.
type pagedSource struct {
	pages   [][]User
	written chan struct{}
}

func (s *pagedSource) Owner() string { return "paged:test" }
func (s *pagedSource) FindGroup(ctx context.Context, name string) (Group, error) {
	return Group{ID: "g1", Name: name}, nil
}
func (s *pagedSource) Members(ctx context.Context, g Group, fn func([]User) error) error {
	for i, p := range s.pages {
		if i > 0 && s.written != nil {
			<-s.written
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// syncPaged runs src with each page written before the next is sent.
func syncPaged(t *testing.T, d usersync.Directory, src *pagedSource, o Options) *Result {
	t.Helper()
	src.written = make(chan struct{}, 100)
	o.KeepActions, o.AutoCreate = true, CreateAll
	pages := 0
	o.Progress = func(p Progress) {
		for ; pages < p.Pages && p.Applied > 0; pages++ {
			src.written <- struct{}{}
		}
	}
	r, err := Sync(context.Background(), d, src, "G", o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func person(id, name, last string) User {
	return User{ID: id, Username: name, Email: name, FirstName: "P", LastName: last, Enabled: true}
}

// Two source users with one username (compared case-insensitively) are
// one directory user at most: the first is used and the second is warned
// about, whether they come in one page, in pages written apart, or after
// the first was skipped. The run keeps numbers, not names, of who it saw:
// this is what its hashes must not get wrong.
func TestSourceUsersSharingAUsername(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		shared := func(r *Result) bool {
			return slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, `share the username "K@x.example"`) })
		}
		for _, c := range []struct {
			name  string
			pages [][]User
		}{
			{"one page", [][]User{{person("s1", "k@x.example", "First"), person("s2", "K@x.example", "Second")}}},
			{"pages written apart", [][]User{{person("s1", "k@x.example", "First"), person("s3", "o@x.example", "O")}, {person("s2", "K@x.example", "Second")}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				d := openDir(t)
				for run := 0; run < 2; run++ { // a first sync, then with the user in the directory
					r := syncPaged(t, d, &pagedSource{pages: c.pages}, Options{})
					if !shared(r) {
						t.Fatalf("run %d: no warning: %v", run, r.Warnings)
					}
					u, err := d.FindUserByUsername(ctx, "k@x.example")
					if err != nil || u.LastName != "First" || u.SourceID != "s1" {
						t.Fatalf("run %d: the second source user overwrote the first: %+v %v", run, u, err)
					}
					if m := memberNames(t, d, "G"); !strings.HasPrefix(m, "k@x.example") {
						t.Fatalf("run %d: members %s", run, m)
					}
				}
			})
		}
		t.Run("first one skipped", func(t *testing.T) {
			d := openDir(t)
			first := person("s1", "k@x.example", "First")
			first.NoCreate = "deprovisioned at the source"
			r := syncPaged(t, d, &pagedSource{pages: [][]User{{first, person("s3", "o@x.example", "O")}, {person("s2", "K@x.example", "Second")}}}, Options{})
			if !shared(r) {
				t.Fatalf("no warning: %v", r.Warnings)
			}
			if _, err := d.FindUserByUsername(ctx, "k@x.example"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
				t.Fatalf("the second of two source users sharing a name was created: %v", err)
			}
		})
	})
}

// A username the source gives to another of its users (a person gone, a
// new one given the name) does not hand the first one's directory account
// to the second: the second is skipped with the reason, unless --force.
// A name that moves within one run goes to its new holder in that run.
func TestReusedUsernameNotAdopted(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		ctx := context.Background()
		d := openDir(t)
		syncPaged(t, d, &pagedSource{pages: [][]User{{person("s1", "k@x.example", "Gone"), person("s3", "o@x.example", "O")}}}, Options{})
		src := &pagedSource{pages: [][]User{{person("s2", "k@x.example", "New"), person("s3", "o@x.example", "O")}}}
		r := syncPaged(t, d, src, Options{})
		u, _ := d.FindUserByUsername(ctx, "k@x.example")
		if u.SourceID != "s1" || u.LastName != "Gone" || r.Counts[SkipUser] != 1 {
			t.Fatalf("a reused username took over the account: %+v, counts %v", u, r.Counts)
		}
		// Listed as unresolved, whatever the actions kept: every run skips
		// it again until an administrator acts.
		if len(r.Unresolved) != 1 || r.Unresolved[0].User != "k@x.example" || !strings.Contains(r.Unresolved[0].Reason, "is source user s1, and source user s2 has its username") {
			t.Fatalf("unresolved %+v (warnings %v)", r.Unresolved, r.Warnings)
		}
		if m := memberNames(t, d, "G"); m != "o@x.example" {
			t.Fatalf("members %s (s1 left the group)", m)
		}
		r = syncPaged(t, d, src, Options{Force: true})
		u, _ = d.FindUserByUsername(ctx, "k@x.example")
		if u.SourceID != "s2" || u.LastName != "New" || r.Counts[UpdateUser] != 1 {
			t.Fatalf("--force did not give the account to s2: %+v %v", u, r.Counts)
		}

		// s2 is renamed m while s4 is given k, in one page: the name moves
		// in the run that frees it.
		src = &pagedSource{pages: [][]User{{person("s2", "m@x.example", "New"), person("s4", "k@x.example", "Fourth"), person("s3", "o@x.example", "O")}}}
		r = syncPaged(t, d, src, Options{})
		if m, _ := d.FindUserByID(ctx, u.ID); m.Username != "m@x.example" || m.LastName != "New" || r.Counts[SkipUser] != 0 || r.Counts[CreateUser] != 1 {
			t.Fatalf("renamed user %+v, counts %v", m, r.Counts)
		}
		if k, err := d.FindUserByUsername(ctx, "k@x.example"); err != nil || k.SourceID != "s4" || k.ID == u.ID {
			t.Fatalf("the freed name: %+v %v", k, err)
		}
		if m := memberNames(t, d, "G"); m != "k@x.example m@x.example o@x.example" {
			t.Fatalf("members %s", m)
		}
	})
}

// racedDir is a directory where another writer (a SCIM client, say)
// creates a user between the sync's read of a page and its write.
type racedDir struct {
	usersync.Directory
	create *usersync.User
}

func (d *racedDir) ApplyBatch(ctx context.Context, b *usersync.Batch) (*usersync.BatchResult, error) {
	if u := d.create; u != nil {
		d.create = nil
		if err := d.Directory.CreateUser(ctx, u); err != nil {
			return nil, err
		}
	}
	return d.Directory.ApplyBatch(ctx, b)
}

// A user the sync was about to create, made meanwhile by another writer,
// is the sync's to join all the same, and is not taken for a leaver: the
// run counts it as seen, and keeps it in the group.
func TestUserCreatedMeanwhileIsNotALeaver(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, openDir dirtest.Opener) {
		src := &memSource{groups: map[string][]User{"G": people(3)}}
		d := &racedDir{Directory: openDir(t), create: &usersync.User{Username: "p01@x.example", Email: "p01@x.example"}}
		r, err := Sync(context.Background(), d, src, "G", Options{AutoCreate: CreateAll})
		if err != nil {
			t.Fatal(err)
		}
		if got := memberNames(t, d, "G"); got != "p00@x.example p01@x.example p02@x.example" {
			t.Fatalf("members %s (removed %d)", got, r.Counts[RemoveMember])
		}
		if r.Counts[RemoveMember] != 0 || r.Written.MembersRemoved != 0 {
			t.Fatalf("the run removed %d members", r.Written.MembersRemoved)
		}
	})
}
