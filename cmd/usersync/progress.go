package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/usersync/usersync/pull"
)

// progressBar shows a long sync's progress on one line of a terminal. It
// is redrawn in place (carriage return, then erase to the end of the
// line), and never drawn wider than the terminal is now: a line that wraps
// cannot be redrawn in place and leaves stale lines behind. The zero value
// (output piped, or -v/-q/-o json) shows nothing.
type progressBar struct {
	f *os.File

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

// progress returns a bar for one group when standard error is a terminal
// and nothing else is being written there.
func (a *app) progress(group string, pf *provisionFlags) *progressBar {
	w := a.stderr
	if l, ok := w.(*lockedWriter); ok {
		w = l.w // the bar draws alone: with -v (when others write too) there is none
	}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || pf.verbose || pf.noSummary || a.output == "json" {
		return &progressBar{}
	}
	return &progressBar{f: f}
}

func (b *progressBar) update(p pull.Progress) {
	b.draw(func(width int) string { return progressLine(p, width) })
}

// show draws one line of text, shortened to the terminal's width.
func (b *progressBar) show(line string) {
	b.draw(func(width int) string { return truncate(line, width) })
}

// draw redraws the line at most ten times a second, one column narrower
// than the terminal is now.
func (b *progressBar) draw(line func(width int) string) {
	if b.f == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last, b.drawn = time.Now(), true
	width, _, err := term.GetSize(int(b.f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	fmt.Fprint(b.f, "\r"+line(width-1)+"\x1b[K")
}

// progressLine renders p in at most width columns: the counts first, then
// a bar when there is room; a long group name is shortened.
func progressLine(p pull.Progress, width int) string {
	counts := fmt.Sprintf(": %d users fetched (%d pages), %d applied", p.Fetched, p.Pages, p.Applied)
	if p.Total >= 0 {
		counts = fmt.Sprintf(": %d of %d users fetched (%d pages), %d applied", p.Fetched, p.Total, p.Pages, p.Applied)
	}
	name := p.Group
	if room := width - utf8.RuneCountInString(counts); utf8.RuneCountInString(name) > room {
		name = truncate(name, max(room, 4))
	}
	line := name + counts
	if bar := width - utf8.RuneCountInString(line) - 3; p.Total > 0 && bar >= 10 {
		bar = min(bar, 30)
		done := min(bar, bar*p.Applied/p.Total)
		line += " [" + strings.Repeat("=", done) + strings.Repeat(" ", bar-done) + "]"
	}
	return truncate(line, width)
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:max(n, 0)])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// done erases the bar's line, leaving nothing behind.
func (b *progressBar) done() {
	if b.f == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.f, "\r\x1b[K")
	}
}
