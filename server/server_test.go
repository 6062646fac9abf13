package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/server"
)

func TestMain(m *testing.M) { os.Exit(dirtest.Main(m)) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func serve(t *testing.T, d usersync.Directory) (*httptest.Server, *syncBuffer, string) {
	t.Helper()
	logs := &syncBuffer{}
	srv := httptest.NewServer(server.New(d, slog.New(slog.NewTextHandler(logs, nil)), server.Options{}))
	t.Cleanup(srv.Close)
	admin := &usersync.User{Username: "root@example.com", Email: "root@example.com", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	tok, _, err := d.CreateToken(context.Background(), admin.ID, "t")
	if err != nil {
		t.Fatal(err)
	}
	return srv, logs, tok
}

// Hostile input is refused at the door with a 400 that names what is
// wrong, on both backends, on every surface: a NUL (\u0000 or %00)
// reached PostgreSQL through SCIM filters, API paths, query strings and
// the sign-in form (500), and SQLite answered a search over 50,000 bytes
// with 500.
func TestHostileInputRefused(t *testing.T) {
	long := strings.Repeat("a", 60000)
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		srv, logs, tok := serve(t, open(t))
		type probe struct {
			method, path, body, ctype string
			want                      string // in the answer
		}
		probes := []probe{
			{"GET", "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "a\u0000b"`), "", "", "NUL"},
			{"GET", "/scim/v2/Users?filter=" + url.QueryEscape(`name.givenName eq "a\u0000b"`), "", "", "NUL"},
			{"GET", "/scim/v2/Users?filter=" + url.QueryEscape(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co "\u0000"`), "", "", "NUL"},
			{"GET", "/scim/v2/Groups?filter=" + url.QueryEscape(`displayName eq "\u0000"`), "", "", "NUL"},
			{"GET", "/scim/v2/Users?filter=userName%20eq%20%22a%00%22", "", "", "NUL"},
			{"GET", "/scim/v2/Users/1%00", "", "", "NUL"},
			{"GET", "/scim/v2/Users?filter=" + url.QueryEscape(`userName co "`+long+`"`), "", "", `filter\" has 60014 bytes`},
			{"GET", "/api/v1/users?search=a%00b", "", "", `search\" contains a NUL`},
			{"GET", "/api/v1/users?search=%ff", "", "", "not valid UTF-8"},
			{"GET", "/api/v1/users?search=" + long, "", "", `search\" has 60000 bytes`},
			{"GET", "/api/v1/groups?search=" + long, "", "", `search\" has 60000 bytes`},
			{"GET", "/api/v1/users/root%00@example.com", "", "", "path contains a NUL"},
			{"GET", "/api/v1/groups/x%00y/members", "", "", "path contains a NUL"},
			{"GET", "/api/v1/tokens?user=a%00", "", "", "NUL"},
			{"POST", "/api/v1/groups", `{"name": "g\u0000"}`, "application/json", "NUL"},
			{"POST", "/api/v1/groups", "{\"name\": \"f\xff\"}", "application/json", "UTF-8"},
			{"GET", "/admin/users?q=" + long, "", "", `"q" has 60000 bytes`},
			{"GET", "/admin/users?q=%00", "", "", "NUL"},
			{"POST", "/scim/v2/Users/.search", `{"filter": "userName co \"` + long + `\""}`, "application/scim+json", "filter"},
			{"POST", "/scim/v2/.search", `{"filter": "displayName sw \"` + long + `\""}`, "application/scim+json", "filter"},
		}
		for _, p := range probes {
			req, _ := http.NewRequest(p.method, srv.URL+p.path, strings.NewReader(p.body))
			req.Header.Set("Authorization", "Bearer "+tok)
			if p.ctype != "" {
				req.Header.Set("Content-Type", p.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %.80s: %v", p.method, p.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(b), p.want) {
				t.Errorf("%s %.80s: %d %.300s, want 400 saying %q", p.method, p.path, resp.StatusCode, b, p.want)
			}
		}
		// The sign-in form, before any session.
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(srv.URL + "/admin/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		field := regexp.MustCompile(`name="token" value="([^"]+)"`)
		for _, name := range []string{"root\x00@example.com", "root\xff", long[:usersync.MaxUsernameLength+1]} {
			resp, err = c.PostForm(srv.URL+"/admin/login", url.Values{"token": {field.FindStringSubmatch(string(page))[1]}, "username": {name}, "password": {"whatever it is"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = b // with the form's next token
			if resp.StatusCode != 400 || !strings.Contains(string(b), `field &#34;username&#34;`) {
				t.Errorf("sign-in with username %.20q: %d %.300s", name, resp.StatusCode, b)
			}
		}
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Fatalf("hostile input logged an error:\n%s", logs)
		}
	})
}

// failing fails the reads the probes make with a cause of its own.
type failing struct{ usersync.Directory }

var errDisk = errors.New("the disk is on fire")

func (f failing) FindUsers(ctx context.Context, _ usersync.UserFilter) ([]*usersync.User, int, error) {
	return nil, 0, errDisk
}

// A 500 on any surface logs its cause with a request id, and the answer
// carries that id (API 500s logged nothing).
func TestInternalErrorNamesRequestID(t *testing.T) {
	d := dirtest.SQLite(t)
	srv, logs, tok := serve(t, failing{d})
	for _, path := range []string{"/api/v1/users", "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "x"`)} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 500 || id == "" || !strings.Contains(string(b), "request id "+id) {
			t.Fatalf("GET %s: %d %s (X-Request-Id %q)", path, resp.StatusCode, b, id)
		}
		if !regexp.MustCompile(`level=ERROR [^\n]*request_id=` + id + `[^\n]*the disk is on fire`).MatchString(logs.String()) {
			t.Fatalf("GET %s: the log has no line with the cause and request id %s:\n%s", path, id, logs)
		}
		if strings.Contains(string(b), "fire") {
			t.Fatalf("GET %s: the answer tells the cause: %s", path, b)
		}
	}
}
