package usage

import (
	"strings"
	"testing"
	"time"
)

func TestParseInterval(t *testing.T) {
	f := func(in, start, end string) {
		t.Helper()
		iv, err := ParseInterval(in)
		if err != nil {
			t.Fatalf("ParseInterval(%q): %v", in, err)
		}
		if got := iv.Start.Format(time.RFC3339) + "/" + iv.End.Format(time.RFC3339); got != start+"/"+end {
			t.Fatalf("ParseInterval(%q) = %s, want %s/%s", in, got, start, end)
		}
	}
	f("2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
	f("2020-02-01T00:00:00/2020-03-01T00:00:00", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z")
	f("2020-02-01T00:00:00.000Z/2020-03-01T00:00:00.000Z", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z")
	f("2026-01-01T02:00:00+02:00/2026-01-01T10:30", "2026-01-01T00:00:00Z", "2026-01-01T10:30:00Z")
	f("2020-02-01/2020-02-28", "2020-02-01T00:00:00Z", "2020-02-29T00:00:00Z")
	f("2020-01/2020-06", "2020-01-01T00:00:00Z", "2020-07-01T00:00:00Z")
	f("P7D/2026-01-08", "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z")
	f("P7D/2026-01-08T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z")
	f("2026-01-01/P1M", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
	f("2026-01-31T00:00:00Z/P1M", "2026-01-31T00:00:00Z", "2026-03-03T00:00:00Z")
	f("2026-01-01T00:00:00Z/PT36H", "2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z")
	f("2026-01-01T00:00:00Z/P1W", "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z")
	f("2026-01-01T00:00:00Z/P1Y2M3DT4H5M6S", "2026-01-01T00:00:00Z", "2027-03-04T04:05:06Z")
	f("2026-01-01T00:00:00+23:59/2026-01-02T00:00:00-2359", "2025-12-31T00:01:00Z", "2026-01-02T23:59:00Z")
	// A start at the zero time is a start before every event, not a missing one.
	f("0001-01-01/2026-01-01", "0001-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
	f("0001-01-01T00:00:00Z/0001-01-01T01:00:00Z", "0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z")
	f("0001-01/P1D", "0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z")
}

func TestParseIntervalErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := ParseInterval(in)
		if err == nil {
			t.Fatalf("ParseInterval(%q) succeeded, want error containing %q", in, want)
		}
		if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseInterval(%q) = %v, want invalid error containing %q", in, err, want)
		}
		var e *Error
		if !asError(err, &e) || e.Field != "interval" {
			t.Fatalf("ParseInterval(%q) error does not name the interval field: %#v", in, err)
		}
	}
	f("", "two parts")
	f("2026-01-01", "two parts")
	f("2026-01-01/2026-01-02/2026-01-03", "two parts")
	f("2026-02-01/2026-01-01", "end must be after start")
	f("2026-01-01T00:00:00Z/2026-01-01T00:00:00Z", "end must be after start")
	f("P1D/P2D", "duration on both sides")
	f("2026-13-01/2027-01-01", "not a date-time")
	f("2026-01-01T25:00:00Z/2027-01-01", "not an ISO-8601 date-time")
	f("2026-01-01/P", "no parts")
	f("2026-01-01/PT", "no parts")
	f("2026-01-01/P1X", "unknown unit")
	f("2026-01-01/P1D1D", "repeated")
	f("2026-01-01/P999999999D", "above")
	f("/2026-01-01", "empty")
	// Offsets RFC 3339 and ISO 8601 do not allow, which time.Parse takes.
	f("2026-01-01T00:00:00+24:00/2026-01-02", "not an ISO-8601 date-time")
	f("2026-01-01/2026-01-02T00:00:00-24:00", "not an ISO-8601 date-time")
	f("2026-01-01T00:00:00+23:60/2026-01-02", "not an ISO-8601 date-time")
	f("2026-01-01T00:00:00+2400/2026-01-02", "not an ISO-8601 date-time")
	f("2026-01-01T00:00+24:00/2026-01-02", "not an ISO-8601 date-time")
	f("P1D/2026-01-01T00:00:00+00:60", "not an ISO-8601 date-time")
	// Bounds at the zero time are bounds: the message says what is wrong.
	f("0001-01-01T00:00:00Z/0001-01-01T00:00:00Z", "end must be after start")
	f("2026-01-01/0001-01-01", "end must be after start")
}

func TestValidateInterval(t *testing.T) {
	if err := (Interval{}).Validate(); err == nil || !strings.Contains(err.Error(), "needs a start and an end") {
		t.Errorf("the zero Interval: %v", err)
	}
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := (Interval{End: end}).Validate(); err != nil {
		t.Errorf("a start at the zero time: %v", err)
	}
	if err := (Interval{Start: end}).Validate(); err == nil || !strings.Contains(err.Error(), "end must be after start") {
		t.Errorf("an end at the zero time: %v", err)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestHours(t *testing.T) {
	iv := Interval{Start: time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 12, 0, 1, 0, time.UTC)}
	got := iv.Hours()
	if got.Start.Hour() != 10 || got.Start.Minute() != 0 || got.End.Hour() != 13 {
		t.Fatalf("Hours() = %s", got)
	}
}

func TestGranularityTruncate(t *testing.T) {
	ts := time.Date(2026, 1, 1, 15, 4, 5, 0, time.UTC) // a Thursday
	f := func(g Granularity, want string) {
		t.Helper()
		if got := g.Truncate(ts).Format(time.RFC3339); got != want {
			t.Fatalf("%v.Truncate = %s, want %s", g, got, want)
		}
	}
	f(GranularityHour, "2026-01-01T15:00:00Z")
	f(GranularityDay, "2026-01-01T00:00:00Z")
	f(GranularityWeek, "2025-12-29T00:00:00Z")
	f(GranularityMonth, "2026-01-01T00:00:00Z")
	sunday := time.Date(2026, 1, 4, 23, 0, 0, 0, time.UTC)
	if got := GranularityWeek.Truncate(sunday); got.Day() != 29 {
		t.Fatalf("week of Sunday 2026-01-04 starts %s, want Monday 2025-12-29", got)
	}
}

func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", "2020-02-01/2020-02-28", "2020-01/2020-06",
		"P7D/2026-01-08", "2026-01-01/P1M", "2026-01-01T00:00:00+05:30/PT1H30M", "P1Y2M3W4DT5H6M7S/2026-01-01", "/", "P/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		iv, err := ParseInterval(s)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("ParseInterval(%q) error of kind %v", s, KindOf(err))
			}
			return
		}
		if !iv.End.After(iv.Start) || iv.Start.Location() != time.UTC || iv.End.Location() != time.UTC {
			t.Fatalf("ParseInterval(%q) = %v: not a UTC interval with end after start", s, iv)
		}
		h := iv.Hours()
		if h.Start.After(iv.Start) || h.End.Before(iv.End) {
			t.Fatalf("Hours(%v) = %v does not cover it", iv, h)
		}
	})
}
