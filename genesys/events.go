package genesys

import (
	"net/http"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// registerEvents adds event ingest, usaged's own operation.
func (s *Server) registerEvents(r *router) {
	r.api("POST /api/v2/usage/events", s.postEvents)
}

// postEvents records a batch of events. A client's events belong to its own
// organization; the admin's must each name theirs. The answer is 200 with
// per-event outcomes whenever the body parsed, even if every event was
// rejected: one bad event never fails its batch.
func (s *Server) postEvents(r *http.Request, p *auth.Principal) (response, error) {
	if err := requireAny(p, usage.PermEventAdd); err != nil {
		return response{}, err
	}
	f, err := ingest.FormatOf(r.Header.Get("Content-Type"))
	if err != nil {
		return response{}, err
	}
	body, err := ingest.ReadBody(r.Body, r.Header.Get("Content-Encoding"), s.cfg.MaxBody)
	if err != nil {
		return response{}, err
	}
	b, err := ingest.Decode(body, f, s.cfg.Ingest.Limits())
	if err != nil {
		return response{}, err
	}
	res, err := s.cfg.Ingest.Ingest(r.Context(), b, ingest.Scope{OrganizationID: p.OrganizationID})
	if err != nil {
		if usage.KindOf(err) == usage.KindInternal {
			// The client must send the batch again; the cause goes to the log only.
			err = &usage.Error{Kind: usage.KindUnavailable, Message: "The events could not be recorded and none of this batch was. Send it again later.", Err: err}
		}
		return response{}, err
	}
	return ok(res), nil
}
