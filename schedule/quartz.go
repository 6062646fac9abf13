// Package schedule reads the schedules of provisioners: Quartz cron
// expressions as Grouper writes them (seconds first, "?" for "no specific
// value", days of the week numbered 1–7 from Sunday, an optional year),
// evaluated by robfig/cron.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule gives the next time after a given one.
type Schedule interface{ Next(time.Time) time.Time }

var parser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseQuartz reads a Quartz cron expression: "sec min hour day-of-month
// month day-of-week [year]". What robfig/cron cannot express (L, W, #, a
// year other than *) is refused by name rather than read differently.
func ParseQuartz(spec string) (Schedule, error) {
	fields := strings.Fields(spec)
	if len(fields) != 6 && len(fields) != 7 {
		return nil, fmt.Errorf("quartz cron %q has %d fields; it needs 6 or 7: seconds minutes hours day-of-month month day-of-week [year]", spec, len(fields))
	}
	if len(fields) == 7 {
		if fields[6] != "*" && fields[6] != "?" {
			return nil, fmt.Errorf("quartz cron %q: a year field other than * is not supported", spec)
		}
		fields = fields[:6]
	}
	for i, f := range fields {
		for _, c := range []string{"L", "W", "#"} {
			if strings.Contains(strings.ToUpper(f), c) && !(i == 5 && isDayName(f)) && !(i == 4 && isMonthName(f)) {
				return nil, fmt.Errorf("quartz cron %q: %q in field %d (%s) is not supported", spec, c, i+1, fieldNames[i])
			}
		}
		if f == "?" {
			if i != 3 && i != 5 {
				return nil, fmt.Errorf("quartz cron %q: '?' is allowed only in day-of-month and day-of-week", spec)
			}
			fields[i] = "*"
		}
	}
	dow, err := quartzDays(fields[5])
	if err != nil {
		return nil, fmt.Errorf("quartz cron %q: day-of-week: %v", spec, err)
	}
	fields[5] = dow
	s, err := parser.Parse(strings.Join(fields, " "))
	if err != nil {
		return nil, fmt.Errorf("quartz cron %q: %v", spec, err)
	}
	return s, nil
}

var fieldNames = []string{"seconds", "minutes", "hours", "day-of-month", "month", "day-of-week"}

func isDayName(f string) bool {
	u := strings.ToUpper(f)
	for _, d := range []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"} {
		u = strings.ReplaceAll(u, d, "")
	}
	return !strings.ContainsAny(u, "LW#")
}

func isMonthName(f string) bool {
	u := strings.ToUpper(f)
	for _, m := range []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"} {
		u = strings.ReplaceAll(u, m, "")
	}
	return !strings.ContainsAny(u, "LW#")
}

// quartzDays renumbers a day-of-week field from Quartz's 1–7 (Sunday
// first) to cron's 0–6; names and steps are kept.
func quartzDays(f string) (string, error) {
	var out []string
	for _, part := range strings.Split(f, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		var ends []string
		for _, end := range strings.SplitN(rng, "-", 2) {
			if n, err := strconv.Atoi(end); err == nil {
				if n < 1 || n > 7 {
					return "", fmt.Errorf("%d is not a day 1–7 (1 is Sunday)", n)
				}
				end = strconv.Itoa(n - 1)
			}
			ends = append(ends, end)
		}
		p := strings.Join(ends, "-")
		if hasStep {
			p += "/" + step
		}
		out = append(out, p)
	}
	return strings.Join(out, ","), nil
}
