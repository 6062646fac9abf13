package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// served is a `usersync serve` run by a test.
type served struct {
	base  string      // e.g. http://127.0.0.1:PORT
	token string      // an administrator's API token
	stop  func()      // as SIGTERM does
	exit  chan int    // the exit code
	logs  chan string // the whole log, sent at exit
}

// startServe makes an administrator with a token in db and runs serve on
// a free loopback port with extra flags.
func startServe(t *testing.T, db string, extra ...string) *served {
	t.Helper()
	ok(t, cli(t, db, "", "users", "create", "--username", "entra-admin", "--email", "a@x.example", "--type", "administrator"))
	out := strings.TrimSpace(ok(t, cli(t, db, "", "-o", "json", "tokens", "create", "--user", "entra-admin", "--name", "entra")).stdout)
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || !strings.HasPrefix(tok.Token, "ust_") {
		t.Fatalf("token output %q: %v", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	s := &served{token: tok.Token, stop: cancel, exit: make(chan int, 1), logs: make(chan string, 1)}
	go func() {
		args := append([]string{"--db", db, "serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, extra...)
		s.exit <- run(ctx, args, strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var rec map[string]any
			json.Unmarshal(sc.Bytes(), &rec)
			if a, _ := rec["address"].(string); a != "" {
				addr <- a
			}
			lines = append(lines, sc.Text())
		}
		s.logs <- strings.Join(lines, "\n")
	}()
	select {
	case s.base = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("serve logged no address")
	}
	return s
}

// wait waits for serve to exit 0 and returns its log.
func (s *served) wait(t *testing.T) string {
	t.Helper()
	select {
	case code := <-s.exit:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(35 * time.Second):
		t.Fatal("serve did not stop")
	}
	return <-s.logs
}

// TestServe runs `usersync serve`, uses SCIM with a token made by the CLI,
// checks health, readiness and metrics, and stops it gracefully.
func TestServe(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "d.db"))
	get := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", s.base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz", ""); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %s", code, body)
	}
	if code, _ := get("/readyz", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	if code, body := get("/scim/v2/Users?filter="+`userName%20eq%20%22entra-admin%22`, s.token); code != 200 || !strings.Contains(body, `"totalResults":1`) {
		t.Fatalf("SCIM through serve: %d %s", code, body)
	}
	if code, _ := get("/scim/v2/Users", "ust_wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, metrics := get("/metrics", "")
	if code != 200 || !strings.Contains(metrics, `usersync_http_requests_total{code="200",method="GET",route="/scim/v2/Users"} 1`) ||
		!strings.Contains(metrics, `usersync_http_requests_total{code="401",method="GET",route="/scim/v2/Users"} 1`) ||
		!strings.Contains(metrics, `usersync_http_request_duration_seconds_bucket{method="GET",route="/scim/v2/Users",le="0.1"}`) {
		t.Fatalf("metrics:\n%s", metrics)
	}

	s.stop()
	all := s.wait(t)
	if !strings.Contains(all, `"msg":"stopped"`) || !strings.Contains(all, `"path":"/scim/v2/Users"`) || strings.Contains(all, s.token) {
		t.Fatalf("logs (must show the request and the stop, never the token):\n%s", all)
	}
}
