package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseQuartz(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 3, 0, time.UTC) // a Tuesday
	for _, tc := range []struct {
		spec string
		next time.Time
	}{
		{"0,5,10,15,20,25,30,35,40,45,50,55 * * * * ?", at.Add(2 * time.Second)}, // the seed's: every 5 s
		{"*/30 * * * * ?", time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)},
		{"0 0 2 ? * 1", time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)}, // Quartz 1 is Sunday
		{"0 0 2 ? * MON-FRI", time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)},
		{"0 0 2 ? * 2-6", time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)},
		{"0 0 12 1 * ? *", time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)},
		{"0 0 9 ? JUL WED", time.Date(2027, 7, 7, 9, 0, 0, 0, time.UTC)},
	} {
		s, err := ParseQuartz(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := s.Next(at); !got.Equal(tc.next) {
			t.Errorf("%s: next after %s = %s, want %s", tc.spec, at, got, tc.next)
		}
	}
}

func TestParseQuartzErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"* * * * *":           "needs 6 or 7",
		"0 0 2 L * ?":         `"L" in field 4 (day-of-month) is not supported`,
		"0 0 2 ? * 6#3":       `"#" in field 6`,
		"0 0 2 ? * 8":         "8 is not a day 1–7",
		"0 0 2 * * ? 2027":    "year field",
		"? 0 2 * * *":         "'?' is allowed only",
		"0 61 * * * ?":        "61",
		"every five seconds!": "needs 6 or 7",
	} {
		_, err := ParseQuartz(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", spec, err, want)
		}
	}
}

func FuzzParseQuartz(f *testing.F) {
	f.Add("0,5,10,15,20,25,30,35,40,45,50,55 * * * * ?")
	f.Add("0 0 2 ? * MON-FRI")
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseQuartz(spec)
		if err == nil {
			s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		}
	})
}

func TestParseForms(t *testing.T) {
	from := time.Date(2026, 12, 1, 10, 7, 30, 0, time.UTC)
	for _, tc := range []struct {
		spec, tz string
		want     time.Time
	}{
		{"*/40 * * * *", "", time.Date(2026, 12, 1, 10, 40, 0, 0, time.UTC)},
		{"0 0/5 * * * ?", "", time.Date(2026, 12, 1, 10, 10, 0, 0, time.UTC)},
		{"0 9 * * *", "Europe/Paris", time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}, // 09:00 in Paris is 08:00 UTC in winter
		{"* * * * * ?", "", time.Date(2026, 12, 1, 10, 7, 31, 0, time.UTC)},
	} {
		s, err := Parse(tc.spec, tc.tz)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := s.Next(from); !got.Equal(tc.want) {
			t.Errorf("%s in %q: next %s, want %s", tc.spec, tc.tz, got.UTC(), tc.want)
		}
	}
	for spec, says := range map[string]string{"* * *": "five", "61 * * * *": "cron", "0 0 0 L * ?": "not supported"} {
		if _, err := Parse(spec, ""); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want it to say %q", spec, err, says)
		}
	}
	if _, err := Parse("* * * * *", "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "IANA") {
		t.Errorf("a bad time zone: %v", err)
	}
}
