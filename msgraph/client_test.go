package msgraph

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
)

const secret = "emu-secret-value-123"

func start(t *testing.T, tenant *graphemu.Tenant, o graphemu.Options) (*graphemu.Server, Config) {
	t.Helper()
	o.ClientID, o.ClientSecret = "app-1", secret
	emu := graphemu.NewServer(tenant, o)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: tenant.ID, ClientID: "app-1", ClientSecret: secret}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func collect(t *testing.T, c *Client, groupID string, props ...string) (map[string]User, int) {
	t.Helper()
	users, pages := map[string]User{}, 0
	err := c.Members(context.Background(), groupID, props, func(p []User) error {
		pages++
		for _, u := range p {
			if _, dup := users[u.ID()]; dup {
				t.Fatalf("user %s delivered twice", u.ID())
			}
			users[u.ID()] = u
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return users, pages
}

func TestMembersPagingAndSelect(t *testing.T) {
	tenant := graphemu.Generate(1, 2500, 3)
	emu, cfg := start(t, tenant, graphemu.Options{})
	c := newClient(t, cfg)
	all, err := c.FindGroup(context.Background(), "All Users")
	if err != nil {
		t.Fatal(err)
	}
	users, pages := collect(t, c, all.ID, "userPrincipalName", "accountEnabled", "mail")
	if len(users) != 2500 || pages != 3 {
		t.Fatalf("%d users in %d pages, want 2500 in 3", len(users), pages)
	}
	for _, u := range users {
		if _, ok := u["accountEnabled"]; !ok || u.String("userPrincipalName") == "" {
			t.Fatalf("selected properties missing: %v", u)
		}
		if _, ok := u["jobTitle"]; ok {
			t.Fatalf("unselected property returned: %v", u)
		}
		break
	}
	if n := emu.Requests()["token"]; n != 1 {
		t.Fatalf("%d token requests, want 1 (reuse until expiry)", n)
	}
	if n := emu.Requests()["members"]; n != 3 {
		t.Fatalf("%d member requests, want 3", n)
	}
}

func TestNestedGroupsFlattened(t *testing.T) {
	tenant := graphemu.NewTenant("11111111-2222-4333-8444-555555555555")
	for _, id := range []string{"u1", "u2", "u3"} {
		tenant.AddUser(graphemu.User{ID: id, UserPrincipalName: id + "@x.example"})
	}
	tenant.AddGroup(graphemu.Group{ID: "inner", DisplayName: "Inner", Members: []string{"u2", "u3"}})
	tenant.AddGroup(graphemu.Group{ID: "outer", DisplayName: "Outer", Members: []string{"u1", "inner", "u2"}})
	_, cfg := start(t, tenant, graphemu.Options{})
	users, _ := collect(t, newClient(t, cfg), "outer")
	if len(users) != 3 {
		t.Fatalf("got %d users, want u1, u2, u3 once each", len(users))
	}
}

func TestFindGroup(t *testing.T) {
	tenant := graphemu.NewTenant("11111111-2222-4333-8444-555555555555")
	tenant.AddGroup(graphemu.Group{ID: "aaaaaaaa-0000-4000-8000-000000000001", DisplayName: "Sales"})
	tenant.AddGroup(graphemu.Group{ID: "aaaaaaaa-0000-4000-8000-000000000002", DisplayName: "Sales"})
	tenant.AddGroup(graphemu.Group{ID: "aaaaaaaa-0000-4000-8000-000000000003", DisplayName: "O'Brien's team"})
	_, cfg := start(t, tenant, graphemu.Options{})
	c, ctx := newClient(t, cfg), context.Background()
	_, err := c.FindGroup(ctx, "Sales")
	if usersync.ErrorCode(err) != usersync.ECONFLICT || !strings.Contains(err.Error(), "aaaaaaaa-0000-4000-8000-000000000002") {
		t.Fatalf("duplicate names: %v", err)
	}
	g, err := c.FindGroup(ctx, "aaaaaaaa-0000-4000-8000-000000000002")
	if err != nil || g.DisplayName != "Sales" {
		t.Fatalf("by id: %+v %v", g, err)
	}
	if g, err := c.FindGroup(ctx, "O'Brien's team"); err != nil || g.ID != "aaaaaaaa-0000-4000-8000-000000000003" {
		t.Fatalf("quoted name: %+v %v", g, err)
	}
	_, err = c.FindGroup(ctx, "Nope")
	if usersync.ErrorCode(err) != usersync.ENOTFOUND || !strings.Contains(err.Error(), `"Nope"`) {
		t.Fatalf("missing: %v", err)
	}
	_, err = c.FindGroup(ctx, "aaaaaaaa-0000-4000-8000-00000000dead")
	if usersync.ErrorCode(err) != usersync.ENOTFOUND {
		t.Fatalf("missing id: %v", err)
	}
}

func TestSignInErrors(t *testing.T) {
	tenant := graphemu.Generate(2, 10, 1)
	_, cfg := start(t, tenant, graphemu.Options{})
	cases := []struct {
		change func(*Config)
		says   string
	}{
		{func(c *Config) { c.ClientSecret = "wrong-secret-xyz" }, "AADSTS7000215"},
		{func(c *Config) { c.ClientID = "other-app" }, "AADSTS700016"},
		{func(c *Config) { c.Tenant = "nosuch.example" }, "AADSTS90002"},
	}
	for _, tc := range cases {
		cfg := cfg
		tc.change(&cfg)
		_, err := newClient(t, cfg).FindGroup(context.Background(), "All Users")
		if usersync.ErrorCode(err) != usersync.EUNAUTHORIZED || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("want %s: %v", tc.says, err)
		}
		if err != nil && (strings.Contains(err.Error(), cfg.ClientSecret) || strings.Contains(err.Error(), "Trace ID")) {
			t.Errorf("error shows the secret or more than the first sentence: %v", err)
		}
	}
	for _, bad := range []Config{{Tenant: "t", ClientID: "c"}, {Tenant: "t", ClientSecret: "s"}, {ClientID: "c", ClientSecret: "s"}, {Tenant: "t", ClientID: "c", ClientSecret: "s", GraphURL: "ftp://x"}} {
		if _, err := New(bad); usersync.ErrorCode(err) != usersync.EINVALID {
			t.Errorf("New(%+v) = %v, want EINVALID", bad, err)
		}
	}
}

func TestThrottlingHonoursRetryAfter(t *testing.T) {
	tenant := graphemu.Generate(3, 5000, 1)
	emu, cfg := start(t, tenant, graphemu.Options{RequestBudget: 3, Window: time.Second})
	var mu sync.Mutex
	var waits []time.Duration
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		time.Sleep(d)
		return nil
	}
	c := newClient(t, cfg)
	all, err := c.FindGroup(context.Background(), "All Users")
	if err != nil {
		t.Fatal(err)
	}
	users, _ := collect(t, c, all.ID)
	if len(users) != 5000 {
		t.Fatalf("%d users after throttling, want 5000", len(users))
	}
	if emu.Requests()["429"] == 0 || len(waits) == 0 {
		t.Fatal("the test did not throttle")
	}
	for _, w := range waits {
		if w != time.Second {
			t.Fatalf("waited %v, want the Retry-After of 1s", w)
		}
	}
}

func TestFaultsAndTokenExpiry(t *testing.T) {
	tenant := graphemu.Generate(4, 4000, 1)
	emu, cfg := start(t, tenant, graphemu.Options{FailRate: 0.3, Seed: 7})
	cfg.Sleep = func(ctx context.Context, d time.Duration) error { return nil }
	c := newClient(t, cfg)
	all, err := c.FindGroup(context.Background(), "All Users")
	if err != nil {
		t.Fatal(err)
	}
	users, pages := map[string]bool{}, 0
	err = c.Members(context.Background(), all.ID, nil, func(p []User) error {
		pages++
		if pages == 2 {
			emu.ExpireTokens() // the token runs out in the middle of the read
		}
		for _, u := range p {
			users[u.ID()] = true
		}
		return nil
	})
	if err != nil || len(users) != 4000 {
		t.Fatalf("%d users, %v", len(users), err)
	}
	if emu.Requests()["503"] == 0 {
		t.Fatal("no fault was injected")
	}
	if n := emu.Requests()["token"]; n != 2 {
		t.Fatalf("%d token requests, want 2 (one renewal after expiry)", n)
	}
	// A service that keeps failing ends in a clear error, not a hang.
	_, cfg = start(t, tenant, graphemu.Options{FailRate: 1})
	cfg.Sleep, cfg.MaxRetries = func(ctx context.Context, d time.Duration) error { return nil }, 3
	_, err = newClient(t, cfg).FindGroup(context.Background(), "All Users")
	if usersync.ErrorCode(err) != usersync.EUNAVAILABLE || !strings.Contains(err.Error(), "503") {
		t.Fatalf("persistent failure: %v", err)
	}
}
