package wire

import "encoding/json"

// Webhook is a webhook endpoint of an organization. Secret is present only
// in the answer that creates it.
type Webhook struct {
	ID           string   `json:"id"`
	URL          string   `json:"url"`
	EventTypes   []string `json:"eventTypes"`
	Enabled      bool     `json:"enabled"`
	Secret       string   `json:"secret,omitempty"`
	DateCreated  string   `json:"dateCreated"`
	DateModified string   `json:"dateModified"`
	SelfURI      string   `json:"selfUri"`
}

// WebhookEntities lists an organization's webhooks.
type WebhookEntities struct {
	Entities []Webhook `json:"entities"`
	Total    int       `json:"total"`
	SelfURI  string    `json:"selfUri"`
}

// WebhookRequest creates a webhook, or replaces one's url, event types and
// enabled (absent: true).
type WebhookRequest struct {
	URL        *string  `json:"url"`
	EventTypes []string `json:"eventTypes"`
	Enabled    *bool    `json:"enabled"`
}

// WebhookDelivery is one attempt to send a notification to a webhook.
type WebhookDelivery struct {
	ID             string          `json:"id"`
	NotificationID string          `json:"notificationId"`
	EventType      string          `json:"eventType"`
	Attempt        int             `json:"attempt"`
	DateCreated    string          `json:"dateCreated"`
	Succeeded      bool            `json:"succeeded"`
	StatusCode     int             `json:"statusCode,omitempty"`
	LatencyMs      int64           `json:"latencyMs"`
	Error          string          `json:"error,omitempty"`
	Response       string          `json:"response,omitempty"`
	Replay         bool            `json:"replay"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}

// WebhookDeliveryPage is a page of a webhook's delivery log, newest first.
type WebhookDeliveryPage struct {
	Entities []WebhookDelivery `json:"entities"`
	PageSize int               `json:"pageSize"`
	Cursors  *Cursors          `json:"cursors,omitempty"`
	NextURI  string            `json:"nextUri,omitempty"`
	SelfURI  string            `json:"selfUri"`
}
