package genesys

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/usage"
)

// The usage aggregates jobs API, Genesys' successor to the usage query
// operations. A POST starts a job and answers 202 with its id and where to
// read it; the job's route answers its status and, once it has succeeded,
// its entities a page at a time; DELETE cancels it.
//
// Genesys defines no DELETE for these jobs. usaged adds one, shaped like
// Genesys' other asynchronous jobs: 204 whatever the job's state. A job that
// is still queued or running becomes Cancelled; a job that has already
// finished stays as it is, and a Succeeded job's entities stay readable
// until the job expires.
func (s *Server) registerJobs(r *router) {
	orgView := []string{organizationJobs.perm}
	clientView := []string{clientJobs.perm}
	r.api("POST /api/v2/usage/aggregates/query/jobs", inOrganization(orgView, s.postOrganizationJob))
	r.api("GET /api/v2/usage/aggregates/query/jobs/{jobId}", inOrganization(orgView, s.getOrganizationJob))
	r.api("DELETE /api/v2/usage/aggregates/query/jobs/{jobId}", inOrganization(orgView, s.deleteOrganizationJob))
	r.api("POST /api/v2/usage/client/{clientId}/aggregates/query/jobs", inOrganization(clientView, s.postClientJob))
	r.api("GET /api/v2/usage/client/{clientId}/aggregates/query/jobs/{jobId}", inOrganization(clientView, s.getClientJob))
	r.api("DELETE /api/v2/usage/client/{clientId}/aggregates/query/jobs/{jobId}", inOrganization(clientView, s.deleteClientJob))
}

// Operation names stored with the jobs' executions.
const (
	opOrganizationJob = "usage.aggregates.job"
	opClientJob       = "client.usage.aggregates.job"
)

// Limits of the jobs API.
const (
	// maxJobRows bounds the entities of one job, which are read in pages;
	// a job with more groups fails.
	maxJobRows = usage.DefaultMaxRows
	// maxJobSpanDays is how many days after its start day a job's interval
	// may end, both days included.
	maxJobSpanDays = 90
)

// Allowable values of the request enums, as the API definition lists them.
var (
	jobGranularities = []string{"Day", "Week", "Month"}
	jobMetrics       = []string{"Requests", "Status200", "Status300", "Status400", "Status429", "Status500"}
	jobHTTPMethods   = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
	jobSortOrders    = []string{"Asc", "Desc"}
)

// jobAPI is what tells the organization and client variants apart.
type jobAPI struct {
	op   string
	perm string
	// groupBy lists the allowable groupBy values (see jobDimensions).
	groupBy []string
	// sortFields lists the allowable sortBy field names (see jobSortKeys).
	sortFields []string
}

var (
	organizationJobs = jobAPI{
		op:         opOrganizationJob,
		perm:       usage.PermOrganizationView,
		groupBy:    []string{"OauthClientName", "OauthClientId", "UserId", "HttpMethod", "TemplateUri", "Platform"},
		sortFields: append([]string{"Date"}, append(slices.Clone(jobMetrics), "OauthClientName", "OauthClientId", "UserId", "HttpMethod", "TemplateUri", "Platform")...),
	}
	clientJobs = jobAPI{
		op:         opClientJob,
		perm:       usage.PermClientView,
		groupBy:    []string{"OrganizationId", "HttpMethod", "TemplateUri", "Platform"},
		sortFields: append([]string{"Date"}, append(slices.Clone(jobMetrics), "OrganizationId", "HttpMethod", "TemplateUri", "Platform")...),
	}
)

// jobDimensions maps the groupBy values of both variants to dimensions.
// OauthClientName groups by client id: each group carries its client's name.
var jobDimensions = map[string]usage.Dimension{
	"OauthClientName": usage.DimClientID,
	"OauthClientId":   usage.DimClientID,
	"UserId":          usage.DimUserID,
	"HttpMethod":      usage.DimHTTPMethod,
	"TemplateUri":     usage.DimTemplateURI,
	"Platform":        usage.DimPlatform,
	"OrganizationId":  usage.DimOrganizationID,
}

// jobSortKeys maps sortBy field names to the execution's sort fields.
// OauthClientName sorts by the rows' client names.
var jobSortKeys = map[string]string{
	"Date":            "Date",
	"Requests":        usage.MetricRequests.String(),
	"Status200":       usage.MetricStatus200.String(),
	"Status300":       usage.MetricStatus300.String(),
	"Status400":       usage.MetricStatus400.String(),
	"Status429":       usage.MetricStatus429.String(),
	"Status500":       usage.MetricStatus500.String(),
	"OauthClientName": "ClientName",
	"OauthClientId":   usage.DimClientID.String(),
	"UserId":          usage.DimUserID.String(),
	"HttpMethod":      usage.DimHTTPMethod.String(),
	"TemplateUri":     usage.DimTemplateURI.String(),
	"Platform":        usage.DimPlatform.String(),
	"OrganizationId":  usage.DimOrganizationID.String(),
}

// jobQueryRequest holds the fields OrganizationPublicApiUsageQueryRequest
// and ClientPublicApiUsageQueryRequest share.
type jobQueryRequest struct {
	Interval     *string
	Granularity  *string
	SortBy       []jobSortBy
	Metrics      []string
	TemplateURIs []string
	HTTPMethods  []string
	Platforms    []string
	GroupBy      []string
}

// jobSortBy is UsageQuerySortBy.
type jobSortBy struct {
	FieldName *string `json:"fieldName"`
	Order     *string `json:"order"`
}

// organizationJobRequest is OrganizationPublicApiUsageQueryRequest. The
// variants repeat their shared fields rather than embed them, so that
// decoding errors name the fields as the client sent them.
type organizationJobRequest struct {
	Interval       *string     `json:"interval"`
	Granularity    *string     `json:"granularity"`
	SortBy         []jobSortBy `json:"sortBy"`
	Metrics        []string    `json:"metrics"`
	TemplateURIs   []string    `json:"templateUris"`
	HTTPMethods    []string    `json:"httpMethods"`
	Platforms      []string    `json:"platforms"`
	GroupBy        []string    `json:"groupBy"`
	UserIDs        []string    `json:"userIds"`
	OAuthClientIDs []string    `json:"oauthClientIds"`
}

func (r *organizationJobRequest) shared() jobQueryRequest {
	return jobQueryRequest{r.Interval, r.Granularity, r.SortBy, r.Metrics, r.TemplateURIs, r.HTTPMethods, r.Platforms, r.GroupBy}
}

// clientJobRequest is ClientPublicApiUsageQueryRequest.
type clientJobRequest struct {
	Interval        *string     `json:"interval"`
	Granularity     *string     `json:"granularity"`
	SortBy          []jobSortBy `json:"sortBy"`
	Metrics         []string    `json:"metrics"`
	TemplateURIs    []string    `json:"templateUris"`
	HTTPMethods     []string    `json:"httpMethods"`
	Platforms       []string    `json:"platforms"`
	GroupBy         []string    `json:"groupBy"`
	OrganizationIDs []string    `json:"organizationIds"`
}

func (r *clientJobRequest) shared() jobQueryRequest {
	return jobQueryRequest{r.Interval, r.Granularity, r.SortBy, r.Metrics, r.TemplateURIs, r.HTTPMethods, r.Platforms, r.GroupBy}
}

// jobCreated is OrganizationUsageQueryResponse and ClientUsageQueryResponse.
// Name is never set: neither request has a way to give one.
type jobCreated struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	ResultsURI string `json:"resultsUri"`
	SelfURI    string `json:"selfUri"`
}

// jobResults is OrganizationPublicApiUsageResultsResponse and
// ClientPublicApiUsageResultsResponse. Entities are present, possibly
// empty, only when the job has succeeded.
type jobResults struct {
	Name        string      `json:"name,omitempty"`
	QueryStatus string      `json:"queryStatus"`
	ErrorBody   *errorBody  `json:"errorBody,omitempty"`
	NextURI     string      `json:"nextUri,omitempty"`
	Entities    []jobEntity `json:"entities,omitzero"`
	SelfURI     string      `json:"selfUri"`
}

// jobEntity is OrganizationPublicApiUsage (oauthClient and user) and
// ClientPublicApiUsage (organizationId). A dimension is present when the job
// groups by it, a count when the job asks for its metric; date is present
// with a granularity and is the first day of the entity's bucket.
type jobEntity struct {
	Date           string     `json:"date,omitempty"`
	Platform       *string    `json:"platform,omitempty"`
	HTTPMethod     *string    `json:"httpMethod,omitempty"`
	TemplateURI    *string    `json:"templateUri,omitempty"`
	RequestCount   *int64     `json:"requestCount,omitempty"`
	Status200      *int64     `json:"status200,omitempty"`
	Status300      *int64     `json:"status300,omitempty"`
	Status400      *int64     `json:"status400,omitempty"`
	Status429      *int64     `json:"status429,omitempty"`
	Status500      *int64     `json:"status500,omitempty"`
	OAuthClient    *entityRef `json:"oauthClient,omitempty"`
	User           *entityRef `json:"user,omitempty"`
	OrganizationID *string    `json:"organizationId,omitempty"`
}

// entityRef is DomainEntityRef and UserReference.
type entityRef struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	SelfURI string `json:"selfUri,omitempty"`
}

// organizationJobPath is the route of an organization job.
func organizationJobPath(id string) string {
	return "/api/v2/usage/aggregates/query/jobs/" + url.PathEscape(id)
}

// clientJobPath returns the route of a job of clientID's path.
func clientJobPath(clientID string) func(string) string {
	return func(id string) string {
		return "/api/v2/usage/client/" + url.PathEscape(clientID) + "/aggregates/query/jobs/" + url.PathEscape(id)
	}
}

// jobQuery parses the shared fields of a job request for org into a query,
// not yet normalized and without the filters of its variant, and the sort
// keys of its entities.
func (s *Server) jobQuery(org string, req *jobQueryRequest, api *jobAPI) (usage.Query, []usage.SortKey, error) {
	q := usage.Query{OrganizationID: org, MaxRows: maxJobRows}
	var err error
	if q.Interval, err = parseJobInterval("interval", req.Interval); err != nil {
		return q, nil, err
	}
	if err := checkJobInterval(q.Interval, s.cfg.Now()); err != nil {
		return q, nil, err
	}
	if req.Granularity != nil {
		g, err := oneOf("granularity", *req.Granularity, jobGranularities)
		if err != nil {
			return q, nil, err
		}
		if q.Granularity, err = usage.ParseGranularity(g); err != nil {
			return q, nil, withCode(err, codeInvalidValue)
		}
	}
	for _, name := range req.Metrics {
		m, err := oneOf("metrics", name, jobMetrics)
		if err != nil {
			return q, nil, err
		}
		metric, err := usage.ParseMetric(m)
		if err != nil {
			return q, nil, withCode(err, codeInvalidValue)
		}
		if !slices.Contains(q.Metrics, metric) {
			q.Metrics = append(q.Metrics, metric)
		}
	}
	for _, name := range req.GroupBy {
		g, err := oneOf("groupBy", name, api.groupBy)
		if err != nil {
			return q, nil, err
		}
		q.GroupBy = append(q.GroupBy, jobDimensions[g])
	}
	for _, m := range req.HTTPMethods {
		v, err := oneOf("httpMethods", m, jobHTTPMethods)
		if err != nil {
			return q, nil, err
		}
		q.Filter.HTTPMethods = append(q.Filter.HTTPMethods, v)
	}
	q.Filter.TemplateURIs = req.TemplateURIs
	q.Filter.Platforms = req.Platforms

	var sort []usage.SortKey
	for _, sb := range req.SortBy {
		if sb.FieldName == nil || *sb.FieldName == "" {
			return q, nil, withCode(usage.Errorf(usage.KindInvalid, "sortBy.fieldName",
				"sortBy.fieldName is required: one of %s", strings.Join(api.sortFields, ", ")), codeConstraintValidation)
		}
		field, err := oneOf("sortBy.fieldName", *sb.FieldName, api.sortFields)
		if err != nil {
			return q, nil, err
		}
		order := "Asc"
		if sb.Order != nil {
			if order, err = oneOf("sortBy.order", *sb.Order, jobSortOrders); err != nil {
				return q, nil, err
			}
		}
		sort = append(sort, usage.SortKey{Field: jobSortKeys[field], Desc: order == "Desc"})
	}
	return q, sort, nil
}

// parseJobInterval parses a job's interval, whose end is inclusive: "Start
// and end are inclusive", the model says. A date or month end is inclusive
// in every interval usaged reads. A date-time end T is read as the whole
// UTC hour containing T, so that the events at T count: usaged stores
// counts per hour, so "up to and including the instant T" could be
// answered exactly only at the last instant of an hour, while the hour
// containing T always can. Off the hour this is what every query does
// (the end is rounded up to the next hour); on the hour it adds that hour.
// A duration end stays exclusive: PT12H is twelve hours.
func parseJobInterval(field string, v *string) (usage.Interval, error) {
	iv, err := parseIntervalField(field, v)
	if err != nil {
		return iv, err
	}
	_, end, _ := strings.Cut(*v, "/")
	end = strings.TrimSpace(end)
	if strings.Contains(end, "T") && !strings.HasPrefix(end, "P") && !strings.HasPrefix(end, "p") {
		iv.End = iv.End.Truncate(time.Hour).Add(time.Hour)
	}
	return iv, nil
}

// checkJobInterval enforces the documented bounds of a job's interval,
// measured in UTC days so that both ends may be given as dates: it starts
// no earlier than the same day a year before now, and it ends no later than
// the end of the 90th day after its start day.
func checkJobInterval(iv usage.Interval, now time.Time) error {
	day := func(t time.Time) time.Time {
		t = t.UTC()
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	if earliest := day(now).AddDate(-1, 0, 0); iv.Start.Before(earliest) {
		return withCode(usage.Errorf(usage.KindInvalid, "interval",
			"interval start %s is more than a year ago: the earliest start is %s", formatTime(iv.Start), earliest.Format(time.DateOnly)), codeConstraintValidation)
	}
	if latest := day(iv.Start).AddDate(0, 0, maxJobSpanDays+1); iv.End.After(latest) {
		return withCode(usage.Errorf(usage.KindInvalid, "interval",
			"interval end %s is more than %d days after its start: for this start the last day is %s",
			formatTime(iv.End), maxJobSpanDays, latest.AddDate(0, 0, -1).Format(time.DateOnly)), codeConstraintValidation)
	}
	return nil
}

// jobCreatedAt answers the start of a job whose route is path(id).
func jobCreatedAt(path func(string) string) func(usage.Execution) any {
	return func(e usage.Execution) any {
		p := path(e.ID)
		return jobCreated{ID: e.ID, Name: e.Name, ResultsURI: p, SelfURI: p}
	}
}

// job returns job id if the caller's organization started it through api
// (for clientID's path, if any); any other job is reported missing.
func (s *Server) job(ctx context.Context, org, id string, api *jobAPI, clientID string) (usage.Execution, error) {
	e, err := s.execution(ctx, org, id, api.op, clientID)
	if usage.KindOf(err) == usage.KindNotFound {
		return e, usage.Errorf(usage.KindNotFound, "jobId", "Job %s was not found. Jobs are kept for a limited time after they are started.", quote(id))
	}
	return e, err
}

func (s *Server) postOrganizationJob(r *http.Request, org string) (response, error) {
	var req organizationJobRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	shared := req.shared()
	q, sort, err := s.jobQuery(org, &shared, &organizationJobs)
	if err != nil {
		return response{}, err
	}
	q.Filter.UserIDs = req.UserIDs
	q.Filter.ClientIDs = req.OAuthClientIDs
	if q, err = q.Normalize(); err != nil {
		return response{}, err
	}
	return s.start(r, usage.Execution{OrganizationID: org, Operation: opOrganizationJob, Query: q, Sort: sort}, jobCreatedAt(organizationJobPath))
}

func (s *Server) postClientJob(r *http.Request, org string) (response, error) {
	var req clientJobRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	client, err := s.clientOf(r.Context(), org, r.PathValue("clientId"))
	if err != nil {
		return response{}, err
	}
	shared := req.shared()
	q, sort, err := s.jobQuery(org, &shared, &clientJobs)
	if err != nil {
		return response{}, err
	}
	q.Filter.ClientIDs = []string{client}
	if len(req.OrganizationIDs) > 0 && !slices.Contains(req.OrganizationIDs, org) {
		// The caller sees only its own organization's usage, so a list
		// without it matches nothing. Every event has a client id, so no
		// event has the empty one.
		q.Filter.ClientIDs = []string{""}
	}
	if q, err = q.Normalize(); err != nil {
		return response{}, err
	}
	return s.start(r, usage.Execution{OrganizationID: org, Operation: opClientJob, ClientID: client, Query: q, Sort: sort}, jobCreatedAt(clientJobPath(client)))
}

func (s *Server) getOrganizationJob(r *http.Request, org string) (response, error) {
	return s.getJob(r, org, &organizationJobs, "", organizationJobPath)
}

func (s *Server) getClientJob(r *http.Request, org string) (response, error) {
	client := r.PathValue("clientId")
	return s.getJob(r, org, &clientJobs, client, clientJobPath(client))
}

func (s *Server) deleteOrganizationJob(r *http.Request, org string) (response, error) {
	return s.deleteJob(r, org, &organizationJobs, "")
}

func (s *Server) deleteClientJob(r *http.Request, org string) (response, error) {
	return s.deleteJob(r, org, &clientJobs, r.PathValue("clientId"))
}

// getJob answers a job's status and, once it has succeeded, a page of its
// entities from the after cursor, with nextUri while more remain.
func (s *Server) getJob(r *http.Request, org string, api *jobAPI, clientID string, path func(string) string) (response, error) {
	pageSize, err := pageSizeParam(r, "pageSize", defaultPageSize, maxPageSize)
	if err != nil {
		return response{}, err
	}
	id := r.PathValue("jobId")
	offset, err := cursorParam(r, "after", id)
	if err != nil {
		return response{}, withCode(usage.Errorf(usage.KindInvalid, "after",
			"after is not a cursor of this job: follow the nextUri of the previous page"), codeInvalidQueryParam)
	}
	e, err := s.job(r.Context(), org, id, api, clientID)
	if err != nil {
		return response{}, err
	}
	self := path(id)
	res := jobResults{Name: e.Name, SelfURI: self}
	switch e.Status {
	case usage.ExecutionQueued:
		res.QueryStatus = "Queued"
		return ok(res), nil
	case usage.ExecutionRunning:
		res.QueryStatus = "Running"
		return ok(res), nil
	case usage.ExecutionCancelled:
		res.QueryStatus = "Cancelled"
		return ok(res), nil
	case usage.ExecutionComplete:
		res.QueryStatus = "Succeeded"
	default:
		body, _ := errorResponse(executionError(e), correlationID(r.Context()))
		res.QueryStatus, res.ErrorBody = "Failed", &body
		return ok(res), nil
	}
	rows, err := s.cfg.Queries.Rows(r.Context(), query.ScopeOf(e), e.ID, offset, pageSize)
	if err != nil {
		return response{}, err
	}
	res.Entities = make([]jobEntity, 0, len(rows))
	for i := range rows {
		res.Entities = append(res.Entities, jobEntityOf(&rows[i], &e.Query))
	}
	if next := offset + len(rows); len(rows) > 0 && next < e.RowCount {
		res.NextURI = self + "?" + url.Values{
			"pageSize": {strconv.Itoa(pageSize)},
			"after":    {encodeCursor(id, next)},
		}.Encode()
	}
	return ok(res), nil
}

// deleteJob cancels a job that has not finished; see registerJobs.
func (s *Server) deleteJob(r *http.Request, org string, api *jobAPI, clientID string) (response, error) {
	id := r.PathValue("jobId")
	e, err := s.job(r.Context(), org, id, api, clientID)
	if err != nil {
		return response{}, err
	}
	if !e.Status.Done() {
		if _, err := s.cfg.Queries.Cancel(r.Context(), query.ScopeOf(e), e.ID); err != nil {
			if usage.KindOf(err) == usage.KindNotFound {
				_, err = s.job(r.Context(), org, id, api, clientID)
			}
			return response{}, err
		}
	}
	return noContent, nil
}

// jobEntityOf converts a row of a job with query q.
func jobEntityOf(row *usage.Row, q *usage.Query) jobEntity {
	var out jobEntity
	if q.Granularity != usage.GranularityNone {
		out.Date = row.Date.UTC().Format(time.DateOnly)
	}
	count := func(m usage.Metric) *int64 {
		if !slices.Contains(q.Metrics, m) {
			return nil
		}
		v := row.Get(m)
		return &v
	}
	out.RequestCount = count(usage.MetricRequests)
	out.Status200 = count(usage.MetricStatus200)
	out.Status300 = count(usage.MetricStatus300)
	out.Status400 = count(usage.MetricStatus400)
	out.Status429 = count(usage.MetricStatus429)
	out.Status500 = count(usage.MetricStatus500)
	for _, d := range q.GroupBy {
		v := row.Dim(d)
		switch d {
		case usage.DimPlatform:
			out.Platform = &v
		case usage.DimHTTPMethod:
			out.HTTPMethod = &v
		case usage.DimTemplateURI:
			out.TemplateURI = &v
		case usage.DimOrganizationID:
			out.OrganizationID = &v
		case usage.DimClientID:
			if v != "" {
				out.OAuthClient = &entityRef{ID: v, Name: row.ClientName, SelfURI: "/api/v2/oauth/clients/" + url.PathEscape(v)}
			}
		case usage.DimUserID:
			// Requests made for no user have no user to refer to.
			if v != "" {
				out.User = &entityRef{ID: v, SelfURI: "/api/v2/users/" + url.PathEscape(v)}
			}
		}
	}
	return out
}
