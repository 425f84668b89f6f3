package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/notify"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/usage"
	"github.com/usaged/usaged/webhook"
)

// receiver keeps what a webhook is sent: per webhook-id, the requests and
// the data.
type receiver struct {
	mu       sync.Mutex
	secret   string
	requests map[string]int
	data     map[string]map[string]any
	at       map[string]time.Time // the first request of each
	bad      int
}

func (h *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	var msg struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if webhook.Verify(h.secret, r.Header, body, time.Hour) != nil || json.Unmarshal(body, &msg) != nil || msg.Type != usage.NotificationLimitThreshold {
		h.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	if h.requests[id] == 0 {
		h.at[id] = time.Now()
	}
	h.requests[id]++
	h.data[id] = msg.Data
	w.WriteHeader(http.StatusNoContent)
}

// crossings returns "limit threshold% (requests)" per notification, sorted.
func (h *receiver) crossings() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, d := range h.data {
		out = append(out, fmt.Sprintf("%v %v%% (%d)", d["limitName"], d["threshold"], h.requests[id]))
	}
	slices.Sort(out)
	return out, h.bad
}

// Two nodes of usaged serve on the cluster: a limit created on one is
// evaluated by the other at once, the events sent to both (each twice)
// cross each threshold once, and the webhook is sent each crossing once,
// though both nodes deliver; a limit of a rolling window as well as one of
// a day.
func TestClusterNodesNotifyLimitsOnce(t *testing.T) {
	ctx := t.Context()
	rc := &receiver{requests: map[string]int{}, data: map[string]map[string]any{}, at: map[string]time.Time{}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	cluster := servertest.Cluster(t)
	key := filepath.Join(t.TempDir(), "signing-key")
	tune := func(c *server.Config) {
		cluster(c)
		c.Auth.AdminToken = parityAdmin
		c.Data.SigningKeyFile = key // tokens of one node are good on the other
		c.Webhooks.AllowPrivate = true
		c.Hooks.Notify = func(nc *notify.Config) { nc.Poll = 20 * time.Millisecond }
	}
	a := servertest.Start(t, tune)
	b := servertest.Start(t, tune)

	admin, err := client.New(client.Config{Server: a.URL(), Token: parityAdmin})
	if err != nil {
		t.Fatal(err)
	}
	org, err := admin.CreateOrganization(ctx, "limits")
	if err != nil {
		t.Fatal(err)
	}
	editor, err := admin.CreateClient(ctx, org.ID, wire.CreateClientRequest{Name: "editor",
		Permissions: []string{string(usage.PermLimitView), string(usage.PermLimitEdit), string(usage.PermEventAdd)}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.AccessToken(ctx, editor.ID, editor.Secret)
	if err != nil {
		t.Fatal(err)
	}
	on := func(s *server.Server) *client.Client {
		c, err := client.New(client.Config{Server: s.URL(), Token: tok.AccessToken})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, cb := on(a), on(b)
	hookURL := hook.URL
	wh, err := ca.CreateWebhook(ctx, wire.WebhookRequest{URL: &hookURL, EventTypes: []string{usage.NotificationLimitThreshold}})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = wh.Secret
	rc.mu.Unlock()
	ten := 10.0
	if _, err := ca.CreateLimit(ctx, wire.LimitRequest{Name: "daily", Metric: "requests", Value: &ten,
		Window: &wire.LimitWindow{Type: "day"}, Thresholds: []int{50, 100}}, client.LimitOptions{}); err != nil {
		t.Fatal(err)
	}
	// The cluster counts a rolling window too, minute by minute in the
	// claim store.
	burst, err := ca.CreateLimit(ctx, wire.LimitRequest{Name: "burst", Metric: "requests", Value: &ten,
		Window: &wire.LimitWindow{Type: "rolling", Minutes: 10}, Thresholds: []int{50, 100}}, client.LimitOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The limit was created on a: b counts it from its first batch on.
	now := time.Now().UTC()
	at := now.Add(-time.Minute)
	if day := now.Truncate(24 * time.Hour); at.Before(day) {
		at = day
	}
	var evs []usage.Event
	for i := range 12 {
		evs = append(evs, usage.Event{ID: fmt.Sprintf("ev-%d", i), Time: at, OrganizationID: org.ID, ClientID: editor.ID,
			ClientName: "editor", UserID: "user", TemplateURI: "api/v2/things", HTTPMethod: "GET", Status: 200})
	}
	wait := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, bad := rc.crossings()
			if bad != 0 {
				t.Fatalf("%d requests refused", bad)
			}
			if slices.Equal(got, want) {
				time.Sleep(300 * time.Millisecond) // nothing more comes
				if again, _ := rc.crossings(); !slices.Equal(again, want) {
					t.Fatalf("crossings %q, then %q", want, again)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("crossings %q, want %q", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if res, err := cb.SendEvents(ctx, evs[:4], client.Retry{}); err != nil || res.Accepted != 4 {
		t.Fatalf("%+v %v", res, err)
	}
	sent := time.Now()
	if _, err := cb.SendEvents(ctx, evs[:5], client.Retry{}); err != nil { // 5 of 10
		t.Fatal(err)
	}
	wait([]string{"burst 50% (1)", "daily 50% (1)"})
	rc.mu.Lock()
	for _, first := range rc.at {
		t.Logf("the 50%% crossing, found by the node that did not create the limit, reached the webhook %v after the ingest call", first.Sub(sent).Round(time.Millisecond))
	}
	rc.mu.Unlock()
	// The rest sent to both nodes at once, each event twice.
	var wg sync.WaitGroup
	for _, c := range []*client.Client{ca, cb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.SendEvents(ctx, evs, client.Retry{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	wait([]string{"burst 100% (1)", "burst 50% (1)", "daily 100% (1)", "daily 50% (1)"})
	for _, c := range []*client.Client{ca, cb} {
		if st, err := c.LimitStatus(ctx, burst.ID, client.LimitOptions{}); err != nil || st.Value != 12 {
			t.Errorf("the rolling limit's status: %+v, %v; want 12, every event once", st, err)
		}
	}
}
