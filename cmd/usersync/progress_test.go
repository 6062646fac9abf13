package main

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	graphemu "github.com/usersync/usersync/emulate/graph"
	oktaemu "github.com/usersync/usersync/emulate/okta"
	"github.com/usersync/usersync/pull"
)

// TestProgressBarOnTerminal runs a sync with standard error on a pseudo
// terminal (a bar is drawn) and on a pipe (nothing but the summary).
func TestProgressBarOnTerminal(t *testing.T) {
	// Enough pages, slow enough, that the bar (redrawn at most every 100 ms)
	// is drawn mid-sync however fast the machine writes.
	tenant := graphemu.Generate(12, 8000, 1)
	emu := graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: emuSecret, Latency: 60 * time.Millisecond})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	args := func(db string) []string {
		return []string{"--db", db, "o365", "provision", "--tenant", tenant.ID, "--client-id", "app-1", "--client-secret", emuSecret,
			"--authority-url", srv.URL, "--graph-url", srv.URL, "-a", "all", "All Users"}
	}

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo terminal here: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 80}) // a common terminal width
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&screen, ptmx); close(read) }()
	var out bytes.Buffer
	if code := run(context.Background(), args(filepath.Join(t.TempDir(), "a.db")), strings.NewReader(""), &out, tty); code != 0 {
		t.Fatalf("exit %d", code)
	}
	tty.Close()
	select {
	case <-read:
	case <-time.After(5 * time.Second):
	}
	if !strings.Contains(screen.String(), "users fetched") || !strings.Contains(screen.String(), "All Users") {
		t.Fatalf("no progress bar on the terminal: %q", screen.String())
	}
	// Every drawing fits the 80 columns (a wrapped line cannot be redrawn
	// in place), and the last thing written erases the line.
	for _, line := range strings.FieldsFunc(screen.String(), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if n := len([]rune(strings.ReplaceAll(line, "\x1b[K", ""))); n >= 80 {
			t.Fatalf("a drawing %d columns wide: %q", n, line)
		}
	}
	if !strings.HasSuffix(screen.String(), "\r\x1b[K") {
		t.Fatalf("the bar was left on the screen: %q", screen.String()[max(0, screen.Len()-200):])
	}

	// Piped: stderr is a pipe, not a terminal.
	pr, pw, _ := os.Pipe()
	var piped bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&piped, pr); close(done) }()
	if code := run(context.Background(), args(filepath.Join(t.TempDir(), "b.db")), strings.NewReader(""), &out, pw); code != 0 {
		t.Fatalf("exit %d", code)
	}
	pw.Close()
	<-done
	if piped.Len() != 0 {
		t.Fatalf("piped standard error got %q", piped.String())
	}
}

// The progress line fits any width, shortening a long group name first.
func TestProgressLineFits(t *testing.T) {
	for _, width := range []int{12, 30, 40, 60, 79, 119, 200} {
		for _, p := range []pull.Progress{
			{Group: "All Users", Total: 100000, Pages: 42, Fetched: 41958, Applied: 39960},
			{Group: strings.Repeat("A very long group name ", 6), Total: -1, Pages: 3, Fetched: 2997, Applied: 2997},
		} {
			line := progressLine(p, width)
			if n := len([]rune(line)); n > width {
				t.Fatalf("width %d: %d columns: %q", width, n, line)
			}
			if width >= 60 && !strings.Contains(line, "users fetched") {
				t.Fatalf("width %d: the counts are cut: %q", width, line)
			}
		}
	}
}

// TestOktaTokenPrompt: -P alone on a terminal asks for the token without echo.
func TestOktaTokenPrompt(t *testing.T) {
	org := oktaemu.Generate(61, 10, 2)
	srv := httptest.NewServer(oktaemu.NewServer(org, oktaemu.Options{Token: oktaToken}))
	defer srv.Close()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	var screen lockedBuffer
	go io.Copy(&screen, ptmx)
	go func() {
		// Type only once the prompt is shown (echo is off by then).
		for i := 0; i < 500 && !strings.Contains(screen.String(), "Okta API token:"); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		ptmx.Write([]byte(oktaToken + "\r"))
	}()
	var out bytes.Buffer
	code := run(context.Background(), []string{"--db", filepath.Join(t.TempDir(), "d.db"), "okta", "provision", "-H", srv.URL, "-a", "all", "Group 1", "-P"},
		tty, &out, tty)
	if code != 0 || !strings.Contains(out.String(), "Group 1 → Group 1") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	time.Sleep(50 * time.Millisecond)
	if !strings.Contains(screen.String(), "Okta API token:") || strings.Contains(screen.String(), oktaToken) {
		t.Fatalf("terminal showed %q: want the prompt and no echo of the token", screen.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
