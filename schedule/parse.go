package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Parse reads a schedule as an administrator writes it: standard
// five-field cron ("*/40 * * * *") or the seed's Quartz form with seconds
// ("0 0/5 * * * ?"), evaluated in the IANA time zone tz ("" is UTC).
func Parse(spec, tz string) (Schedule, error) {
	loc := time.UTC
	if tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("time zone %q is not an IANA time zone name (such as Europe/Paris): %v", tz, err)
		}
	}
	var s Schedule
	var err error
	switch n := len(strings.Fields(spec)); n {
	case 5:
		if s, err = cron.ParseStandard(spec); err != nil {
			return nil, fmt.Errorf("cron %q: %v", spec, err)
		}
	case 6, 7:
		if s, err = ParseQuartz(spec); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cron %q has %d fields: give five (minute hour day-of-month month day-of-week) or Quartz's six or seven (seconds first)", spec, n)
	}
	return inZone{s, loc}, nil
}

// inZone evaluates a schedule's fields in a time zone.
type inZone struct {
	s   Schedule
	loc *time.Location
}

func (z inZone) Next(t time.Time) time.Time { return z.s.Next(t.In(z.loc)) }

// NextRun says when a schedule with this cron and time zone runs next
// after now, in UTC: "paused" when it is paused, and why when its cron
// cannot be read (a later usersync may read one otherwise).
func NextRun(spec, tz string, paused bool, now time.Time) string {
	if paused {
		return "paused"
	}
	when, err := Parse(spec, tz)
	if err != nil {
		return "cron unreadable: " + err.Error()
	}
	return "next run " + when.Next(now).UTC().Format("2006-01-02 15:04:05 UTC")
}
