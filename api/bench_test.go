package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/benchtest"
	"github.com/usersync/usersync/server"
)

// BenchmarkListUsers: GET /api/v1/users?limit=1000 on a 100,000-user
// SQLite directory, walking the whole directory by cursor (100 pages, from
// the first to the last), over loopback; reports p50 and p99 per page.
//
//	go test ./api -run '^$' -bench ListUsers -benchtime 3x
func BenchmarkListUsers(b *testing.B) {
	ctx := context.Background()
	d := benchtest.Dir(b)
	admin := &usersync.User{Username: "api-admin", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); err != nil {
		b.Fatal(err)
	}
	token, _, _ := d.CreateToken(ctx, admin.ID, "bench")
	benchtest.Users(b, d, 100_000-1)
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{AccessLog: server.AccessNone}))
	defer srv.Close()
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cursor, pages := "", 0
		for {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/users?limit=1000&cursor="+url.QueryEscape(cursor), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Items      []json.RawMessage `json:"items"`
				NextCursor string            `json:"next_cursor"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("page %d: %d %v", pages, resp.StatusCode, err)
			}
			if len(page.Items) == 0 {
				break // a full last page has a next_cursor that leads nowhere
			}
			times = append(times, time.Since(t0))
			pages++
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if pages != 100 {
			b.Fatalf("%d pages of 1,000 for 100,000 users", pages)
		}
	}
	slices.Sort(times)
	q := func(p float64) float64 { return float64(times[int(p*float64(len(times)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
