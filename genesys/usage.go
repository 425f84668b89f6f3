package genesys

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/usage"
)

// The operations of the Genesys Usage API. Each POST starts an asynchronous
// execution and answers 202 with where to read it; the results route answers
// {"queryStatus":"Running"} until the execution is final.
func (s *Server) registerUsage(r *router) {
	orgView := organizationView
	searchView := []string{usage.PermOAuthClientView, usage.PermSimpleSearchView}
	clientView := []string{usage.PermOAuthClientView, usage.PermClientView}
	r.api("POST /api/v2/usage/query", inOrganization(orgView, s.postOrganizationQuery))
	r.api("GET /api/v2/usage/query/{executionId}/results", inOrganization(orgView, s.getOrganizationQuery))
	r.api("POST /api/v2/usage/simplesearch", inOrganization(searchView, s.postSimpleSearch))
	r.api("GET /api/v2/usage/simplesearch/{executionId}/results", inOrganization(searchView, s.getSimpleSearch))
	r.api("POST /api/v2/oauth/clients/{clientId}/usage/query", inOrganization(clientView, s.postClientQuery))
	r.api("GET /api/v2/oauth/clients/{clientId}/usage/query/results/{executionId}", inOrganization(clientView, s.getClientQuery))
	r.api("GET /api/v2/oauth/clients/{clientId}/usage/summary", inOrganization(clientView, s.getClientSummary))
}

// organizationView is the permission, any of them, of the operations on
// the usage of a whole organization.
var organizationView = []string{usage.PermOAuthClientView, usage.PermOrganizationView}

// orgHandler is an operation on the caller's organization.
type orgHandler func(r *http.Request, org string) (response, error)

// inOrganization runs h for principals holding any of perms, on their own
// organization: the only one whose usage the Genesys operations show.
func inOrganization(perms []string, h orgHandler) handlerFunc {
	return func(r *http.Request, p *auth.Principal) (response, error) {
		if err := requireAny(p, perms...); err != nil {
			return response{}, err
		}
		if p.OrganizationID == "" {
			return response{}, withCode(usage.Errorf(usage.KindForbidden, "",
				"The admin token belongs to no organization; use a token of one of the organization's OAuth clients."), codeNotAuthorized)
		}
		return h(r, p.OrganizationID)
	}
}

// Operation names stored with executions: an execution is readable only
// through the results route of the operation that started it.
const (
	opOrganizationQuery = "usage.query"
	opSimpleSearch      = "usage.simplesearch"
	opClientQuery       = "client.usage.query"
)

// Limits of the legacy operations.
const (
	// maxQueryRows bounds the rows of an organization or client query,
	// which Genesys answers in one unpaged document, and of usaged's
	// synchronous aggregate (aggregate.go).
	maxQueryRows = 100_000
	// maxSimpleSearchRows is Genesys' documented simplesearch limit: the
	// records past it are dropped, in the result's order.
	maxSimpleSearchRows = 20_000
	defaultPageSize     = 100
	maxPageSize         = 1000
	maxSummaryDays      = 366
)

// Allowable values of the request enums, as the API definition lists them
// (granularity adds usaged's Hour).
var (
	granularities     = []string{"Day", "Week", "Month", "Hour"}
	queryMetrics      = []string{"Status200", "Status300", "Status400", "Status500", "Status429", "Requests"}
	orgGroupBy        = []string{"OAuthClientId", "OrganizationId", "UserId", "TemplateUri", "HttpMethod"}
	clientGroupBy     = []string{"OAuthClientId", "OrganizationId", "TemplateUri", "HttpMethod"}
	searchMetrics     = []string{"Date", "ClientName", "HttpMethod", "TemplateUri", "Status200", "Status300", "Status400", "Status500", "Status429"}
	searchHTTPMethods = []string{"GET", "POST", "DELETE", "PATCH", "PUT", "HEAD", "CONNECT", "OPTIONS", "TRACE"}
)

// usageQueryRequest is ApiUsageOrganizationQuery and ApiUsageClientQuery.
type usageQueryRequest = wire.UsageQueryRequest

// simpleSearchRequest is ApiUsageSimpleSearch.
type simpleSearchRequest struct {
	Interval         *string  `json:"interval"`
	Metrics          []string `json:"metrics"`
	OAuthClientNames []string `json:"oauthClientNames"`
	HTTPMethods      []string `json:"httpMethods"`
	TemplateURIs     []string `json:"templateUris"`
}

// executionResult is UsageExecutionResult.
type executionResult = wire.ExecutionResult

// usageRow is ApiUsageRow: dimensions not grouped by are empty strings,
// every count is present and metrics not asked for are zero.
type usageRow = wire.UsageRow

// queryResult is ApiUsageQueryResult. ErrorBody is usaged's addition: why
// a Failed execution failed. Results is absent while Running, as in
// Genesys, and present once Complete, as [] when there are no rows: the
// SDKs type it as an array.
type queryResult = wire.QueryResult

type cursors = wire.Cursors

// rowOf converts a result row for query q: the counts of metrics q does not
// ask for are reported as zero.
func rowOf(row *usage.Row, q *usage.Query, dates *dateText) usageRow {
	count := func(m usage.Metric) int64 {
		if slices.Contains(q.Metrics, m) {
			return row.Get(m)
		}
		return 0
	}
	out := usageRow{
		ClientID:       row.ClientID,
		ClientName:     row.ClientName,
		OrganizationID: row.OrganizationID,
		UserID:         row.UserID,
		TemplateURI:    row.TemplateURI,
		HTTPMethod:     row.HTTPMethod,
		Requests:       count(usage.MetricRequests),
		Status200:      count(usage.MetricStatus200),
		Status300:      count(usage.MetricStatus300),
		Status400:      count(usage.MetricStatus400),
		Status500:      count(usage.MetricStatus500),
		Status429:      count(usage.MetricStatus429),
	}
	if q.Granularity != usage.GranularityNone {
		out.Date = dates.of(row.Date)
	}
	return out
}

// dateText formats the dates of a query's rows, which come in date order,
// once for each run of the same date: tens of thousands of rows hold a few
// hundred dates. They are UTC ("Z") unless loc is another zone, where they
// carry its offset.
type dateText struct {
	loc  *time.Location
	t    time.Time
	text string
}

func (d *dateText) of(t time.Time) string {
	if d.text != "" && t.Equal(d.t) {
		return d.text
	}
	d.t = t
	if d.loc == nil || d.loc == time.UTC {
		d.text = formatTime(t)
	} else {
		d.text = t.In(d.loc).Format(time.RFC3339)
	}
	return d.text
}

// invalidValue reports value as not one of allowed for field, in Genesys'
// invalid.value shape.
func invalidValue(field, value string, allowed []string) error {
	return paramError(usage.KindInvalid, field, codeInvalidValue,
		"Value [{value}] is not valid for field type [{field}]. Allowable values are: {allowableValues}",
		map[string]string{"value": value, "field": field, "allowableValues": strings.Join(allowed, ", ")})
}

// oneOf returns the canonical spelling of v in allowed, compared without
// case, or an invalid.value error.
func oneOf(field, v string, allowed []string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a, nil
		}
	}
	return "", invalidValue(field, v, allowed)
}

// isoDateMessage is Genesys' message for invalid.date.
const isoDateMessage = "Dates must be specified as ISO-8601 strings. For example: yyyy-MM-ddTHH:mm:ss.SSSZ"

// invalidDate reports an interval error of field as invalid.date: a
// malformed one with Genesys' message followed by what is wrong; one whose
// end is not after its start with that alone, since its dates are well
// formed. A nil err stays nil.
func invalidDate(field string, err error) error {
	if err == nil {
		return nil
	}
	ue, ok := errors.AsType[*usage.Error](err)
	if !ok || errors.Is(err, usage.ErrIntervalOrder) {
		return withCode(err, codeInvalidDate)
	}
	return withCode(usage.Errorf(usage.KindInvalid, field, "%s. %s", isoDateMessage, ue.Message), codeInvalidDate)
}

// parseIntervalField parses a required interval field.
func parseIntervalField(field string, v *string) (usage.Interval, error) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return usage.Interval{}, withCode(usage.Errorf(usage.KindInvalid, field,
			"%s is required: an ISO-8601 interval such as 2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", field), codeConstraintValidation)
	}
	iv, err := usage.ParseInterval(*v)
	return iv, invalidDate(field, err)
}

// usageQuery parses an organization or client query body for org.
func usageQuery(org string, req *usageQueryRequest, groupBy []string) (usage.Query, error) {
	q := usage.Query{OrganizationID: org, MaxRows: maxQueryRows}
	var err error
	if q.Interval, err = parseIntervalField("interval", req.Interval); err != nil {
		return q, err
	}
	if req.Granularity != nil {
		g, err := oneOf("granularity", *req.Granularity, granularities)
		if err != nil {
			return q, err
		}
		if q.Granularity, err = usage.ParseGranularity(g); err != nil {
			return q, withCode(err, codeInvalidValue)
		}
	}
	for _, name := range req.Metrics {
		m, err := oneOf("metrics", name, queryMetrics)
		if err != nil {
			return q, err
		}
		metric, err := usage.ParseMetric(m)
		if err != nil {
			return q, withCode(err, codeInvalidValue)
		}
		q.Metrics = append(q.Metrics, metric)
	}
	for _, name := range req.GroupBy {
		g, err := oneOf("groupBy", name, groupBy)
		if err != nil {
			return q, err
		}
		d, err := usage.ParseDimension(g)
		if err != nil {
			return q, withCode(err, codeInvalidValue)
		}
		q.GroupBy = append(q.GroupBy, d)
	}
	if len(q.GroupBy) == 0 {
		q.GroupBy = []usage.Dimension{usage.DimClientID} // Genesys: one row per OAuth client
	}
	return q.Normalize()
}

// start submits e and answers 202 with answer(e), after waiting up to
// SubmitWait for it to finish so that the first poll usually finds it done.
func (s *Server) start(r *http.Request, e usage.Execution, answer func(usage.Execution) any) (response, error) {
	e, err := s.cfg.Queries.Submit(r.Context(), e)
	if err != nil {
		return response{}, executionLimit(err)
	}
	if s.cfg.SubmitWait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SubmitWait)
		s.cfg.Queries.Wait(ctx, query.ScopeOf(e), e.ID)
		cancel()
	}
	return response{status: http.StatusAccepted, body: answer(e)}, nil
}

// resultsAt answers the start of a legacy execution whose results URI is
// uri(id).
func resultsAt(uri func(id string) string) func(usage.Execution) any {
	return func(e usage.Execution) any { return executionResult{ExecutionID: e.ID, ResultsURI: uri(e.ID)} }
}

// execution returns the execution id if the caller's organization started
// it through operation op (for clientID's path, if any); the query service
// reports any other execution missing, so that ids reveal nothing.
func (s *Server) execution(ctx context.Context, org, id, op, clientID string) (usage.Execution, error) {
	e, err := s.cfg.Queries.Execution(ctx, query.Scope{OrganizationID: org, Operation: op, ClientID: clientID}, id)
	if usage.KindOf(err) == usage.KindNotFound {
		return e, usage.Errorf(usage.KindNotFound, "executionId", "Execution %s was not found. Executions are kept for a limited time after they are started.", quote(id))
	}
	return e, err
}

// queryResultOf answers the results route of a legacy execution: Running
// until final; then Complete with rows offset..offset+limit (limit 0: all),
// or Failed.
func (s *Server) queryResultOf(r *http.Request, e usage.Execution, offset, limit int) (*resultsBody, error) {
	switch e.Status {
	case usage.ExecutionQueued, usage.ExecutionRunning:
		return &resultsBody{doc: queryResult{QueryStatus: "Running"}}, nil
	case usage.ExecutionComplete:
	default:
		body, _ := errorResponse(executionError(e), correlationID(r.Context()))
		return &resultsBody{doc: queryResult{QueryStatus: "Failed", ErrorBody: &body}}, nil
	}
	if limit == 0 {
		limit = e.RowCount
	}
	rows, err := s.cfg.Queries.Rows(r.Context(), query.ScopeOf(e), e.ID, offset, limit)
	if err != nil {
		return nil, err
	}
	return &resultsBody{doc: queryResult{QueryStatus: "Complete"}, complete: true, rows: rows, q: &e.Query}, nil
}

// resultsBody streams a results document: its rows converted (rowOf) and
// appended by hand (see wire.UsageRow.AppendJSON) one at a time as they
// are written, the rest by encoding/json. Converting all the rows first
// doubled the memory a large result takes to answer.
type resultsBody struct {
	doc      queryResult // the document but its rows
	complete bool        // whether it has rows, even none
	rows     []usage.Row // shared with the query service: only read
	q        *usage.Query
}

func (r *resultsBody) stream(w io.Writer) error {
	tail, err := json.Marshal(r.doc)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, aggregateBuffer)
	bw.WriteByte('{')
	if r.complete {
		bw.WriteString(`"results":`)
		var dates dateText
		err := writeRows(bw, len(r.rows), func(b []byte, i int) []byte {
			row := rowOf(&r.rows[i], r.q, &dates)
			return row.AppendJSON(b)
		})
		if err != nil {
			return err
		}
		bw.WriteByte(',')
	}
	bw.Write(tail[1:])
	return bw.Flush()
}

// writeRows writes a JSON array of n rows, row i appended to a buffer by
// appendRow, one row at a time.
func writeRows(bw *bufio.Writer, n int, appendRow func(b []byte, i int) []byte) error {
	bw.WriteByte('[')
	var b []byte
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		b = appendRow(b[:0], i)
		if _, err := bw.Write(b); err != nil {
			return err // the client has gone
		}
	}
	_, err := bw.WriteString("]")
	return err
}

// executionError is the error a failed or cancelled execution reports.
func executionError(e usage.Execution) error {
	if e.Status == usage.ExecutionCancelled {
		return usage.Errorf(usage.KindConflict, "", "The execution was cancelled.")
	}
	if e.Error != nil {
		return e.Error
	}
	return usage.Errorf(usage.KindInternal, "", "the execution failed")
}

func (s *Server) postOrganizationQuery(r *http.Request, org string) (response, error) {
	var req usageQueryRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	q, err := usageQuery(org, &req, orgGroupBy)
	if err != nil {
		return response{}, err
	}
	return s.start(r, usage.Execution{OrganizationID: org, Operation: opOrganizationQuery, Query: q},
		resultsAt(func(id string) string { return "/api/v2/usage/query/" + id + "/results" }))
}

func (s *Server) getOrganizationQuery(r *http.Request, org string) (response, error) {
	e, err := s.execution(r.Context(), org, r.PathValue("executionId"), opOrganizationQuery, "")
	if err != nil {
		return response{}, err
	}
	res, err := s.queryResultOf(r, e, 0, 0)
	return ok(res), err
}

func (s *Server) postSimpleSearch(r *http.Request, org string) (response, error) {
	var req simpleSearchRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	q, err := simpleSearchQuery(org, &req)
	if err != nil {
		return response{}, err
	}
	return s.start(r, usage.Execution{OrganizationID: org, Operation: opSimpleSearch, Query: q, Limit: maxSimpleSearchRows},
		resultsAt(func(id string) string { return "/api/v2/usage/simplesearch/" + id + "/results" }))
}

// simpleSearchQuery parses a simplesearch body. Its metrics double as the
// columns: Date groups by day, ClientName by OAuth client, HttpMethod and
// TemplateUri by those; none given means all. Requests, which the API
// cannot ask for, is always counted.
func simpleSearchQuery(org string, req *simpleSearchRequest) (usage.Query, error) {
	q := usage.Query{OrganizationID: org}
	var err error
	if q.Interval, err = parseIntervalField("interval", req.Interval); err != nil {
		return q, err
	}
	columns := searchMetrics
	if len(req.Metrics) > 0 {
		columns = nil
		for _, name := range req.Metrics {
			m, err := oneOf("metrics", name, searchMetrics)
			if err != nil {
				return q, err
			}
			columns = append(columns, m)
		}
	}
	q.Metrics = []usage.Metric{usage.MetricRequests}
	for _, c := range columns {
		switch c {
		case "Date":
			q.Granularity = usage.GranularityDay
		case "ClientName":
			q.GroupBy = append(q.GroupBy, usage.DimClientID)
		case "HttpMethod":
			q.GroupBy = append(q.GroupBy, usage.DimHTTPMethod)
		case "TemplateUri":
			q.GroupBy = append(q.GroupBy, usage.DimTemplateURI)
		default:
			m, err := usage.ParseMetric(c)
			if err != nil {
				return q, withCode(err, codeInvalidValue)
			}
			q.Metrics = append(q.Metrics, m)
		}
	}
	for _, m := range req.HTTPMethods {
		v, err := oneOf("httpMethods", m, searchHTTPMethods)
		if err != nil {
			return q, err
		}
		q.Filter.HTTPMethods = append(q.Filter.HTTPMethods, v)
	}
	q.Filter.ClientNames = req.OAuthClientNames
	q.Filter.TemplateURIs = req.TemplateURIs
	return q.Normalize()
}

func (s *Server) getSimpleSearch(r *http.Request, org string) (response, error) {
	pageSize, err := pageSizeParam(r, "pageSize", defaultPageSize, maxPageSize)
	if err != nil {
		return response{}, err
	}
	id := r.PathValue("executionId")
	offset, err := cursorParam(r, "after", id)
	if err != nil {
		return response{}, err
	}
	e, err := s.execution(r.Context(), org, id, opSimpleSearch, "")
	if err != nil {
		return response{}, err
	}
	res, err := s.queryResultOf(r, e, offset, pageSize)
	if err != nil {
		return response{}, err
	}
	if res.complete {
		var c cursors
		if offset > 0 {
			c.Before = encodeCursor(id, max(0, offset-pageSize))
		}
		if next := offset + len(res.rows); next < e.RowCount {
			c.After = encodeCursor(id, next)
		}
		if c != (cursors{}) {
			res.doc.Cursors = &c
		}
	}
	return ok(res), nil
}

// pageSizeParam parses an optional page size: absent or 0 means def.
func pageSizeParam(r *http.Request, name string, def, maxSize int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxSize {
		return 0, withCode(usage.Errorf(usage.KindInvalid, name,
			"%s must be a whole number from 1 to %d (0 for the default of %d), not %q", name, maxSize, def, v), codeInvalidQueryParam)
	}
	if n == 0 {
		return def, nil
	}
	return n, nil
}

// Cursors are opaque to clients: the base64url of the execution id and the
// offset of the next row, so that a cursor of one execution is refused by
// another.
func encodeCursor(id string, offset int) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", id, offset))
}

// cursorParam returns the offset an optional cursor parameter points at.
func cursorParam(r *http.Request, name, id string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	bad := withCode(usage.Errorf(usage.KindInvalid, name,
		"%s is not a cursor of this execution: pass the value from the previous page's cursors", name), codeInvalidQueryParam)
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return 0, bad
	}
	i := strings.LastIndexByte(string(b), ':')
	if i < 0 {
		return 0, bad
	}
	n, err := strconv.Atoi(string(b[i+1:]))
	if string(b[:i]) != id || err != nil || n < 0 {
		return 0, bad
	}
	return n, nil
}

// clientOf checks that the caller's organization knows client id, from its
// registry or from its events, and returns the id.
func (s *Server) clientOf(ctx context.Context, org, id string) (string, error) {
	if _, err := s.cfg.Auth.Client(ctx, org, id); err == nil {
		return id, nil
	}
	names, err := s.cfg.Events.ClientNames(ctx, org)
	if err != nil {
		return "", err
	}
	if _, ok := names[id]; !ok {
		return "", usage.Errorf(usage.KindNotFound, "clientId", "OAuth client %s was not found in this organization's clients or usage.", quote(id))
	}
	return id, nil
}

func clientResultsURI(clientID string) func(usage.Execution) any {
	return resultsAt(func(id string) string { return "/api/v2/oauth/clients/" + clientID + "/usage/query/results/" + id })
}

func (s *Server) postClientQuery(r *http.Request, org string) (response, error) {
	var req usageQueryRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	client, err := s.clientOf(r.Context(), org, r.PathValue("clientId"))
	if err != nil {
		return response{}, err
	}
	q, err := usageQuery(org, &req, clientGroupBy)
	if err != nil {
		return response{}, err
	}
	q.Filter.ClientIDs = []string{client}
	return s.start(r, usage.Execution{OrganizationID: org, Operation: opClientQuery, ClientID: client, Query: q}, clientResultsURI(client))
}

func (s *Server) getClientQuery(r *http.Request, org string) (response, error) {
	e, err := s.execution(r.Context(), org, r.PathValue("executionId"), opClientQuery, r.PathValue("clientId"))
	if err != nil {
		return response{}, err
	}
	res, err := s.queryResultOf(r, e, 0, 0)
	return ok(res), err
}

// getClientSummary starts a client query of the last days UTC days, today
// included, one row per day; its results are read like a client query's.
func (s *Server) getClientSummary(r *http.Request, org string) (response, error) {
	days := 7
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSummaryDays {
			return response{}, withCode(usage.Errorf(usage.KindInvalid, "days",
				"days must be a whole number from 1 to %d, not %q", maxSummaryDays, v), codeInvalidQueryParam)
		}
		days = n
	}
	client, err := s.clientOf(r.Context(), org, r.PathValue("clientId"))
	if err != nil {
		return response{}, err
	}
	end := s.cfg.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	q, err := usage.Query{
		OrganizationID: org,
		Interval:       usage.Interval{Start: end.AddDate(0, 0, -days), End: end},
		Granularity:    usage.GranularityDay,
		GroupBy:        []usage.Dimension{usage.DimClientID},
		Filter:         usage.Filter{ClientIDs: []string{client}},
		MaxRows:        maxQueryRows,
	}.Normalize()
	if err != nil {
		return response{}, err
	}
	return s.start(r, usage.Execution{OrganizationID: org, Operation: opClientQuery, ClientID: client, Query: q}, clientResultsURI(client))
}
