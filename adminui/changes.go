package adminui

import (
	"net/http"
	"slices"
	"strings"

	"github.com/usersync/usersync"
)

// changesPage is the change log, newest first, filtered by kind, actor or
// object; htmx refreshes it every few seconds (a live tail), and without
// JavaScript the Refresh link does.
func (u *ui) changesPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	ctx := r.Context()
	last, err := u.dir.LastChangeSeq(ctx)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	kind, who, obj := strings.TrimSpace(r.FormValue("kind")), strings.TrimSpace(r.FormValue("actor")), strings.ToLower(strings.TrimSpace(r.FormValue("object")))
	// The newest 1,000 changes are searched; a filter shows up to 200 of them.
	cs, err := u.ops.Changes(ctx, max(last-1000, 0), 1000, 0)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var shown []*usersync.Change
	for _, c := range slices.Backward(cs) {
		if kind != "" && !strings.Contains(string(c.Kind), kind) || who != "" && !strings.Contains(c.Actor, who) ||
			obj != "" && !strings.Contains(strings.ToLower(c.Object.Name), obj) && (c.Member == nil || !strings.Contains(strings.ToLower(c.Member.Name), obj)) {
			continue
		}
		if shown = append(shown, c); len(shown) == 200 {
			break
		}
	}
	page := "changes"
	if r.Header.Get("HX-Request") == "true" && r.FormValue("tail") == "1" {
		page = "changes-rows"
	}
	u.render(w, http.StatusOK, page, view{Title: "Change log", Session: s, Data: map[string]any{
		"Changes": shown, "Kind": kind, "Actor": who, "Object": r.FormValue("object"), "Last": last, "Query": r.URL.RawQuery}})
}
