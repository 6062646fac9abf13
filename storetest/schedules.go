package storetest

import (
	"slices"
	"testing"

	"github.com/usersync/usersync"
)

// testSchedules: schedules are stored and changed with versions, and runs
// are recorded from start to end, latest first.
func testSchedules(t *testing.T, d usersync.Directory) {
	s := &usersync.Schedule{Name: "sales", Cron: "*/40 * * * *", TimeZone: "Europe/Paris", Command: []string{"o365", "provision", "--auto-create", "all", "Sales"}}
	if err := d.CreateSchedule(ctx, s); err != nil || s.Version != 1 {
		t.Fatalf("create: %v %+v", err, s)
	}
	wantCode(t, d.CreateSchedule(ctx, &usersync.Schedule{Name: "sales", Cron: "* * * * *"}), usersync.ECONFLICT)
	wantCode(t, d.CreateSchedule(ctx, &usersync.Schedule{Name: "bad name", Cron: "* * * * *"}), usersync.EINVALID)
	got, err := d.FindSchedule(ctx, "sales")
	if err != nil || !slices.Equal(got.Command, s.Command) || got.TimeZone != "Europe/Paris" || got.Paused {
		t.Fatalf("read back: %+v %v", got, err)
	}
	paused := true
	_, err = d.UpdateSchedule(ctx, "sales", usersync.ScheduleUpdate{Paused: &paused}, 7)
	wantCode(t, err, usersync.ESTALE)
	if got, err = d.UpdateSchedule(ctx, "sales", usersync.ScheduleUpdate{Paused: &paused}, 1); err != nil || !got.Paused || got.Version != 2 {
		t.Fatalf("pause: %+v %v", got, err)
	}
	if list, _ := d.ListSchedules(ctx); len(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	var ids []int64
	for i := 0; i < 3; i++ {
		r := &usersync.Run{Schedule: "sales", Trigger: "schedule", StartedBy: "serve:test"}
		if err := d.StartRun(ctx, r); err != nil || r.Outcome != usersync.RunRunning || r.Attempt != 1 {
			t.Fatalf("start run: %v %+v", err, r)
		}
		ids = append(ids, r.ID)
	}
	done, err := d.FinishRun(ctx, ids[1], usersync.RunFailed, `{"x":1}`, "tenant unreachable")
	if err != nil || done.Outcome != usersync.RunFailed || done.EndedAt == nil || done.Error != "tenant unreachable" || done.Output != `{"x":1}` {
		t.Fatalf("finish run: %+v %v", done, err)
	}
	runs, _ := d.ListRuns(ctx, "sales", 2)
	if len(runs) != 2 || runs[0].ID != ids[2] || runs[1].ID != ids[1] {
		t.Fatalf("latest runs first: %+v", runs)
	}
	if none, _ := d.ListRuns(ctx, "other", 0); len(none) != 0 {
		t.Fatalf("runs of another schedule: %v", none)
	}
	_, err = d.FinishRun(ctx, 999999, usersync.RunSucceeded, "", "")
	wantCode(t, err, usersync.ENOTFOUND)
	if err := d.DeleteSchedule(ctx, "sales"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, d.DeleteSchedule(ctx, "sales"), usersync.ENOTFOUND)
	if runs, _ := d.ListRuns(ctx, "sales", 0); len(runs) != 3 {
		t.Fatalf("runs of a deleted schedule stay on record: %d", len(runs))
	}
}
