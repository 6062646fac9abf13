package entra

import (
	"context"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
)

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

const (
	tenantID = "contoso.onmicrosoft.com"
	secret   = "emu-secret-value-123"
)

var ctx = usersync.WithActor(context.Background(), "test")

// env is a directory, an emulated tenant served on loopback, and a
// provisioner between them.
type env struct {
	t      testing.TB
	dir    usersync.Directory
	emu    *graphemu.Server
	tenant *graphemu.Tenant
	cfg    msgraph.Config
	p      *usersync.Provisioner
	users  map[string]*usersync.User // directory users by uid
	waits  *[]time.Duration          // what the client slept for
	now    time.Time
}

// tenantUsers are in both the directory (username uid@contoso.com) and the
// tenant (UPN uid@contoso.com); erin is in the directory only.
var tenantUsers = []string{"alice", "bob", "carol", "dave"}

func newEnv(t testing.TB, d usersync.Directory, o graphemu.Options, setup func(*usersync.ProvisionerConfig)) *env {
	t.Helper()
	e := newEnvTenant(t, o)
	e.dir, e.users, e.now = d, map[string]*usersync.User{}, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, uid := range append(slices.Clone(tenantUsers), "erin") {
		u := &usersync.User{Username: uid + "@contoso.com", Email: uid + "@contoso.com", Enabled: true}
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		e.users[uid] = u
	}
	p := &usersync.Provisioner{Name: "o365", Kind: usersync.ProvisionerGroups,
		Config: usersync.ProvisionerConfig{TenantID: tenantID, ClientID: "app-1", Domain: "contoso.com", RetryOnError: true}}
	if setup != nil {
		setup(&p.Config)
	}
	if err := d.CreateProvisioner(ctx, p, secret); err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

// newEnvTenant serves a new emulated tenant holding tenantUsers.
func newEnvTenant(t testing.TB, o graphemu.Options) *env {
	t.Helper()
	tenant := graphemu.NewTenant(tenantID)
	for _, uid := range tenantUsers {
		tenant.AddUser(graphemu.User{ID: "id-" + uid, UserPrincipalName: uid + "@contoso.com", DisplayName: uid, AccountEnabled: true})
	}
	o.ClientID, o.ClientSecret = "app-1", secret
	emu := graphemu.NewServer(tenant, o)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	e := &env{t: t, emu: emu, tenant: tenant, waits: new([]time.Duration)}
	var mu sync.Mutex
	e.cfg = msgraph.Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: tenantID, ClientID: "app-1", ClientSecret: secret,
		MaxRetries: 2, WritesPerSecond: -1,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			*e.waits = append(*e.waits, d)
			mu.Unlock()
			return ctx.Err()
		}}
	return e
}

// provisioner returns the provisioner over a new client (as each run of
// the command has).
func (e *env) provisioner() *Groups {
	e.t.Helper()
	c, err := msgraph.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := New(e.dir, c, e.p)
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

func (e *env) opts() Options {
	return Options{KeepActions: true, Now: func() time.Time { return e.now }}
}

func (e *env) run() *Result {
	e.t.Helper()
	r, err := e.provisioner().Run(ctx, e.opts())
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return r
}

func (e *env) reconcile(o Options) *Result {
	e.t.Helper()
	r, err := e.provisioner().Reconcile(ctx, o)
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return r
}

func (e *env) group(name string, members ...string) *usersync.Group {
	e.t.Helper()
	var ids []int64
	for _, m := range members {
		ids = append(ids, e.users[m].ID)
	}
	g := &usersync.Group{Name: name}
	if err := e.dir.CreateGroup(ctx, g, ids...); err != nil {
		e.t.Fatal(err)
	}
	return g
}

func (e *env) mark(folder string) {
	e.t.Helper()
	v := "true"
	if _, err := e.dir.CreateFolder(ctx, folder); err != nil && usersync.ErrorCode(err) != usersync.ECONFLICT {
		e.t.Fatal(err)
	}
	if _, err := e.dir.SetFolderAttributes(ctx, folder, map[string]*string{e.p.Config.SyncAttribute: &v}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) setGroupAttr(name, attr string, v *string) {
	e.t.Helper()
	g := e.find(name)
	if _, err := e.dir.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Attributes: map[string]*string{attr: v}}, 0); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) find(name string) *usersync.Group {
	e.t.Helper()
	g, err := e.dir.FindGroupByName(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

func (e *env) addMembers(group string, uids ...string) {
	e.t.Helper()
	var ids []int64
	for _, m := range uids {
		ids = append(ids, e.users[m].ID)
	}
	if _, err := e.dir.AddMembers(ctx, e.find(group).ID, ids); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) removeMembers(group string, uids ...string) {
	e.t.Helper()
	var ids []int64
	for _, m := range uids {
		ids = append(ids, e.users[m].ID)
	}
	if _, err := e.dir.RemoveMembers(ctx, e.find(group).ID, ids); err != nil {
		e.t.Fatal(err)
	}
}

// remote returns the Entra group of a directory group, by the id stored on it.
func (e *env) remote(name string) graphemu.Group {
	e.t.Helper()
	id := e.find(name).Attributes[e.p.Config.RemoteIDAttribute]
	if id == "" {
		e.t.Fatalf("group %s has no Entra id in %s", name, e.p.Config.RemoteIDAttribute)
	}
	g, ok := e.tenant.Group(id)
	if !ok {
		e.t.Fatalf("group %s: Entra group %s does not exist", name, id)
	}
	return g
}

// members lists an Entra group's members as uids.
func members(g graphemu.Group) []string {
	var out []string
	for _, id := range g.Members {
		out = append(out, id[len("id-"):])
	}
	sort.Strings(out)
	return out
}

func (e *env) wantMembers(name string, want ...string) {
	e.t.Helper()
	if got := members(e.remote(name)); !slices.Equal(got, want) {
		e.t.Fatalf("Entra members of %s = %v, want %v", name, got, want)
	}
}

func (e *env) remoteCount() int { return len(e.tenant.Groups()) }

func ptr(s string) *string { return &s }

func kinds(r *Result, k ActionKind) []Action {
	var out []Action
	for _, a := range r.Actions {
		if a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}
