package adminui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/adminui"
	"github.com/usersync/usersync/internal/benchtest"
	"github.com/usersync/usersync/server"
)

// benchPage is a console page the benchmarks load.
type benchPage struct{ name, path, want string }

// pagesConsole serves the console over a 100,000-user SQLite directory
// with a 10,000-member group and a schedule with 1,000 runs, and returns
// a signed-in client and the pages to load.
func pagesConsole(b *testing.B) (*httptest.Server, *http.Client, []benchPage) {
	ctx := context.Background()
	d := benchtest.Dir(b)
	root := &usersync.User{Username: "root@example.com", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, root); err != nil {
		b.Fatal(err)
	}
	hash, _ := adminui.HashPassword(password)
	d.SetPasswordHash(ctx, root.ID, hash)
	benchtest.Users(b, d, 100_000-1)
	users, _, err := d.FindUsers(ctx, usersync.UserFilter{Search: "user00", Limit: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	if err := d.CreateGroup(ctx, &usersync.Group{Name: "apps:big"}, ids...); err != nil {
		b.Fatal(err)
	}
	if err := d.CreateSchedule(ctx, &usersync.Schedule{Name: "sales", Cron: "*/40 * * * *", Command: []string{"o365", "provision", "Sales"}}); err != nil {
		b.Fatal(err)
	}
	out := `{"groups":[{"name":"Sales","result":{"group":"Sales","counts":{"add-member":2,"unchanged":300}}}]}`
	for i := 0; i < 1000; i++ {
		r := &usersync.Run{Schedule: "sales", Trigger: "schedule", StartedBy: "bench"}
		d.StartRun(ctx, r)
		d.FinishRun(ctx, r.ID, usersync.RunSucceeded, out, "")
	}
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{AccessLog: server.AccessNone}))
	b.Cleanup(srv.Close)
	c := browser(b)
	if code, _ := signIn(b, c, srv.URL, "root@example.com", password); code != http.StatusSeeOther {
		b.Fatalf("sign in: %d", code)
	}
	// A page 1,000 users deep: follow "Next page" twenty times.
	deep := "/admin/users"
	next := regexp.MustCompile(`href="(/admin/users\?[^"]+)" rel="next"`)
	for i := 0; i < 20; i++ {
		_, body, _ := load(b, c, srv.URL+deep)
		m := next.FindStringSubmatch(body)
		if m == nil {
			b.Fatal("no next page")
		}
		deep = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return srv, c, []benchPage{
		{"users", "/admin/users", "100000 users"},
		{"users-1000-deep", deep, "user001"},
		{"members-10000", "/admin/groups/apps:big", "10000 users"},
		{"runs-1000", "/admin/schedules/sales", "Changes per run"},
	}
}

// BenchmarkPages measures the console's pages on a 100,000-user SQLite
// directory: the users list (first page and one 1,000 users deep), a
// group's Members tab (10,000 members) and a schedule's run history (1,000
// runs, charts included). The time is the whole answer over loopback, as
// signed in; it reports p50 and p99 per page over b.N×20 loads.
//
//	go test ./adminui -run '^$' -bench Pages -benchtime 5x
func BenchmarkPages(b *testing.B) {
	srv, c, pages := pagesConsole(b)
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range 20 {
			for _, p := range pages {
				t0 := time.Now()
				code, body, _ := load(b, c, srv.URL+p.path)
				times[p.name] = append(times[p.name], time.Since(t0))
				if code != 200 || !strings.Contains(body, p.want) {
					b.Fatalf("%s: %d, no %q", p.name, code, p.want)
				}
			}
		}
	}
	for _, p := range pages {
		ts := times[p.name]
		slices.Sort(ts)
		q := func(f float64) float64 { return float64(ts[int(f*float64(len(ts)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), p.name+"-p50-ms")
		b.ReportMetric(q(0.99), p.name+"-p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

func load(b *testing.B, c *http.Client, u string) (int, string, http.Header) {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// BenchmarkPagesInBrowser loads the same pages in headless Chromium and
// reads the browser's own timings: server time (request sent to first
// byte, Navigation Timing) and first contentful paint (Paint Timing),
// p50 and p99 over b.N×10 loads of each page.
//
//	go test ./adminui -run '^$' -bench PagesInBrowser -benchtime 2x
func BenchmarkPagesInBrowser(b *testing.B) {
	srv, _, pages := pagesConsole(b)
	br := headless(b)
	err := chromedp.Do(br, chromedp.Navigate(srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.ID("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "root@example.com"), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.ID("find-users")))
	if err != nil {
		b.Fatalf("sign in: %v", err)
	}
	// Waits (a few frames at most) for the paint entry, which the browser
	// records just after it paints.
	const timing = `new Promise(done => { const n = performance.getEntriesByType('navigation')[0]; let frames = 0;
		const look = () => { const p = performance.getEntriesByName('first-contentful-paint')[0];
			if (p || frames++ > 120) { done([n.responseStart - n.requestStart, p ? p.startTime : -1]); } else { requestAnimationFrame(look); } };
		look(); })`
	yes := true
	await := func(p *runtime.EvaluateParams) { p.AwaitPromise = &yes }
	server, paint := map[string][]float64{}, map[string][]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range 10 {
			for _, p := range pages {
				if err := chromedp.Do(br, chromedp.Navigate(srv.URL+p.path), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				t, err := chromedp.Run(br, chromedp.Evaluate[[]float64](timing, await))
				if err != nil || len(t) != 2 || t[1] < 0 {
					b.Fatalf("%s: timings %v %v", p.name, t, err)
				}
				server[p.name], paint[p.name] = append(server[p.name], t[0]), append(paint[p.name], t[1])
			}
		}
	}
	b.StopTimer()
	for _, p := range pages {
		for what, m := range map[string][]float64{"server": server[p.name], "first-paint": paint[p.name]} {
			slices.Sort(m)
			q := func(f float64) float64 { return m[int(f*float64(len(m)-1))] }
			b.ReportMetric(q(0.5), p.name+"-"+what+"-p50-ms")
			b.ReportMetric(q(0.99), p.name+"-"+what+"-p99-ms")
		}
	}
	b.ReportMetric(0, "ns/op")
}
