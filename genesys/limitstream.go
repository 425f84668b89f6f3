package genesys

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/usage"
)

// LimitFeed tells of the enforced limits and their values as they change:
// limiteval.Watcher where the usage store shows its commits, a
// limiteval.Poller elsewhere.
type LimitFeed interface {
	// Subscribe returns every enforced limit of organization org (of all
	// of them for "") with the values of their current windows, and a
	// channel of the changes that follow, closed when the subscriber falls
	// behind or the feed stops; cancel ends the subscription.
	Subscribe(ctx context.Context, org string) (snapshot usage.LimitUpdate, updates <-chan usage.LimitUpdate, cancel func(), err error)
}

// Limits stream bounds.
const (
	// limitStreamAge ends a stream after a while, so that a revoked token
	// or a lost permission stops it: the client connects again.
	limitStreamAge = 10 * time.Minute
	// limitStreamHeartbeat keeps idle connections open through proxies
	// and tells the subscriber usaged is there.
	limitStreamHeartbeat = 5 * time.Second
	// maxLimitStreams bounds the streams open at once on one server.
	maxLimitStreams = 1000
	// limitStreamWrite bounds one write to a subscriber: a client that
	// stops reading is dropped.
	limitStreamWrite = 10 * time.Second
)

// limitStreams counts the open limits streams of all servers of the
// process.
var limitStreams atomic.Int64

// registerLimitStream adds GET /api/v2/usage/limits/stream: the enforced
// limits of the caller's organization (of every organization for the
// admin token without organizationId), and their values as commits change
// them, as server-sent events. The metering proxy and middleware enforce
// limits from it (meter/enforce).
func (s *Server) registerLimitStream(r *router) {
	// Not through r.handle: a 405 for the path's other methods would
	// clash with the limits' {limitId} routes, which answer them (404).
	r.mux.Handle("GET /api/v2/usage/limits/stream", s.route(httpmw.Route{Pattern: "GET /api/v2/usage/limits/stream", Class: httpmw.ClassAPI}, http.HandlerFunc(s.limitStream)))
}

func (s *Server) limitStream(w http.ResponseWriter, r *http.Request) {
	a, done := authenticated(r)
	if !done {
		a.p, a.err = s.authenticate(r)
	}
	if a.err != nil {
		s.writeError(w, r, a.err)
		return
	}
	p := a.p
	org, err := s.streamOrganization(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.cfg.LimitFeed == nil {
		s.writeError(w, r, errNoLimits)
		return
	}
	if limitStreams.Add(1) > maxLimitStreams {
		limitStreams.Add(-1)
		s.writeError(w, r, usage.Errorf(usage.KindUnavailable, "", "Too many limits streams are open (%d); try again later.", maxLimitStreams))
		return
	}
	defer limitStreams.Add(-1)
	ctx, stop := context.WithTimeout(r.Context(), limitStreamAge)
	defer stop()
	snapshot, updates, cancel, err := s.cfg.LimitFeed.Subscribe(ctx, org)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer cancel()

	rc := http.NewResponseController(w)
	// The server's read timeout would end the stream: the connection's
	// read deadline also cancels the request's context.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: bufio.NewWriter(w), rc: rc, sent: map[[2]string]int64{}}
	sw.update(&snapshot)
	sw.event("ready", struct{}{})
	beat := time.NewTicker(limitStreamHeartbeat)
	defer beat.Stop()
	for sw.err == nil {
		if err := sw.flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return // behind, or the feed stopped: the client starts again
			}
			sw.update(&u)
		case <-beat.C:
			sw.comment("heartbeat")
		}
	}
}

// streamOrganization returns the organization a limits stream follows:
// the client's own, or the one the admin token names, or "" (all of them)
// for the admin token without organizationId.
func (s *Server) streamOrganization(r *http.Request, p *auth.Principal) (string, error) {
	if err := requireAny(p, usage.PermLimitView); err != nil {
		return "", err
	}
	org := r.URL.Query().Get("organizationId")
	switch {
	case org == "":
		return p.OrganizationID, nil
	case !p.CanAccess(org) || !s.cfg.Auth.KnownOrganization(org):
		return "", usage.Errorf(usage.KindNotFound, "organizationId", "organization %s was not found", quote(org))
	}
	return org, nil
}

// sseWriter writes server-sent events; the first error stops it.
type sseWriter struct {
	w    *bufio.Writer
	rc   *http.ResponseController
	sent map[[2]string]int64 // the version of each limit sent
	err  error
}

// update writes u: a `limit` event for each limit new to the subscriber or
// of a new version, before its values; a `removed` event for each limit
// removed; a `value` event for each value.
func (sw *sseWriter) update(u *usage.LimitUpdate) {
	for i := range u.Removed {
		l := &u.Removed[i]
		delete(sw.sent, [2]string{l.OrganizationID, l.ID})
		sw.event("removed", wire.LimitStreamRemoved{OrganizationID: l.OrganizationID, LimitID: l.ID})
	}
	for i := range u.Limits {
		l := &u.Limits[i]
		key := [2]string{l.OrganizationID, l.ID}
		if v, ok := sw.sent[key]; ok && v == l.Version {
			continue
		}
		sw.sent[key] = l.Version
		sw.event("limit", wire.LimitStreamLimit{OrganizationID: l.OrganizationID, Limit: limitBody(l, nil)})
	}
	for i := range u.Values {
		v := &u.Values[i]
		if sw.sent[[2]string{v.OrganizationID, v.LimitID}] != v.Version {
			continue // of a version the subscriber does not have: its limit event comes first
		}
		sw.event("value", wire.LimitStreamValue{OrganizationID: v.OrganizationID, LimitID: v.LimitID, Version: v.Version, ClientID: v.ClientID,
			WindowStart: v.Window.Start.Format(time.RFC3339), WindowEnd: v.Window.End.Format(time.RFC3339), Value: v.Value})
	}
}

func (sw *sseWriter) event(name string, data any) {
	if sw.err != nil {
		return
	}
	b, err := json.Marshal(data)
	if err != nil {
		sw.err = err
		return
	}
	sw.w.WriteString("event: ")
	sw.w.WriteString(name)
	sw.w.WriteString("\ndata: ")
	sw.w.Write(b)
	_, sw.err = sw.w.WriteString("\n\n")
}

func (sw *sseWriter) comment(text string) {
	if sw.err == nil {
		_, sw.err = sw.w.WriteString(": " + text + "\n\n")
	}
}

// flush sends what was written, within limitStreamWrite.
func (sw *sseWriter) flush() error {
	if sw.err != nil {
		return sw.err
	}
	if sw.w.Buffered() == 0 {
		return nil
	}
	sw.rc.SetWriteDeadline(time.Now().Add(limitStreamWrite))
	if sw.err = sw.w.Flush(); sw.err == nil {
		sw.err = sw.rc.Flush()
	}
	return sw.err
}
