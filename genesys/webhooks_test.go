package genesys_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/notify"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
	"github.com/usaged/usaged/webhook"
)

type webhookBody struct {
	ID           string   `json:"id"`
	URL          string   `json:"url"`
	EventTypes   []string `json:"eventTypes"`
	Enabled      bool     `json:"enabled"`
	Secret       string   `json:"secret"`
	DateCreated  string   `json:"dateCreated"`
	DateModified string   `json:"dateModified"`
	SelfURI      string   `json:"selfUri"`
}

type deliveryBody struct {
	ID             string         `json:"id"`
	NotificationID string         `json:"notificationId"`
	EventType      string         `json:"eventType"`
	Attempt        int            `json:"attempt"`
	Succeeded      bool           `json:"succeeded"`
	StatusCode     int            `json:"statusCode"`
	Error          string         `json:"error"`
	Replay         bool           `json:"replay"`
	Payload        map[string]any `json:"payload"`
}

type deliveryPage struct {
	Entities []deliveryBody `json:"entities"`
	Cursors  *struct {
		After string `json:"after"`
	} `json:"cursors"`
	NextURI string `json:"nextUri"`
}

// hookReceiver verifies each request with the endpoint's secret and
// records its webhook-id and type.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	ids    []string
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	// The server's clock is fake; the tolerance covers the distance.
	if err := webhook.Verify(h.secret, r.Header, body, 365*24*time.Hour); err != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.ids = append(h.ids, r.Header.Get(webhook.HeaderID))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("thanks"))
}

func (h *hookReceiver) seen() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...), h.bad
}

func allowPrivate(c *server.Config) { c.Webhooks.AllowPrivate = true }

func TestWebhooksAPI(t *testing.T) {
	e := MustEnv(t, allowPrivate)
	org, other := e.mustOrg("Acme"), e.mustOrg("Other")
	editor := e.mustToken(e.mustClient(org.ID, 3600, usage.PermLimitView, usage.PermLimitEdit))
	viewer := e.mustToken(e.mustClient(org.ID, 3600, usage.PermLimitView))
	none := e.mustToken(e.mustClient(org.ID, 3600, usage.PermOrganizationView))
	stranger := e.mustToken(e.mustClient(other.ID, 3600, usage.PermLimitView, usage.PermLimitEdit))
	rc := &hookReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	const path = "/api/v2/usage/webhooks"

	// Create: 201, the secret shown once.
	created := decode[webhookBody](t, e.do("POST", path, editor, map[string]any{"url": srv.URL + "/hook", "eventTypes": []string{"limit.threshold"}}), 201)
	if created.ID == "" || !strings.HasPrefix(created.Secret, "whsec_") || !created.Enabled || created.URL != srv.URL+"/hook" ||
		created.SelfURI != path+"/"+created.ID || created.DateCreated != "2026-06-15T12:00:00Z" {
		t.Fatalf("created %+v", created)
	}
	rc.secret = created.Secret
	one := path + "/" + created.ID
	got := decode[webhookBody](t, e.do("GET", one, viewer, nil), 200)
	if got.Secret != "" || got.ID != created.ID {
		t.Fatalf("GET %+v: want it without its secret", got)
	}
	list := decode[struct {
		Entities []webhookBody `json:"entities"`
		Total    int           `json:"total"`
	}](t, e.do("GET", path, viewer, nil), 200)
	if list.Total != 1 || len(list.Entities) != 1 || list.Entities[0].Secret != "" {
		t.Fatalf("list %+v", list)
	}

	// Validation names the field.
	f := func(body any, field string) {
		t.Helper()
		eb := wantError(t, e.do("POST", path, editor, body), 400, "bad.request", "")
		if len(eb.Details) == 0 || eb.Details[0].FieldName != field {
			t.Errorf("POST %v: details %+v, want field %s", body, eb.Details, field)
		}
	}
	f(map[string]any{"url": "ftp://x.example/", "eventTypes": []string{"limit.threshold"}}, "url")
	f(map[string]any{"url": "https://u:p@x.example/", "eventTypes": []string{"limit.threshold"}}, "url")
	f(map[string]any{"eventTypes": []string{"limit.threshold"}}, "url")
	f(map[string]any{"url": "https://x.example/", "eventTypes": []string{"nope"}}, "eventTypes")
	f(map[string]any{"url": "https://x.example/"}, "eventTypes")

	// Update replaces url, types and enabled.
	e.clk.Advance(time.Minute)
	upd := decode[webhookBody](t, e.do("PUT", one, editor, map[string]any{"url": srv.URL + "/v2", "eventTypes": []string{"limit.threshold"}, "enabled": false}), 200)
	if upd.URL != srv.URL+"/v2" || upd.Enabled || upd.DateModified != "2026-06-15T12:01:00Z" || upd.DateCreated != created.DateCreated {
		t.Fatalf("updated %+v", upd)
	}

	// Permissions: reads need usage:limit:view, writes usage:limit:edit.
	wantError(t, e.do("POST", path, viewer, map[string]any{"url": srv.URL, "eventTypes": []string{"limit.threshold"}}), 403, "missing.any.permissions", "usage:limit:edit")
	wantError(t, e.do("PUT", one, viewer, map[string]any{"url": srv.URL, "eventTypes": []string{"limit.threshold"}}), 403, "missing.any.permissions", "")
	wantError(t, e.do("DELETE", one, viewer, nil), 403, "missing.any.permissions", "")
	wantError(t, e.do("POST", one+"/test", viewer, nil), 403, "missing.any.permissions", "")
	wantError(t, e.do("GET", path, none, nil), 403, "missing.any.permissions", "usage:limit:view")
	wantError(t, e.do("GET", one+"/deliveries", none, nil), 403, "missing.any.permissions", "")
	wantError(t, e.do("GET", path, adminToken, nil), 403, "not.authorized", "organization")

	// Another organization's webhook is missing.
	wantError(t, e.do("GET", one, stranger, nil), 404, "not.found", created.ID)
	wantError(t, e.do("PUT", one, stranger, map[string]any{"url": srv.URL, "eventTypes": []string{"limit.threshold"}}), 404, "not.found", "")
	wantError(t, e.do("DELETE", one, stranger, nil), 404, "not.found", "")
	wantError(t, e.do("GET", one+"/deliveries", stranger, nil), 404, "not.found", "")
	wantError(t, e.do("POST", one+"/test", stranger, nil), 404, "not.found", "")
	if l := decode[struct{ Total int }](t, e.do("GET", path, stranger, nil), 200); l.Total != 0 {
		t.Fatalf("another organization lists %d webhooks", l.Total)
	}

	// Test: sent at once, even to a disabled endpoint, signed.
	d := decode[deliveryBody](t, e.do("POST", one+"/test", editor, nil), 200)
	if !d.Succeeded || d.StatusCode != 200 || d.EventType != usage.NotificationWebhookTest || d.Attempt != 1 || !strings.HasPrefix(d.NotificationID, "msg_") {
		t.Fatalf("test delivery %+v", d)
	}
	if ids, bad := rc.seen(); len(ids) != 1 || ids[0] != d.NotificationID || bad != 0 {
		t.Fatalf("receiver saw %v (%d unverified), want %s", ids, bad, d.NotificationID)
	}

	// Replay: the same notification, the same webhook-id, a new attempt.
	e.clk.Advance(time.Second)
	r := decode[deliveryBody](t, e.do("POST", one+"/deliveries/"+d.ID+"/replay", editor, nil), 200)
	if r.NotificationID != d.NotificationID || r.Attempt != 2 || r.ID == d.ID || !r.Replay || !r.Succeeded {
		t.Fatalf("replay %+v of %+v", r, d)
	}
	if ids, _ := rc.seen(); len(ids) != 2 || ids[1] != d.NotificationID {
		t.Fatalf("receiver saw %v, want %s twice", ids, d.NotificationID)
	}
	wantError(t, e.do("POST", one+"/deliveries/nope/replay", editor, nil), 404, "not.found", "nope")
	wantError(t, e.do("POST", one+"/deliveries/"+d.ID+"/replay", stranger, nil), 404, "not.found", "")

	// Deliveries page newest first.
	for range 3 {
		e.clk.Advance(time.Second)
		decode[deliveryBody](t, e.do("POST", one+"/test", editor, nil), 200)
	}
	var all []deliveryBody
	next := one + "/deliveries?pageSize=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		p := decode[deliveryPage](t, e.do("GET", next, viewer, nil), 200)
		if len(p.Entities) > 2 {
			t.Fatalf("page of %d", len(p.Entities))
		}
		all = append(all, p.Entities...)
		next = p.NextURI
	}
	if len(all) != 5 || all[4].ID != d.ID || all[3].ID != r.ID {
		t.Fatalf("paged %d deliveries, want 5 ending with the replay and the first test: %+v", len(all), all)
	}
	wantError(t, e.do("GET", one+"/deliveries?after=garbage!", viewer, nil), 400, "invalid.query.param.value", "after")
	wantError(t, e.do("GET", one+"/deliveries?pageSize=5000", viewer, nil), 400, "invalid.query.param.value", "pageSize")

	// Delete: gone, with its log.
	decode[struct{}](t, e.do("DELETE", one, editor, nil), 204)
	wantError(t, e.do("GET", one, editor, nil), 404, "not.found", "")
	wantError(t, e.do("GET", one+"/deliveries", editor, nil), 404, "not.found", "")
}

// TestWebhookPrivateTargetRefused: without --webhook-allow-private a
// webhook on 127.0.0.1 is refused when its request is dialled, and the
// delivery log says why.
func TestWebhookPrivateTargetRefused(t *testing.T) {
	e := MustEnv(t)
	org := e.mustOrg("Acme")
	editor := e.mustToken(e.mustClient(org.ID, 3600, usage.PermLimitView, usage.PermLimitEdit))
	rc := &hookReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		w := decode[webhookBody](t, e.do("POST", "/api/v2/usage/webhooks", editor, map[string]any{"url": u, "eventTypes": []string{"limit.threshold"}}), 201)
		d := decode[deliveryBody](t, e.do("POST", "/api/v2/usage/webhooks/"+w.ID+"/test", editor, nil), 200)
		if d.Succeeded || d.StatusCode != 0 || !strings.Contains(d.Error, "not a public") {
			t.Fatalf("test delivery to %s: %+v, want refused", u, d)
		}
	}
	if ids, bad := rc.seen(); len(ids)+bad != 0 {
		t.Fatalf("the receiver got %d requests", len(ids)+bad)
	}
}

func TestWebhooksLimit(t *testing.T) {
	e := MustEnv(t, allowPrivate)
	org := e.mustOrg("Acme")
	editor := e.mustToken(e.mustClient(org.ID, 3600, usage.PermLimitView, usage.PermLimitEdit))
	for i := range usage.MaxWebhookEndpoints {
		decode[webhookBody](t, e.do("POST", "/api/v2/usage/webhooks", editor, map[string]any{"url": fmt.Sprintf("https://h%d.example/", i), "eventTypes": []string{"limit.threshold"}}), 201)
	}
	wantError(t, e.do("POST", "/api/v2/usage/webhooks", editor, map[string]any{"url": "https://more.example/", "eventTypes": []string{"limit.threshold"}}), 409, "request.conflict", "delete one")
}

// TestServerDeliversOutbox: the server's worker sends what the store's
// outbox holds to the subscribed, enabled webhooks of the organization.
func TestServerDeliversOutbox(t *testing.T) {
	e := MustEnv(t, allowPrivate, func(c *server.Config) {
		c.Hooks.Notify = func(nc *notify.Config) { nc.Poll = 10 * time.Millisecond }
	})
	org := e.mustOrg("Acme")
	editor := e.mustToken(e.mustClient(org.ID, 3600, usage.PermLimitView, usage.PermLimitEdit))
	rc := &hookReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := decode[webhookBody](t, e.do("POST", "/api/v2/usage/webhooks", editor, map[string]any{"url": srv.URL, "eventTypes": []string{"limit.threshold"}}), 201)
	rc.mu.Lock()
	rc.secret = w.Secret
	rc.mu.Unlock()
	e.clk.Advance(time.Second)
	n := usage.Notification{ID: "msg_outbox", OrganizationID: org.ID, Type: usage.NotificationLimitThreshold, Time: e.clk.Now(), Payload: []byte(`{"threshold":80}`)}
	if err := e.db.(store.Outbox).AppendNotifications(t.Context(), []usage.Notification{n}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, bad := rc.seen()
		if bad != 0 {
			t.Fatalf("%d requests did not verify", bad)
		}
		if len(ids) == 1 && ids[0] == "msg_outbox" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver saw %v, want msg_outbox", ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := decode[deliveryPage](t, e.do("GET", "/api/v2/usage/webhooks/"+w.ID+"/deliveries", editor, nil), 200)
	if len(p.Entities) != 1 || p.Entities[0].NotificationID != "msg_outbox" || p.Entities[0].Replay || p.Entities[0].Payload["threshold"] != 80.0 {
		t.Fatalf("deliveries %+v", p.Entities)
	}
}
