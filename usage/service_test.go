package usage

import (
	"testing"
	"time"
)

func TestParseGUID(t *testing.T) {
	const want = "8f1c2b3a4d5e6f708192a3b4c5d6e7f8"
	f := func(in string, ok bool) {
		t.Helper()
		g, err := ParseGUID(in)
		switch {
		case ok && err != nil:
			t.Errorf("ParseGUID(%q): %v", in, err)
		case ok && g.String() != want:
			t.Errorf("ParseGUID(%q) = %s, want %s", in, g, want)
		case !ok && err == nil:
			t.Errorf("ParseGUID(%q) = %s, want an error", in, g)
		}
	}
	f(want, true)
	f("8F1C2B3A4D5E6F708192A3B4C5D6E7F8", true)
	f("8f1c2b3a-4d5e-6f70-8192-a3b4c5d6e7f8", true)
	f("{8f1c2b3a-4d5e-6f70-8192-a3b4c5d6e7f8}", true)
	f("(8F1C2B3A-4D5E-6F70-8192-A3B4C5D6E7F8)", true)
	f("{8f1c2b3a4d5e6f708192a3b4c5d6e7f8}", true)
	f("", false)
	f("abc", false)
	f("8f1c2b3a-4d5e-6f70-8192-a3b4c5d6e7f", false)
	f("8f1c2b3a4d5e-6f70-8192-a3b4c5d6e7f8-", false)
	f("8f1c2b3a-4d5e-6f70-8192a-3b4c5d6e7f8", false)
	f("zf1c2b3a4d5e6f708192a3b4c5d6e7f8", false)
	f("{8f1c2b3a4d5e6f708192a3b4c5d6e7f8)", false)
	f(" 8f1c2b3a4d5e6f708192a3b4c5d6e7f8", false)
}

func TestNewGUIDIsVersion4(t *testing.T) {
	g := NewGUID()
	if g.IsZero() || g[6]>>4 != 4 || g[8]>>6 != 2 {
		t.Fatalf("NewGUID() = %s: not a random version 4 GUID", g)
	}
	if NewGUID() == g {
		t.Fatal("two NewGUID calls gave the same GUID")
	}
}

func TestPeriods(t *testing.T) {
	f := func(pt PeriodType, at string, start, end string) {
		t.Helper()
		tm, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		p := PeriodOf(pt, tm)
		if got := p.Start.Format(time.RFC3339); got != start {
			t.Errorf("PeriodOf(%v, %s).Start = %s, want %s", pt, at, got, start)
		}
		if got := p.End().Format(time.RFC3339); got != end {
			t.Errorf("PeriodOf(%v, %s).End() = %s, want %s", pt, at, got, end)
		}
	}
	f(Daily, "2026-03-11T15:04:05Z", "2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z")
	f(Daily, "2026-03-11T23:30:00-02:00", "2026-03-12T00:00:00Z", "2026-03-13T00:00:00Z") // UTC days
	f(Daily, "2026-12-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z")
	f(Monthly, "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
	f(Monthly, "2028-02-15T00:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
	f(Monthly, "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
}

func TestEnumsIgnoreCase(t *testing.T) {
	if s, err := ParseServiceStatus("certifiedSECURE"); err != nil || s != StatusCertifiedSecure {
		t.Errorf("ParseServiceStatus: %v, %v", s, err)
	}
	if _, err := ParseServiceStatus("Deleted"); err == nil {
		t.Error("ParseServiceStatus accepted an unknown status")
	}
	if p, err := ParsePeriodType("monthly"); err != nil || p != Monthly {
		t.Errorf("ParsePeriodType: %v, %v", p, err)
	}
	if f, err := ParseFeature("securelargefiles"); err != nil || f != FeatureSecureLargeFiles {
		t.Errorf("ParseFeature: %v, %v", f, err)
	}
	for _, s := range ServiceStatuses {
		if got, err := ParseServiceStatus(s.String()); err != nil || got != s {
			t.Errorf("status %v does not round-trip: %v, %v", s, got, err)
		}
	}
	if StatusBlocked.Reportable() || StatusProvisioning.Reportable() || !StatusTrialExpired.Reportable() {
		t.Error("only Blocked and Provisioning services have no reports")
	}
}
