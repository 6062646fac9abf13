package telemetry

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
