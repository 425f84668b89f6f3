package genesys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
	"github.com/usaged/usaged/webhook"
)

// WebhookSender sends one notification to one endpoint at once, outside
// any retry schedule, and records the attempt in the endpoint's log: the
// replays and tests of the webhook routes.
type WebhookSender interface {
	Send(ctx context.Context, ep usage.WebhookEndpoint, n usage.Notification) (usage.Delivery, error)
}

// webhooksPath is where the webhooks of the caller's organization are.
const webhooksPath = "/api/v2/usage/webhooks"

// registerWebhooks adds the webhook endpoints of the caller's organization,
// their delivery logs, replays and tests. Reads need usage:limit:view,
// writes usage:limit:edit; a webhook of another organization is missing,
// as one that does not exist. Without a store of webhooks (Config.Webhooks)
// the routes answer 501.
func (s *Server) registerWebhooks(r *router) {
	r.api("GET "+webhooksPath, s.ownWebhooks(usage.PermLimitView, s.listWebhooks))
	r.api("POST "+webhooksPath, s.ownWebhooks(usage.PermLimitEdit, s.createWebhook))
	r.api("GET "+webhooksPath+"/{webhookId}", s.ownWebhooks(usage.PermLimitView, s.getWebhook))
	r.api("PUT "+webhooksPath+"/{webhookId}", s.ownWebhooks(usage.PermLimitEdit, s.updateWebhook))
	r.api("DELETE "+webhooksPath+"/{webhookId}", s.ownWebhooks(usage.PermLimitEdit, s.deleteWebhook))
	r.api("GET "+webhooksPath+"/{webhookId}/deliveries", s.ownWebhooks(usage.PermLimitView, s.listDeliveries))
	r.api("POST "+webhooksPath+"/{webhookId}/deliveries/{deliveryId}/replay", s.ownWebhooks(usage.PermLimitEdit, s.replayDelivery))
	r.api("POST "+webhooksPath+"/{webhookId}/test", s.ownWebhooks(usage.PermLimitEdit, s.testWebhook))
}

// ownWebhooks runs h for principals holding perm and belonging to an
// organization, when the server keeps webhooks.
func (s *Server) ownWebhooks(perm string, h handlerFunc) handlerFunc {
	return func(r *http.Request, p *auth.Principal) (response, error) {
		if err := requireAny(p, perm); err != nil {
			return response{}, err
		}
		if p.OrganizationID == "" {
			return response{}, withCode(usage.Errorf(usage.KindForbidden, "",
				"The admin token belongs to no organization; manage webhooks with a token of one of the organization's OAuth clients."),
				codeNotAuthorized)
		}
		if s.cfg.Webhooks == nil || s.cfg.WebhookSender == nil {
			return response{}, &apiError{
				err:    usage.Errorf(usage.KindUnsupported, "", "This server keeps no webhooks."),
				code:   "not.implemented",
				status: http.StatusNotImplemented,
			}
		}
		return h(r, p)
	}
}

type (
	webhookBody     = wire.Webhook
	webhookRequest  = wire.WebhookRequest
	webhookListing  = wire.WebhookEntities
	deliveryBody    = wire.WebhookDelivery
	deliveryListing = wire.WebhookDeliveryPage
)

func webhookOf(e *usage.WebhookEndpoint) webhookBody {
	return webhookBody{
		ID: e.ID, URL: e.URL, EventTypes: e.EventTypes, Enabled: e.Enabled,
		DateCreated: formatTime(e.CreatedAt), DateModified: formatTime(e.UpdatedAt),
		SelfURI: webhooksPath + "/" + e.ID,
	}
}

// applyWebhook sets e's url, event types and enabled from req, the body of
// POST and PUT, and validates e.
func applyWebhook(req *webhookRequest, e *usage.WebhookEndpoint) error {
	if req.URL == nil {
		return usage.Errorf(usage.KindInvalid, "url", "url is required")
	}
	e.URL, e.EventTypes, e.Enabled = *req.URL, req.EventTypes, req.Enabled == nil || *req.Enabled
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return e.Validate()
}

func (s *Server) listWebhooks(r *http.Request, p *auth.Principal) (response, error) {
	eps, err := s.cfg.Webhooks.Webhooks(r.Context(), p.OrganizationID)
	if err != nil {
		return response{}, err
	}
	out := webhookListing{Entities: make([]webhookBody, 0, len(eps)), Total: len(eps), SelfURI: webhooksPath}
	for i := range eps {
		out.Entities = append(out.Entities, webhookOf(&eps[i]))
	}
	return ok(out), nil
}

func (s *Server) createWebhook(r *http.Request, p *auth.Principal) (response, error) {
	var req webhookRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	now := s.cfg.Now().UTC()
	e := usage.WebhookEndpoint{ID: newUUID(), OrganizationID: p.OrganizationID, Secret: webhook.NewSecret(), CreatedAt: now, UpdatedAt: now}
	if err := applyWebhook(&req, &e); err != nil {
		return response{}, err
	}
	eps, err := s.cfg.Webhooks.Webhooks(r.Context(), p.OrganizationID)
	if err != nil {
		return response{}, err
	}
	if len(eps) >= usage.MaxWebhookEndpoints {
		return response{}, usage.Errorf(usage.KindConflict, "", "the organization has %d webhooks, the most it may have: delete one first", len(eps))
	}
	if err := s.cfg.Webhooks.PutWebhook(r.Context(), e); err != nil {
		return response{}, err
	}
	body := webhookOf(&e)
	body.Secret = e.Secret
	return created(body), nil
}

// webhook returns the caller's endpoint named by the path.
func (s *Server) webhook(r *http.Request, p *auth.Principal) (usage.WebhookEndpoint, error) {
	id := r.PathValue("webhookId")
	e, err := s.cfg.Webhooks.Webhook(r.Context(), p.OrganizationID, id)
	if usage.KindOf(err) == usage.KindNotFound {
		return e, usage.Errorf(usage.KindNotFound, "webhookId", "webhook %s was not found", quote(id))
	}
	return e, err
}

func (s *Server) getWebhook(r *http.Request, p *auth.Principal) (response, error) {
	e, err := s.webhook(r, p)
	if err != nil {
		return response{}, err
	}
	return ok(webhookOf(&e)), nil
}

func (s *Server) updateWebhook(r *http.Request, p *auth.Principal) (response, error) {
	var req webhookRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	e, err := s.webhook(r, p)
	if err != nil {
		return response{}, err
	}
	if err := applyWebhook(&req, &e); err != nil {
		return response{}, err
	}
	e.UpdatedAt = s.cfg.Now().UTC()
	if err := s.cfg.Webhooks.PutWebhook(r.Context(), e); err != nil {
		return response{}, err
	}
	return ok(webhookOf(&e)), nil
}

func (s *Server) deleteWebhook(r *http.Request, p *auth.Principal) (response, error) {
	e, err := s.webhook(r, p)
	if err != nil {
		return response{}, err
	}
	if err := s.cfg.Webhooks.DeleteWebhook(r.Context(), p.OrganizationID, e.ID); err != nil {
		return response{}, err
	}
	return noContent, nil
}

func deliveryOf(d *usage.Delivery) deliveryBody {
	b := deliveryBody{
		ID: d.ID, NotificationID: d.Notification.ID, EventType: d.Notification.Type, Attempt: d.Attempt,
		DateCreated: d.Time.UTC().Format(time.RFC3339Nano), Succeeded: d.Succeeded(), StatusCode: d.StatusCode,
		LatencyMs: d.Latency.Milliseconds(), Error: d.Error, Response: d.Response, Replay: d.Replay,
	}
	if json.Valid(d.Notification.Payload) {
		b.Payload = d.Notification.Payload
	}
	return b
}

func (s *Server) listDeliveries(r *http.Request, p *auth.Principal) (response, error) {
	e, err := s.webhook(r, p)
	if err != nil {
		return response{}, err
	}
	size, err := pageSizeParam(r, "pageSize", defaultPageSize, maxPageSize)
	if err != nil {
		return response{}, err
	}
	after := r.URL.Query().Get("after")
	ds, next, err := s.cfg.Webhooks.Deliveries(r.Context(), p.OrganizationID, e.ID, after, size)
	if usage.KindOf(err) == usage.KindInvalid {
		return response{}, withCode(err, codeInvalidQueryParam)
	}
	if err != nil {
		return response{}, err
	}
	self := webhooksPath + "/" + e.ID + "/deliveries"
	out := deliveryListing{Entities: make([]deliveryBody, 0, len(ds)), PageSize: size, SelfURI: self}
	for i := range ds {
		out.Entities = append(out.Entities, deliveryOf(&ds[i]))
	}
	if next != "" {
		out.Cursors = &cursors{After: next}
		out.NextURI = self + "?" + url.Values{"pageSize": {strconv.Itoa(size)}, "after": {next}}.Encode()
	}
	return ok(out), nil
}

// replayDelivery sends the notification of a delivery again to its
// endpoint, with the same webhook-id, and answers the new attempt.
func (s *Server) replayDelivery(r *http.Request, p *auth.Principal) (response, error) {
	e, err := s.webhook(r, p)
	if err != nil {
		return response{}, err
	}
	id := r.PathValue("deliveryId")
	d, err := s.cfg.Webhooks.Delivery(r.Context(), p.OrganizationID, e.ID, id)
	if usage.KindOf(err) == usage.KindNotFound {
		return response{}, usage.Errorf(usage.KindNotFound, "deliveryId", "delivery %s of webhook %s was not found", quote(id), e.ID)
	}
	if err != nil {
		return response{}, err
	}
	again, err := s.cfg.WebhookSender.Send(r.Context(), e, d.Notification)
	if err != nil {
		return response{}, err
	}
	return ok(deliveryOf(&again)), nil
}

// testWebhook sends a webhook.test notification to the endpoint, enabled
// or not, and answers the attempt.
func (s *Server) testWebhook(r *http.Request, p *auth.Principal) (response, error) {
	e, err := s.webhook(r, p)
	if err != nil {
		return response{}, err
	}
	now := s.cfg.Now().UTC()
	payload, _ := json.Marshal(map[string]string{"webhookId": e.ID, "message": "a test notification from usaged"})
	n := usage.Notification{ID: "msg_" + newHex(16), OrganizationID: p.OrganizationID, Type: usage.NotificationWebhookTest, Time: now, Payload: payload}
	d, err := s.cfg.WebhookSender.Send(r.Context(), e, n)
	if err != nil {
		return response{}, err
	}
	return ok(deliveryOf(&d)), nil
}

func newHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
