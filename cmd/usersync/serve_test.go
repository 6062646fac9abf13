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

// TestServe runs `usersync serve`, uses SCIM with a token made by the CLI,
// checks health, readiness and metrics, and stops it gracefully.
func TestServe(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	ok(t, cli(t, db, "", "users", "create", "--username", "entra-admin", "--email", "a@x.example", "--type", "administrator"))
	token := strings.TrimSpace(ok(t, cli(t, db, "", "-o", "json", "tokens", "create", "--user", "entra-admin", "--name", "entra")).stdout)
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(token), &tok); err != nil || !strings.HasPrefix(tok.Token, "ust_") {
		t.Fatalf("token output %q: %v", token, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--db", db, "serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	logs := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			logs <- s.Text()
		}
		close(logs)
	}()
	var addr string
	var seen []string
	for addr == "" {
		select {
		case l := <-logs:
			seen = append(seen, l)
			var rec map[string]any
			json.Unmarshal([]byte(l), &rec)
			if a, _ := rec["address"].(string); a != "" {
				addr = a
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve logged no address")
		}
	}
	get := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", addr+path, nil)
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
	if code, body := get("/scim/v2/Users?filter="+`userName%20eq%20%22entra-admin%22`, tok.Token); code != 200 || !strings.Contains(body, `"totalResults":1`) {
		t.Fatalf("SCIM through serve: %d %s", code, body)
	}
	if code, _ := get("/scim/v2/Users", "ust_wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, metrics := get("/metrics", "")
	if code != 200 || !strings.Contains(metrics, `usersync_http_requests_total{route="/scim/v2/Users",method="GET",code="200"} 1`) ||
		!strings.Contains(metrics, `usersync_http_requests_total{route="/scim/v2/Users",method="GET",code="401"} 1`) ||
		!strings.Contains(metrics, `usersync_http_request_duration_seconds{route="/scim/v2/Users",method="GET",quantile="0.99"}`) {
		t.Fatalf("metrics:\n%s", metrics)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(35 * time.Second):
		t.Fatal("serve did not stop")
	}
	for l := range logs {
		seen = append(seen, l)
	}
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, `"msg":"stopped"`) || !strings.Contains(all, `"path":"/scim/v2/Users"`) || strings.Contains(all, tok.Token) {
		t.Fatalf("logs (must show the request and the stop, never the token):\n%s", all)
	}
}
