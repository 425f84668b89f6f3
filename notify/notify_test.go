package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
	"github.com/usaged/usaged/webhook"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// ceiling is the longest wait after attempt n, computed here from the
// documented schedule: 5 s doubling, at most 1 h.
func ceiling(n int) time.Duration {
	d := 5 * time.Second << (n - 1)
	if n > 20 || d > time.Hour {
		return time.Hour
	}
	return d
}

// receiver is a webhook receiver written as a customer would, with its own
// HMAC code: it verifies every request, fails the first failFirst of them
// with a 500 and deduplicates the rest by webhook-id.
type receiver struct {
	t         *testing.T
	secret    string
	clock     *fakeclock.Clock
	failFirst int

	mu        sync.Mutex
	requests  int
	ids       []string          // webhook-id of each request
	delivered map[string][]byte // webhook-id → body, once each
	dupes     int
}

func newReceiver(t *testing.T, clock *fakeclock.Clock, failFirst int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: webhook.NewSecret(), clock: clock, failFirst: failFirst, delivered: map[string][]byte{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (rc *receiver) verify(r *http.Request, body []byte) bool {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rc.secret, "whsec_"))
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || rc.clock.Now().Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.verify(r, body) {
		rc.t.Errorf("receiver: a request whose signature does not verify: %v", r.Header)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.requests++
	id := r.Header.Get("webhook-id")
	rc.ids = append(rc.ids, id)
	if rc.requests <= rc.failFirst {
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	if _, ok := rc.delivered[id]; ok {
		rc.dupes++
	} else {
		rc.delivered[id] = body
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() (requests int, delivered map[string][]byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	d := map[string][]byte{}
	for k, v := range rc.delivered {
		d[k] = v
	}
	return rc.requests, d
}

type hookStore interface {
	store.Webhooks
	store.Outbox
}

func addEndpoint(t *testing.T, s store.Webhooks, org, id, url, secret string) usage.WebhookEndpoint {
	t.Helper()
	ep := usage.WebhookEndpoint{ID: id, OrganizationID: org, URL: url, Secret: secret, Enabled: true,
		EventTypes: []string{usage.NotificationLimitThreshold}, CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour)}
	if err := s.PutWebhook(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func newWorker(t *testing.T, s hookStore, clock *fakeclock.Clock, jitter func(string, string, int) float64) *Worker {
	t.Helper()
	w, err := New(Config{Outbox: s, Webhooks: s, Client: NewClient(true), Now: clock.Now, Jitter: jitter})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func limitNotification(id string) usage.Notification {
	return usage.Notification{ID: id, OrganizationID: "org-a", Type: usage.NotificationLimitThreshold, Time: t0,
		Payload: []byte(`{"limitId":"l1","window":"2026-05-04T00:00:00Z/P1D","value":1000,"threshold":1000}`)}
}

// run steps w with the clock until done says so or until the clock passes
// limit, advancing by step after each pass.
func run(t *testing.T, w *Worker, clock *fakeclock.Clock, step time.Duration, limit time.Time, done func() bool) {
	t.Helper()
	for clock.Now().Before(limit) {
		if err := w.Step(t.Context()); err != nil {
			t.Fatal(err)
		}
		w.Wait()
		if done() {
			return
		}
		clock.Advance(step)
	}
}

func log(t *testing.T, s store.Webhooks, org, endpoint string) []usage.Delivery {
	t.Helper()
	ds, _, err := s.Deliveries(t.Context(), org, endpoint, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	// oldest first
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

func pending(t *testing.T, s store.Outbox) int {
	t.Helper()
	ns, err := s.PendingNotifications(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(ns)
}

// TestDeliversAfterFailures: the receiver fails the first three attempts;
// every attempt is in the log with the same webhook-id, the waits between
// them grow within their jitter bounds, and the receiver sees the
// notification delivered once.
func TestDeliversAfterFailures(t *testing.T) {
	clock := fakeclock.New(t0)
	s := memory.New()
	rc, srv := newReceiver(t, clock, 3)
	addEndpoint(t, s, "org-a", "w1", srv.URL+"/hook", rc.secret)
	if err := s.AppendNotifications(t.Context(), []usage.Notification{limitNotification("msg_1")}); err != nil {
		t.Fatal(err)
	}
	w := newWorker(t, s, clock, nil)
	step := 100 * time.Millisecond
	run(t, w, clock, step, t0.Add(time.Hour), func() bool { return pending(t, s) == 0 })
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d notifications still pending", n)
	}
	ds := log(t, s, "org-a", "w1")
	if len(ds) != 4 {
		t.Fatalf("%d deliveries logged, want 4: %+v", len(ds), ds)
	}
	for i, d := range ds {
		wantStatus := 500
		if i == 3 {
			wantStatus = 204
		}
		if d.Attempt != i+1 || d.StatusCode != wantStatus || d.Notification.ID != "msg_1" || d.Replay {
			t.Errorf("delivery %d: attempt %d, status %d, notification %s, replay %v; want attempt %d, status %d",
				i, d.Attempt, d.StatusCode, d.Notification.ID, d.Replay, i+1, wantStatus)
		}
		if i < 3 && !strings.Contains(d.Response, "not now") {
			t.Errorf("delivery %d: response %q, want the receiver's body", i, d.Response)
		}
		if i > 0 {
			gap := d.Time.Sub(ds[i-1].Time)
			if ceiling := ceiling(i); gap < 0 || gap > ceiling+step {
				t.Errorf("wait before attempt %d: %s, want within [0, %s]", i+1, gap, ceiling)
			}
		}
	}
	requests, delivered := rc.snapshot()
	if requests != 4 || len(delivered) != 1 || delivered["msg_1"] == nil {
		t.Fatalf("receiver: %d requests, delivered %v; want 4 requests and msg_1 once", requests, delivered)
	}
	for _, id := range rc.ids {
		if id != "msg_1" {
			t.Fatalf("receiver saw webhook-id %s, want msg_1 on every attempt", id)
		}
	}
	var body struct {
		ID, Type, Timestamp, OrganizationID string
		Data                                map[string]any
	}
	if err := json.Unmarshal(delivered["msg_1"], &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != "msg_1" || body.Type != usage.NotificationLimitThreshold || body.OrganizationID != "org-a" || body.Data["threshold"] != 1000.0 {
		t.Fatalf("body = %+v", body)
	}
}

// TestBackoffGrowsAndGivesUp: a receiver that always fails gets attempts at
// waits within [0, 5 s·2^(n-1) capped at 1 h] until 24 h after the first,
// then none; the notification leaves the outbox.
func TestBackoffGrowsAndGivesUp(t *testing.T) {
	clock := fakeclock.New(t0)
	s := memory.New()
	rc, srv := newReceiver(t, clock, 1<<30)
	addEndpoint(t, s, "org-a", "w1", srv.URL, rc.secret)
	if err := s.AppendNotifications(t.Context(), []usage.Notification{limitNotification("msg_1")}); err != nil {
		t.Fatal(err)
	}
	w := newWorker(t, s, clock, nil)
	step := time.Second
	run(t, w, clock, step, t0.Add(10*time.Minute), func() bool { return false })
	step = 20 * time.Second
	run(t, w, clock, step, t0.Add(26*time.Hour), func() bool { return false })
	ds := log(t, s, "org-a", "w1")
	if len(ds) < 20 {
		t.Fatalf("%d attempts in 26 h, want at least 20", len(ds))
	}
	var jittered bool
	for i := 1; i < len(ds); i++ {
		gap, ceiling := ds[i].Time.Sub(ds[i-1].Time), ceiling(i)
		if gap > ceiling+step {
			t.Errorf("wait before attempt %d: %s, more than its ceiling %s", i+1, gap, ceiling)
		}
		if gap < ceiling-step {
			jittered = true
		}
	}
	if !jittered {
		t.Error("every wait is its ceiling: no jitter")
	}
	last := ds[len(ds)-1].Time
	if last.Sub(ds[0].Time) > DefaultBackoff.GiveUp {
		t.Errorf("last attempt %s after the first, past the give-up time", last.Sub(ds[0].Time))
	}
	if last.Before(ds[0].Time.Add(DefaultBackoff.GiveUp - 2*DefaultBackoff.Max)) {
		t.Errorf("last attempt %s after the first: gave up early", last.Sub(ds[0].Time))
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d notifications pending after giving up", n)
	}
	if requests, _ := rc.snapshot(); requests != len(ds) {
		t.Fatalf("receiver got %d requests, the log has %d", requests, len(ds))
	}
}

// TestSlowEndpointDoesNotBlockOthers: while one endpoint holds its request,
// another organization's endpoint gets its notification.
func TestSlowEndpointDoesNotBlockOthers(t *testing.T) {
	clock := fakeclock.New(t0)
	s := memory.New()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	rc, fast := newReceiver(t, clock, 0)
	addEndpoint(t, s, "org-a", "slow", slow.URL, webhook.NewSecret())
	addEndpoint(t, s, "org-b", "fast", fast.URL, rc.secret)
	a, b := limitNotification("msg_a"), limitNotification("msg_b")
	b.OrganizationID = "org-b"
	if err := s.AppendNotifications(t.Context(), []usage.Notification{a, b}); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Outbox: s, Webhooks: s, Client: NewClient(true), Now: clock.Now, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, d := rc.snapshot(); d["msg_b"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fast endpoint got nothing while the slow one held its request")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second pass does not start another request to the busy endpoint.
	if err := w.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	release <- struct{}{}
	w.Wait()
	if ds := log(t, s, "org-a", "slow"); len(ds) != 1 {
		t.Fatalf("%d attempts to the slow endpoint, want 1", len(ds))
	}
}

// TestOutboxSurvivesRestart: a notification in the embedded store's outbox,
// attempted once before the store is closed, is delivered after it is
// reopened by a new worker, on the schedule the recorded attempt sets.
func TestOutboxSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *pebble.DB {
		db, err := pebble.Open(pebble.Config{Dir: dir, FilterCapacity: 1024})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	clock := fakeclock.New(t0)
	rc, srv := newReceiver(t, clock, 1)
	db := open()
	addEndpoint(t, db, "org-a", "w1", srv.URL, rc.secret)
	if err := db.AppendNotifications(t.Context(), []usage.Notification{limitNotification("msg_1"), limitNotification("msg_2")}); err != nil {
		t.Fatal(err)
	}
	half := func(string, string, int) float64 { return 0.5 }
	w := newWorker(t, db, clock, half)
	for range 2 { // one request at a time to the endpoint: msg_1, then msg_2
		if err := w.Step(t.Context()); err != nil {
			t.Fatal(err)
		}
		w.Wait()
	}
	if requests, _ := rc.snapshot(); requests != 2 {
		t.Fatalf("receiver got %d requests before the restart, want 2", requests)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open()
	defer db.Close()
	if n := pending(t, db); n != 2 {
		t.Fatalf("%d notifications pending after reopening, want 2", n)
	}
	w = newWorker(t, db, clock, half)
	// One attempt each is recorded: of msg_2 a delivery, of msg_1 a failure
	// whose retry is due 2.5 s after it (half of 5 s), not at once.
	if err := w.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Wait()
	if requests, _ := rc.snapshot(); requests != 2 {
		t.Fatalf("receiver got %d requests right after the restart, want the 2 from before", requests)
	}
	clock.Advance(3 * time.Second)
	run(t, w, clock, time.Second, t0.Add(time.Minute), func() bool { return pending(t, db) == 0 })
	if n := pending(t, db); n != 0 {
		t.Fatalf("%d notifications pending", n)
	}
	_, delivered := rc.snapshot()
	if len(delivered) != 2 {
		t.Fatalf("delivered %d notifications, want 2", len(delivered))
	}
	var attempts []int
	for _, d := range log(t, db, "org-a", "w1") {
		attempts = append(attempts, d.Attempt)
	}
	if len(attempts) != 3 {
		t.Fatalf("attempts %v, want 3 in all (msg_1 twice, msg_2 once)", attempts)
	}
}

// TestSendIsAReplay: Send records an attempt outside the schedule with the
// notification's own id, and a disabled or unsubscribed endpoint gets
// nothing from the outbox.
func TestSendIsAReplay(t *testing.T) {
	clock := fakeclock.New(t0)
	s := memory.New()
	rc, srv := newReceiver(t, clock, 0)
	ep := addEndpoint(t, s, "org-a", "w1", srv.URL, rc.secret)
	off := addEndpoint(t, s, "org-a", "w2", srv.URL, rc.secret)
	off.Enabled = false
	s.PutWebhook(t.Context(), off)
	w := newWorker(t, s, clock, nil)
	n := limitNotification("msg_1")
	d, err := w.Send(t.Context(), ep, n)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Replay || d.Attempt != 1 || d.StatusCode != 204 || d.Notification.ID != "msg_1" {
		t.Fatalf("Send = %+v", d)
	}
	d, _ = w.Send(t.Context(), ep, n)
	if d.Attempt != 2 {
		t.Fatalf("second Send: attempt %d, want 2", d.Attempt)
	}
	if _, delivered := rc.snapshot(); len(delivered) != 1 || rc.dupes != 1 {
		t.Fatalf("receiver: %d delivered, %d duplicates; want 1 and 1", len(delivered), rc.dupes)
	}
	s.AppendNotifications(t.Context(), []usage.Notification{limitNotification("msg_2")})
	run(t, w, clock, time.Second, t0.Add(time.Minute), func() bool { return pending(t, s) == 0 })
	if ds := log(t, s, "org-a", "w2"); len(ds) != 0 {
		t.Fatalf("the disabled endpoint got %d deliveries", len(ds))
	}
}

// TestResponseBounded: of a large answer the log keeps the first 1,024
// bytes, and the reading stops at 64 KiB.
func TestResponseBounded(t *testing.T) {
	clock := fakeclock.New(t0)
	s := memory.New()
	written := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		var n int64
		chunk := []byte(strings.Repeat("é", 512)) // two bytes each: a cut may fall inside one
		for n < 8<<20 {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		written <- n
	}))
	defer srv.Close()
	ep := addEndpoint(t, s, "org-a", "w1", srv.URL, webhook.NewSecret())
	w := newWorker(t, s, clock, nil)
	d, err := w.Send(t.Context(), ep, limitNotification("msg_1"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Succeeded() || len(d.Response) > usage.MaxResponseSnippet || len(d.Response) < usage.MaxResponseSnippet-2 || !utf8.ValidString(d.Response) {
		t.Fatalf("response of %d bytes (valid UTF-8: %v), want at most %d", len(d.Response), utf8.ValidString(d.Response), usage.MaxResponseSnippet)
	}
	select {
	case n := <-written:
		if n >= 8<<20 {
			t.Fatalf("the receiver wrote all %d bytes: the answer was read whole", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still writing")
	}
}
