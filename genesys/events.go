package genesys

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/ingest/ingesthttp"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// registerEvents adds event ingest and the listing of accepted events,
// usaged's own operations.
func (s *Server) registerEvents(r *router) {
	r.api("POST /api/v2/usage/events", s.postEvents)
	r.api("GET /api/v2/usage/events", inOrganization(organizationView, s.getEvents))
}

// postEvents records a batch of events. A client's events belong to its own
// organization; the admin's must each name theirs. The answer is 200 with
// per-event outcomes whenever the body parsed, even if every event was
// rejected: one bad event never fails its batch.
func (s *Server) postEvents(r *http.Request, p *auth.Principal) (response, error) {
	if err := requireAny(p, usage.PermEventAdd); err != nil {
		return response{}, err
	}
	res, err := ingesthttp.Events(r, s.cfg.Ingest, s.cfg.MaxBody, ingest.Scope{OrganizationID: p.OrganizationID})
	if err != nil {
		return response{}, err
	}
	return ok(res), nil
}

// maxEventsSpan bounds the interval of an events listing, so that a page
// of a sparse filter never reads more than a month of the journal.
const maxEventsSpan = 31 * 24 * time.Hour

// eventsParams are the query parameters of GET /api/v2/usage/events; an
// unknown one is refused rather than ignored, so that a misspelt filter
// does not silently list everything.
var eventsParams = []string{"interval", "clientId", "userId", "templateUri", "httpMethod", "pageSize", "cursor"}

// errNoJournal answers the events listing on a store that keeps only
// counts.
var errNoJournal = &apiError{
	err: usage.Errorf(usage.KindUnsupported, "",
		"This server's store keeps only counts, not the events themselves: listing events needs the cluster backend (usaged serve --store clickhouse://host:port/database)."),
	code:   "not.implemented",
	status: http.StatusNotImplemented,
}

// getEvents lists a page of the organization's accepted events, in order
// of time, client and event id.
func (s *Server) getEvents(r *http.Request, org string) (response, error) {
	journal, keeps := s.cfg.Events.(store.EventLister)
	if !keeps {
		return response{}, errNoJournal
	}
	p, err := eventsPage(r, org)
	if err != nil {
		return response{}, err
	}
	evs, next, err := journal.ListEvents(r.Context(), p)
	if usage.KindOf(err) == usage.KindInvalid {
		return response{}, withCode(err, codeInvalidQueryParam)
	}
	if err != nil {
		return response{}, err
	}
	page := wire.EventPage{Entities: make([]wire.Event, len(evs)), PageSize: p.Limit, Cursor: next}
	for i := range evs {
		page.Entities[i] = eventOf(&evs[i])
	}
	return ok(page), nil
}

// eventsPage parses the query parameters of an events listing of org.
func eventsPage(r *http.Request, org string) (store.EventPage, error) {
	p := store.EventPage{OrganizationID: org}
	params := r.URL.Query()
	for name := range params {
		if !slices.Contains(eventsParams, name) {
			return p, withCode(usage.Errorf(usage.KindInvalid, name,
				"%s is not a parameter of this operation: use %s", quote(name), strings.Join(eventsParams, ", ")), codeInvalidQueryParam)
		}
	}
	interval := params.Get("interval")
	iv, err := parseIntervalField("interval", &interval)
	if err != nil {
		return p, err
	}
	if iv.End.Sub(iv.Start) > maxEventsSpan {
		return p, withCode(usage.Errorf(usage.KindInvalid, "interval",
			"interval must span at most %d days, not %s: list a shorter interval, or several in turn", maxEventsSpan/(24*time.Hour), iv), codeInvalidQueryParam)
	}
	p.Interval = iv
	p.ClientIDs, p.UserIDs, p.TemplateURIs = params["clientId"], params["userId"], params["templateUri"]
	for _, m := range params["httpMethod"] {
		p.HTTPMethods = append(p.HTTPMethods, strings.ToUpper(m)) // as ingest records them
	}
	if p.Limit, err = pageSizeParam(r, "pageSize", defaultPageSize, maxPageSize); err != nil {
		return p, err
	}
	p.After = params.Get("cursor")
	return p, nil
}

// eventOf is ev as the events listing answers it.
func eventOf(ev *usage.Event) wire.Event {
	return wire.Event{
		ID:             ev.ID,
		Time:           ev.Time.UTC(),
		OrganizationID: ev.OrganizationID,
		ClientID:       ev.ClientID,
		ClientName:     ev.ClientName,
		UserID:         ev.UserID,
		TemplateURI:    ev.TemplateURI,
		HTTPMethod:     ev.HTTPMethod,
		Status:         ev.Status,
		Platform:       ev.Platform,
		DurationMs:     ev.DurationMs,
		RequestBytes:   ev.RequestBytes,
		ResponseBytes:  ev.ResponseBytes,
	}
}
