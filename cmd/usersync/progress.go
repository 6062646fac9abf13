package main

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/usersync/usersync/pull"
)

// progressBar shows a long sync's progress on a terminal. The zero value
// (output piped, or -v/-q) shows nothing.
type progressBar struct {
	bar *progressbar.ProgressBar
}

// progress returns a bar for one group when standard error is a terminal
// and nothing else is being written there.
func (a *app) progress(group string, pf *provisionFlags) *progressBar {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || pf.verbose || pf.noSummary || a.output == "json" {
		return &progressBar{}
	}
	return &progressBar{bar: progressbar.NewOptions(-1, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(group),
		progressbar.OptionShowCount(), progressbar.OptionSetItsString("users"), progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionSpinnerType(14),
		// No spinner ticker: its goroutine reads the bar without the lock (a data race in v3.19).
		progressbar.OptionSetSpinnerChangeInterval(0))}
}

func (b *progressBar) update(p pull.Progress) {
	if b.bar == nil {
		return
	}
	if p.Total >= 0 && b.bar.GetMax() != p.Total {
		b.bar.ChangeMax(p.Total)
	}
	b.bar.Describe(fmt.Sprintf("%s: %d pages, %d users fetched, applied", p.Group, p.Pages, p.Fetched))
	b.bar.Set(p.Applied)
}

func (b *progressBar) done() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
