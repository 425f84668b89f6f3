package ccc

import (
	"net/http"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/servicestack"
)

// postEvents answers POST /api/services/{ServiceGuid}/events: a JSON array
// (or {"events":[…]}) or NDJSON of activity events, possibly gzipped. The
// answer is per event, as for API request events: accepted, duplicates and
// rejected with their reasons. A 200 means every accepted event is durable.
func (s *Server) postEvents(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "PostServiceEvents")
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	f, err := ingest.FormatOf(r.Header.Get("Content-Type"))
	if err != nil {
		return 0, nil, err
	}
	body, err := ingest.ReadBody(r.Body, r.Header.Get("Content-Encoding"), s.cfg.MaxBody)
	if err != nil {
		return 0, nil, err
	}
	b, err := ingest.DecodeActivity(body, f, s.cfg.Ingest.Limits())
	if err != nil {
		return 0, nil, err
	}
	res, err := s.cfg.Ingest.IngestActivity(r.Context(), svc.GUID, b)
	if err != nil {
		return 0, nil, err
	}
	return 0, res, nil
}
