// Package adminui serves the admin console at /admin: server-rendered
// pages (html/template) that read and change the same things as the REST
// API, through the same operations (api.Local), for administrators who
// sign in with a password. Every page works without JavaScript; htmx,
// served from the binary, only spares full reloads.
package adminui

import (
	"context"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
)

// Path is where the console is served.
const Path = "/admin"

// Sign-in limits: the lockAfter-th wrong password in a row locks the
// account for lockFor; a session lasts sessionTTL.
const (
	lockAfter  = 5
	lockFor    = 15 * time.Minute
	sessionTTL = 8 * time.Hour
)

// signInRefused is the one answer to every refused sign-in.
var signInRefused = fmt.Sprintf("Sign-in refused: wrong username or password, or this user may not sign in now. Only enabled administrators can sign in; %d wrong passwords in a row lock a user for %d minutes.", lockAfter, int(lockFor/time.Minute))

const (
	sessionCookie = "usersync_session"
	loginCookie   = "usersync_login" // the sign-in form's CSRF token, before there is a session
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the console over dir; ops does the changes (as the API does).
func New(dir usersync.Directory, ops *api.Local, log *slog.Logger) http.Handler {
	u := &ui{dir: dir, ops: ops, log: log, pages: map[string]*template.Template{}}
	go dummyHash() // ready before the first sign-in, off the start-up path
	for _, page := range []string{"login", "users", "user", "groups", "group", "settings", "schedules", "schedule", "run", "tokens", "changes", "changes-rows", "provisioners", "approvals", "provisioning", "mappings", "reapply", "reconcile", "folders", "links", "error"} {
		u.pages[page] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/runs_table.html", "templates/change_rows.html", "templates/"+page+".html"))
	}
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+Path+"/static/", http.StripPrefix(Path+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Path+"/login", u.loginPage)
	mux.HandleFunc("POST "+Path+"/login", u.login)
	mux.Handle("POST "+Path+"/logout", u.signedIn(u.logout))
	mux.Handle("GET "+Path+"/{$}", u.signedIn(func(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
		http.Redirect(w, r, Path+"/users", http.StatusSeeOther)
	}))
	mux.Handle("GET "+Path+"/users", u.signedIn(u.usersPage))
	mux.Handle("GET "+Path+"/users/{username}", u.signedIn(u.userPage))
	mux.Handle("POST "+Path+"/users/{username}/roles", u.signedIn(u.changeUserRole))
	mux.Handle("GET "+Path+"/groups", u.signedIn(u.groupsPage))
	mux.Handle("GET "+Path+"/groups/{name}", u.signedIn(u.groupPage))
	mux.Handle("GET "+Path+"/folders", u.signedIn(u.foldersPage))
	mux.Handle("POST "+Path+"/groups/{name}/members", u.signedIn(u.changeMembers))
	mux.Handle("GET "+Path+"/settings", u.signedIn(u.settingsPage))
	mux.Handle("POST "+Path+"/settings", u.signedIn(u.commitSettings))
	mux.Handle("GET "+Path+"/schedules", u.signedIn(u.schedulesPage))
	mux.Handle("GET "+Path+"/schedules/{name}", u.signedIn(u.schedulePage))
	mux.Handle("POST "+Path+"/schedules/{name}", u.signedIn(u.scheduleAction))
	mux.Handle("GET "+Path+"/runs/{id}", u.signedIn(u.runPage))
	mux.Handle("POST "+Path+"/runs/{id}/decision", u.signedIn(u.decideRun))
	mux.Handle("GET "+Path+"/tokens", u.signedIn(u.tokensPage))
	mux.Handle("GET "+Path+"/changes", u.signedIn(u.changesPage))
	mux.Handle("GET "+Path+"/provisioners", u.signedIn(u.provisionersPage))
	mux.Handle("POST "+Path+"/provisioners/{name}/retries", u.signedIn(u.retryProvisioner))
	mux.Handle("POST "+Path+"/provisioners/{name}/plan", u.signedIn(u.planReconcile))
	mux.Handle("POST "+Path+"/provisioners/{name}/hold", u.signedIn(u.decideHold))
	mux.Handle("GET "+Path+"/provisioners/{name}/links", u.signedIn(u.linksPage))
	mux.Handle("POST "+Path+"/provisioners/{name}/reconcile", u.signedIn(u.applyReconcile))
	mux.Handle("POST "+Path+"/tokens", u.signedIn(u.tokenAction))
	mux.Handle("GET "+Path+"/approvals", u.signedIn(u.approvalsPage))
	mux.Handle("POST "+Path+"/approvals", u.signedIn(u.decideApprovals))
	mux.Handle("GET "+Path+"/provisioning", u.signedIn(u.provisioningPage))
	mux.Handle("GET "+Path+"/mappings", u.signedIn(u.mappingsPage))
	mux.Handle("GET "+Path+"/user-suggestions", u.signedIn(u.userSuggestions))
	mux.Handle("POST "+Path+"/mappings/{name}", u.signedIn(u.saveMapping))
	mux.Handle("POST "+Path+"/mappings", u.signedIn(u.createMapping))
	mux.Handle("POST "+Path+"/roles", u.signedIn(u.createRole))
	mux.Handle("POST "+Path+"/provisioners/{name}/rules", u.signedIn(u.changeRules))
	mux.Handle("POST "+Path+"/reapply", u.signedIn(u.reapply))
	return securityHeaders(mux)
}

type ui struct {
	dir   usersync.Directory
	ops   *api.Local
	log   *slog.Logger
	pages map[string]*template.Template
}

// securityHeaders keep the pages out of frames and other sites' scripts.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"list": func(v ...string) []string { return v },
	"path": url.PathEscape,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"ms": func(d time.Duration) string {
		if d == 0 {
			return "—"
		}
		return d.String()
	},
	"orDash": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
}

// view is what every page gets: the signed-in administrator, the CSRF
// token its forms carry, a notice and an error to show, and its own data.
type view struct {
	Title   string
	Session *usersync.AdminSession
	Notice  string
	Error   string
	Data    any
}

func (u *ui) render(w http.ResponseWriter, status int, page string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := u.pages[page].Execute(w, v); err != nil {
		u.log.Error("admin page failed to render", "page", page, "err", err)
	}
}

// fail shows an error page that says what went wrong; internal errors say
// no more than that.
func (u *ui) fail(w http.ResponseWriter, s *usersync.AdminSession, err error) {
	status := statusOf(err)
	msg := usersync.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		id := w.Header().Get("X-Request-Id")
		u.log.Error("admin request failed", "request_id", id, "err", err)
		msg = "Internal error (request id " + id + "; the server's log has the cause)."
	}
	u.render(w, status, "error", view{Title: "Something went wrong", Session: s, Error: msg})
}

type sessionKey struct{}

// signedIn admits a request with a live session of an administrator (the
// rest are sent to sign in), checks the CSRF token of every form it posts,
// and names the administrator as the actor of what it changes.
func (u *ui) signedIn(next func(http.ResponseWriter, *http.Request, *usersync.AdminSession)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s *usersync.AdminSession
		if c, err := r.Cookie(sessionCookie); err == nil {
			s, err = u.dir.FindSession(r.Context(), c.Value)
			if err != nil && usersync.ErrorCode(err) != usersync.EUNAUTHORIZED {
				u.fail(w, nil, err)
				return
			}
		}
		if s == nil {
			if r.Method != http.MethodGet {
				u.render(w, http.StatusUnauthorized, "error", view{Title: "Signed out", Error: "You are not signed in (or the session ended): sign in again; nothing was changed."})
				return
			}
			http.Redirect(w, r, Path+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
				u.render(w, http.StatusForbidden, "error", view{Title: "Refused", Session: s,
					Error: "This form did not come from a page of this console (its CSRF token is missing or stale), so nothing was changed. Reload the page and try again."})
				return
			}
			if msg := formProblem(r); msg != "" {
				u.render(w, http.StatusBadRequest, "error", view{Title: "Refused", Session: s, Error: msg + "; nothing was changed."})
				return
			}
		}
		ctx := usersync.WithActor(context.WithValue(r.Context(), sessionKey{}, s), "admin:"+s.Username)
		next(w, r.WithContext(ctx), s)
	})
}

func secure(r *http.Request) bool { return r.TLS != nil }

// maxField bounds a form field, in bytes: the longest a console form
// takes is a rule's expression.
const maxField = 64 << 10

// formProblem says which field of a posted form cannot be stored or
// compared (a NUL character, which PostgreSQL refuses; invalid UTF-8; too
// long), or "".
func formProblem(r *http.Request) string {
	for k, vs := range r.PostForm {
		for _, v := range vs {
			if len(v) > maxField {
				return fmt.Sprintf("The field %q has %d bytes; at most %d are accepted", k, len(v), maxField)
			}
			if err := usersync.ValidateText("the form", map[string]string{fmt.Sprintf("field %q", k): v}); err != nil {
				return usersync.ErrorMessage(err)
			}
		}
	}
	return ""
}

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, "")
}

// showLogin shows the sign-in form with a fresh token for it (the form's
// CSRF defence before there is a session: the cookie and the field must
// agree).
func (u *ui) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := usersync.NewSecret("")
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: Path + "/login", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	next := r.FormValue("next")
	if !strings.HasPrefix(next, Path+"/") || strings.HasPrefix(next, "//") {
		next = Path + "/users"
	}
	u.render(w, status, "login", view{Title: "Sign in", Error: msg, Data: map[string]string{"Token": tok, "Next": next, "Username": r.PostFormValue("username")}})
}

func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		u.showLogin(w, r, http.StatusRequestEntityTooLarge, "The sign-in form is malformed or larger than 64 KiB.")
		return
	}
	if n := len(r.PostFormValue("username")); n > usersync.MaxUsernameLength {
		u.showLogin(w, r, http.StatusBadRequest, fmt.Sprintf("The field \"username\" has %d bytes; a username has at most %d.", n, usersync.MaxUsernameLength))
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("token"))) != 1 {
		u.showLogin(w, r, http.StatusForbidden, "The sign-in form was stale or came from another site: sign in again.")
		return
	}
	if msg := formProblem(r); msg != "" {
		u.showLogin(w, r, http.StatusBadRequest, msg+".")
		return
	}
	ctx := r.Context()
	name, password := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	// The attempt is counted before the password is checked, so guesses
	// sent at once cannot outrun the lock; and every refusal costs one
	// hash comparison and gives one answer, so neither the time nor the
	// words tell whether the username exists, is locked or may not sign in.
	user, st, err := u.dir.BeginSignIn(ctx, name, lockAfter, lockFor)
	if err != nil && usersync.ErrorCode(err) != usersync.ENOTFOUND {
		u.fail(w, nil, err)
		return
	}
	hash := ""
	if user != nil && st.Allowed {
		hash = st.PasswordHash
	}
	right := passwordMatches(hash, password)
	var why string
	switch {
	case user == nil:
		why = "no such user"
	case !st.Allowed:
		why = "locked until " + st.LockedUntil.UTC().Format(time.RFC3339)
	case !right:
		why = "wrong password"
	case user.Type != usersync.UserAdministrator || !user.Enabled:
		why = "not an enabled administrator"
	}
	if why != "" {
		u.log.Warn("admin sign-in refused", "username", name, "reason", why, "remote", r.RemoteAddr)
		u.showLogin(w, r, http.StatusUnauthorized, signInRefused)
		return
	}
	if err := u.dir.SignInSucceeded(ctx, user.ID); err != nil {
		u.fail(w, nil, err)
		return
	}
	clear, _, err := u.dir.CreateSession(ctx, user.ID, sessionTTL)
	if err != nil {
		u.fail(w, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: clear, Path: Path, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(sessionTTL / time.Second)})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: Path + "/login", MaxAge: -1})
	u.log.Info("admin signed in", "username", user.Username)
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, Path+"/") || strings.HasPrefix(next, "//") {
		next = Path + "/users"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := u.dir.DeleteSession(r.Context(), c.Value); err != nil {
			u.fail(w, s, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Path, MaxAge: -1})
	http.Redirect(w, r, Path+"/login", http.StatusSeeOther)
}
