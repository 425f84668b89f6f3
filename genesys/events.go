package genesys

import (
	"errors"
	"io"
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
	// ReadBody bounds the decompressed size; wire bounds the compressed size,
	// which gzip does not bound (empty gzip members decompress to nothing).
	wire := &cappedReader{r: r.Body, left: s.cfg.MaxBody}
	body, err := ingest.ReadBody(wire, r.Header.Get("Content-Encoding"), s.cfg.MaxBody)
	if wire.over {
		return response{}, usage.Errorf(usage.KindTooLarge, "body", "body is larger than the limit of %d bytes", s.cfg.MaxBody)
	}
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

// errOverLimit is what cappedReader returns once its limit is passed.
var errOverLimit = errors.New("body over limit")

// cappedReader reads at most left bytes of r and records an attempt to read more.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Probe for one more byte: a body of exactly the limit is fine.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, errOverLimit
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
