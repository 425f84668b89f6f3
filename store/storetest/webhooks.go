package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// WebhooksBackend opens stores for RunWebhooks.
type WebhooksBackend struct {
	// Open returns a new, empty store; the suite closes it.
	Open func(t *testing.T) store.Webhooks
	// Reopen closes s and opens it again on the same data. Nil skips the
	// persistence test.
	Reopen func(t *testing.T, s store.Webhooks) store.Webhooks
}

// OutboxBackend opens stores for RunOutbox.
type OutboxBackend struct {
	Open   func(t *testing.T) store.Outbox
	Reopen func(t *testing.T, s store.Outbox) store.Outbox
}

// RunWebhooks runs the suite of store.Webhooks: endpoints and their
// delivery log.
func RunWebhooks(t *testing.T, b WebhooksBackend) {
	t.Run("Endpoints", func(t *testing.T) { testEndpoints(t, b) })
	t.Run("DeliveryLog", func(t *testing.T) { testDeliveryLog(t, b) })
	t.Run("DeliveryRetention", func(t *testing.T) { testDeliveryRetention(t, b) })
	if b.Reopen != nil {
		t.Run("WebhooksSurviveReopen", func(t *testing.T) { testWebhooksReopen(t, b) })
	}
}

// RunOutbox runs the suite of store.Outbox.
func RunOutbox(t *testing.T, b OutboxBackend) {
	t.Run("PendingInOrder", func(t *testing.T) { testOutbox(t, b) })
	if b.Reopen != nil {
		t.Run("OutboxSurvivesReopen", func(t *testing.T) { testOutboxReopen(t, b) })
	}
}

var hookT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func endpoint(org, id string) usage.WebhookEndpoint {
	return usage.WebhookEndpoint{
		ID: id, OrganizationID: org, URL: "https://hooks.example.com/" + id,
		EventTypes: []string{usage.NotificationLimitThreshold}, Secret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
		Enabled: true, CreatedAt: hookT0, UpdatedAt: hookT0.Add(time.Second),
	}
}

func sameEndpoint(t *testing.T, got, want usage.WebhookEndpoint) {
	t.Helper()
	if got.ID != want.ID || got.OrganizationID != want.OrganizationID || got.URL != want.URL ||
		!slices.Equal(got.EventTypes, want.EventTypes) || got.Secret != want.Secret || got.Enabled != want.Enabled ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("endpoint = %+v, want %+v", got, want)
	}
}

func testEndpoints(t *testing.T, b WebhooksBackend) {
	s := b.Open(t)
	defer closeIt(t, s)
	ctx := t.Context()
	for _, e := range []usage.WebhookEndpoint{endpoint("org-a", "w2"), endpoint("org-a", "w1"), endpoint("org-b", "w3")} {
		if err := s.PutWebhook(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Webhook(ctx, "org-a", "w1")
	if err != nil {
		t.Fatal(err)
	}
	sameEndpoint(t, got, endpoint("org-a", "w1"))
	if _, err := s.Webhook(ctx, "org-b", "w1"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("another organization's endpoint: err %v, want not found", err)
	}
	if _, err := s.Webhook(ctx, "org-a", "nope"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("missing endpoint: err %v, want not found", err)
	}
	list, err := s.Webhooks(ctx, "org-a")
	if err != nil || len(list) != 2 || list[0].ID != "w1" || list[1].ID != "w2" {
		t.Fatalf("Webhooks(org-a) = %+v, %v; want w1, w2", list, err)
	}
	if list, _ := s.Webhooks(ctx, "org-c"); len(list) != 0 {
		t.Fatalf("Webhooks(org-c) = %+v, want none", list)
	}
	upd := endpoint("org-a", "w1")
	upd.URL, upd.Enabled, upd.EventTypes = "https://other.example.com/", false, []string{}
	if err := s.PutWebhook(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Webhook(ctx, "org-a", "w1")
	sameEndpoint(t, got, upd)

	if err := s.DeleteWebhook(ctx, "org-b", "w1"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("deleting another organization's endpoint: err %v, want not found", err)
	}
	if err := s.AppendDelivery(ctx, delivery("org-a", "w1", "d1", "n1", 1, hookT0)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebhook(ctx, "org-a", "w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Webhook(ctx, "org-a", "w1"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("deleted endpoint: err %v, want not found", err)
	}
	if err := s.DeleteWebhook(ctx, "org-a", "w1"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("deleting twice: err %v, want not found", err)
	}
	// A new endpoint with the old id starts with an empty log.
	if err := s.PutWebhook(ctx, endpoint("org-a", "w1")); err != nil {
		t.Fatal(err)
	}
	if ds, _, err := s.Deliveries(ctx, "org-a", "w1", "", 10); err != nil || len(ds) != 0 {
		t.Fatalf("deliveries of a deleted endpoint = %d, %v; want none", len(ds), err)
	}
}

func delivery(org, endpoint, id, notification string, attempt int, at time.Time) usage.Delivery {
	return usage.Delivery{
		ID: id, OrganizationID: org, EndpointID: endpoint,
		Notification: usage.Notification{
			ID: notification, OrganizationID: org, Type: usage.NotificationLimitThreshold,
			Time: hookT0, Payload: []byte(`{"n":"` + notification + `"}`),
		},
		Attempt: attempt, Time: at, StatusCode: 500, Latency: 1500 * time.Millisecond,
		Error: "", Response: "oops", Replay: attempt == 3,
	}
}

func sameDelivery(t *testing.T, got, want usage.Delivery) {
	t.Helper()
	gn, wn := got.Notification, want.Notification
	if got.ID != want.ID || got.OrganizationID != want.OrganizationID || got.EndpointID != want.EndpointID ||
		gn.ID != wn.ID || gn.OrganizationID != wn.OrganizationID || gn.Type != wn.Type || !gn.Time.Equal(wn.Time) ||
		!bytes.Equal(gn.Payload, wn.Payload) || got.Attempt != want.Attempt || !got.Time.Equal(want.Time) ||
		got.StatusCode != want.StatusCode || got.Latency != want.Latency || got.Error != want.Error ||
		got.Response != want.Response || got.Replay != want.Replay {
		t.Fatalf("delivery = %+v, want %+v", got, want)
	}
}

func testDeliveryLog(t *testing.T, b WebhooksBackend) {
	s := b.Open(t)
	defer closeIt(t, s)
	ctx := t.Context()
	for _, e := range []usage.WebhookEndpoint{endpoint("org-a", "w1"), endpoint("org-a", "w2"), endpoint("org-b", "w3")} {
		if err := s.PutWebhook(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// 7 deliveries of w1, two of them at the same time (ordered by id), and
	// some of other endpoints that must not show.
	var want []usage.Delivery
	for i := range 7 {
		at := hookT0.Add(time.Duration(i) * time.Minute)
		if i == 4 {
			at = hookT0.Add(3 * time.Minute)
		}
		d := delivery("org-a", "w1", fmt.Sprintf("d%d", i), fmt.Sprintf("n%d", i%2), i/2+1, at)
		want = append(want, d)
		if err := s.AppendDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendDelivery(ctx, delivery("org-a", "w2", fmt.Sprintf("x%d", i), "n0", 1, at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendDelivery(ctx, delivery("org-a", "gone", "y", "n0", 1, hookT0)); err != nil {
		t.Fatalf("a delivery of a missing endpoint: %v, want it dropped", err)
	}
	slices.SortFunc(want, func(a, b usage.Delivery) int { return store.CompareDeliveries(&a, &b) })
	var got []usage.Delivery
	after := ""
	for pages := 0; ; pages++ {
		page, next, err := s.Deliveries(ctx, "org-a", "w1", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 || pages > 3 {
			t.Fatalf("page of %d, page %d", len(page), pages)
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		after = next
	}
	if len(got) != len(want) {
		t.Fatalf("paged %d deliveries, want %d", len(got), len(want))
	}
	for i := range want {
		sameDelivery(t, got[i], want[i])
	}
	if ds, _, _ := s.Deliveries(ctx, "org-b", "w1", "", 10); len(ds) != 0 {
		t.Fatalf("another organization sees %d deliveries of w1", len(ds))
	}
	if _, _, err := s.Deliveries(ctx, "org-a", "w1", "not a cursor!", 10); usage.KindOf(err) != usage.KindInvalid {
		t.Fatalf("a malformed cursor: err %v, want invalid", err)
	}
	d, err := s.Delivery(ctx, "org-a", "w1", "d4")
	if err != nil {
		t.Fatal(err)
	}
	sameDelivery(t, d, want[slices.IndexFunc(want, func(d usage.Delivery) bool { return d.ID == "d4" })])
	for _, c := range [][3]string{{"org-b", "w1", "d4"}, {"org-a", "w2", "d4"}, {"org-a", "w1", "zz"}} {
		if _, err := s.Delivery(ctx, c[0], c[1], c[2]); usage.KindOf(err) != usage.KindNotFound {
			t.Fatalf("Delivery%v: err %v, want not found", c, err)
		}
	}
	nd, err := s.NotificationDeliveries(ctx, "w1", "n1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range nd {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"d1", "d3", "d5"}) {
		t.Fatalf("NotificationDeliveries(w1, n1) = %v, want d1 d3 d5, oldest first", ids)
	}
}

func testDeliveryRetention(t *testing.T, b WebhooksBackend) {
	s := b.Open(t)
	defer closeIt(t, s)
	ctx := t.Context()
	if err := s.PutWebhook(ctx, endpoint("org-a", "w1")); err != nil {
		t.Fatal(err)
	}
	extra := 5
	for i := range store.MaxDeliveriesPerEndpoint + extra {
		d := delivery("org-a", "w1", fmt.Sprintf("d%05d", i), "n", i+1, hookT0.Add(time.Duration(i)*time.Second))
		if err := s.AppendDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var oldest usage.Delivery
	after := ""
	for {
		page, next, err := s.Deliveries(ctx, "org-a", "w1", after, 400)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page)
		if len(page) > 0 {
			oldest = page[len(page)-1]
		}
		if after = next; next == "" {
			break
		}
	}
	if n != store.MaxDeliveriesPerEndpoint || oldest.ID != fmt.Sprintf("d%05d", extra) {
		t.Fatalf("kept %d deliveries, the oldest %s; want %d from d%05d", n, oldest.ID, store.MaxDeliveriesPerEndpoint, extra)
	}
}

func testWebhooksReopen(t *testing.T, b WebhooksBackend) {
	s := b.Open(t)
	ctx := t.Context()
	if err := s.PutWebhook(ctx, endpoint("org-a", "w1")); err != nil {
		t.Fatal(err)
	}
	d := delivery("org-a", "w1", "d1", "n1", 1, hookT0)
	if err := s.AppendDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	s = b.Reopen(t, s)
	defer closeIt(t, s)
	e, err := s.Webhook(ctx, "org-a", "w1")
	if err != nil {
		t.Fatal(err)
	}
	sameEndpoint(t, e, endpoint("org-a", "w1"))
	got, err := s.Delivery(ctx, "org-a", "w1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	sameDelivery(t, got, d)
}

func notification(id string, at time.Time) usage.Notification {
	return usage.Notification{ID: id, OrganizationID: "org-a", Type: usage.NotificationLimitThreshold, Time: at, Payload: []byte(`{"id":"` + id + `"}`)}
}

func pendingIDs(t *testing.T, s store.Outbox, limit int) []string {
	t.Helper()
	ns, err := s.PendingNotifications(t.Context(), limit)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	return ids
}

func testOutbox(t *testing.T, b OutboxBackend) {
	s := b.Open(t)
	defer closeIt(t, s)
	ctx := t.Context()
	if ids := pendingIDs(t, s, 10); len(ids) != 0 {
		t.Fatalf("a new outbox holds %v", ids)
	}
	ns := []usage.Notification{notification("c", hookT0), notification("b", hookT0), notification("a", hookT0.Add(time.Second)), notification("z", hookT0.Add(-time.Hour))}
	if err := s.AppendNotifications(ctx, ns); err != nil {
		t.Fatal(err)
	}
	changed := notification("b", hookT0.Add(-2*time.Hour))
	if err := s.AppendNotifications(ctx, []usage.Notification{changed}); err != nil {
		t.Fatal(err)
	}
	if ids := pendingIDs(t, s, 10); !slices.Equal(ids, []string{"z", "b", "c", "a"}) {
		t.Fatalf("pending = %v, want z b c a (time, then id; a repeated id left as it was)", ids)
	}
	if ids := pendingIDs(t, s, 2); !slices.Equal(ids, []string{"z", "b"}) {
		t.Fatalf("pending, limit 2 = %v, want z b", ids)
	}
	got, _ := s.PendingNotifications(ctx, 1)
	if len(got) != 1 || got[0].OrganizationID != "org-a" || got[0].Type != usage.NotificationLimitThreshold ||
		!got[0].Time.Equal(ns[3].Time) || string(got[0].Payload) != string(ns[3].Payload) {
		t.Fatalf("pending[0] = %+v, want %+v", got, ns[3])
	}
	if err := s.MarkNotificationsDone(ctx, []string{"b", "z", "unknown"}); err != nil {
		t.Fatal(err)
	}
	if ids := pendingIDs(t, s, 10); !slices.Equal(ids, []string{"c", "a"}) {
		t.Fatalf("pending after marking b and z done = %v, want c a", ids)
	}
}

func testOutboxReopen(t *testing.T, b OutboxBackend) {
	s := b.Open(t)
	ctx := t.Context()
	if err := s.AppendNotifications(ctx, []usage.Notification{notification("a", hookT0), notification("b", hookT0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotificationsDone(ctx, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	s = b.Reopen(t, s)
	defer closeIt(t, s)
	if ids := pendingIDs(t, s, 10); !slices.Equal(ids, []string{"b"}) {
		t.Fatalf("pending after reopening = %v, want b", ids)
	}
}

// closeIt closes s when it can be closed.
func closeIt(t *testing.T, s any) {
	t.Helper()
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}
