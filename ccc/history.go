package ccc

import (
	"fmt"
	"net/http"
	"time"

	"github.com/usaged/usaged/servicestack"
	"github.com/usaged/usaged/usage"
)

// The longest history one request answers.
const (
	maxDailyPeriods   = 366
	maxMonthlyPeriods = 60
)

// getServiceUsageHistory answers
// GET /api/services/{ServiceGuid}/serviceusage/history, usaged's extension:
// the ServiceUsage of every day (or month) from From to To, both included,
// oldest first — what GetServiceUsage answers for each of those periods,
// in one request. It is what a chart of a service's days needs.
func (s *Server) getServiceUsageHistory(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetServiceUsageHistory")
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	pt, ok := servicestack.OptEnum(p, "PeriodType", usage.ParsePeriodType, usage.Daily, usage.Monthly)
	if !ok {
		pt = usage.Daily
	}
	from, hasFrom := p.Date("From")
	to, hasTo := p.Date("To")
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	if !hasTo {
		to = s.today()
	}
	last := usage.PeriodOf(pt, to)
	limit := maxDailyPeriods
	if pt == usage.Monthly {
		limit = maxMonthlyPeriods
	}
	if !hasFrom {
		// Thirty days or twelve months, the last one included.
		if pt == usage.Monthly {
			from = last.Start.AddDate(0, -11, 0)
		} else {
			from = last.Start.AddDate(0, 0, -29)
		}
	}
	first := usage.PeriodOf(pt, from)
	// One entry per field, in the order of the fields, as FluentValidation
	// reports them.
	var errs []servicestack.FieldError
	n := periods(first, last)
	switch {
	case first.Start.After(last.Start):
		errs = append(errs, servicestack.FieldError{ErrorCode: "LessThanOrEqual", FieldName: "From",
			Message: fmt.Sprintf("'From' must be on or before 'To' (%s); got %s.", last.Start.Format(time.DateOnly), first.Start.Format(time.DateOnly))})
	case n > limit:
		errs = append(errs, servicestack.FieldError{ErrorCode: "LessThanOrEqual", FieldName: "From",
			Message: fmt.Sprintf("'From' to 'To' must span at most %d %s periods; got %d.", limit, pt, n)})
	}
	if last.Start.After(s.today()) {
		errs = append(errs, servicestack.FieldError{ErrorCode: "LessThanOrEqual", FieldName: "To",
			Message: fmt.Sprintf("'To' must be on or before today (%s UTC); got %s.", s.today().Format(time.DateOnly), last.Start.Format(time.DateOnly))})
	}
	if len(errs) > 0 {
		return 0, nil, servicestack.ValidationError(errs...)
	}
	if err := reportable(&svc); err != nil {
		return 0, nil, err
	}
	out := make([]ServiceUsage, 0, n)
	for per := first; !per.Start.After(last.Start); per = usage.PeriodOf(pt, per.End()) {
		u, err := s.usageOf(r, &svc, per)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, u)
	}
	return 0, out, nil
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
