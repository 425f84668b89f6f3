package genesys

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// registerLimits adds the usage limits of the caller's organization,
// usaged's own routes: create, list, read, replace and delete them, and
// their status in the current window.
func (s *Server) registerLimits(r *router) {
	r.api("GET /api/v2/usage/limits", s.limitsRoute(usage.PermLimitView, s.listLimits))
	r.api("POST /api/v2/usage/limits", s.limitsRoute(usage.PermLimitEdit, s.createLimit))
	r.api("GET /api/v2/usage/limits/{limitId}", s.limitsRoute(usage.PermLimitView, s.getLimit))
	r.api("PUT /api/v2/usage/limits/{limitId}", s.limitsRoute(usage.PermLimitEdit, s.updateLimit))
	r.api("DELETE /api/v2/usage/limits/{limitId}", s.limitsRoute(usage.PermLimitEdit, s.deleteLimit))
	r.api("GET /api/v2/usage/limits/{limitId}/status", s.limitsRoute(usage.PermLimitView, s.getLimitStatus))
}

// limitsPath is where the usage limits are.
const limitsPath = "/api/v2/usage/limits"

// DefaultMaxLimitsPerOrg is the default of Config.MaxLimitsPerOrg: far
// more than an organization watches, few enough that listing them all
// with their status stays cheap.
const DefaultMaxLimitsPerOrg = 1000

// limitHandler is a handler of the limits routes, given the organization
// whose limits it acts on.
type limitHandler func(r *http.Request, p *auth.Principal, org string) (response, error)

// limitsRoute runs h for principals holding perm, with the organization
// they act on: a client's own, or the one the admin token names with the
// organizationId parameter. An organization the caller may not see is
// missing, as one that does not exist.
func (s *Server) limitsRoute(perm string, h limitHandler) handlerFunc {
	return func(r *http.Request, p *auth.Principal) (response, error) {
		if err := requireAny(p, perm); err != nil {
			return response{}, err
		}
		if s.cfg.Limits == nil {
			return response{}, errNoLimits
		}
		org := r.URL.Query().Get("organizationId")
		switch {
		case org == "" && p.OrganizationID == "":
			return response{}, withCode(usage.Errorf(usage.KindInvalid, "organizationId",
				"organizationId is required with the admin token: the limits of which organization?"), codeInvalidQueryParam)
		case org == "":
			org = p.OrganizationID
		case !p.CanAccess(org) || !s.cfg.Auth.KnownOrganization(org):
			return response{}, usage.Errorf(usage.KindNotFound, "organizationId", "organization %s was not found", quote(org))
		}
		return h(r, p, org)
	}
}

// errNoLimits answers the limits routes of a server configured without a
// store of limits.
var errNoLimits = &apiError{
	err:    usage.Errorf(usage.KindUnsupported, "", "This server keeps no usage limits."),
	code:   "not.implemented",
	status: http.StatusNotImplemented,
}

// limit returns the limit of the path's limitId in org; another
// organization's is missing too.
func (s *Server) limit(r *http.Request, org string) (usage.Limit, error) {
	id := r.PathValue("limitId")
	l, err := s.cfg.Limits.Limit(r.Context(), org, id)
	if usage.KindOf(err) == usage.KindNotFound {
		return l, usage.Errorf(usage.KindNotFound, "limitId", "limit %s was not found", quote(id))
	}
	return l, err
}

// limitOf decodes req into a limit of org, normalized as of now.
func limitOf(req *wire.LimitRequest, org string, now time.Time) (usage.Limit, error) {
	l := usage.Limit{OrganizationID: org, Name: req.Name, ClientID: req.ClientID, Thresholds: req.Thresholds, Enforced: req.Enforced}
	var err error
	if req.Scope != "" {
		if l.Scope, err = usage.ParseLimitScope(req.Scope); err != nil {
			return l, withCode(err, codeInvalidValue)
		}
	}
	if req.Metric == "" {
		return l, usage.Errorf(usage.KindInvalid, "metric", "metric is required: requests, status200, status300, status400, status500, status429, errorRate or responseBytes")
	}
	if l.Metric, err = usage.ParseLimitMetric(req.Metric); err != nil {
		return l, withCode(err, codeInvalidValue)
	}
	if req.Window == nil || req.Window.Type == "" {
		return l, usage.Errorf(usage.KindInvalid, "window", `window is required, such as {"type":"day","timeZone":"Europe/Berlin"}`)
	}
	if l.Window.Type, err = usage.ParseWindowType(req.Window.Type); err != nil {
		return l, withCode(err, codeInvalidValue)
	}
	l.Window.TimeZone, l.Window.Minutes = req.Window.TimeZone, req.Window.Minutes
	if req.Value == nil {
		return l, usage.Errorf(usage.KindInvalid, "value", "value is required: a count, or a ratio such as 0.05 for errorRate")
	}
	l.Value = *req.Value
	if f := req.Filter; f != nil {
		l.Filter = usage.LimitFilter{UserIDs: f.UserIDs, TemplateURIs: f.TemplateURIs, HTTPMethods: f.HTTPMethods}
	}
	return l.Normalize(now)
}

// checkCountable refuses a limit this server cannot count: a rolling
// window where nothing evaluates limits as events commit (RollingWatch),
// and a measure the usage store does not keep, which it finds by asking the
// store for the metric over the present hour, passing on its refusal as
// one of the limit's metric.
func (s *Server) checkCountable(ctx context.Context, l *usage.Limit, now time.Time) error {
	if _, ok := s.cfg.LimitWatch.(RollingWatch); l.Window.Type == usage.WindowRolling && !ok {
		return usage.Errorf(usage.KindInvalid, "window.type", "rolling windows are counted minute by minute as events commit, which only the embedded store and the cluster do; this server's store keeps counts by the hour: use an hour, day, week or month window")
	}
	if l.Metric != usage.LimitResponseBytes {
		return nil
	}
	hour := now.UTC().Truncate(time.Hour)
	q, err := usage.Query{OrganizationID: l.OrganizationID, Interval: usage.Interval{Start: hour, End: hour.Add(time.Hour)},
		Metrics: l.Metric.QueryMetrics(), MaxRows: 1}.Normalize()
	if err != nil {
		return err
	}
	_, err = s.cfg.Queries.Query(ctx, q)
	if usage.KindOf(err) == usage.KindInvalid {
		msg := err.Error()
		if ue, ok := errors.AsType[*usage.Error](err); ok {
			msg = ue.Message
		}
		return usage.Errorf(usage.KindInvalid, "metric", "metric %s cannot be limited on this server: %s", l.Metric, msg)
	}
	return err
}

// now is the server's clock in UTC, to the millisecond that every store
// keeps.
func (s *Server) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func (s *Server) createLimit(r *http.Request, p *auth.Principal, org string) (response, error) {
	var req wire.LimitRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	if req.Version != nil {
		return response{}, usage.Errorf(usage.KindInvalid, "version", "version is the server's: a new limit starts at 1")
	}
	now := s.now()
	l, err := limitOf(&req, org, now)
	if err != nil {
		return response{}, err
	}
	if err := s.checkCountable(r.Context(), &l, now); err != nil {
		return response{}, err
	}
	// Checked before the put, so that two creates at once may both pass
	// at the bound: it keeps the number of limits in check, not exact.
	have, err := s.cfg.Limits.Limits(r.Context(), org)
	if err != nil {
		return response{}, err
	}
	if len(have) >= s.cfg.MaxLimitsPerOrg {
		return response{}, usage.Errorf(usage.KindConflict, "", "the organization has %d usage limits, the most it may have: delete one first", len(have))
	}
	l.ID, l.Version, l.Created, l.Updated = uuid.NewString(), 1, now, now
	if err := s.putLimit(r.Context(), l); err != nil {
		return response{}, err
	}
	return created(limitBody(&l, nil)), nil
}

// maxUpdateTries bounds how often an update without a version reads the
// limit again because another update landed first.
const maxUpdateTries = 10

// updateLimit replaces the limit, keeping its id and creation time; its
// version grows by one. A version in the body other than the stored one
// is a conflict: the limit changed since the caller read it.
func (s *Server) updateLimit(r *http.Request, p *auth.Principal, org string) (response, error) {
	old, err := s.limit(r, org)
	if err != nil {
		return response{}, err
	}
	var req wire.LimitRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	if req.Version != nil && *req.Version != old.Version {
		return response{}, usage.Errorf(usage.KindConflict, "version", "limit %s is at version %d, not %d: read it again and apply the change to that",
			quote(old.ID), old.Version, *req.Version)
	}
	now := s.now()
	l, err := limitOf(&req, org, now)
	if err != nil {
		return response{}, err
	}
	if err := s.checkCountable(r.Context(), &l, now); err != nil {
		return response{}, err
	}
	// The store checks the version again as it writes: another update
	// may have landed since old was read. Without a version in the body
	// the update replaces whatever is stored, so it reads again and
	// retries; with one, the caller's read is stale.
	for tries := 1; ; tries++ {
		l.ID, l.Version, l.Created, l.Updated = old.ID, old.Version+1, old.Created, now
		err = s.cfg.Limits.UpdateLimit(r.Context(), l, old.Version)
		if usage.KindOf(err) != usage.KindConflict {
			break
		}
		if req.Version != nil || tries == maxUpdateTries {
			return response{}, usage.Errorf(usage.KindConflict, "version", "limit %s changed while this update was made: read it again and apply the change to that", quote(old.ID))
		}
		if old, err = s.limit(r, org); err != nil {
			return response{}, err
		}
	}
	if err != nil {
		return response{}, err
	}
	if err := s.watch(r.Context(), l); err != nil {
		return response{}, err
	}
	return ok(limitBody(&l, nil)), nil
}

func (s *Server) deleteLimit(r *http.Request, p *auth.Principal, org string) (response, error) {
	id := r.PathValue("limitId")
	err := s.cfg.Limits.DeleteLimit(r.Context(), org, id)
	if usage.KindOf(err) == usage.KindNotFound {
		return response{}, usage.Errorf(usage.KindNotFound, "limitId", "limit %s was not found", quote(id))
	}
	if err != nil {
		return response{}, err
	}
	if s.cfg.LimitWatch != nil {
		s.cfg.LimitWatch.Removed(org, id)
	}
	return noContent, nil
}

// LimitWatch evaluates limits as events commit (limiteval.Watcher).
type LimitWatch interface {
	// Changed evaluates l, created or changed, from now on.
	Changed(ctx context.Context, l usage.Limit) error
	// Removed stops evaluating limit id of organization org.
	Removed(org, id string)
}

// RollingWatch is a LimitWatch that counts rolling windows, minute by
// minute (limiteval.Watcher on the embedded store, clickhouse.Limits on
// the cluster); a limit of a rolling window is refused where the watch is
// not one.
type RollingWatch interface {
	LimitWatch
	// RollingStatus returns the status of l, of a rolling window, now.
	RollingStatus(ctx context.Context, l *usage.Limit) (usage.LimitStatus, error)
}

// putLimit stores l and has it evaluated from now on.
func (s *Server) putLimit(ctx context.Context, l usage.Limit) error {
	if err := s.cfg.Limits.PutLimit(ctx, l); err != nil {
		return err
	}
	return s.watch(ctx, l)
}

// watch has l, just stored, evaluated from now on.
func (s *Server) watch(ctx context.Context, l usage.Limit) error {
	if s.cfg.LimitWatch == nil {
		return nil
	}
	return s.cfg.LimitWatch.Changed(ctx, l)
}

// expandStatus reads the expand parameter, which may name status only.
func expandStatus(r *http.Request) (bool, error) {
	want := false
	for _, v := range r.URL.Query()["expand"] {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "status" {
				return false, invalidValue("expand", e, []string{"status"})
			}
			want = true
		}
	}
	return want, nil
}

func (s *Server) getLimit(r *http.Request, p *auth.Principal, org string) (response, error) {
	expand, err := expandStatus(r)
	if err != nil {
		return response{}, err
	}
	l, err := s.limit(r, org)
	if err != nil {
		return response{}, err
	}
	var st *wire.LimitStatus
	if expand {
		if st, err = s.limitStatus(r.Context(), &l); err != nil {
			return response{}, err
		}
	}
	return ok(limitBody(&l, st)), nil
}

func (s *Server) getLimitStatus(r *http.Request, p *auth.Principal, org string) (response, error) {
	l, err := s.limit(r, org)
	if err != nil {
		return response{}, err
	}
	st, err := s.limitStatus(r.Context(), &l)
	if err != nil {
		return response{}, err
	}
	return ok(st), nil
}

// maxLimitsPageSize bounds pageSize of the limits list.
const maxLimitsPageSize = 500

// listLimits answers the organization's limits ordered by id, a page at a
// time: pageSize (1–500, default 25) and pageNumber (from 1), as Genesys
// lists entities.
func (s *Server) listLimits(r *http.Request, p *auth.Principal, org string) (response, error) {
	q := r.URL.Query()
	size, err := clientsPageParam(q, "pageSize", 25, maxLimitsPageSize)
	if err != nil {
		return response{}, err
	}
	number, err := clientsPageParam(q, "pageNumber", 1, 0)
	if err != nil {
		return response{}, err
	}
	expand, err := expandStatus(r)
	if err != nil {
		return response{}, err
	}
	ls, err := s.cfg.Limits.Limits(r.Context(), org)
	if err != nil {
		return response{}, err
	}
	out := wire.LimitEntityListing{Entities: []wire.Limit{}, PageSize: size, PageNumber: number, Total: len(ls),
		PageCount: (len(ls) + size - 1) / size}
	uri := func(n int) string {
		v := url.Values{"pageSize": {strconv.Itoa(size)}, "pageNumber": {strconv.Itoa(n)}}
		if expand {
			v.Set("expand", "status")
		}
		if o := q.Get("organizationId"); o != "" {
			v.Set("organizationId", o)
		}
		return limitsPath + "?" + v.Encode()
	}
	first := min((number-1)*size, len(ls)) // number is bounded: no overflow
	for i := range ls[first:min(first+size, len(ls))] {
		l := &ls[first+i]
		var st *wire.LimitStatus
		if expand {
			if st, err = s.limitStatus(r.Context(), l); err != nil {
				return response{}, err
			}
		}
		out.Entities = append(out.Entities, limitBody(l, st))
	}
	out.SelfURI, out.FirstURI, out.LastURI = uri(number), uri(1), uri(max(out.PageCount, 1))
	if number < out.PageCount {
		out.NextURI = uri(number + 1)
	}
	if number > 1 && number <= out.PageCount {
		out.PreviousURI = uri(number - 1)
	}
	return ok(out), nil
}

// limitStatus counts l's metric over its window holding the present, by
// the server's clock, exactly: through the query contract of the usage
// store, as the aggregate does, or for a rolling window from the minutes
// the limits' evaluator keeps.
func (s *Server) limitStatus(ctx context.Context, l *usage.Limit) (*wire.LimitStatus, error) {
	now := s.cfg.Now()
	var st usage.LimitStatus
	var err error
	if rw, ok := s.cfg.LimitWatch.(RollingWatch); ok && l.Window.Type == usage.WindowRolling {
		if st, err = rw.RollingStatus(ctx, l); err == nil {
			err = s.nameClients(ctx, l.OrganizationID, &st)
		}
	} else {
		st, err = l.CurrentStatus(now, maxQueryRows, func(q usage.Query) ([]usage.Row, error) { return s.cfg.Queries.Query(ctx, q) })
	}
	if err != nil {
		return nil, err
	}
	window := st.Window
	out := &wire.LimitStatus{
		LimitID:           l.ID,
		Metric:            l.Metric.String(),
		Value:             st.Value,
		Limit:             l.Value,
		Percentage:        l.Percent(st.Value),
		ThresholdsReached: []int{},
		WindowStart:       window.Start.Format(time.RFC3339),
		WindowEnd:         window.End.Format(time.RFC3339),
		DateEvaluated:     formatTime(now),
	}
	for _, t := range l.Thresholds {
		if out.Percentage >= float64(t) {
			out.ThresholdsReached = append(out.ThresholdsReached, t)
		}
	}
	if l.Scope == usage.ScopeEachClient {
		out.Clients = make([]wire.ClientLimitStatus, 0, len(st.Clients))
		for _, c := range st.Clients {
			out.Clients = append(out.Clients, wire.ClientLimitStatus{ClientID: c.ClientID, ClientName: c.ClientName, Value: c.Value, Percentage: l.Percent(c.Value)})
		}
	}
	return out, nil
}

// nameClients fills in the names of st's clients, which a rolling window's
// minutes do not keep, from the stored counts of the hours the window
// overlaps: every client listed has events in them.
func (s *Server) nameClients(ctx context.Context, org string, st *usage.LimitStatus) error {
	if len(st.Clients) == 0 {
		return nil
	}
	start := st.Window.Start.UTC().Truncate(time.Hour)
	end := st.Window.End.UTC().Add(time.Hour - 1).Truncate(time.Hour)
	q, err := usage.Query{OrganizationID: org, Interval: usage.Interval{Start: start, End: end}, GroupBy: []usage.Dimension{usage.DimClientID},
		Metrics: []usage.Metric{usage.MetricRequests}, MaxRows: maxQueryRows}.Normalize()
	if err != nil {
		return err
	}
	rows, err := s.cfg.Queries.Query(ctx, q)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(rows))
	for _, r := range rows {
		names[r.ClientID] = r.ClientName
	}
	for i := range st.Clients {
		st.Clients[i].ClientName = names[st.Clients[i].ClientID]
	}
	return nil
}

// limitBody is l as the routes answer it, with its status if st is set.
func limitBody(l *usage.Limit, st *wire.LimitStatus) wire.Limit {
	th := l.Thresholds
	if th == nil {
		th = []int{}
	}
	return wire.Limit{
		ID:           l.ID,
		Name:         l.Name,
		Scope:        l.Scope.String(),
		ClientID:     l.ClientID,
		Filter:       wire.LimitFilter{UserIDs: l.Filter.UserIDs, TemplateURIs: l.Filter.TemplateURIs, HTTPMethods: l.Filter.HTTPMethods},
		Metric:       l.Metric.String(),
		Window:       wire.LimitWindow{Type: l.Window.Type.String(), TimeZone: l.Window.TimeZone, Minutes: l.Window.Minutes},
		Value:        l.Value,
		Thresholds:   th,
		Enforced:     l.Enforced,
		Version:      l.Version,
		DateCreated:  l.Created.UTC().Format("2006-01-02T15:04:05.000Z"),
		DateModified: l.Updated.UTC().Format("2006-01-02T15:04:05.000Z"),
		Status:       st,
		SelfURI:      limitsPath + "/" + url.PathEscape(l.ID),
	}
}
