package genesys

import (
	"net/http"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/ingest/ingesthttp"
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
	res, err := ingesthttp.Events(r, s.cfg.Ingest, s.cfg.MaxBody, ingest.Scope{OrganizationID: p.OrganizationID})
	if err != nil {
		return response{}, err
	}
	return ok(res), nil
}
