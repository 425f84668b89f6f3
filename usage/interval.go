package usage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Interval is the half-open span [Start, End) in UTC.
type Interval struct {
	Start, End time.Time
}

// Validate reports whether the interval is usable: set, End after Start.
// Only the zero Interval is unset: a zero Start alone is 0001-01-01T00:00Z,
// a start before any event, which counts from the first.
func (iv Interval) Validate() error {
	if iv.Start.IsZero() && iv.End.IsZero() {
		return Errorf(KindInvalid, "interval", "interval needs a start and an end")
	}
	return iv.checkOrder()
}

// ErrIntervalOrder is the cause of the error for an interval whose end is
// not after its start, so that a face can tell a well-formed interval in
// the wrong order from a malformed one.
var ErrIntervalOrder = errors.New("interval end not after start")

// checkOrder reports an interval whose end is not after its start.
func (iv Interval) checkOrder() error {
	if !iv.End.After(iv.Start) {
		err := Errorf(KindInvalid, "interval", "interval end must be after start: got %s", iv)
		err.Err = ErrIntervalOrder
		return err
	}
	return nil
}

// Hours returns the smallest interval of whole UTC hours that contains iv.
func (iv Interval) Hours() Interval {
	s := iv.Start.UTC().Truncate(time.Hour)
	e := iv.End.UTC().Truncate(time.Hour)
	if e.Before(iv.End) {
		e = e.Add(time.Hour)
	}
	return Interval{Start: s, End: e}
}

// Contains reports whether t lies in [Start, End).
func (iv Interval) Contains(t time.Time) bool {
	return !t.Before(iv.Start) && t.Before(iv.End)
}

func (iv Interval) String() string {
	return iv.Start.UTC().Format(time.RFC3339) + "/" + iv.End.UTC().Format(time.RFC3339)
}

// maxDurationField bounds each number in an ISO-8601 duration so that date
// arithmetic cannot overflow.
const maxDurationField = 100_000

// ParseInterval parses an ISO-8601 interval "start/end", where each side is one of
//
//   - a date-time, "2026-01-01T00:00:00Z", with or without fractional seconds
//     and offset (no offset means UTC), or to the minute, "2026-01-01T10:00";
//   - a date, "2026-01-01": as a start, that day's midnight; as an end, that
//     whole day is included (the interval ends at the next midnight);
//   - a month, "2026-01": as a start, the month's first midnight; as an end,
//     that whole month is included;
//   - a duration, "P7D", "PT6H", "P1M", "P1Y2M10DT2H30M", "P2W", on at most one
//     side, measured from the other side with calendar arithmetic.
//
// The result is in UTC and must have its end after its start.
func ParseInterval(s string) (Interval, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(b, "/") {
		return Interval{}, Errorf(KindInvalid, "interval", "interval %q must be two parts separated by one '/', e.g. 2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", s)
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	aDur, bDur := isDuration(a), isDuration(b)
	var iv Interval
	switch {
	case aDur && bDur:
		return Interval{}, Errorf(KindInvalid, "interval", "interval %q has a duration on both sides; one side must be a date", s)
	case aDur:
		end, err := parseBound(b, true)
		if err != nil {
			return Interval{}, err
		}
		d, err := parseDuration(a)
		if err != nil {
			return Interval{}, err
		}
		iv = Interval{Start: d.sub(end), End: end}
	case bDur:
		start, err := parseBound(a, false)
		if err != nil {
			return Interval{}, err
		}
		d, err := parseDuration(b)
		if err != nil {
			return Interval{}, err
		}
		iv = Interval{Start: start, End: d.add(start)}
	default:
		start, err := parseBound(a, false)
		if err != nil {
			return Interval{}, err
		}
		end, err := parseBound(b, true)
		if err != nil {
			return Interval{}, err
		}
		iv = Interval{Start: start, End: end}
	}
	// Both bounds were given, whatever their value: only their order can
	// be wrong.
	if err := iv.checkOrder(); err != nil {
		return Interval{}, err
	}
	return iv, nil
}

func isDuration(s string) bool { return strings.HasPrefix(s, "P") || strings.HasPrefix(s, "p") }

var dateTimeLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
}

// parseBound parses one side of an interval. A date or month as the end
// includes the whole day or month.
func parseBound(s string, isEnd bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, Errorf(KindInvalid, "interval", "interval bound is empty")
	}
	if strings.Contains(s, "T") {
		for _, l := range dateTimeLayouts {
			if t, err := ParseTime(l, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, Errorf(KindInvalid, "interval", "interval bound %q is not an ISO-8601 date-time such as 2026-01-01T00:00:00Z", s)
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if isEnd {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse("2006-01", s); err == nil {
		if isEnd {
			t = t.AddDate(0, 1, 0)
		}
		return t, nil
	}
	return time.Time{}, Errorf(KindInvalid, "interval", "interval bound %q is not a date-time, a date (2026-01-31) or a month (2026-01)", s)
}

// isoDuration is a parsed ISO-8601 duration: calendar parts and a clock part.
type isoDuration struct {
	years, months, days int
	clock               time.Duration
}

func (d isoDuration) add(t time.Time) time.Time {
	return t.AddDate(d.years, d.months, d.days).Add(d.clock)
}

func (d isoDuration) sub(t time.Time) time.Time {
	return t.AddDate(-d.years, -d.months, -d.days).Add(-d.clock)
}

// parseDuration parses PnYnMnWnDTnHnMnS (integers only, each part optional but
// at least one present).
func parseDuration(s string) (isoDuration, error) {
	bad := func(why string) (isoDuration, error) {
		return isoDuration{}, Errorf(KindInvalid, "interval", "interval duration %q is not valid ISO-8601 (%s), e.g. P7D, PT12H, P1M", s, why)
	}
	rest := strings.ToUpper(s[1:])
	if rest == "" || rest == "T" {
		return bad("no parts")
	}
	var d isoDuration
	inTime := false
	seen := ""
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad("second T")
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return bad("T with no time parts")
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return bad("expected a number followed by a unit")
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > maxDurationField {
			return bad(fmt.Sprintf("number above %d", maxDurationField))
		}
		unit := rest[i]
		rest = rest[i+1:]
		tag := string(unit)
		if inTime {
			tag = "T" + tag
		}
		if strings.Contains(seen, tag+",") {
			return bad("unit repeated")
		}
		seen += tag + ","
		switch {
		case !inTime && unit == 'Y':
			d.years = n
		case !inTime && unit == 'M':
			d.months = n
		case !inTime && unit == 'W':
			d.days += 7 * n
		case !inTime && unit == 'D':
			d.days += n
		case inTime && unit == 'H':
			d.clock += time.Duration(n) * time.Hour
		case inTime && unit == 'M':
			d.clock += time.Duration(n) * time.Minute
		case inTime && unit == 'S':
			d.clock += time.Duration(n) * time.Second
		default:
			return bad(fmt.Sprintf("unknown unit %q", unit))
		}
	}
	return d, nil
}
