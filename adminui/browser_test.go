package adminui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/jobs"
)

// headless starts a headless Chromium for the test (scripts/test installs
// Debian's chromium when it is missing).
func headless(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if path, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatal("the console's tests drive Chromium, which is not installed: run ./scripts/test (it installs it) or apt-get install chromium")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// shots is where the test writes screenshots: USERSYNC_SCREENSHOTS (the
// README's images are made so: see docs/screenshots), else a temporary folder.
func shots(t *testing.T) string {
	if dir := os.Getenv("USERSYNC_SCREENSHOTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		return dir
	}
	return t.TempDir()
}

func screenshot(t *testing.T, b context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The seeds' console flows, clicked through in a real browser: a wrong
// password, sign in, find a user, open a group's Members tab and add one,
// search System Variables for SCIM, change one and Commit Changes; each
// change shows, is in the directory, and names the administrator in the
// change log.
func TestConsoleInBrowser(t *testing.T) {
	// Run now records a run at once, as serve's job queue would a moment later.
	summary := `{"groups":[{"name":"Sales","result":{"group":"o365:Sales","counts":{"create-user":3,"add-member":3,"unchanged":40},"warnings":["1 user has no email"]}}]}`
	d, srv := consoleWith(t, dirtest.SQLite(t), func(d usersync.Directory) api.Options {
		return api.Options{
			RunNow: func(ctx context.Context, name, by string) (bool, error) {
				_, _, err := jobs.Record(ctx, d, &usersync.Run{Schedule: name, Trigger: "manual", StartedBy: by}, nil,
					func(context.Context, []string) (string, error) {
						time.Sleep(20 * time.Millisecond)
						return summary, nil
					})
				return false, err
			},
			Decide: func(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
				return jobs.Reject(ctx, d, id, usersync.ActorFrom(ctx))
			},
		}
	})
	ctx := context.Background()
	for i := 0; i < 120; i++ {
		d.CreateUser(ctx, &usersync.User{Username: fmt.Sprintf("user%03d@example.com", i), Email: fmt.Sprintf("user%03d@example.com", i), FirstName: "User", LastName: fmt.Sprint(i), Enabled: true})
	}
	alice := &usersync.User{Username: "alice@example.com", Email: "alice@example.com", FirstName: "Alice", Enabled: true}
	bob := &usersync.User{Username: "bob@example.com", Email: "bob@example.com", FirstName: "Bob", Enabled: true}
	d.CreateUser(ctx, &usersync.User{Username: "gone@example.com", Email: "gone@example.com", Enabled: false})
	d.CreateUser(ctx, alice)
	d.CreateUser(ctx, bob)
	sales := &usersync.Group{Name: "o365:Sales", Description: "synced from Microsoft 365"}
	if err := d.CreateGroup(ctx, sales, alice.ID); err != nil {
		t.Fatal(err)
	}
	b, dir := headless(t), shots(t)
	var text string
	must := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var err error
		if text, err = chromedp.Run(b, chromedp.Text(chromedp.CSS("main"))); err != nil {
			t.Fatalf("%s: read the page: %v", what, err)
		}
	}
	says := func(what, want string) {
		t.Helper()
		if !strings.Contains(text, want) {
			t.Fatalf("%s: the page does not say %q:\n%s", what, want, text)
		}
	}

	must("wrong password", chromedp.Navigate(srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.ID("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "root@example.com"), chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".error")))
	says("wrong password", "Sign-in refused: wrong username or password")
	must("sign in", chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.ID("find-users")))
	says("users page", "125 users")
	says("users page", "alice@example.com")

	must("search a user", chromedp.SendKeys(chromedp.CSS("#q"), "bob"), chromedp.Submit(chromedp.ID("#q")),
		chromedp.WaitVisible(chromedp.Search(`//p[text()="1 users"]`)))
	says("search", "1 users")
	must("disabled users", chromedp.Navigate(srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.ID("find-users")),
		chromedp.SetValue(chromedp.ID("enabled"), "false"), chromedp.Submit(chromedp.ID("enabled")),
		chromedp.WaitVisible(chromedp.Search(`//p[text()="1 users"]`)))
	says("disabled users", "gone@example.com")

	// Admin > Groups > the synced group > Members tab (seed 000).
	must("find the synced group", chromedp.Click(chromedp.CSS(`nav a[href="/admin/groups"]`)), chromedp.WaitVisible(chromedp.ID("find-groups")),
		chromedp.SendKeys(chromedp.CSS("#q"), "Sales"), chromedp.Submit(chromedp.ID("#q")), chromedp.WaitVisible(chromedp.Search(`//p[text()="1 groups"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/groups/o365:Sales"]`)), chromedp.Click(chromedp.CSS(`a[href="/admin/groups/o365:Sales"]`)),
		chromedp.WaitVisible(chromedp.ID("#members")))
	says("members tab", "alice@example.com")
	says("members tab", "No provisioner pushes this group")
	must("add a member", chromedp.SendKeys(chromedp.CSS("#add"), "bob@example.com"), chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	screenshot(t, b, dir, "group-members")
	says("after adding", "Added 1 member of 1 name.")
	says("after adding", "bob@example.com")
	if refs, _ := d.MemberRefs(ctx, sales.ID); len(refs) != 2 {
		t.Fatalf("the group has %d members in the directory", len(refs))
	}
	must("add nobody", chromedp.SendKeys(chromedp.CSS("#add"), "nobody@example.com"), chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#add-error")))
	says("an unknown user", `user "nobody@example.com" not found; nothing was changed`)

	// Admin > System > System Variables, search SCIM, change, Commit Changes (seed 002).
	must("system variables", chromedp.Click(chromedp.CSS(`nav a[href="/admin/settings"]`)), chromedp.WaitVisible(chromedp.ID("find-settings")),
		chromedp.SendKeys(chromedp.CSS("#q"), "SCIM"), chromedp.Submit(chromedp.ID("#q")),
		chromedp.WaitVisible(chromedp.Search(`//input[@id="q" and @value="SCIM"]`)))
	says("SCIM search", "SCIM_SOFT_DELETE_PREFIX")
	if strings.Contains(text, "O365_USERSYNC_TENANT") {
		t.Fatal("searching SCIM shows the O365 settings too")
	}
	must("commit", chromedp.SetValue(chromedp.CSS(`select[name="v:SCIM_REQUIRE_EMAIL"]`), "Y"),
		chromedp.Click(chromedp.Search(`//button[text()="Commit Changes"]`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	screenshot(t, b, dir, "system-variables")
	says("after commit", "Committed: SCIM_REQUIRE_EMAIL.")
	if st, _ := d.Setting(ctx, "SCIM_REQUIRE_EMAIL"); st.Value != "Y" {
		t.Fatalf("SCIM_REQUIRE_EMAIL is %q after Commit Changes", st.Value)
	}
	cs, _ := d.ChangesAfter(ctx, 0, 10000)
	var byAdmin int
	for _, c := range cs {
		if c.Actor == "admin:root@example.com" {
			byAdmin++
		}
	}
	if byAdmin == 0 {
		t.Fatal("the change log does not name the administrator who added the member")
	}
	// Syncs and runs: run a schedule now, see the run and its chart; reject
	// the removals of a quarantined run.
	if err := d.CreateSchedule(ctx, &usersync.Schedule{Name: "sales", Cron: "*/40 * * * *", Command: []string{"o365", "provision", "Sales"}}); err != nil {
		t.Fatal(err)
	}
	held := &usersync.Run{Schedule: "sales", Trigger: "schedule", StartedBy: "serve:test"}
	d.StartRun(ctx, held)
	d.FinishRun(ctx, held.ID, usersync.RunQuarantined, `{"groups":[{"name":"Sales","error":"held","heldRemovals":{"group":"o365:Sales","remove":30,"total":75,"sample":["ann@example.com"]}}]}`, "removals held")
	must("run now", chromedp.Click(chromedp.CSS(`nav a[href="/admin/schedules"]`)), chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Run sales now"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Run sales now"]`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	says("after run now", "A run of sales is queued.")
	says("after run now", "succeeded")
	must("the schedule's chart", chromedp.Click(chromedp.CSS(`a[href="/admin/schedules/sales"]`)), chromedp.WaitVisible(chromedp.CSS("svg.chart rect")))
	screenshot(t, b, dir, "schedule-chart")
	says("schedule page", "Changes per run")
	bars, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect").length`))
	if err != nil || bars != 4 { // two charts, two ended runs each
		t.Fatalf("the charts have %d bars (%v), want 4", bars, err)
	}
	must("a quarantined run", chromedp.Navigate(fmt.Sprintf("%s/admin/runs/%d", srv.URL, held.ID)), chromedp.WaitVisible(chromedp.Search(`//button[text()="Reject removals"]`)))
	says("quarantined run", "Would remove 30 of 75 members")
	must("reject", chromedp.Click(chromedp.Search(`//button[text()="Reject removals"]`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	says("after reject", "Rejected: nothing was removed.")
	if r, _ := d.FindRun(ctx, held.ID); r.Outcome != usersync.RunRemovalsRejected || !strings.Contains(r.Error, "admin:root@example.com") {
		t.Fatalf("the rejected run: %+v", r)
	}

	// API tokens: shown once, then only their last characters.
	must("create a token", chromedp.Click(chromedp.CSS(`nav a[href="/admin/tokens"]`)), chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), "root@example.com"), chromedp.SendKeys(chromedp.ID("name"), "script"),
		chromedp.Click(chromedp.Search(`//button[text()="Create token"]`)), chromedp.WaitVisible(chromedp.ID("clear")))
	clear, err := chromedp.Run(b, chromedp.Value(chromedp.ID("clear")))
	if err != nil || !strings.HasPrefix(clear, usersync.TokenPrefix) {
		t.Fatalf("the new token: %q %v", clear, err)
	}
	if u, err := d.Authenticate(ctx, clear); err != nil || u.Username != "root@example.com" {
		t.Fatalf("the token shown does not sign in: %v", err)
	}
	must("tokens again", chromedp.Navigate(srv.URL+"/admin/tokens"), chromedp.WaitVisible(chromedp.ID("user")))
	if strings.Contains(text, clear) {
		t.Fatal("the token list shows a clear token")
	}

	// The change log, filtered by the administrator, follows new changes
	// without a reload.
	must("change log", chromedp.Click(chromedp.CSS(`nav a[href="/admin/changes"]`)), chromedp.WaitVisible(chromedp.ID("find-changes")),
		chromedp.SendKeys(chromedp.ID("actor"), "admin:"), chromedp.Submit(chromedp.ID("actor")),
		chromedp.WaitVisible(chromedp.Search(`//input[@id="actor" and @value="admin:"]`)))
	says("change log", "member.added")
	if strings.Contains(text, "user.created") {
		t.Fatal("the actor filter shows changes of other actors")
	}
	late := &usersync.User{Username: "late@example.com", Enabled: true}
	d.CreateUser(usersync.WithActor(ctx, "admin:root@example.com"), late)
	must("live tail", chromedp.WaitVisible(chromedp.Search(`//td[contains(., "late@example.com")]`)))
	must("provisioners", chromedp.Click(chromedp.CSS(`nav a[href="/admin/provisioners"]`)), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Provisioners"]`)))
	says("provisioners", "No provisioner yet")

	// At a phone's width every page fits without scrolling sideways.
	must("phone width", chromedp.EmulateViewport(390, 844))
	for _, page := range []string{"/admin/users", "/admin/groups/o365:Sales", "/admin/settings", "/admin/schedules", "/admin/changes"} {
		must(page, chromedp.Navigate(srv.URL+page), chromedp.WaitVisible(chromedp.CSS("main h1")))
		wide, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || wide {
			screenshot(t, b, dir, "phone-too-wide")
			t.Fatalf("%s is wider than a phone's screen (%v)", page, err)
		}
	}
	screenshot(t, b, dir, "phone-changes")
	must("desktop width", chromedp.EmulateViewport(1280, 900))

	must("sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.ID("#username")))
}
