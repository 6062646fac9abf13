// Package jobs runs schedules as River jobs inside usersync serve: one
// periodic job per schedule (enqueued by the River leader, so once however
// many replicas run), unique per schedule so that a schedule never runs
// twice at once, retried with backoff, cut at a timeout, and recorded as
// runs in the directory.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/schedule"
)

// Runner runs a schedule's command line and returns what it printed as
// JSON (the run's summary).
type Runner func(ctx context.Context, command []string) (output string, err error)

// Held is a run that stopped at the mass-removal guard: its other changes
// applied, its removals wait for an administrator (usersync runs
// allow-removals or reject). It is not retried: it would stop again.
type Held struct{ Detail string }

func (h *Held) Error() string { return h.Detail }

// Unresolved is a run that synced everything it could but left users only
// an administrator can resolve: it is recorded as failed, with what is
// left, and not retried (it would leave the same).
type Unresolved struct{ Detail string }

func (u *Unresolved) Error() string { return u.Detail }

// Options configure the service.
type Options struct {
	Dir     usersync.Directory
	SQL     *sql.DB // the directory's pool (SQLite), or nil on PostgreSQL
	DSN     string  // the PostgreSQL URL, for River's own pool
	Run     Runner
	Holder  string // who runs: serve:<host>:<pid>, recorded with each run
	Log     *slog.Logger
	Timeout time.Duration // one run's limit (default 1 h)
	// RescueAfter is when a job whose replica died (still marked
	// running) is run again elsewhere: it bounds failover, and must
	// exceed Timeout (default Timeout + 1 min).
	RescueAfter time.Duration
	Poll        time.Duration // how often schedules are reread and jobs fetched (default 1 s)
	// OnRun is told of each run's end (for metrics).
	OnRun func(schedule, outcome string, took time.Duration)
}

// Args are a schedule job's arguments. Only the schedule makes a job
// unique: a manual run waits for a scheduled one and the other way round.
type Args struct {
	Schedule  string `json:"schedule" river:"unique"`
	Trigger   string `json:"trigger"`
	StartedBy string `json:"startedBy"`
	// AllowRemovalsOf names a quarantined run whose held removals this
	// run applies (the command runs with --allow-removals).
	AllowRemovalsOf int64 `json:"allowRemovalsOf,omitempty"`
}

// Kind names the job for River.
func (Args) Kind() string { return "usersync.schedule" }

// MaxAttempts is how often a failing run is tried (River backs off between).
const MaxAttempts = 3

// InsertOpts keep one job of a schedule at a time: not two waiting or
// running, while a finished one does not stop the next (River's default
// unique states count completed jobs too).
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: MaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// Service is the running job queue.
type Service struct {
	o      Options
	client clientAPI
	pool   *pgxpool.Pool
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	loaded string // the schedules' names and versions the periodic jobs were built from
}

// clientAPI is what the service needs of a River client, whatever its driver.
type clientAPI interface {
	Start(context.Context) error
	Stop(context.Context) error
	Insert(context.Context, river.JobArgs, *river.InsertOpts) (*rivertypeInsertResult, error)
	PeriodicJobs() *river.PeriodicJobBundle
}

// Start starts the queue: workers, and a periodic job for each schedule
// that is not paused, reread every Poll.
func Start(ctx context.Context, o Options) (*Service, error) {
	if o.Timeout == 0 {
		o.Timeout = time.Hour
	}
	if o.RescueAfter == 0 {
		o.RescueAfter = o.Timeout + time.Minute
	}
	if o.RescueAfter <= o.Timeout {
		return nil, fmt.Errorf("the rescue delay (%s) must exceed the job timeout (%s): a running job would be run twice", o.RescueAfter, o.Timeout)
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	s := &Service{o: o}
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{s: s})
	cfg := &river.Config{
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:              workers,
		JobTimeout:           o.Timeout,
		RescueStuckJobsAfter: o.RescueAfter,
		FetchPollInterval:    o.Poll / 4,
		Logger:               o.Log.With("part", "jobs"),
		ID:                   strings.NewReplacer(":", "_", ".", "_").Replace(o.Holder),
	}
	var err error
	if o.SQL != nil {
		var c *river.Client[*sql.Tx]
		if c, err = river.NewClient(riversqlite.New(o.SQL), cfg); err == nil {
			s.client = sqlClient{c}
		}
	} else {
		if s.pool, err = pgxpool.New(ctx, o.DSN); err != nil {
			return nil, fmt.Errorf("job queue: connect to PostgreSQL: %w", err)
		}
		var c *river.Client[pgxTx]
		if c, err = river.NewClient(riverpgxv5.New(s.pool), cfg); err == nil {
			s.client = pgClient{c}
		}
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if err := s.reload(ctx); err != nil {
		s.close()
		return nil, err
	}
	if err := s.client.Start(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("job queue: %w", err)
	}
	loop, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(o.Poll)
		defer t.Stop()
		for {
			select {
			case <-loop.Done():
				return
			case <-t.C:
				if err := s.reload(loop); err != nil && loop.Err() == nil {
					o.Log.Warn("schedules could not be reread; the jobs run as they were", "err", err)
				}
			}
		}
	}()
	return s, nil
}

// Stop stops fetching jobs and waits for running ones (until ctx ends).
func (s *Service) Stop(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	err := s.client.Stop(ctx)
	s.close()
	return err
}

func (s *Service) close() {
	if s.pool != nil {
		s.pool.Close()
	}
}

// RunNow asks for a run of a schedule as soon as a worker is free; a run
// already waiting or running is not doubled (River's unique jobs).
func (s *Service) RunNow(ctx context.Context, name, startedBy string) (duplicate bool, err error) {
	if _, err := s.o.Dir.FindSchedule(ctx, name); err != nil {
		return false, err
	}
	dup, err := s.insert(ctx, Args{Schedule: name, Trigger: "manual", StartedBy: startedBy})
	if err != nil {
		return false, fmt.Errorf("queue a run of %s: %w", name, err)
	}
	return dup, nil
}

// insert queues a job of a schedule and says whether one was in the way.
// A job whose run has just been recorded as ended is still "running" to
// River for a moment: while no run of the schedule is recorded as going,
// the insert is tried again for up to 5 s rather than answered as a
// duplicate that nothing will honour.
func (s *Service) insert(ctx context.Context, args Args) (duplicate bool, err error) {
	for try := 0; ; try++ {
		res, err := s.client.Insert(ctx, args, nil)
		if err != nil || !res.UniqueSkippedAsDuplicate {
			return false, err
		}
		if try == 25 {
			return true, nil
		}
		if runs, err := s.o.Dir.ListRuns(ctx, args.Schedule, 1); err != nil {
			return false, err
		} else if len(runs) > 0 && runs[0].Outcome == usersync.RunRunning {
			return true, nil // a run is really going: the caller waits for it
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// reload rebuilds the periodic jobs when the schedules changed.
func (s *Service) reload(ctx context.Context) error {
	list, err := s.o.Dir.ListSchedules(ctx)
	if err != nil {
		return err
	}
	var sig strings.Builder
	for _, sc := range list {
		fmt.Fprintf(&sig, "%s@%d;", sc.Name, sc.Version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sig.String() == s.loaded {
		return nil
	}
	bundle := s.client.PeriodicJobs()
	bundle.Clear()
	for _, sc := range list {
		if sc.Paused {
			continue
		}
		when, err := schedule.Parse(sc.Cron, sc.TimeZone)
		if err != nil { // checked when stored; a later usersync may read it otherwise
			s.o.Log.Error("schedule skipped: its cron cannot be read", "schedule", sc.Name, "err", err)
			continue
		}
		name := sc.Name
		bundle.Add(river.NewPeriodicJob(when, func() (river.JobArgs, *river.InsertOpts) {
			return Args{Schedule: name, Trigger: "schedule", StartedBy: "schedule"}, nil
		}, &river.PeriodicJobOpts{ID: "schedule." + name}))
	}
	s.loaded = sig.String()
	return nil
}

type worker struct {
	river.WorkerDefaults[Args]
	s *Service
}

// Work runs a schedule's command once and records the run.
func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	o := w.s.o
	sc, err := o.Dir.FindSchedule(ctx, job.Args.Schedule)
	if usersync.ErrorCode(err) == usersync.ENOTFOUND {
		return river.JobCancel(fmt.Errorf("schedule %s was deleted", job.Args.Schedule))
	} else if err != nil {
		return err
	}
	startedBy := job.Args.StartedBy
	if startedBy == "schedule" {
		startedBy = o.Holder
	}
	if job.Attempt > 1 {
		w.closeAbandoned(ctx, sc.Name)
	}
	began := time.Now()
	r := &usersync.Run{Schedule: sc.Name, Trigger: job.Args.Trigger, StartedBy: startedBy, Attempt: job.Attempt}
	var run *usersync.Run
	var runErr error
	if job.Args.AllowRemovalsOf != 0 {
		run, runErr, err = AllowRemovals(ctx, o.Dir, job.Args.AllowRemovalsOf, r, o.Run)
	} else {
		run, runErr, err = Record(ctx, o.Dir, r, sc.Command, o.Run)
	}
	if run == nil {
		return err // the run could not even be recorded as started
	} else if err != nil {
		o.Log.Error("a run's end could not be recorded", "schedule", sc.Name, "run", run.ID, "err", err)
	}
	outcome := run.Outcome
	if o.OnRun != nil {
		o.OnRun(sc.Name, outcome, time.Since(began))
	}
	o.Log.Info("schedule ran", "schedule", sc.Name, "run", run.ID, "trigger", run.Trigger, "attempt", job.Attempt, "outcome", outcome)
	var unresolved *Unresolved
	if outcome == usersync.RunQuarantined || errors.As(runErr, &unresolved) {
		return nil // waits for an administrator: trying again would only end the same
	}
	return runErr
}

type rivertypeInsertResult = rivertype.JobInsertResult

type pgxTx = pgx.Tx

// The River client is generic in its driver's transaction type: one
// wrapper per backend gives the service one interface.
type (
	sqlClient struct{ *river.Client[*sql.Tx] }
	pgClient  struct{ *river.Client[pgx.Tx] }
)

// closeAbandoned records as failed the runs of a schedule still marked
// running: a job tries again only after its earlier attempt ended, so such
// a run's replica died (or lost the directory) before it could record the
// end. One job of a schedule runs at a time, so none of them is still going.
func (w *worker) closeAbandoned(ctx context.Context, name string) {
	runs, err := w.s.o.Dir.ListRuns(ctx, name, 20)
	if err != nil {
		return
	}
	for _, r := range runs {
		if r.Outcome == usersync.RunRunning {
			w.s.o.Dir.FinishRun(ctx, r.ID, usersync.RunFailed, r.Output, "abandoned: "+r.StartedBy+" stopped during the run (the job was run again)")
		}
	}
}

// Decide answers a quarantined run: reject records that nothing is
// removed; allow queues a run of its schedule that applies the removals
// (AllowRemovals) and returns the held run as it still is.
func (s *Service) Decide(ctx context.Context, id int64, allow bool, by string) (*usersync.Run, error) {
	if !allow {
		return Reject(ctx, s.o.Dir, id, by)
	}
	held, err := quarantined(ctx, s.o.Dir, id)
	if err != nil {
		return nil, err
	}
	dup, err := s.insert(ctx, Args{Schedule: held.Schedule, Trigger: "allow-removals", StartedBy: by, AllowRemovalsOf: id})
	if err != nil {
		return nil, fmt.Errorf("queue the run that applies the removals of run %d: %w", id, err)
	}
	if dup {
		return nil, usersync.Errorf(usersync.ECONFLICT, "a run of schedule %s is waiting or running: allow the removals of run %d when it has ended (it may be quarantined again, or apply them)", held.Schedule, id)
	}
	return held, nil
}

// quarantined reads a run that waits for a decision, or says why there is
// nothing to decide.
func quarantined(ctx context.Context, dir usersync.Directory, id int64) (*usersync.Run, error) {
	held, err := dir.FindRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if held.Outcome != usersync.RunQuarantined {
		return nil, usersync.Errorf(usersync.ECONFLICT, "run %d is %s, not quarantined: there is nothing to decide", id, held.Outcome)
	}
	return held, nil
}

// Reject records that the removals a quarantined run held are not
// applied: nothing is removed. A later run of the schedule that finds the
// same members gone from the source is quarantined again.
func Reject(ctx context.Context, dir usersync.Directory, id int64, by string) (*usersync.Run, error) {
	held, err := quarantined(ctx, dir, id)
	if err != nil {
		return nil, err
	}
	return dir.FinishRun(ctx, id, usersync.RunRemovalsRejected, held.Output, held.Error+"; rejected by "+by)
}

// AllowRemovals runs the schedule of the quarantined run heldID again
// with --allow-removals, as the run r, and marks the held run as allowed
// once that run succeeded. It returns what Record returns.
func AllowRemovals(ctx context.Context, dir usersync.Directory, heldID int64, r *usersync.Run, run Runner) (*usersync.Run, error, error) {
	held, err := quarantined(ctx, dir, heldID)
	if err != nil {
		return nil, nil, err
	}
	sc, err := dir.FindSchedule(ctx, held.Schedule)
	if err != nil {
		return nil, nil, err
	}
	command := append(append(append([]string{}, sc.Command[:2]...), "--allow-removals"), sc.Command[2:]...)
	r.Schedule = sc.Name
	done, runErr, err := Record(ctx, dir, r, command, run)
	if done == nil || err != nil || runErr != nil {
		return done, runErr, err
	}
	_, err = dir.FinishRun(ctx, heldID, usersync.RunRemovalsAllowed, held.Output, fmt.Sprintf("%s; allowed by %s, applied by run %d", held.Error, r.StartedBy, done.ID))
	return done, nil, err
}

// RunOutcome is how a run that ended with err is recorded: succeeded,
// quarantined (removals held) or failed, and the error to show.
func RunOutcome(err error) (outcome, errText string) {
	var held *Held
	switch {
	case err == nil:
		return usersync.RunSucceeded, ""
	case errors.As(err, &held):
		return usersync.RunQuarantined, held.Detail
	}
	return usersync.RunFailed, err.Error() // the command's own message (it never shows secrets)
}

// WithAdvice adds to a quarantined run's error what the administrator can
// do about it.
func WithAdvice(outcome, errText string, id int64) string {
	if outcome != usersync.RunQuarantined {
		return errText
	}
	return fmt.Sprintf("%s. Decide with `usersync runs allow-removals %d` or `usersync runs reject %d`", errText, id, id)
}

// Record runs a schedule's command as the run r (started now) and records
// how it ended, whoever runs it: serve's worker, or the command line. It
// returns the run as recorded (nil when even its start could not be), the
// command's error, and an error recording it.
func Record(ctx context.Context, dir usersync.Directory, r *usersync.Run, command []string, run Runner) (*usersync.Run, error, error) {
	if err := dir.StartRun(ctx, r); err != nil {
		return nil, nil, err
	}
	output, runErr := run(ctx, command)
	outcome, errText := RunOutcome(runErr)
	errText = WithAdvice(outcome, errText, r.ID)
	if runErr != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		errText = "cut at its time limit (serve --job-timeout): " + errText
	}
	// Recorded even when the run's context has ended.
	done, err := dir.FinishRun(context.WithoutCancel(ctx), r.ID, outcome, output, errText)
	if err != nil {
		r.Outcome, r.Output, r.Error = outcome, output, errText
		return r, runErr, err
	}
	return done, runErr, nil
}
