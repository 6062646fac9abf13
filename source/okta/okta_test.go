package okta

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	oktaemu "github.com/usersync/usersync/emulate/okta"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/pull"
)

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

const token = "00okta-token-value-xyz"

func start(t testing.TB, org *oktaemu.Org, o oktaemu.Options) (*oktaemu.Server, *httptest.Server) {
	o.Token = token
	emu := oktaemu.NewServer(org, o)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv
}

func newClient(t testing.TB, cfg Config) *Client {
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMembersPaging(t *testing.T) {
	org := oktaemu.Generate(1, 2345, 2)
	emu, srv := start(t, org, oktaemu.Options{})
	c := newClient(t, Config{Host: srv.URL, Token: token})
	g, err := c.FindGroup(context.Background(), "Everyone")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.MemberCount(context.Background(), g.ID); err != nil || n != 2345 {
		t.Fatalf("count %d %v", n, err)
	}
	seen, pages := map[string]bool{}, 0
	err = c.Members(context.Background(), g.ID, func(p []User) error {
		pages++
		for _, u := range p {
			if seen[u.ID] {
				t.Fatalf("user %s twice", u.ID)
			}
			seen[u.ID] = true
		}
		return nil
	})
	if err != nil || len(seen) != 2345 || pages != 3 || emu.Requests()["members"] != 3 {
		t.Fatalf("%d users in %d pages (%v): %v", len(seen), pages, emu.Requests(), err)
	}
}

func TestFindGroupAndErrors(t *testing.T) {
	org := oktaemu.Generate(2, 20, 2)
	org.AddGroup(oktaemu.Group{ID: "00gapp0000000000000a", Type: "APP_GROUP", Name: "Group 1"})
	org.AddGroup(oktaemu.Group{ID: "00gquote000000000000", Name: `Say "hi" \ bye`})
	emu, srv := start(t, org, oktaemu.Options{})
	c := newClient(t, Config{Host: srv.URL, Token: token})
	ctx := context.Background()
	_, err := c.FindGroup(ctx, "Group 1")
	if usersync.ErrorCode(err) != usersync.ECONFLICT || !strings.Contains(err.Error(), "00gapp0000000000000a (APP_GROUP)") {
		t.Fatalf("ambiguous name: %v", err)
	}
	if g, err := c.FindGroup(ctx, "00gapp0000000000000a"); err != nil || g.Type != "APP_GROUP" {
		t.Fatalf("by id: %+v %v", g, err)
	}
	if g, err := c.FindGroup(ctx, `Say "hi" \ bye`); err != nil || g.ID != "00gquote000000000000" {
		t.Fatalf("quoted name: %+v %v", g, err)
	}
	if _, err := c.FindGroup(ctx, "Nope"); usersync.ErrorCode(err) != usersync.ENOTFOUND || !strings.Contains(err.Error(), `"Nope" not found`) {
		t.Fatalf("missing: %v", err)
	}
	emu.RevokeToken()
	_, err = c.FindGroup(ctx, "Everyone")
	if usersync.ErrorCode(err) != usersync.EUNAUTHORIZED || !strings.Contains(err.Error(), "E0000011") || !strings.Contains(err.Error(), "expire after 30 days") || strings.Contains(err.Error(), token) {
		t.Fatalf("revoked token: %v", err)
	}
	for _, bad := range []Config{{Token: "x"}, {Host: "ftp://x", Token: "x"}, {Host: "https://x.okta.com/path", Token: "x"}, {Host: "x.okta.com"}} {
		if _, err := New(bad); usersync.ErrorCode(err) != usersync.EINVALID {
			t.Errorf("New(%+v) = %v", bad, err)
		}
	}
}

// TestPacing reads 30 pages from an org allowing 8 requests per 1 s window:
// the client waits for each window's reset and never gets a 429.
func TestPacing(t *testing.T) {
	org := oktaemu.Generate(3, 3000, 1)
	emu, srv := start(t, org, oktaemu.Options{RateLimit: 8, Window: time.Second, MaxPage: 100})
	c := newClient(t, Config{Host: srv.URL, Token: token})
	g, _ := c.FindGroup(context.Background(), "Everyone")
	start := time.Now()
	n := 0
	if err := c.Members(context.Background(), g.ID, func(p []User) error { n += len(p); return nil }); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if n != 3000 || emu.Requests()["429"] != 0 {
		t.Fatalf("%d users, requests %v", n, emu.Requests())
	}
	// 30 pages at 8 a window need at least 3 window changes.
	if elapsed < 2*time.Second {
		t.Fatalf("30 pages at 8 per second took only %v: the limit was not enforced or not obeyed", elapsed)
	}
}

// TestRetries: another client used up the window (429 with a reset), and
// 500s are injected; the read still completes.
func TestRetries(t *testing.T) {
	org := oktaemu.Generate(4, 1500, 1)
	emu, srv := start(t, org, oktaemu.Options{RateLimit: 1000, Window: time.Second, FailRate: 0.3, Seed: 9})
	var mu sync.Mutex
	hog := 0
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hog++
		first := hog == 2
		mu.Unlock()
		if first { // as if the window was used up by someone else
			w.Header().Set("X-Rate-Limit-Remaining", "0")
			w.Header().Set("X-Rate-Limit-Reset", fmt.Sprint(time.Now().Add(time.Second).Unix()))
			w.WriteHeader(429)
			w.Write([]byte(`{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`))
			return
		}
		r.Host = strings.TrimPrefix(srv.URL, "http://")
		emu.ServeHTTP(w, r)
	}))
	defer wrapped.Close()
	waits := []time.Duration{}
	c := newClient(t, Config{Host: wrapped.URL, Token: token, MaxRetries: 30, Sleep: func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		time.Sleep(min(d, 50*time.Millisecond))
		return nil
	}})
	g, err := c.FindGroup(context.Background(), "Everyone")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := c.Members(context.Background(), g.ID, func(p []User) error { n += len(p); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1500 || emu.Requests()["500"] == 0 || len(waits) == 0 {
		t.Fatalf("%d users, %v, waits %v", n, emu.Requests(), waits)
	}
}

func TestStatusesAndSync(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		org := oktaemu.NewOrg()
		add := func(id, login, status string) {
			org.AddUser(oktaemu.User{ID: id, Status: status, Profile: map[string]any{"login": login, "email": login, "firstName": "F", "lastName": id}})
		}
		add("00u1", "active@x.example", oktaemu.StatusActive)
		add("00u2", "suspended@x.example", oktaemu.StatusSuspended)
		add("00u3", "deprov@x.example", oktaemu.StatusDeprovisioned)
		add("00u4", "locked@x.example", oktaemu.StatusLockedOut)
		org.AddGroup(oktaemu.Group{ID: "00gteam", Name: "Team", Members: []string{"00u1", "00u2", "00u3", "00u4"}})
		_, srv := start(t, org, oktaemu.Options{})
		src := newClient(t, Config{Host: srv.URL, Token: token}).Source(Mapping{})
		d := open(t)
		r, err := pull.Sync(ctx, d, src, "Team", pull.Options{AutoCreate: pull.CreateAll})
		if err != nil {
			t.Fatal(err)
		}
		if r.Written.UsersCreated != 3 || r.Counts[pull.SkipUser] != 1 {
			t.Fatalf("first sync: %+v", r)
		}
		enabled := func(name string) bool {
			u, err := d.FindUserByUsername(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			return u.Enabled
		}
		if !enabled("active@x.example") || enabled("suspended@x.example") || !enabled("locked@x.example") {
			t.Fatal("status mapping")
		}
		if _, err := d.FindUserByUsername(ctx, "deprov@x.example"); usersync.ErrorCode(err) != usersync.ENOTFOUND {
			t.Fatal("a deprovisioned user was created")
		}
		// An active user deprovisioned later is disabled, not left enabled.
		org.UpdateUser("00u1", func(u *oktaemu.User) { u.Status = oktaemu.StatusDeprovisioned })
		if r, err = pull.Sync(ctx, d, src, "Team", pull.Options{AutoCreate: pull.CreateAll}); err != nil || r.Written.UsersUpdated != 1 || enabled("active@x.example") {
			t.Fatalf("deprovisioned later: %+v %v", r, err)
		}
		if u, _ := d.FindUserByUsername(ctx, "active@x.example"); u.Attributes["okta_status"] != "DEPROVISIONED" || !strings.HasPrefix(u.Source, "okta:127.0.0.1:") {
			t.Fatalf("user %+v", u)
		}
	})
}

// TestSyncThroughFaultsAndInterruption: a sync cancelled in the middle, then
// run again through rate limits and 500s, ends equal to the org.
func TestSyncThroughFaultsAndInterruption(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		ctx := context.Background()
		org := oktaemu.Generate(5, 4000, 1)
		emu, srv := start(t, org, oktaemu.Options{RateLimit: 6, Window: time.Second, MaxPage: 500, FailRate: 0.25, Seed: 1})
		c := newClient(t, Config{Host: srv.URL, Token: token, MaxRetries: 30, Sleep: func(ctx context.Context, d time.Duration) error {
			time.Sleep(min(d, 1100*time.Millisecond))
			return nil
		}})
		src := c.Source(Mapping{})
		d := open(t)
		cctx, cancel := context.WithCancel(ctx)
		_, err := pull.Sync(cctx, d, src, "Everyone", pull.Options{Progress: func(p pull.Progress) {
			if p.Pages >= 3 {
				cancel()
			}
		}, AutoCreate: pull.CreateAll})
		if err == nil {
			t.Fatal("the cancelled sync did not stop")
		}
		_, partial, _ := d.FindUsers(ctx, usersync.UserFilter{})
		r, err := pull.Sync(ctx, d, src, "Everyone", pull.Options{AutoCreate: pull.CreateAll})
		if err != nil {
			t.Fatal(err)
		}
		if emu.Requests()["500"] == 0 {
			t.Fatalf("no faults happened: %v", emu.Requests())
		}
		// The directory now holds exactly the org's users that may exist.
		var want []string
		every := org.GroupsNamed("Everyone")[0]
		for _, id := range every.Members {
			u, _ := org.User(id)
			if u.Status != oktaemu.StatusDeprovisioned {
				want = append(want, strings.ToLower(u.Profile["login"].(string)))
			}
		}
		sort.Strings(want)
		users, n, err := d.FindUsers(ctx, usersync.UserFilter{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range users {
			got = append(got, strings.ToLower(u.Username))
		}
		sort.Strings(got)
		if n != len(want) || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("after the interrupted run (%d users) and a full one (%+v): %d users, want %d", partial, r.Written, n, len(want))
		}
		t.Logf("interrupted with %d users written; the next run created %d; requests %v", partial, r.Written.UsersCreated, emu.Requests())
	})
}
