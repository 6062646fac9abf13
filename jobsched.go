package usersync

import (
	"context"
	"strings"
	"time"
)

// Schedule runs a pull command line (`o365 provision …` or `okta provision
// …`) on a cron schedule in a time zone; usersync serve runs it.
type Schedule struct {
	Name      string    `json:"name"`
	Cron      string    `json:"cron"`     // five fields, or Quartz with seconds
	TimeZone  string    `json:"timeZone"` // IANA name; "" is UTC
	Command   []string  `json:"command"`  // the arguments after "usersync", without secrets
	Paused    bool      `json:"paused"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int64     `json:"version"`
}

// ScheduleUpdate names the fields to change; nil fields stay.
type ScheduleUpdate struct {
	Cron     *string
	TimeZone *string
	Command  *[]string
	Paused   *bool
}

// ValidateScheduleName checks a schedule's name: letters, digits, '-', '_'
// and '.', so that it is safe in job arguments and command lines.
func ValidateScheduleName(name string) error {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return Errorf(EINVALID, "schedule name %q must be 1 to 64 letters, digits, '-', '_' or '.'", name)
	}
	return nil
}

// Run is one run of a schedule's command, whoever started it.
type Run struct {
	ID        int64      `json:"id"`
	Schedule  string     `json:"schedule"`
	Trigger   string     `json:"trigger"`   // schedule, manual (API or serve), cli
	StartedBy string     `json:"startedBy"` // the actor: serve:<host>, cli:<user>, api:<user>
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	Outcome   string     `json:"outcome"`          // running, succeeded, failed, quarantined, removals-allowed, removals-rejected
	Output    string     `json:"output,omitempty"` // the command's JSON summary
	Error     string     `json:"error,omitempty"`
	Attempt   int        `json:"attempt"` // 1 for the first try of a job, more for its retries
}

// Run outcomes.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	// RunQuarantined: the mass-removal guard held removals; the rest of
	// the run applied. An administrator allows or rejects them.
	RunQuarantined = "quarantined"
	// RunRemovalsAllowed and RunRemovalsRejected record the decision on a
	// quarantined run.
	RunRemovalsAllowed  = "removals-allowed"
	RunRemovalsRejected = "removals-rejected"
)

// ScheduleService stores schedules and their runs.
type ScheduleService interface {
	CreateSchedule(ctx context.Context, s *Schedule) error
	FindSchedule(ctx context.Context, name string) (*Schedule, error)
	ListSchedules(ctx context.Context) ([]*Schedule, error)
	// UpdateSchedule fails with ESTALE when expectVersion is not 0 and
	// the stored version differs.
	UpdateSchedule(ctx context.Context, name string, upd ScheduleUpdate, expectVersion int64) (*Schedule, error)
	DeleteSchedule(ctx context.Context, name string) error

	// StartRun records a run that begins now; FinishRun records its end.
	StartRun(ctx context.Context, r *Run) error
	FinishRun(ctx context.Context, id int64, outcome, output, errText string) (*Run, error)
	FindRun(ctx context.Context, id int64) (*Run, error)
	// ListRuns lists the latest runs first, of one schedule when named.
	ListRuns(ctx context.Context, schedule string, limit int) ([]*Run, error)
}
