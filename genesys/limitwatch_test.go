package genesys_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/notify"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
	"github.com/usaged/usaged/webhook"
)

// thresholdReceiver keeps the limit.threshold notifications it is sent,
// once each by webhook-id as a receiver should, and counts every request.
type thresholdReceiver struct {
	mu       sync.Mutex
	secret   string
	requests map[string]int
	payloads map[string]map[string]any
	bad      int
}

func (h *thresholdReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(h.secret, r.Header, body, 365*24*time.Hour); err != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != usage.NotificationLimitThreshold {
		h.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	h.requests[id]++
	h.payloads[id] = msg.Data
	w.WriteHeader(http.StatusNoContent)
}

// crossings returns the (limit, version, threshold, value) of every
// notification received, ordered, and how many requests were refused.
func (h *thresholdReceiver) crossings() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, p := range h.payloads {
		out = append(out, fmt.Sprintf("%v v%v %v%% at %v (%d)", p["limitName"], p["limitVersion"], p["threshold"], p["value"], h.requests[id]))
	}
	slices.Sort(out)
	return out, h.bad
}

// subscribe has the organization of token send its limit.threshold
// notifications to h at url.
func (h *thresholdReceiver) subscribe(t *testing.T, e *env, token, url string) {
	t.Helper()
	w := decode[webhookBody](t, e.do("POST", "/api/v2/usage/webhooks", token, map[string]any{"url": url, "eventTypes": []string{"limit.threshold"}}), 201)
	h.mu.Lock()
	h.secret = w.Secret
	h.mu.Unlock()
}

// onDisk keeps the server's store in Pebble under dir, lets webhooks reach
// the test's receiver on loopback and polls the outbox often.
func onDisk(dir string) envTuning {
	return func(c *server.Config) {
		c.Data.Dir = dir
		c.Data.Store = open.Default(dir)
		c.Webhooks.AllowPrivate = true
		c.Hooks.Notify = func(nc *notify.Config) { nc.Poll = 10 * time.Millisecond }
	}
}

// wait returns once h holds the crossings want, or fails after a few
// seconds; a moment more shows that nothing else comes.
func (h *thresholdReceiver) wait(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, bad := h.crossings()
		if bad != 0 {
			t.Fatalf("%d requests refused", bad)
		}
		if slices.Equal(got, want) {
			time.Sleep(300 * time.Millisecond)
			if again, _ := h.crossings(); !slices.Equal(again, want) {
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

// TestLimitNotifiedOnce counts a limit's requests through ingest, with
// duplicates, a restart of the server on the same store and a change of the
// limit, and checks that every threshold crossing arrives once, signed, at
// the commit that crossed it by the test's own count, and no other.
func TestLimitNotifiedOnce(t *testing.T) {
	dir := t.TempDir()
	rc := &thresholdReceiver{requests: map[string]int{}, payloads: map[string]map[string]any{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	sent := 0 // events sent, every one new; each batch resends two old ones
	send := func(e *env, token string, n int) {
		t.Helper()
		var batch []any
		for range n {
			batch = append(batch, event(fmt.Sprintf("ev-%d", sent), "time", e.clk.Now().Add(-time.Minute).Format(time.RFC3339), "clientId", "c1"))
			sent++
		}
		for i := range min(sent-n, 2) {
			batch = append(batch, event(fmt.Sprintf("ev-%d", i), "time", e.clk.Now().Add(-time.Minute).Format(time.RFC3339), "clientId", "c1"))
		}
		res := decode[result](t, e.do("POST", "/api/v2/usage/events", token, batch), 200)
		if res.Accepted != n || res.Duplicates != len(batch)-n {
			t.Fatalf("sent %d new of %d: %+v", n, len(batch), res)
		}
	}

	var orgID, limitURI string
	t.Run("first run", func(t *testing.T) {
		e := MustEnv(t, onDisk(dir))
		orgID = e.mustOrg("Acme").ID
		editor := e.mustToken(e.mustClient(orgID, 0, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd))
		rc.subscribe(t, e, editor, srv.URL)
		l := e.mustLimit(editor, map[string]any{"name": "daily", "metric": "requests", "value": 10,
			"window": map[string]any{"type": "day"}, "thresholds": []int{50, 100}})
		limitURI = l.SelfURI
		// Met only after the restart, which must carry on its count.
		e.mustLimit(editor, map[string]any{"name": "later", "metric": "requests", "value": 30,
			"window": map[string]any{"type": "day"}, "thresholds": []int{50}})
		send(e, editor, 4)
		rc.wait(t, nil)
		send(e, editor, 1) // 5 of 10
		rc.wait(t, []string{"daily v1 50% at 5 (1)"})
		send(e, editor, 4)
		rc.wait(t, []string{"daily v1 50% at 5 (1)"})
		send(e, editor, 3) // 12: 100 % met by the batch's second
		rc.wait(t, []string{"daily v1 100% at 10 (1)", "daily v1 50% at 5 (1)"})
	})
	t.Run("after a restart", func(t *testing.T) {
		e := MustEnv(t, onDisk(dir))
		e.clk.Advance(time.Hour)
		editor := e.mustToken(e.mustClient(orgID, 0, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd))
		send(e, editor, 2) // 14: nothing new
		rc.wait(t, []string{"daily v1 100% at 10 (1)", "daily v1 50% at 5 (1)"})
		// A new version is evaluated at once: 14 of 20 meets its 50 %.
		u := decode[wire.Limit](t, e.do("PUT", limitURI, editor, map[string]any{"name": "daily", "metric": "requests", "value": 20,
			"window": map[string]any{"type": "day"}, "thresholds": []int{50, 100}}), 200)
		if u.Version != 2 {
			t.Fatalf("version %d", u.Version)
		}
		rc.wait(t, []string{"daily v1 100% at 10 (1)", "daily v1 50% at 5 (1)", "daily v2 50% at 14 (1)"})
		send(e, editor, 6) // 20 of 20, and 15 of 30 on the way
		rc.wait(t, []string{"daily v1 100% at 10 (1)", "daily v1 50% at 5 (1)", "daily v2 100% at 20 (1)", "daily v2 50% at 14 (1)", "later v1 50% at 15 (1)"})
	})
}

// TestCrossingWakesDelivery checks that the commit that crosses a threshold
// wakes the delivery worker: its webhook arrives within milliseconds,
// though the worker looks at the outbox by itself only once an hour.
func TestCrossingWakesDelivery(t *testing.T) {
	dir := t.TempDir()
	arrived := make(chan time.Time, 10)
	rc := &thresholdReceiver{requests: map[string]int{}, payloads: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.ServeHTTP(w, r)
		arrived <- time.Now()
	}))
	defer srv.Close()
	e := MustEnv(t, func(c *server.Config) {
		c.Data.Dir = dir
		c.Data.Store = open.Default(dir)
		c.Webhooks.AllowPrivate = true
		c.Hooks.Notify = func(nc *notify.Config) { nc.Poll = time.Hour }
	})
	orgID := e.mustOrg("Acme").ID
	editor := e.mustToken(e.mustClient(orgID, 0, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd))
	w := decode[webhookBody](t, e.do("POST", "/api/v2/usage/webhooks", editor, map[string]any{"url": srv.URL, "eventTypes": []string{"limit.threshold"}}), 201)
	rc.mu.Lock()
	rc.secret = w.Secret
	rc.mu.Unlock()
	e.mustLimit(editor, map[string]any{"name": "daily", "metric": "requests", "value": 3,
		"window": map[string]any{"type": "day"}, "thresholds": []int{100}})
	// Let the worker's first pass, at its start, go by.
	time.Sleep(100 * time.Millisecond)
	var batch []any
	for i := range 3 {
		batch = append(batch, event(fmt.Sprint("ev-", i), "time", e.clk.Now().Add(-time.Minute).Format(time.RFC3339), "clientId", "c1"))
	}
	sent := time.Now()
	if res := decode[result](t, e.do("POST", "/api/v2/usage/events", editor, batch), 200); res.Accepted != 3 {
		t.Fatalf("%+v", res)
	}
	select {
	case at := <-arrived:
		took := at.Sub(sent)
		t.Logf("webhook %v after the ingest call began", took)
		if took > 2*time.Second {
			t.Errorf("webhook after %v, want well under the hour's poll", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook 5 s after the crossing: the commit did not wake the deliveries")
	}
	if got, bad := rc.crossings(); len(got) != 1 || got[0] != "daily v1 100% at 3 (1)" || bad != 0 {
		t.Fatalf("crossings %q, %d refused", got, bad)
	}
}

// TestLimitStoredBeforeACrashIsNotified stores a limit whose window the
// counts already meet as a crash would leave it: stored, but with what it
// meets not yet written. The next start writes and delivers it, once; the
// start after it sends nothing again.
func TestLimitStoredBeforeACrashIsNotified(t *testing.T) {
	dir := t.TempDir()
	rc := &thresholdReceiver{requests: map[string]int{}, payloads: map[string]map[string]any{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var orgID string
	t.Run("events", func(t *testing.T) {
		e := MustEnv(t, onDisk(dir))
		orgID = e.mustOrg("Acme").ID
		editor := e.mustToken(e.mustClient(orgID, 0, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd))
		rc.subscribe(t, e, editor, srv.URL)
		var batch []any
		for i := range 6 {
			batch = append(batch, event(fmt.Sprintf("ev-%d", i), "time", e.clk.Now().Add(-time.Minute).Format(time.RFC3339)))
		}
		decode[result](t, e.do("POST", "/api/v2/usage/events", editor, batch), 200)
	})
	// The limit, as a crash right after storing it leaves it.
	db, err := pebble.Open(pebble.Config{Dir: open.Default(dir).Path})
	if err != nil {
		t.Fatal(err)
	}
	now := start
	if err := db.PutLimit(t.Context(), usage.Limit{ID: "lim-1", OrganizationID: orgID, Name: "daily", Metric: usage.LimitRequests, Value: 10,
		Window: usage.Window{Type: usage.WindowDay}, Thresholds: []int{50, 100}, Version: 1, Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"the start after the crash", "another start"} {
		t.Run(run, func(t *testing.T) {
			MustEnv(t, onDisk(dir))
			rc.wait(t, []string{"daily v1 50% at 6 (1)"})
		})
	}
}

// TestRollingLimit counts a limit of a rolling window of five minutes
// through ingest, with duplicates in every batch and a restart of the
// server on the same store, and checks its status and its crossings
// against the test's own count: the minutes survive the restart, old ones
// leave the window as the clock moves on, and a threshold the value fell
// below is crossed, and notified, again.
func TestRollingLimit(t *testing.T) {
	dir := t.TempDir()
	rc := &thresholdReceiver{requests: map[string]int{}, payloads: map[string]map[string]any{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	sent := 0
	send := func(e *env, token string, n int) {
		t.Helper()
		at := e.clk.Now().Add(-10 * time.Second).Format(time.RFC3339)
		var batch []any
		for range n {
			batch = append(batch, event(fmt.Sprintf("ev-%d", sent), "time", at, "clientId", "c1"))
			sent++
		}
		for i := range min(sent-n, 2) { // duplicates, of events possibly out of the window
			batch = append(batch, event(fmt.Sprintf("ev-%d", i), "time", at, "clientId", "c1"))
		}
		if res := decode[result](t, e.do("POST", "/api/v2/usage/events", token, batch), 200); res.Accepted != n {
			t.Fatalf("sent %d new of %d: %+v", n, len(batch), res)
		}
	}
	status := func(e *env, token, uri string, want float64, wantStart string) {
		t.Helper()
		st := decode[wire.LimitStatus](t, e.do("GET", uri+"/status", token, nil), 200)
		if st.Value != want || st.WindowStart != wantStart {
			t.Fatalf("status at %s: %v from %s, want %v from %s", e.clk.Now().UTC().Format(time.TimeOnly), st.Value, st.WindowStart, want, wantStart)
		}
	}
	var orgID, uri string
	var clock time.Time
	t.Run("first run", func(t *testing.T) {
		e := MustEnv(t, onDisk(dir))
		orgID = e.mustOrg("Acme").ID
		editor := e.mustToken(e.mustClient(orgID, 0, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd))
		rc.subscribe(t, e, editor, srv.URL)
		e.clk.Set(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))
		uri = e.mustLimit(editor, map[string]any{"name": "burst", "metric": "requests", "value": 10,
			"window": map[string]any{"type": "rolling", "minutes": 5}, "thresholds": []int{50, 100}}).SelfURI
		each := e.mustLimit(editor, map[string]any{"name": "per client", "scope": "eachClient", "metric": "requests", "value": 1000,
			"window": map[string]any{"type": "rolling", "minutes": 5}}).SelfURI
		send(e, editor, 5) // at 11:59:50
		rc.wait(t, []string{"burst v1 50% at 5 (1)"})
		status(e, editor, uri, 5, "2026-06-15T11:56:00Z")
		// A client's name comes from the stored counts: the minutes keep none.
		st := decode[wire.LimitStatus](t, e.do("GET", each+"/status", editor, nil), 200)
		if want := []wire.ClientLimitStatus{{ClientID: "c1", ClientName: "CRM", Value: 5, Percentage: 0.5}}; !slices.Equal(st.Clients, want) {
			t.Errorf("clients of the limit on each client: %+v, want %+v", st.Clients, want)
		}
		e.clk.Advance(3 * time.Minute)
		send(e, editor, 5) // at 12:02:50: 10 over 11:59–12:03
		rc.wait(t, []string{"burst v1 100% at 10 (1)", "burst v1 50% at 5 (1)"})
		status(e, editor, uri, 10, "2026-06-15T11:59:00Z")
		clock = e.clk.Now()
	})
	t.Run("after a restart", func(t *testing.T) {
		e := MustEnv(t, onDisk(dir))
		e.clk.Set(clock)
		editor := e.mustToken(e.mustClient(orgID, 0, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd))
		status(e, editor, uri, 10, "2026-06-15T11:59:00Z")
		e.clk.Set(time.Date(2026, 6, 15, 12, 5, 30, 0, time.UTC)) // 11:59 has left the window
		status(e, editor, uri, 5, "2026-06-15T12:01:00Z")
		send(e, editor, 1) // 6: 100 % is armed again, 50 % is still met
		rc.wait(t, []string{"burst v1 100% at 10 (1)", "burst v1 50% at 5 (1)"})
		send(e, editor, 4) // 10 again: 100 % crossed anew
		rc.wait(t, []string{"burst v1 100% at 10 (1)", "burst v1 100% at 10 (1)", "burst v1 50% at 5 (1)"})
		status(e, editor, uri, 10, "2026-06-15T12:01:00Z")
		e.clk.Set(time.Date(2026, 6, 15, 12, 11, 0, 0, time.UTC))
		status(e, editor, uri, 0, "2026-06-15T12:07:00Z")
	})
}
