package reports_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/reports"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// fakeUsage answers every period with its number of days in Messages and
// records the calls.
type fakeUsage struct {
	series [][2]time.Time
	totals int
}

func (f *fakeUsage) ServiceTotals(_ context.Context, _ usage.GUID, from, to time.Time) (usage.ServiceTotals, error) {
	f.totals++
	return usage.ServiceTotals{Messages: int64(to.Sub(from) / (24 * time.Hour))}, nil
}

func (f *fakeUsage) ServiceUsers(context.Context, usage.GUID, time.Time, time.Time, usage.GUID) ([]usage.UserUsage, error) {
	return nil, nil
}

func (f *fakeUsage) ServiceSeries(_ context.Context, _ usage.GUID, from, to time.Time, step usage.PeriodType) ([]usage.ServiceTotals, error) {
	f.series = append(f.series, [2]time.Time{from, to})
	var out []usage.ServiceTotals
	for p := usage.PeriodOf(step, from); p.Start.Before(to); p = usage.PeriodOf(step, p.End()) {
		out = append(out, usage.ServiceTotals{Messages: int64(p.End().Sub(p.Start) / (24 * time.Hour))})
	}
	return out, nil
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func mustService(t *testing.T, u store.Reports) *reports.Service {
	t.Helper()
	now := date(2026, 3, 10).Add(15 * time.Hour)
	s, err := reports.New(reports.Config{Usage: u, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A history is one call for the whole range, whatever its length.
func TestHistoryIsOneSeries(t *testing.T) {
	f := &fakeUsage{}
	s := mustService(t, f)
	svc := &usage.Service{GUID: usage.NewGUID(), Status: usage.StatusCertifiedSecure}
	check := func(req reports.HistoryRequest, first, last time.Time, n int) {
		t.Helper()
		f.series, f.totals = nil, 0
		pers, totals, err := s.History(t.Context(), svc, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(pers) != n || len(totals) != n || !pers[0].Start.Equal(first) || !pers[n-1].Start.Equal(last) {
			t.Fatalf("%+v: %d periods %v…%v, want %d %v…%v", req, len(pers), pers[0], pers[len(pers)-1], n, first, last)
		}
		if len(f.series) != 1 || f.totals != 0 || !f.series[0][0].Equal(first) || !f.series[0][1].Equal(pers[n-1].End()) {
			t.Fatalf("%+v: series calls %v and %d totals calls, want one series [%v, %v)", req, f.series, f.totals, first, pers[n-1].End())
		}
	}
	from, to := date(2025, 3, 10), date(2026, 3, 10)
	check(reports.HistoryRequest{From: &from, To: &to}, from, to, reports.MaxDailyPeriods)
	check(reports.HistoryRequest{}, date(2026, 2, 9), date(2026, 3, 10), 30)
	check(reports.HistoryRequest{Type: usage.Monthly}, date(2025, 4, 1), date(2026, 3, 1), 12)
}

// Fields past their bounds are refused, one Bound each, From's first, and
// before the service's status is looked at.
func TestHistoryBounds(t *testing.T) {
	s := mustService(t, &fakeUsage{})
	blocked := &usage.Service{GUID: usage.NewGUID(), Status: usage.StatusBlocked}
	from, to := date(2026, 3, 12), date(2026, 3, 11)
	_, _, err := s.History(t.Context(), blocked, reports.HistoryRequest{From: &from, To: &to})
	b, ok := errors.AsType[reports.Bounds](err)
	want := reports.Bounds{
		{Field: "From", Message: "'From' must be on or before 'To' (2026-03-11); got 2026-03-12."},
		{Field: "To", Message: "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11."},
	}
	if !ok || !slices.Equal(b, want) || usage.KindOf(err) != usage.KindInvalid {
		t.Fatalf("got %v (%v), want %v", err, usage.KindOf(err), want)
	}
	if _, _, err := s.History(t.Context(), blocked, reports.HistoryRequest{}); !errors.Is(err, reports.ErrNotReportable) || usage.KindOf(err) != usage.KindConflict {
		t.Fatalf("blocked: got %v", err)
	}
}

func TestPeriod(t *testing.T) {
	s := mustService(t, &fakeUsage{})
	if p, err := s.Period(usage.Monthly, date(2026, 3, 31)); err != nil || !p.Start.Equal(date(2026, 3, 1)) {
		t.Fatalf("this month: %v, %v", p, err)
	}
	_, err := s.Period(usage.Daily, date(2026, 3, 11))
	if b, ok := errors.AsType[reports.Bounds](err); !ok || len(b) != 1 || b[0].Field != "Period" {
		t.Fatalf("tomorrow: %v", err)
	}
}

func TestReportable(t *testing.T) {
	for st := usage.ServiceStatus(1); !strings.HasPrefix(st.String(), "unknown"); st++ {
		if got := reports.Reportable(&usage.Service{Status: st}); got != (st != usage.StatusBlocked && st != usage.StatusProvisioning) {
			t.Errorf("%s: Reportable = %v", st, got)
		}
	}
}
