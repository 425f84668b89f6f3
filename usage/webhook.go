package usage

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The types of notifications.
const (
	// NotificationLimitThreshold says that a usage limit's value crossed one
	// of its thresholds in one of its windows.
	NotificationLimitThreshold = "limit.threshold"
	// NotificationWebhookTest is sent on request to one endpoint, to try it.
	NotificationWebhookTest = "webhook.test"
)

// NotificationTypes lists the types an endpoint may subscribe to, in a
// stable order. A test notification goes to the endpoint it tests, whatever
// it subscribes to.
var NotificationTypes = []string{NotificationLimitThreshold}

// Bounds of a webhook endpoint and of what is kept of its deliveries.
const (
	MaxWebhookURLBytes  = 2048
	MaxWebhookEndpoints = 20       // per organization
	MaxPayloadBytes     = 64 << 10 // of one notification's payload
	MaxResponseSnippet  = 1024     // bytes of a response body kept with a delivery
)

// WebhookEndpoint is where an organization receives notifications: an
// HTTPS (or HTTP) URL, the types it subscribes to and the secret its
// requests are signed with (see package webhook).
type WebhookEndpoint struct {
	ID             string
	OrganizationID string
	URL            string
	// EventTypes are the notification types sent to the endpoint, each one
	// of NotificationTypes, without repeats.
	EventTypes []string
	// Secret is "whsec_" and the base64 of the signing key.
	Secret    string
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Subscribed reports whether e is enabled and subscribes to notifications
// of type typ.
func (e *WebhookEndpoint) Subscribed(typ string) bool {
	return e.Enabled && slices.Contains(e.EventTypes, typ)
}

// Validate reports the first problem with e's URL and event types as an
// error of kind KindInvalid naming the field ("url", "eventTypes").
func (e *WebhookEndpoint) Validate() error {
	if err := ValidateWebhookURL(e.URL); err != nil {
		return err
	}
	if len(e.EventTypes) == 0 {
		return Errorf(KindInvalid, "eventTypes", "eventTypes must name at least one of %s", strings.Join(NotificationTypes, ", "))
	}
	for i, t := range e.EventTypes {
		if !slices.Contains(NotificationTypes, t) {
			return Errorf(KindInvalid, "eventTypes", "event type %q is not one of %s", t, strings.Join(NotificationTypes, ", "))
		}
		if slices.Contains(e.EventTypes[:i], t) {
			return Errorf(KindInvalid, "eventTypes", "event type %q is named twice", t)
		}
	}
	return nil
}

// ValidateWebhookURL checks the form of an endpoint's URL: absolute, http
// or https, with a host, without user information or a fragment, and at
// most MaxWebhookURLBytes long. The addresses its host resolves to are
// checked when a request is sent, not here (DNS may change in between).
func ValidateWebhookURL(raw string) error {
	bad := func(format string, args ...any) error {
		return &Error{Kind: KindInvalid, Field: "url", Message: "url " + fmt.Sprintf(format, args...)}
	}
	if raw == "" {
		return bad("is required")
	}
	if len(raw) > MaxWebhookURLBytes {
		return bad("is %d bytes long, more than the limit of %d", len(raw), MaxWebhookURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%q is not a URL: %v", raw, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("%q must start with https:// or http://", raw)
	case u.User != nil:
		return bad("%q must not carry a user name or password", raw)
	case u.Hostname() == "":
		return bad("%q has no host", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("%q must not have a fragment (#…)", raw)
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return bad("%q has port %q, not one from 1 to 65535", raw, p)
		}
	}
	return nil
}

// Notification is a message to an organization's webhook endpoints. Its ID
// is stable: every attempt to deliver it, to any endpoint, and every replay
// carries it as webhook-id, so that receivers deduplicate by it.
type Notification struct {
	ID             string
	OrganizationID string
	Type           string
	Time           time.Time
	// Payload is the JSON object sent as the request body, at most
	// MaxPayloadBytes.
	Payload []byte
}

// Delivery is the record of one attempt to send a notification to one
// endpoint.
type Delivery struct {
	ID             string
	OrganizationID string
	EndpointID     string
	// Notification is what was sent, kept whole so that a delivery can be
	// replayed after its notification has left the outbox.
	Notification Notification
	// Attempt counts the attempts of this notification to this endpoint,
	// from 1; a replay is an attempt too.
	Attempt int
	Time    time.Time
	// StatusCode is the response's status, 0 when none came (see Error).
	StatusCode int
	Latency    time.Duration
	// Error says why no response came, or why it did not count: a refused
	// address, a timeout, a connection reset; "" when a response came.
	Error string
	// Response is the start of the response body, at most
	// MaxResponseSnippet bytes.
	Response string
	// Replay is whether the attempt was asked for by a replay (or a test),
	// outside the retry schedule.
	Replay bool
}

// Succeeded reports whether the receiver answered with a 2xx status.
func (d *Delivery) Succeeded() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }
