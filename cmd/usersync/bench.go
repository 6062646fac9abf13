package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) benchCommand() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Measure usersync (see BENCHMARKS.md)"}
	var clients, seedUsers, groupMembers int
	var duration time.Duration
	s := &cobra.Command{
		Use:   "scim [--db DSN] [--clients 32] [--duration 10s]",
		Short: "Load `usersync serve` from this process over loopback: filtered GETs, POSTs, one-member group PATCHes",
		Long: `Start "usersync serve" as a child process on a fresh directory (a temporary
SQLite file, or --db, which must be an empty PostgreSQL database), seed it, and
drive it from this process with concurrent clients over loopback:
GET /Users?filter=userName eq "…", POST /Users, PATCH /Groups adding one
member. Then compare a one-member PATCH and a GET with excludedAttributes=members
on a 10-member and a large group, and time one PATCH adding 10,000 members.
Prints requests per second and p50/p99 latency for each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.benchSCIM(cmd.Context(), clients, duration, seedUsers, groupMembers)
		},
	}
	s.Flags().IntVar(&clients, "clients", 32, "concurrent clients")
	s.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long each load runs")
	s.Flags().IntVar(&seedUsers, "users", 20000, "users seeded before the load")
	s.Flags().IntVar(&groupMembers, "group-members", 100000, "members of the large group (users created for it)")
	c.AddCommand(s)
	return c
}

// childCommand runs usersync itself with args (tests replace it, as their
// executable is the test binary).
var childCommand = func(ctx context.Context, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, self, args...), nil
}

type benchClient struct {
	base, token string
	http        *http.Client
}

func (b *benchClient) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// load runs op from n clients for d and reports throughput and latency.
func (a *app) load(ctx context.Context, name string, n int, d time.Duration, op func(ctx context.Context, worker, i int) error) error {
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				start := time.Now()
				if err := op(ctx, w, i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%s: %d requests failed, first: %v", name, f, firstErr.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Fprintf(a.stdout, "%-34s %8.0f req/s   p50 %7.2f ms   p99 %7.2f ms   (%d requests, %d clients, %s)\n", name,
		float64(len(lat))/d.Seconds(), float64(pct(0.50).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000, len(lat), n, d)
	return nil
}

func (a *app) benchSCIM(ctx context.Context, clients int, d time.Duration, seedUsers, groupMembers int) error {
	dsn := a.dsn()
	if dsn == "" {
		dir, err := os.MkdirTemp("", "usersync-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = filepath.Join(dir, "bench.db")
	}
	dir, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	// Seed directly (not what is measured): an administrator with a token,
	// users, a 10-member group and a large one.
	admin := &usersync.User{Username: "bench-admin", Email: "bench@x.example", Type: usersync.UserAdministrator, Enabled: true}
	if err := dir.CreateUser(ctx, admin); err != nil {
		dir.Close()
		return fmt.Errorf("seed: %w (the directory must be empty)", err)
	}
	token, _, err := dir.CreateToken(ctx, admin.ID, "bench")
	if err != nil {
		dir.Close()
		return err
	}
	total := max(seedUsers, groupMembers) + 10000
	fmt.Fprintf(a.stdout, "Seeding %d users, a 10-member group and a %d-member group into %s …\n", total, groupMembers, dir.Where())
	b := &usersync.Batch{Groups: []usersync.GroupUpsert{{Create: true, Group: usersync.Group{Name: "small"}}, {Create: true, Group: usersync.Group{Name: "large"}}, {Create: true, Group: usersync.Group{Name: "target"}}}}
	for i := 0; i < total; i++ {
		name := fmt.Sprintf("seed%07d@example.com", i)
		b.Users = append(b.Users, usersync.UserUpsert{Create: true, User: usersync.User{Username: name, Email: name, Enabled: true, Source: "scim", SourceID: fmt.Sprint("s", i)}})
		if i < 10 {
			b.Members = append(b.Members, usersync.MemberChange{Group: "small", Username: name})
		}
		if i < groupMembers {
			b.Members = append(b.Members, usersync.MemberChange{Group: "large", Username: name})
		}
	}
	if _, err := dir.ApplyBatch(ctx, b); err != nil {
		dir.Close()
		return err
	}
	small, _ := dir.FindGroupByName(ctx, "small")
	large, _ := dir.FindGroupByName(ctx, "large")
	target, _ := dir.FindGroupByName(ctx, "target")
	first, _ := dir.FindUserByUsername(ctx, "seed0000000@example.com")
	dir.Close()

	// The server: a child process.
	child, err := childCommand(ctx, "--db", dsn, "serve", "--listen", "127.0.0.1:0", "--log-format", "json")
	if err != nil {
		return err
	}
	stderr, _ := child.StderrPipe()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { child.Process.Signal(os.Interrupt); child.Wait() }()
	addr := ""
	lines := bufio.NewScanner(stderr)
	for addr == "" && lines.Scan() {
		var rec map[string]any
		if json.Unmarshal(lines.Bytes(), &rec) == nil {
			addr, _ = rec["scim"].(string)
		}
	}
	if addr == "" {
		return errors.New("the server did not start")
	}
	go io.Copy(io.Discard, stderr)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2, MaxConnsPerHost: clients * 2}, Timeout: 30 * time.Second}
	c := &benchClient{base: addr, token: token, http: hc}
	// patched is what a group PATCH may answer: 200 with the group, or
	// 204 for a group of more than 100 members (RFC 7644 §3.5.2).
	const patched = -204
	expect := func(code int, body []byte, err error, want int) error {
		if err != nil {
			return err
		}
		if code != want && !(want == patched && (code == 200 || code == 204)) {
			return fmt.Errorf("status %d: %.200s", code, body)
		}
		return nil
	}
	fmt.Fprintf(a.stdout, "usersync serve (child process) at %s\n\n", addr)
	err = a.load(ctx, `GET /Users?filter=userName eq`, clients, d, func(ctx context.Context, w, i int) error {
		q := `/Users?filter=userName%20eq%20%22seed` + fmt.Sprintf("%07d", (w*7919+i*104729)%total) + `%40example.com%22`
		code, body, err := c.do(ctx, "GET", q, nil)
		if err == nil && !bytes.Contains(body, []byte(`"totalResults":1`)) {
			return fmt.Errorf("lookup found no user: %.200s", body)
		}
		return expect(code, body, err, 200)
	})
	if err != nil {
		return err
	}
	err = a.load(ctx, "POST /Users", clients, d, func(ctx context.Context, w, i int) error {
		name := fmt.Sprintf("new-%02d-%07d@example.com", w, i)
		code, body, err := c.do(ctx, "POST", "/Users", map[string]any{"userName": name, "emails": []map[string]any{{"value": name, "type": "work"}}, "active": true})
		return expect(code, body, err, 201)
	})
	if err != nil {
		return err
	}
	err = a.load(ctx, "PATCH /Groups (add one member)", clients, d, func(ctx context.Context, w, i int) error {
		id := first.ID + int64((w*100003+i)%total)
		code, body, err := c.do(ctx, "PATCH", fmt.Sprintf("/Groups/%d", target.ID), map[string]any{"Operations": []map[string]any{{"op": "add", "path": "members", "value": []map[string]any{{"value": fmt.Sprint(id)}}}}})
		return expect(code, body, err, patched)
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	for _, g := range []*usersync.Group{small, large} {
		label := fmt.Sprintf("%d-member group", map[int64]int{small.ID: 10, large.ID: groupMembers}[g.ID])
		if err := a.load(ctx, "GET excl. members, "+label, 1, d/2, func(ctx context.Context, w, i int) error {
			code, body, err := c.do(ctx, "GET", fmt.Sprintf("/Groups/%d?excludedAttributes=members", g.ID), nil)
			return expect(code, body, err, 200)
		}); err != nil {
			return err
		}
		if err := a.load(ctx, "PATCH one member, "+label, 1, d/2, func(ctx context.Context, w, i int) error {
			id := first.ID + int64(groupMembers+i%10000)
			op := "add"
			if i%2 == 1 {
				op = "remove"
			}
			code, body, err := c.do(ctx, "PATCH", fmt.Sprintf("/Groups/%d", g.ID), map[string]any{"Operations": []map[string]any{{"op": op, "path": "members", "value": []map[string]any{{"value": fmt.Sprint(id)}}}}})
			return expect(code, body, err, patched)
		}); err != nil {
			return err
		}
	}
	var vals []map[string]any
	for i := 0; i < 10000; i++ {
		vals = append(vals, map[string]any{"value": fmt.Sprint(first.ID + int64(groupMembers) + int64(i))})
	}
	start := time.Now()
	code, body, err := c.do(ctx, "PATCH", fmt.Sprintf("/Groups/%d", small.ID), map[string]any{"Operations": []map[string]any{{"op": "add", "path": "members", "value": vals}}})
	if err := expect(code, body, err, patched); err != nil {
		return fmt.Errorf("PATCH adding 10,000 members: %w", err)
	}
	fmt.Fprintf(a.stdout, "\n%-34s %7.0f ms\n", "PATCH adding 10,000 members", float64(time.Since(start).Microseconds())/1000)
	if err := a.benchBulk(ctx, c, d); err != nil {
		return err
	}
	return a.benchPaging(ctx, c)
}

// benchBulk creates users through /Bulk, 1,000 operations per request,
// one request at a time, and prints users created per second.
func (a *app) benchBulk(ctx context.Context, c *benchClient, d time.Duration) error {
	created, requests := 0, 0
	var slowest time.Duration
	start := time.Now()
	for time.Since(start) < d {
		ops := make([]map[string]any, 1000)
		for i := range ops {
			name := fmt.Sprintf("bulk-%05d-%04d@example.com", requests, i)
			ops[i] = map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprint(i),
				"data": map[string]any{"userName": name, "emails": []map[string]any{{"value": name, "type": "work"}}, "active": true}}
		}
		t0 := time.Now()
		code, body, err := c.do(ctx, "POST", "/Bulk", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops})
		if err != nil {
			return err
		}
		if code != 200 || bytes.Count(body, []byte(`"status":"201"`)) != len(ops) {
			return fmt.Errorf("bulk: status %d: %.300s", code, body)
		}
		slowest = max(slowest, time.Since(t0))
		created += len(ops)
		requests++
	}
	el := time.Since(start)
	fmt.Fprintf(a.stdout, "\n%-34s %7.0f users/s (%d requests of 1,000, slowest %.0f ms)\n", "POST /Bulk creating users", float64(created)/el.Seconds(), requests, float64(slowest.Microseconds())/1000)
	return nil
}

// benchPaging walks every user by cursor (RFC 9865) and samples index
// pages at the start and the end, 100 users a page: a cursor page should
// cost the same at any depth.
func (a *app) benchPaging(ctx context.Context, c *benchClient) error {
	var times []time.Duration
	cursor := ""
	total := 0
	for {
		t0 := time.Now()
		code, body, err := c.do(ctx, "GET", "/Users?count=100&excludedAttributes=groups&cursor="+url.QueryEscape(cursor), nil)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("cursor page: status %d: %.200s", code, body)
		}
		times = append(times, time.Since(t0))
		var page struct {
			TotalResults int
			NextCursor   string
		}
		json.Unmarshal(body, &page)
		total = page.TotalResults
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	mean := func(ts []time.Duration) float64 {
		var sum time.Duration
		for _, t := range ts {
			sum += t
		}
		return float64(sum.Microseconds()) / 1000 / float64(len(ts))
	}
	n := min(20, len(times)/2)
	index := func(start int) (float64, error) {
		var ts []time.Duration
		for i := 0; i < n; i++ {
			t0 := time.Now()
			code, body, err := c.do(ctx, "GET", fmt.Sprintf("/Users?count=100&excludedAttributes=groups&startIndex=%d", start), nil)
			if err != nil {
				return 0, err
			}
			if code != 200 {
				return 0, fmt.Errorf("index page: status %d: %.200s", code, body)
			}
			ts = append(ts, time.Since(t0))
		}
		return mean(ts), nil
	}
	first, err := index(1)
	if err != nil {
		return err
	}
	last, err := index(max(total-99, 1))
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nPaging %d users, 100 a page (mean ms per page, first and last %d pages):\n", total, n)
	fmt.Fprintf(a.stdout, "  %-10s start %6.2f ms   end %6.2f ms   (%d pages walked)\n", "cursor", mean(times[:n]), mean(times[len(times)-n:]), len(times))
	fmt.Fprintf(a.stdout, "  %-10s start %6.2f ms   end %6.2f ms\n", "startIndex", first, last)
	return nil
}
