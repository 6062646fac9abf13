package telemetry

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
)

func scrape(m *Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Latencies are histograms with le buckets, which Prometheus adds up
// across replicas; counts are by their labels; a failure is no success.
func TestSeries(t *testing.T) {
	m := New()
	m.Request("/scim/v2/Users", "GET", 200, 3*time.Millisecond)
	m.Request("/scim/v2/Users", "GET", 503, 20*time.Millisecond)
	m.Panic("/scim/v2/Users")
	m.ScheduleRun("sales", "succeeded", 1500*time.Millisecond)
	m.ScheduleRun("hr", "failed", time.Second)
	m.ProvisionerRun("o365", true, time.Second, map[string]int{"create-group": 3}, 1)
	out := scrape(m)
	for _, want := range []string{
		`usersync_http_requests_total{code="200",method="GET",route="/scim/v2/Users"} 1`,
		`usersync_http_request_duration_seconds_bucket{method="GET",route="/scim/v2/Users",le="0.005"} 1`,
		`usersync_http_request_duration_seconds_bucket{method="GET",route="/scim/v2/Users",le="0.025"} 2`,
		`usersync_http_errors_total{route="/scim/v2/Users"} 1`,
		`usersync_http_panics_total{route="/scim/v2/Users"} 1`,
		`usersync_schedule_runs_total{outcome="succeeded",schedule="sales"} 1`,
		`usersync_schedule_run_duration_seconds_bucket{schedule="sales",le="5"} 1`,
		`usersync_schedule_last_success_timestamp_seconds{schedule="sales"}`,
		`usersync_provisioner_actions_total{action="create-group",provisioner="o365"} 3`,
		`usersync_provisioner_failed_groups_total{provisioner="o365"} 1`,
		`process_cpu_seconds_total`, `go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, `usersync_schedule_last_success_timestamp_seconds{schedule="hr"}`) {
		t.Error("a schedule that never succeeded has a last success")
	}
}

// A provisioner's backlog and lag, and the job queue's depth, are read
// from the directory at each scrape.
func TestDirectoryFigures(t *testing.T) {
	ctx := context.Background()
	d := dirtest.SQLite(t)
	p := &usersync.Provisioner{Name: "o365", Kind: usersync.ProvisionerGroups,
		Config: usersync.ProvisionerConfig{TenantID: "contoso.onmicrosoft.com", ClientID: "app-1", Domain: "contoso.com"}}
	if err := d.CreateProvisioner(ctx, p, "s"); err != nil {
		t.Fatal(err)
	}
	last, _ := d.LastChangeSeq(ctx)
	d.SetCursor(ctx, usersync.ProvisionerCursor("o365"), last)
	for _, n := range []string{"a", "b", "c"} {
		d.CreateUser(ctx, &usersync.User{Username: n})
	}
	m := New()
	m.Directory(d, func(context.Context) (int, error) { return 4, nil })
	time.Sleep(20 * time.Millisecond)
	out := scrape(m)
	for _, want := range []string{`usersync_provisioner_backlog_events{provisioner="o365"} 3`, `usersync_job_queue_depth 4`, `usersync_directory_scrape_ok 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, `usersync_provisioner_lag_seconds{provisioner="o365"} 0`+"\n") {
		t.Error("a provisioner with a backlog has no lag")
	}
	m2 := New()
	m2.Directory(d, func(context.Context) (int, error) { return 0, context.DeadlineExceeded })
	if out := scrape(m2); !strings.Contains(out, `usersync_directory_scrape_ok 0`) || strings.Contains(out, "usersync_job_queue_depth") {
		t.Errorf("a failed read is not said: %s", out)
	}
}
