package adminui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/schedule"
)

// scheduleRow is a schedule with when it runs next.
type scheduleRow struct {
	*usersync.Schedule
	Next string
}

func nextRun(s *usersync.Schedule) string {
	return schedule.NextRun(s.Cron, s.TimeZone, s.Paused, time.Now())
}

func (u *ui) schedulesPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showSchedules(w, r, s, http.StatusOK, "", "")
}

func (u *ui) showSchedules(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	list, err := u.ops.ListSchedules(r.Context())
	if err != nil {
		u.fail(w, s, err)
		return
	}
	rows := make([]scheduleRow, len(list))
	for i, sc := range list {
		rows[i] = scheduleRow{sc, nextRun(sc)}
	}
	runs, err := u.ops.ListRuns(r.Context(), "", 20)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	u.render(w, status, "schedules", view{Title: "Syncs and runs", Session: s, Notice: notice, Error: problem, Data: map[string]any{"Schedules": rows, "Runs": runViews(runs)}})
}

// scheduleAction runs a schedule now, or pauses or resumes it.
func (u *ui) scheduleAction(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	name, ctx := r.PathValue("name"), r.Context()
	var err error
	notice := ""
	switch r.PostFormValue("action") {
	case "run":
		var dup bool
		if dup, err = u.ops.RunSchedule(ctx, name); err == nil {
			notice = "A run of " + name + " is queued."
			if dup {
				notice = "A run of " + name + " was already waiting or running; no second one was queued."
			}
		}
	case "pause", "resume":
		paused := r.PostFormValue("action") == "pause"
		if _, err = u.ops.UpdateSchedule(ctx, name, api.ScheduleChange{Paused: &paused}, 0); err == nil {
			notice = map[bool]string{true: "Paused ", false: "Resumed "}[paused] + name + "."
		}
	default:
		err = usersync.Errorf(usersync.EINVALID, "unknown action %q", r.PostFormValue("action"))
	}
	if err != nil {
		u.showSchedules(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	u.showSchedules(w, r, s, http.StatusOK, notice, "")
}

// statusOf is the HTTP status of a page that shows err.
func statusOf(err error) int {
	if c := map[string]int{usersync.ENOTFOUND: 404, usersync.EINVALID: 422, usersync.ECONFLICT: 409, usersync.ESTALE: 409,
		usersync.EFORBIDDEN: 403, usersync.EUNAVAILABLE: 503}[usersync.ErrorCode(err)]; c != 0 {
		return c
	}
	return http.StatusInternalServerError
}

// runView is a run with what its summary counts.
type runView struct {
	*usersync.Run
	Took    time.Duration
	Changes int
	Groups  []groupSummary
}

// groupSummary is one group of a pull's JSON summary.
type groupSummary struct {
	Name   string `json:"name"`
	Error  string `json:"error"`
	Result *struct {
		Group    string         `json:"group"`
		Counts   map[string]int `json:"counts"`
		Warnings []string       `json:"warnings"`
		Actions  []struct {
			Kind   string `json:"action"`
			User   string `json:"user"`
			Reason string `json:"reason"`
		} `json:"actions"`
	} `json:"result"`
	HeldRemovals *struct {
		Remove int      `json:"remove"`
		Total  int      `json:"total"`
		Sample []string `json:"sample"`
	} `json:"heldRemovals"`
}

func runViews(runs []*usersync.Run) []runView {
	out := make([]runView, len(runs))
	for i, r := range runs {
		out[i] = viewRun(r)
	}
	return out
}

func viewRun(r *usersync.Run) runView {
	v := runView{Run: r}
	if r.EndedAt != nil {
		v.Took = r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond)
	}
	var summary struct {
		Groups []groupSummary `json:"groups"`
	}
	if json.Unmarshal([]byte(r.Output), &summary) == nil {
		v.Groups = summary.Groups
		for _, g := range summary.Groups {
			if g.Result == nil {
				continue
			}
			for kind, n := range g.Result.Counts {
				if kind != "unchanged" && !strings.HasSuffix(kind, "-unchanged") {
					v.Changes += n
				}
			}
		}
	}
	return v
}

// bar is one bar of a chart, in the chart's own coordinates.
type bar struct {
	X, Y, W, H float64
	Label      string
}

// chart draws values as bars, oldest left, scaled to the largest.
type chart struct {
	Title  string
	Max    string
	Bars   []bar
	Width  float64
	Height float64
}

func barChart(title string, labels []string, values []float64, unit string) chart {
	c := chart{Title: title, Width: 600, Height: 120}
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	c.Max = strconv.FormatFloat(top, 'f', -1, 64) + " " + unit
	if len(values) == 0 || top == 0 {
		return c
	}
	w := c.Width / float64(len(values))
	for i, v := range values {
		h := v / top * (c.Height - 10)
		c.Bars = append(c.Bars, bar{X: float64(i)*w + 1, Y: c.Height - h, W: max(w-2, 1), H: h, Label: labels[i] + ": " + strconv.FormatFloat(v, 'f', -1, 64) + " " + unit})
	}
	return c
}

func (u *ui) schedulePage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	ctx := r.Context()
	sc, err := u.ops.GetSchedule(ctx, r.PathValue("name"))
	if err != nil {
		u.fail(w, s, err)
		return
	}
	runs, err := u.ops.ListRuns(ctx, sc.Name, 50)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	views := runViews(runs)
	ended := make([]runView, 0, len(views))
	for _, v := range views {
		if v.EndedAt != nil {
			ended = append(ended, v)
		}
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].ID < ended[j].ID }) // oldest first
	var labels []string
	var took, changes []float64
	for _, v := range ended {
		labels = append(labels, fmt.Sprintf("run %d", v.ID))
		took = append(took, float64(v.Took.Milliseconds()))
		changes = append(changes, float64(v.Changes))
	}
	u.render(w, http.StatusOK, "schedule", view{Title: "Schedule " + sc.Name, Session: s, Data: map[string]any{
		"Schedule": scheduleRow{sc, nextRun(sc)}, "Runs": views, "Command": strings.Join(sc.Command, " "),
		"Charts": []chart{barChart("Duration per run", labels, took, "ms"), barChart("Changes per run", labels, changes, "changes")},
	}})
}

func (u *ui) runPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showRun(w, r, s, http.StatusOK, "", "")
}

func (u *ui) showRun(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		u.fail(w, s, usersync.Errorf(usersync.ENOTFOUND, "run %q not found", r.PathValue("id")))
		return
	}
	run, err := u.ops.GetRun(r.Context(), id)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	u.render(w, status, "run", view{Title: fmt.Sprintf("Run %d of %s", run.ID, run.Schedule), Session: s, Notice: notice, Error: problem, Data: viewRun(run)})
}

// decideRun allows or rejects the removals a quarantined run held.
func (u *ui) decideRun(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		u.fail(w, s, usersync.Errorf(usersync.ENOTFOUND, "run %q not found", r.PathValue("id")))
		return
	}
	allow := r.PostFormValue("decision") == "allow"
	if _, err := u.ops.DecideRun(r.Context(), id, allow); err != nil {
		u.showRun(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	notice := "Rejected: nothing was removed."
	if allow {
		notice = "Allowed: a run that applies the held removals is queued."
	}
	u.showRun(w, r, s, http.StatusOK, notice, "")
}

// tokensPage lists API tokens (never their values) and makes new ones,
// whose clear value the page shows once.
func (u *ui) tokensPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showTokens(w, r, s, http.StatusOK, "", "", "")
}

func (u *ui) showTokens(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem, clear string) {
	list, err := u.ops.ListTokens(r.Context(), "")
	if err != nil {
		u.fail(w, s, err)
		return
	}
	data := map[string]any{"Tokens": list, "Clear": clear}
	if msg, ok := strings.CutPrefix(problem, createFieldError); ok {
		// A token that could not be made: the reason next to the form, with what was typed.
		data["CreateError"], data["User"], data["Name"], problem = msg, r.PostFormValue("user"), r.PostFormValue("name"), ""
	}
	u.render(w, status, "tokens", view{Title: "API tokens", Session: s, Notice: notice, Error: problem, Data: data})
}

// createFieldError marks a problem that belongs next to the create form.
const createFieldError = "\x00create:"

func (u *ui) tokenAction(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	ctx := r.Context()
	if id := r.PostFormValue("revoke"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err == nil {
			err = u.ops.RevokeToken(ctx, n)
		}
		if err != nil {
			u.showTokens(w, r, s, statusOf(err), "", usersync.ErrorMessage(err), "")
			return
		}
		u.showTokens(w, r, s, http.StatusOK, "Token "+id+" revoked.", "", "")
		return
	}
	made, err := u.ops.CreateToken(ctx, strings.TrimSpace(r.PostFormValue("user")), strings.TrimSpace(r.PostFormValue("name")))
	if err != nil {
		u.showTokens(w, r, s, statusOf(err), "", createFieldError+usersync.ErrorMessage(err), "")
		return
	}
	u.showTokens(w, r, s, http.StatusOK, fmt.Sprintf("Token %d for %s created. It is shown only now: copy it.", made.Info.ID, made.Info.Username), "", made.Token)
}
