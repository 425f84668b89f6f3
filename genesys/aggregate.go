package genesys

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// registerAggregate adds the synchronous aggregate query, usaged's own
// operation: the counts of the Genesys usage query, answered at once.
func (s *Server) registerAggregate(r *router) {
	r.api("POST /api/v2/usage/aggregate", s.postAggregate)
}

type aggregateRequest = wire.AggregateRequest

// aggregateRow is a Genesys ApiUsageRow with usaged's platform dimension.
type aggregateRow = wire.AggregateRow

// aggregateResponse is the answer, {"interval","results":[aggregateRow…]},
// written a row at a time: up to maxQueryRows rows would take tens of
// megabytes as one JSON document.
type aggregateResponse struct {
	interval string // the interval answered, widened to whole hours
	rows     []usage.Row
	q        *usage.Query
}

// aggregateBuffer is how much of the answer is held before it is written.
const aggregateBuffer = 32 << 10

func (a *aggregateResponse) stream(w io.Writer) error {
	bw := bufio.NewWriterSize(w, aggregateBuffer)
	iv, err := json.Marshal(a.interval)
	if err != nil {
		return err
	}
	bw.WriteString(`{"interval":`)
	bw.Write(iv)
	bw.WriteString(`,"results":`)
	dates := dateText{loc: a.q.Location}
	measures := a.q.WantsMeasures()
	err = writeRows(bw, len(a.rows), func(b []byte, i int) []byte {
		row := aggregateRow{UsageRow: rowOf(&a.rows[i], a.q, &dates), Platform: a.rows[i].Platform}
		if measures {
			setMeasures(&row, &a.rows[i], a.q)
		}
		return row.AppendJSON(b)
	})
	if err != nil {
		return err
	}
	bw.WriteByte('}')
	return bw.Flush()
}

// setMeasures sets the measures q asks for in out, from row: 0 for a
// duration of a group without durations (usage.Row.Measure).
func setMeasures(out *aggregateRow, row *usage.Row, q *usage.Query) {
	for _, m := range q.Metrics {
		if !m.IsMeasure() {
			continue
		}
		v, _ := row.Measure(m)
		p := &v
		switch m {
		case usage.MetricDurationP50:
			out.DurationP50 = p
		case usage.MetricDurationP90:
			out.DurationP90 = p
		case usage.MetricDurationP95:
			out.DurationP95 = p
		case usage.MetricDurationP99:
			out.DurationP99 = p
		case usage.MetricDurationMax:
			out.DurationMax = p
		case usage.MetricDurationAvg:
			avg := wire.Millis(v)
			out.DurationAvg = &avg
		case usage.MetricRequestBytes:
			out.RequestBytes = p
		case usage.MetricResponseBytes:
			out.ResponseBytes = p
		}
	}
}

// postAggregate answers an aggregate query. Counts not asked for are
// reported as zero, so that every row has the same shape; measures
// (usage.MeasureMetrics) are usaged's additions, present in every row when
// asked for and absent otherwise, so that an answer without them is the
// same as before they were kept. Like the legacy
// usage query it answers at most maxQueryRows rows: a query with more groups
// fails with the store's error naming the limit, before any of the answer is
// written.
func (s *Server) postAggregate(r *http.Request, p *auth.Principal) (response, error) {
	if err := requireAny(p, usage.PermOrganizationView); err != nil {
		return response{}, err
	}
	var req aggregateRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	q, err := s.aggregateQuery(p, &req)
	if err != nil {
		return response{}, err
	}
	rows, err := s.cfg.Queries.Query(r.Context(), q)
	if err != nil {
		return response{}, err
	}
	if req.FillEmpty {
		if rows, err = fillEmpty(rows, &q); err != nil {
			return response{}, err
		}
	}
	return ok(&aggregateResponse{interval: q.Interval.String(), rows: rows, q: &q}), nil
}

// aggregateQuery parses req into a normalized query for principal p. An
// organization p may not see is reported as missing, like one that does
// not exist.
func (s *Server) aggregateQuery(p *auth.Principal, req *aggregateRequest) (usage.Query, error) {
	q := usage.Query{MaxRows: maxQueryRows}
	org := req.OrganizationID
	switch {
	case org == "" && p.Admin:
		return q, usage.Errorf(usage.KindInvalid, "organizationId", "organizationId is required with the admin token")
	case org == "":
		org = p.OrganizationID
	case !p.CanAccess(org) || !s.cfg.Auth.KnownOrganization(org):
		return q, usage.Errorf(usage.KindNotFound, "organizationId", "organization %s was not found", quote(org))
	}
	q.OrganizationID = org
	if strings.TrimSpace(req.Interval) == "" {
		return q, usage.Errorf(usage.KindInvalid, "interval", "interval is required, e.g. 2026-01-01T00:00:00Z/2026-02-01T00:00:00Z")
	}
	iv, err := usage.ParseInterval(req.Interval)
	if err != nil {
		return q, invalidDate("interval", err)
	}
	q.Interval = iv
	if q.Granularity, err = usage.ParseGranularity(req.Granularity); err != nil {
		return q, withCode(err, codeInvalidValue)
	}
	for _, g := range req.GroupBy {
		d, err := usage.ParseDimension(g)
		if err != nil {
			return q, withCode(err, codeInvalidValue)
		}
		q.GroupBy = append(q.GroupBy, d)
	}
	for _, name := range req.Metrics {
		m, err := usage.ParseMetric(name)
		if err != nil {
			return q, withCode(err, codeInvalidValue)
		}
		q.Metrics = append(q.Metrics, m)
	}
	if req.TimeZone != "" {
		loc, err := usage.LoadLocation(req.TimeZone)
		if err != nil {
			return q, usage.Errorf(usage.KindInvalid, "timeZone", "timeZone %s is not an IANA time zone, such as Europe/Berlin or America/New_York", quote(req.TimeZone))
		}
		q.Location = loc
	}
	if f := req.Filter; f != nil {
		q.Filter = usage.Filter{
			ClientIDs:    f.ClientIDs,
			ClientNames:  f.ClientNames,
			UserIDs:      f.UserIDs,
			TemplateURIs: f.TemplateURIs,
			HTTPMethods:  f.HTTPMethods,
			Platforms:    f.Platforms,
		}
	}
	return q.Normalize()
}

// fillEmpty returns rows, which are in usage.CompareRows order, with a zero
// row added for every bucket of q's interval that a group has none for. The
// groups are those of rows, or the one group of every event without GroupBy.
// Filled, the answer stays within q.MaxRows or fails as the store does.
func fillEmpty(rows []usage.Row, q *usage.Query) ([]usage.Row, error) {
	type group struct{ clientID, organizationID, userID, templateURI, httpMethod, platform string }
	keyOf := func(r *usage.Row) group {
		return group{r.ClientID, r.OrganizationID, r.UserID, r.TemplateURI, r.HTTPMethod, r.Platform}
	}
	type bucketGroup struct {
		date int64 // Unix s
		group
	}
	have := make(map[bucketGroup]*usage.Row, len(rows))
	first := map[group]*usage.Row{} // a row of each group, for its dimensions and client name
	var groups []*usage.Row
	for i := range rows {
		r := &rows[i]
		k := keyOf(r)
		have[bucketGroup{r.Date.Unix(), k}] = r
		if first[k] == nil {
			first[k] = r
			groups = append(groups, r)
		}
	}
	if len(q.GroupBy) == 0 && len(groups) == 0 {
		groups = append(groups, &usage.Row{})
	}
	slices.SortFunc(groups, func(a, b *usage.Row) int {
		for _, d := range usage.Dimensions {
			if c := strings.Compare(a.Dim(d), b.Dim(d)); c != 0 {
				return c
			}
		}
		return 0
	})
	// The store labels rows with the same buckets; a row of another date
	// would be a bug there, and is kept rather than lost.
	buckets := q.Granularity.Buckets(q.Interval, q.Zone())
	for i := range buckets {
		buckets[i] = buckets[i].UTC() // as the rows' dates are
	}
	for i := range rows {
		if _, found := slices.BinarySearchFunc(buckets, rows[i].Date, time.Time.Compare); !found {
			buckets = append(buckets, rows[i].Date)
			slices.SortFunc(buckets, time.Time.Compare)
		}
	}
	if n := len(buckets) * len(groups); n > q.MaxRows {
		return nil, usage.Errorf(usage.KindInvalid, "fillEmpty", "the query has more than %d rows with every bucket filled (%d): narrow the interval, coarsen the granularity, group by fewer dimensions or filter", q.MaxRows, n)
	}
	out := make([]usage.Row, 0, len(buckets)*len(groups))
	for _, d := range buckets {
		for _, g := range groups {
			if r := have[bucketGroup{d.Unix(), keyOf(g)}]; r != nil {
				out = append(out, *r)
				continue
			}
			z := *g
			z.Date, z.Counts, z.Measures = d, usage.Counts{}, nil
			out = append(out, z)
		}
	}
	return out, nil
}
