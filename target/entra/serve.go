package entra

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/provision"
	"github.com/usersync/usersync/schedule"
	"github.com/usersync/usersync/telemetry"
)

// ServeOptions shape Serve.
type ServeOptions struct {
	Log *slog.Logger
	// Poll is how often the change counter is read: a change reaches
	// Entra about this long after it is made (default 200 ms).
	Poll time.Duration
	// Reload is how often the provisioners' settings are read again
	// (default 5 s).
	Reload time.Duration
	// NewClient makes a provisioner's Graph client (default NewClient
	// with the stored secret).
	NewClient func(ctx context.Context, p *usersync.Provisioner) (*msgraph.Client, error)
	// ReconcileEvery is how often each provisioner runs a reconcile instead
	// of a run (default 24 h, like Entra's periodic full cycle; negative:
	// never), so drift in the tenant is repaired without anyone asking.
	// The time of the last one is kept in the directory, so replicas and
	// restarts share it.
	ReconcileEvery time.Duration
	// OnRun hears of every run and how long it took (metrics, tests).
	OnRun func(name string, r *Result, err error, took time.Duration)
}

// Serve runs every provisioner in dir until ctx ends: on its schedule
// (quartzCron, for retries and as a safety net) and as soon as the change
// log moves. A lease in the directory lets one replica at a time run a
// provisioner; the others skip it.
func Serve(ctx context.Context, dir usersync.Directory, o ServeOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Reload <= 0 {
		o.Reload = 5 * time.Second
	}
	if o.ReconcileEvery == 0 {
		o.ReconcileEvery = 24 * time.Hour
	}
	if o.NewClient == nil {
		o.NewClient = func(ctx context.Context, p *usersync.Provisioner) (*msgraph.Client, error) {
			return NewClient(ctx, dir, p, "", nil)
		}
	}
	s := &serving{dir: dir, o: o, workers: map[string]*worker{}}
	defer s.stop()
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	var loaded time.Time
	for {
		if time.Since(loaded) >= o.Reload {
			if err := s.reload(ctx); err != nil && ctx.Err() == nil {
				o.Log.Warn("provisioners: reading their settings failed", "err", err)
			}
			loaded = time.Now()
		}
		if seq, err := dir.LastChangeSeq(ctx); err == nil {
			s.wake(seq)
		} else if ctx.Err() == nil {
			o.Log.Warn("provisioners: reading the change log failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

type serving struct {
	dir     usersync.Directory
	o       ServeOptions
	mu      sync.Mutex
	workers map[string]*worker
	wg      sync.WaitGroup
}

// worker runs one provisioner, one run at a time.
type worker struct {
	p      *usersync.Provisioner
	sched  schedule.Schedule
	next   time.Time // next scheduled run
	seen   int64     // the change counter when the last run began
	kick   chan int64
	cancel context.CancelFunc
}

// reload starts workers for new or changed provisioners and stops those
// of deleted ones.
func (s *serving) reload(ctx context.Context) error {
	ps, err := s.dir.FindProvisioners(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	for _, p := range ps {
		live[p.Name] = true
		if w := s.workers[p.Name]; w != nil && w.p.Version == p.Version {
			continue
		} else if w != nil {
			w.cancel()
		}
		sched, err := schedule.ParseQuartz(p.Config.QuartzCron)
		if err != nil {
			s.o.Log.Warn("provisioner not run: its schedule does not parse", "provisioner", p.Name, "err", err)
			delete(s.workers, p.Name)
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{p: p, sched: sched, next: time.Now(), seen: -1, kick: make(chan int64, 1), cancel: cancel}
		s.workers[p.Name] = w
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work(wctx, w)
		}()
	}
	for name, w := range s.workers {
		if !live[name] {
			w.cancel()
			delete(s.workers, name)
		}
	}
	return nil
}

// wake tells every worker the change counter's value.
func (s *serving) wake(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		select {
		case w.kick <- seq:
		default: // a wake is pending already; it reads the counter afresh
		}
	}
}

func (s *serving) stop() {
	s.mu.Lock()
	for _, w := range s.workers {
		w.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// work runs a provisioner whenever the change log moved past what its
// last run saw, or its schedule comes round.
func (s *serving) work(ctx context.Context, w *worker) {
	log := s.o.Log.With("provisioner", w.p.Name)
	var run func(ctx context.Context, reconcile bool) (*Result, error)
	for {
		var seq int64
		select {
		case <-ctx.Done():
			return
		case seq = <-w.kick:
		}
		now := time.Now()
		if seq <= w.seen && now.Before(w.next) {
			continue
		}
		if run == nil {
			client, err := s.o.NewClient(ctx, w.p)
			if err == nil {
				run, err = runnerOf(s.dir, client, w.p)
			}
			if err != nil {
				log.Warn("provisioner not run", "err", usersync.ErrorMessage(err))
				w.next = w.sched.Next(now)
				w.seen = seq
				continue
			}
		}
		var r *Result
		err := provision.Hold(ctx, s.dir, w.p.Name, 0, func(ctx context.Context) error {
			w.seen, w.next = seq, w.sched.Next(now)
			due, err := s.reconcileDue(ctx, w.p.Name, now)
			if err != nil {
				return err
			}
			if r, err = run(ctx, due); err == nil && due {
				log.Info("provisioner reconciled (periodic)", "every", s.o.ReconcileEvery)
				err = s.dir.SetCursor(ctx, ReconcileMark(w.p.Name), now.Unix())
			}
			return err
		})
		if usersync.ErrorCode(err) == usersync.ECONFLICT && r == nil {
			continue // another replica (or a command) runs it; try again at the next wake
		}
		if s.o.OnRun != nil {
			s.o.OnRun(w.p.Name, r, err, time.Since(now))
		}
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("provisioner run failed", "err", usersync.ErrorMessage(err))
		case r != nil && (len(r.Counts) > 0 || len(r.Failures) > 0):
			attrs := []any{"events", r.Events, "groups", r.Groups, "failures", len(r.Failures)}
			for k, n := range r.Counts {
				attrs = append(attrs, string(k), n)
			}
			log.Info("provisioner run", attrs...)
			for _, f := range r.Failures {
				log.Warn("provisioner group failed", "group", f.Group, "failures", f.Failures, "quarantined", f.Quarantined, "err", f.Error)
			}
		}
	}
}

// ReconcileMark names where the time (Unix seconds) of a provisioner's
// last periodic reconcile is kept.
func ReconcileMark(name string) string { return "reconciled:" + name }

// reconcileDue reports whether the periodic reconcile of provisioner name
// is due. The first time serve sees a provisioner, it starts the clock.
func (s *serving) reconcileDue(ctx context.Context, name string, now time.Time) (bool, error) {
	if s.o.ReconcileEvery < 0 {
		return false, nil
	}
	last, err := s.dir.Cursor(ctx, ReconcileMark(name))
	if err != nil || last == 0 {
		if err == nil {
			err = s.dir.SetCursor(ctx, ReconcileMark(name), now.Unix())
		}
		return false, err
	}
	return now.Sub(time.Unix(last, 0)) >= s.o.ReconcileEvery, nil
}

// runnerOf returns one run (or reconcile) of provisioner p, of either
// kind, as a Result.
func runnerOf(dir usersync.Directory, client *msgraph.Client, p *usersync.Provisioner) (func(ctx context.Context, reconcile bool) (*Result, error), error) {
	if p.Kind == usersync.ProvisionerUsers {
		x, err := NewUsers(dir, client, p)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, reconcile bool) (*Result, error) {
			ur, err := x.Run(ctx, UserOptions{KeepActions: true, ReadBack: reconcile})
			return ur.asResult(), err
		}, nil
	}
	g, err := New(dir, client, p)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, reconcile bool) (*Result, error) {
		if reconcile {
			return g.Reconcile(ctx, Options{})
		}
		return g.Run(ctx, Options{})
	}, nil
}

// Metrics returns an OnRun that counts runs, writes and failed groups per
// provisioner in m, for /metrics:
//
//	usersync_provisioner_runs_total{provisioner, result="ok"|"error"}
//	usersync_provisioner_actions_total{provisioner, action}
//	usersync_provisioner_failed_groups_total{provisioner}
//	usersync_provisioner_run_duration_seconds{provisioner} (histogram)
//	usersync_provisioner_last_success_timestamp_seconds{provisioner}
func Metrics(m *telemetry.Metrics) func(name string, r *Result, err error, took time.Duration) {
	return func(name string, r *Result, err error, took time.Duration) {
		actions, failed := map[string]int{}, 0
		if r != nil {
			for k, n := range r.Counts {
				actions[string(k)] = n
			}
			failed = len(r.Failures)
		}
		m.ProvisionerRun(name, err == nil, took, actions, failed)
	}
}
