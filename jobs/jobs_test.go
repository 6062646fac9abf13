package jobs

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Runs are counted by schedule and outcome, timed, and a success is
// stamped; a failure is not.
func TestMetrics(t *testing.T) {
	set := metrics.NewSet()
	rec := Metrics(set)
	rec("sales", "succeeded", 1500*time.Millisecond)
	rec("sales", "failed", time.Second)
	rec("hr", "failed", time.Second)
	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		`usersync_schedule_runs_total{schedule="sales",outcome="succeeded"} 1`,
		`usersync_schedule_runs_total{schedule="sales",outcome="failed"} 1`,
		`usersync_schedule_run_duration_seconds_count{schedule="sales"} 2`,
		`usersync_schedule_last_success_timestamp_seconds{schedule="sales"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, `last_success_timestamp_seconds{schedule="hr"}`) {
		t.Error("a schedule that never succeeded has a last success")
	}
}

// A rescue delay that does not exceed the timeout would run a job twice.
func TestStartRefusesShortRescue(t *testing.T) {
	_, err := Start(t.Context(), Options{Timeout: time.Minute, RescueAfter: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "must exceed") {
		t.Fatalf("Start: %v", err)
	}
}
