package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/usersync/usersync"
)

const scheduleCols = `name, cron, time_zone, command, paused, created_at, updated_at, version`

func scanSchedule(s scanner) (*usersync.Schedule, error) {
	var sc usersync.Schedule
	var command string
	var created, updated int64
	if err := s.Scan(&sc.Name, &sc.Cron, &sc.TimeZone, &command, &sc.Paused, &created, &updated, &sc.Version); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(command), &sc.Command); err != nil {
		return nil, err
	}
	sc.CreatedAt, sc.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &sc, nil
}

// CreateSchedule stores a new schedule (ECONFLICT when the name is taken).
func (d *DB) CreateSchedule(ctx context.Context, s *usersync.Schedule) error {
	if err := usersync.ValidateScheduleName(s.Name); err != nil {
		return err
	}
	command, _ := json.Marshal(s.Command)
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO schedules (name, cron, time_zone, command, paused, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)`,
			s.Name, s.Cron, s.TimeZone, string(command), s.Paused, t.now, t.now)
		if isUniqueViolation(err) {
			return usersync.Errorf(usersync.ECONFLICT, "schedule %s exists already", s.Name)
		} else if err != nil {
			return t.d.wrapErr("create schedule", err)
		}
		s.CreatedAt, s.UpdatedAt, s.Version = fromMicros(t.now), fromMicros(t.now), 1
		return nil
	})
}

// FindSchedule returns a schedule or ENOTFOUND.
func (d *DB) FindSchedule(ctx context.Context, name string) (*usersync.Schedule, error) {
	s, err := scanSchedule(d.db.QueryRowContext(ctx, d.q(`SELECT `+scheduleCols+` FROM schedules WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "schedule %q not found (see `usersync schedules list`)", name)
	}
	return s, d.wrapErr("read schedule", err)
}

// ListSchedules lists every schedule by name.
func (d *DB) ListSchedules(ctx context.Context) ([]*usersync.Schedule, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT `+scheduleCols+` FROM schedules ORDER BY name`))
	if err != nil {
		return nil, d.wrapErr("list schedules", err)
	}
	defer rows.Close()
	var out []*usersync.Schedule
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, d.wrapErr("list schedules", err)
		}
		out = append(out, s)
	}
	return out, d.wrapErr("list schedules", rows.Err())
}

// UpdateSchedule changes a schedule; its version moves.
func (d *DB) UpdateSchedule(ctx context.Context, name string, upd usersync.ScheduleUpdate, expectVersion int64) (*usersync.Schedule, error) {
	var out *usersync.Schedule
	err := d.update(ctx, func(t *tx) error {
		s, err := scanSchedule(t.queryRow(`SELECT `+scheduleCols+` FROM schedules WHERE name = ?`+t.d.dialect.forUpdate, name))
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "schedule %q not found (see `usersync schedules list`)", name)
		} else if err != nil {
			return t.d.wrapErr("read schedule", err)
		}
		if expectVersion != 0 && s.Version != expectVersion {
			return usersync.Errorf(usersync.ESTALE, "schedule %s was changed meanwhile (version %d, expected %d)", name, s.Version, expectVersion)
		}
		set(&s.Cron, upd.Cron)
		set(&s.TimeZone, upd.TimeZone)
		set(&s.Command, upd.Command)
		set(&s.Paused, upd.Paused)
		command, _ := json.Marshal(s.Command)
		s.Version, s.UpdatedAt = s.Version+1, fromMicros(t.now)
		if _, err := t.exec(`UPDATE schedules SET cron = ?, time_zone = ?, command = ?, paused = ?, updated_at = ?, version = ? WHERE name = ?`,
			s.Cron, s.TimeZone, string(command), s.Paused, t.now, s.Version, name); err != nil {
			return t.d.wrapErr("update schedule", err)
		}
		out = s
		return nil
	})
	return out, err
}

// DeleteSchedule removes a schedule; its runs stay on record.
func (d *DB) DeleteSchedule(ctx context.Context, name string) error {
	return d.update(ctx, func(t *tx) error {
		n, err := t.exec(`DELETE FROM schedules WHERE name = ?`, name)
		if err != nil {
			return t.d.wrapErr("delete schedule", err)
		}
		if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "schedule %q not found (see `usersync schedules list`)", name)
		}
		return nil
	})
}

const runCols = `id, schedule, trig, started_by, started_at, ended_at, outcome, output, error, attempt`

func scanRun(s scanner) (*usersync.Run, error) {
	var r usersync.Run
	var started int64
	var ended sql.NullInt64
	if err := s.Scan(&r.ID, &r.Schedule, &r.Trigger, &r.StartedBy, &started, &ended, &r.Outcome, &r.Output, &r.Error, &r.Attempt); err != nil {
		return nil, err
	}
	r.StartedAt = fromMicros(started)
	if ended.Valid {
		t := fromMicros(ended.Int64)
		r.EndedAt = &t
	}
	return &r, nil
}

// StartRun records a run that begins now, outcome running.
func (d *DB) StartRun(ctx context.Context, r *usersync.Run) error {
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	r.Outcome, r.StartedAt = usersync.RunRunning, time.Now()
	err := d.db.QueryRowContext(ctx, d.q(`INSERT INTO runs (schedule, trig, started_by, started_at, outcome, attempt) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		r.Schedule, r.Trigger, r.StartedBy, micros(r.StartedAt), r.Outcome, r.Attempt).Scan(&r.ID)
	return d.wrapErr("record run", err)
}

// FinishRun records how a run ended.
func (d *DB) FinishRun(ctx context.Context, id int64, outcome, output, errText string) (*usersync.Run, error) {
	n, err := d.db.ExecContext(ctx, d.q(`UPDATE runs SET ended_at = ?, outcome = ?, output = ?, error = ? WHERE id = ?`), micros(time.Now()), outcome, output, errText, id)
	if err != nil {
		return nil, d.wrapErr("record run", err)
	}
	if k, _ := n.RowsAffected(); k == 0 {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "run %d not found", id)
	}
	return d.FindRun(ctx, id)
}

// FindRun returns a run or ENOTFOUND.
func (d *DB) FindRun(ctx context.Context, id int64) (*usersync.Run, error) {
	r, err := scanRun(d.db.QueryRowContext(ctx, d.q(`SELECT `+runCols+` FROM runs WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "run %d not found (see `usersync runs list`)", id)
	}
	return r, d.wrapErr("read run", err)
}

// ListRuns lists the latest runs first.
func (d *DB) ListRuns(ctx context.Context, schedule string, limit int) ([]*usersync.Run, error) {
	q, args := `SELECT `+runCols+` FROM runs`, []any{}
	if schedule != "" {
		q, args = q+` WHERE schedule = ?`, append(args, schedule)
	}
	rows, err := d.db.QueryContext(ctx, d.q(q+` ORDER BY id DESC`+limitClause(0, limit)), args...)
	if err != nil {
		return nil, d.wrapErr("list runs", err)
	}
	defer rows.Close()
	var out []*usersync.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, d.wrapErr("list runs", err)
		}
		out = append(out, r)
	}
	return out, d.wrapErr("list runs", rows.Err())
}

// JobQueueDepth counts the jobs waiting to run: available, scheduled or
// to be retried.
func (d *DB) JobQueueDepth(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE state IN ('available', 'scheduled', 'retryable')`).Scan(&n)
	return n, d.wrapErr("count waiting jobs", err)
}
