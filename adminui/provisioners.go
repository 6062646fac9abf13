package adminui

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/provision"
	"github.com/usersync/usersync/target/entra"
)

// provisionersPage shows each provisioner's backlog and lag, its failing
// groups or users with a retry for each, and a reconcile planned before
// it is applied.
func (u *ui) provisionersPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.showProvisioners(w, r, s, http.StatusOK, "", "")
}

// provisionerView is one provisioner on the page.
type provisionerView struct {
	*api.ProvisionerStatus
	Lag     string
	Users   map[string]int          // user provisioners: users by state
	Failing []*usersync.Provisioned // user provisioners: failing and quarantined users
	Pending int                     // user provisioners: approvals waiting
}

func (u *ui) showProvisioners(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, status int, notice, problem string) {
	ps, err := u.ops.ListProvisioners(r.Context())
	if err != nil {
		u.fail(w, s, err)
		return
	}
	var views []provisionerView
	for _, p := range ps {
		st, err := u.ops.ProvisionerStatus(r.Context(), p.Name)
		if err != nil {
			u.fail(w, s, err)
			return
		}
		v := provisionerView{ProvisionerStatus: st}
		if st.Backlog > 0 {
			v.Lag = (time.Duration(st.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		if p.Kind == usersync.ProvisionerUsers {
			state, err := u.dir.ProvisionedUsers(r.Context(), p.Name)
			if err != nil {
				u.fail(w, s, err)
				return
			}
			v.Users = map[string]int{}
			for _, x := range state {
				v.Users[x.State]++
				if x.Failures > 0 || x.Quarantined {
					v.Failing = append(v.Failing, x)
				}
			}
			sort.Slice(v.Failing, func(i, j int) bool { return v.Failing[i].Username < v.Failing[j].Username })
			pending, err := u.dir.FindApprovals(r.Context(), p.Name, usersync.ApprovalPending)
			if err != nil {
				u.fail(w, s, err)
				return
			}
			v.Pending = len(pending)
		}
		views = append(views, v)
	}
	u.render(w, status, "provisioners", view{Title: "Provisioners", Session: s, Notice: notice, Error: problem, Data: views})
}

// linksPage lists what a provisioner keeps of each directory object it
// writes (provision.Links).
func (u *ui) linksPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	name := r.PathValue("name")
	links, err := u.ops.ProvisionerLinks(r.Context(), name)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	u.render(w, http.StatusOK, "links", view{Title: "Links of " + name, Session: s, Data: map[string]any{"Name": name, "Links": links}})
}

// decideHold allows (runs now, guard lifted) or rejects (keeps the users
// as they are, quarantined) what a provisioner's mass-deprovision guard
// holds.
func (u *ui) decideHold(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	p, err := u.dir.FindProvisioner(r.Context(), r.PathValue("name"))
	allow := r.PostFormValue("decision") == "allow"
	if err == nil && r.PostFormValue("decision") != "allow" && r.PostFormValue("decision") != "reject" {
		err = usersync.Errorf(usersync.EINVALID, "decide a hold with allow or reject")
	}
	var res *entra.UserResult
	if err == nil {
		err = u.leased(r, p, func(ctx context.Context, client *msgraph.Client) error {
			var err error
			res, err = entra.DecideHold(ctx, u.dir, client, p, allow)
			return err
		})
	}
	if err != nil {
		u.showProvisioners(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	notice := "The held deprovisions were rejected: those users stay as they are in Entra, quarantined."
	if res != nil {
		notice = fmt.Sprintf("The held deprovisions were allowed: %d suspended, %d deleted, %d failed.", res.Counts["suspend:done"], res.Counts["delete:done"], res.Failed)
	}
	u.showProvisioners(w, r, s, http.StatusOK, notice, "")
}

func (u *ui) retryProvisioner(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	name, group := r.PathValue("name"), r.PostFormValue("group")
	if user := r.PostFormValue("user"); user != "" {
		u.retryUser(w, r, s, name, user)
		return
	}
	st, err := u.ops.RetryProvisioner(r.Context(), name, group)
	if err != nil {
		u.showProvisioners(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	notice := group + " was reconciled."
	for _, it := range st.Items {
		if usersync.GroupNameKey(it.GroupName) == usersync.GroupNameKey(group) {
			notice = group + " failed again: " + it.LastError
		}
	}
	u.showProvisioners(w, r, s, http.StatusOK, notice, "")
}

func (u *ui) retryUser(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, name, user string) {
	p, err := u.dir.FindProvisioner(r.Context(), name)
	if err == nil && p.Kind != usersync.ProvisionerUsers {
		err = usersync.Errorf(usersync.EINVALID, "provisioner %s pushes groups, not users", name)
	}
	var res *entra.UserResult
	if err == nil {
		err = u.leased(r, p, func(ctx context.Context, client *msgraph.Client) error {
			var err error
			res, err = entra.RetryUser(ctx, u.dir, client, p, user)
			return err
		})
	}
	if err != nil {
		u.showProvisioners(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	notice := user + " was provisioned again."
	for _, a := range res.Actions {
		if a.Status == entra.StatusFailed {
			notice = user + " failed again: " + a.Error
		}
	}
	u.showProvisioners(w, r, s, http.StatusOK, notice, "")
}

// leased runs fn with the provisioner's Graph client while holding its
// lease, so that no other run of it (a replica of serve, a command) writes
// at the same time; it waits a few seconds for a run that holds it, then
// says which process that is.
func (u *ui) leased(r *http.Request, p *usersync.Provisioner, fn func(context.Context, *msgraph.Client) error) error {
	return provision.Hold(r.Context(), u.dir, p.Name, 5*time.Second, func(ctx context.Context) error {
		client, err := entra.NewClient(ctx, u.dir, p, "", nil)
		if err != nil {
			return err
		}
		return fn(ctx, client)
	})
}

// planLine is one write of a reconcile's plan (or what it did).
type planLine struct{ Kind, Object, Detail, Reason, Status string }

// planReconcile shows what a reconcile would write (a dry run) with a
// button that applies it; applyReconcile applies it.
func (u *ui) planReconcile(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.reconcile(w, r, s, true)
}

func (u *ui) applyReconcile(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	u.reconcile(w, r, s, false)
}

func (u *ui) reconcile(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession, dry bool) {
	name := r.PathValue("name")
	p, err := u.dir.FindProvisioner(r.Context(), name)
	if err != nil {
		u.showProvisioners(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	var lines []planLine
	summary := ""
	err = u.leased(r, p, func(ctx context.Context, client *msgraph.Client) error {
		if p.Kind == usersync.ProvisionerUsers {
			x, err := entra.NewUsers(u.dir, client, p)
			if err != nil {
				return err
			}
			res, err := x.Run(ctx, entra.UserOptions{DryRun: dry, KeepActions: true})
			if err != nil {
				return err
			}
			for _, a := range res.Actions {
				var mod []string
				for k, v := range a.Modified {
					mod = append(mod, k+": "+dash(v.From)+" → "+dash(v.To))
				}
				sort.Strings(mod)
				lines = append(lines, planLine{a.Kind, a.User, strings.Join(mod, "; "), a.Reason, strings.TrimSpace(a.Status + " " + a.Error)})
			}
			summary = fmt.Sprintf("%d users in scope; %d failed, %d waiting for approval", res.InScope, res.Failed, res.Pending)
			if res.HeldReason != "" {
				summary += ". Held: " + res.HeldReason
			}
			return nil
		}
		g, err := entra.New(u.dir, client, p)
		if err != nil {
			return err
		}
		res, err := g.Reconcile(ctx, entra.Options{DryRun: dry, KeepActions: true})
		if err != nil {
			return err
		}
		for _, a := range res.Actions {
			lines = append(lines, planLine{string(a.Kind), a.Group, a.Member, a.Reason, ""})
		}
		summary = fmt.Sprintf("%d groups looked at; %d failed", res.Groups, len(res.Failures))
		return nil
	})
	if err != nil {
		u.showProvisioners(w, r, s, statusOf(err), "", usersync.ErrorMessage(err))
		return
	}
	u.render(w, http.StatusOK, "reconcile", view{Title: "Reconcile " + name, Session: s, Data: map[string]any{"Name": name, "DryRun": dry, "Lines": lines, "Summary": summary}})
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
