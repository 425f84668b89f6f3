// Package reports answers the usage reports of services: the period a
// report covers, which services have reports at all, a service's totals and
// users in a period, and its history, period by period. It reads the usage
// a store has recorded (Usage) and knows nothing of any wire format: faces
// bind a request to its arguments and word its errors.
package reports

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// The longest history one request answers.
const (
	MaxDailyPeriods   = 366
	MaxMonthlyPeriods = 60
)

// Config configures a Service.
type Config struct {
	Usage store.Reports    // required
	Now   func() time.Time // the clock of "today"; default time.Now
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	if c.Usage == nil {
		return errors.New("reports: Usage is required")
	}
	return nil
}

// Service answers usage reports. It is safe for concurrent use.
type Service struct {
	usage store.Reports
	now   func() time.Time
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{usage: cfg.Usage, now: cfg.Now}, nil
}

// Today returns the time now in UTC, whose day is the latest a report may
// cover.
func (s *Service) Today() time.Time { return s.now().UTC() }

// Yesterday returns the time a day before Today: the default day of the
// per-user reports, the last one complete.
func (s *Service) Yesterday() time.Time { return s.Today().AddDate(0, 0, -1) }

// ErrNotReportable is in the chain of the error for a report of a service
// whose status has none.
var ErrNotReportable = errors.New("usage reports are not available for Blocked or Provisioning services")

// Reportable reports whether usage reports of svc are produced: Blocked
// and Provisioning services have none, are refused with ErrNotReportable
// and are left out of every list of reports.
func Reportable(svc *usage.Service) bool { return svc.Status.Reportable() }

// checkReportable returns nil for a Reportable service, and otherwise a
// usage.KindConflict error wrapping ErrNotReportable.
func checkReportable(svc *usage.Service) error {
	if Reportable(svc) {
		return nil
	}
	return &usage.Error{Kind: usage.KindConflict, Err: ErrNotReportable,
		Message: fmt.Sprintf("Service %s is %s: %s", svc.GUID, svc.Status, ErrNotReportable)}
}

// A Bound is a request field past its upper bound: the field's name and
// what it must be, with what it was.
type Bound struct {
	Field   string // From, To, Period
	Message string // 'To' must be on or before today (2026-03-10 UTC); got 2026-03-11.
}

// Bounds is in the chain of the usage.KindInvalid error of a request with
// fields past their bounds: one per field at fault, in the order of the
// request's fields. The usage.Error names the first.
type Bounds []Bound

// Error joins the messages.
func (b Bounds) Error() string {
	msgs := make([]string, len(b))
	for i := range b {
		msgs[i] = b[i].Message
	}
	return strings.Join(msgs, " ")
}

// invalid returns the error of bounds, which are not empty.
func invalid(b Bounds) error {
	return &usage.Error{Kind: usage.KindInvalid, Field: b[0].Field, Message: b[0].Message, Err: b}
}

// onOrBeforeToday is the Bound of field when period p has not begun yet.
func (s *Service) onOrBeforeToday(field string, p usage.Period) (Bound, bool) {
	today := s.Today()
	if !p.Start.After(today) {
		return Bound{}, false
	}
	return Bound{Field: field, Message: fmt.Sprintf("'%s' must be on or before today (%s UTC); got %s.",
		field, today.Format(time.DateOnly), p.Start.Format(time.DateOnly))}, true
}

// Period returns the period of type pt containing day (its time of day
// ignored), which is the request's field Period. A period that has not
// begun yet has no usage to report: it is refused with Bounds.
func (s *Service) Period(pt usage.PeriodType, day time.Time) (usage.Period, error) {
	per := usage.PeriodOf(pt, day)
	if b, late := s.onOrBeforeToday("Period", per); late {
		return usage.Period{}, invalid(Bounds{b})
	}
	return per, nil
}

// Totals returns the usage of svc in per, if svc is Reportable.
func (s *Service) Totals(ctx context.Context, svc *usage.Service, per usage.Period) (usage.ServiceTotals, error) {
	if err := checkReportable(svc); err != nil {
		return usage.ServiceTotals{}, err
	}
	return s.usage.ServiceTotals(ctx, svc.GUID, per.Start, per.End())
}

// Users returns the users of svc known by the end of per with their usage
// in it (only one when only is not zero), if svc is Reportable.
func (s *Service) Users(ctx context.Context, svc *usage.Service, per usage.Period, only usage.GUID) ([]usage.UserUsage, error) {
	if err := checkReportable(svc); err != nil {
		return nil, err
	}
	return s.usage.ServiceUsers(ctx, svc.GUID, per.Start, per.End(), only)
}

// HistoryRequest is what a history covers: the periods of Type containing
// From and To, both included. Nil To means today; nil From means 30 days or
// 12 months ending with To's period. Zero Type means Daily.
type HistoryRequest struct {
	Type     usage.PeriodType
	From, To *time.Time
}

// History returns svc's usage in every period of req, oldest first, and
// those periods. A history of more than MaxDailyPeriods days or
// MaxMonthlyPeriods months, one whose From is after its To, or whose To
// has not begun, is refused with Bounds (From's before To's); then a
// service that is not Reportable.
func (s *Service) History(ctx context.Context, svc *usage.Service, req HistoryRequest) ([]usage.Period, []usage.ServiceTotals, error) {
	pt := req.Type
	if pt == 0 {
		pt = usage.Daily
	}
	to := s.Today()
	if req.To != nil {
		to = *req.To
	}
	last := usage.PeriodOf(pt, to)
	limit := MaxDailyPeriods
	if pt == usage.Monthly {
		limit = MaxMonthlyPeriods
	}
	var from time.Time
	switch {
	case req.From != nil:
		from = *req.From
	case pt == usage.Monthly:
		from = last.Start.AddDate(0, -11, 0)
	default:
		from = last.Start.AddDate(0, 0, -29)
	}
	first := usage.PeriodOf(pt, from)
	var bounds Bounds
	n := periods(first, last)
	switch {
	case first.Start.After(last.Start):
		bounds = append(bounds, Bound{Field: "From",
			Message: fmt.Sprintf("'From' must be on or before 'To' (%s); got %s.", last.Start.Format(time.DateOnly), first.Start.Format(time.DateOnly))})
	case n > limit:
		bounds = append(bounds, Bound{Field: "From",
			Message: fmt.Sprintf("'From' to 'To' must span at most %d %s periods; got %d.", limit, pt, n)})
	}
	if b, late := s.onOrBeforeToday("To", last); late {
		bounds = append(bounds, b)
	}
	if len(bounds) > 0 {
		return nil, nil, invalid(bounds)
	}
	if err := checkReportable(svc); err != nil {
		return nil, nil, err
	}
	totals, err := s.usage.ServiceSeries(ctx, svc.GUID, first.Start, last.End(), pt)
	if err != nil {
		return nil, nil, err
	}
	if len(totals) != n {
		return nil, nil, fmt.Errorf("reports: a series of %d periods from %s has %d", n, first, len(totals))
	}
	pers, err := usage.Periods(pt, first.Start, last.End())
	if err != nil {
		return nil, nil, err
	}
	return pers, totals, nil
}

// periods counts the periods from first to last, both included.
func periods(first, last usage.Period) int {
	if first.Start.After(last.Start) {
		return 0
	}
	if first.Type == usage.Monthly {
		y1, m1, _ := first.Start.Date()
		y2, m2, _ := last.Start.Date()
		return (y2-y1)*12 + int(m2-m1) + 1
	}
	// In seconds, not a Duration, which stops at 292 years: the count is
	// exact for any two dates a client can send.
	return int((last.Start.Unix()-first.Start.Unix())/(24*60*60)) + 1
}
