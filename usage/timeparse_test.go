package usage

import (
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	ok := func(layout, s, want string) {
		t.Helper()
		got, err := ParseTime(layout, s)
		if err != nil || got.UTC().Format(time.RFC3339Nano) != want {
			t.Errorf("ParseTime(%q) = %v, %v, want %s", s, got, err, want)
		}
	}
	bad := func(layout, s string) {
		t.Helper()
		if got, err := ParseTime(layout, s); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", s, got)
		} else if _, perr := time.Parse(layout, s); perr == nil && !strings.Contains(err.Error(), "out of range") {
			t.Errorf("ParseTime(%q): %v, want it to say the offset is out of range", s, err)
		}
	}
	const rfc, compact, clf = time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "02/Jan/2006:15:04:05 -0700"
	ok(rfc, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
	ok(rfc, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z")
	ok(rfc, "2026-01-01T00:00:00-00:00", "2026-01-01T00:00:00Z")
	ok(rfc, "2026-01-01T00:00:00+23:59", "2025-12-31T00:01:00Z")
	ok(rfc, "2026-01-01T00:00:00-23:59", "2026-01-01T23:59:00Z")
	ok(rfc, "2026-01-01T12:00:00.5+05:30", "2026-01-01T06:30:00.5Z")
	ok(compact, "2026-01-01T00:00:00+0100", "2025-12-31T23:00:00Z")
	ok(clf, "10/Oct/2000:13:55:36 -0700", "2000-10-10T20:55:36Z")
	ok("2006-01-02T15:04:05", "2026-01-01T00:00:00", "2026-01-01T00:00:00Z")

	// time.Parse takes these; RFC 3339 does not.
	bad(rfc, "2026-01-01T00:00:00+24:00")
	bad(rfc, "2026-01-01T00:00:00-24:00")
	bad(rfc, "2026-01-01T00:00:00+23:60")
	bad(rfc, "2026-01-01T00:00:00+00:60")
	bad(rfc, "2026-01-01T00:00:00-05:60")
	bad(compact, "2026-01-01T00:00:00+2400")
	bad(compact, "2026-01-01T00:00:00+0060")
	bad(clf, "10/Oct/2000:13:55:36 +2400")
	bad(clf, "10/Oct/2000:13:55:36 -0160")
	// And what time.Parse refuses stays refused.
	bad(rfc, "2026-01-01T00:00:00+25:00")
	bad(rfc, "2026-01-01T24:00:00Z")
}
