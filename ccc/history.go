package ccc

import (
	"net/http"
	"time"

	"github.com/usaged/usaged/reports"
	"github.com/usaged/usaged/servicestack"
	"github.com/usaged/usaged/usage"
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
	var req reports.HistoryRequest
	req.Type, _ = servicestack.OptEnum(p, "PeriodType", usage.ParsePeriodType, usage.Daily, usage.Monthly)
	req.From = optDate(p, "From")
	req.To = optDate(p, "To")
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	pers, totals, err := s.rep.History(r.Context(), &svc, req)
	if err != nil {
		return 0, nil, reportError(err)
	}
	h := header(&svc, s.collectionName(svc.CollectionGUID))
	out := make([]ServiceUsage, len(pers))
	for i := range pers {
		out[i] = serviceUsage(h, pers[i], &totals[i])
	}
	return 0, out, nil
}

// optDate binds an optional date: nil when absent or when it fails.
func optDate(p *servicestack.Params, name string) *time.Time {
	if t, ok := p.Date(name); ok {
		return &t
	}
	return nil
}
