package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usaged/usaged/webhook"
)

// plansReceiver is a webhook receiver as its docs tell users to write one:
// it verifies each signature and keeps each webhook-id once.
type plansReceiver struct {
	mu       sync.Mutex
	secret   string
	seen     map[string]int // webhook-id → deliveries
	payloads map[string]map[string]any
	bad      []string
}

func (h *plansReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(h.secret, r.Header, body, 5*time.Minute); err != nil {
		h.bad = append(h.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	json.Unmarshal(body, &msg)
	id := r.Header.Get(webhook.HeaderID)
	h.seen[id]++
	h.payloads[id] = msg.Data
	w.WriteHeader(http.StatusNoContent)
}

// crossings returns "limit threshold% at value" of every notification
// received, once per webhook-id as the receiver keeps them, sorted, and
// how many deliveries repeated an id (at least once delivery: a crash
// between sending and logging a delivery sends it again).
func (h *plansReceiver) crossings() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	again := 0
	for id, p := range h.payloads {
		out = append(out, fmt.Sprintf("%v %v%% at %v", p["limitName"], p["threshold"], p["value"]))
		again += h.seen[id] - 1
	}
	slices.Sort(out)
	return out, again
}

// awayFromMonthEnd waits, if the month ends within a few minutes, until it
// has: the test's limits count by the month, and a window that ends mid-run
// would split them.
func awayFromMonthEnd() {
	now := time.Now().UTC()
	end := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	if left := end.Sub(now); left < 3*time.Minute {
		time.Sleep(left + time.Second)
	}
}

// TestLimitsEndToEnd runs usaged, the metering proxy, an upstream and a
// webhook receiver as real processes and servers. Clients of three plans
// send requests through the proxy — a free client over its enforced limit,
// a pro client over its higher enforced limit, a client over its enforced
// limit of a rolling hour, a client whose limit only notifies — and a batch
// client sends events straight to usaged, every
// batch twice and retried when it fails. Usaged is SIGKILLed mid-run and
// restarted on the same data. At the end, by the test's own count of what
// it sent and what it was answered: each enforced client was served
// exactly its limit (one proxy: no overshoot) and refused the rest with
// 429; usaged counts every request once, the 429s as 429s; every threshold
// crossing arrived exactly once with a valid signature at the value that
// met it, and no other.
func TestLimitsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts usaged and proxy processes")
	}
	awayFromMonthEnd()
	const admin = "limits-e2e-admin-token-0123456789"
	data, spoolDir := t.TempDir(), t.TempDir()
	templates := filepath.Join(t.TempDir(), "routes.txt")
	if err := os.WriteFile(templates, []byte("api/v2/things\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, proxyAddr := freeAddr(t), freeAddr(t)
	serve := func() *serverProc { return startServe(t, data, admin, "--addr", addr, "--webhook-allow-private") }
	srv := serve()
	base := srv.base

	token := admin
	call := func(method, path string, body any, want int) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, nil)
		if body != nil {
			req, _ = http.NewRequest(method, base+path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
		}
		return out
	}
	var org struct{ ID string }
	json.Unmarshal(call("POST", "/api/v2/admin/organizations", map[string]any{"name": "Plans"}, 201), &org)
	// Limits and webhooks are an organization's client's to manage.
	var editor struct{ ID, Secret string }
	json.Unmarshal(call("POST", "/api/v2/admin/organizations/"+org.ID+"/clients", map[string]any{"name": "Billing",
		"permissions": []string{"usage:limit:view", "usage:limit:edit"}}, 201), &editor)
	token = clientToken(t, base, editor.ID, editor.Secret)
	q := ""

	rc := &plansReceiver{seen: map[string]int{}, payloads: map[string]map[string]any{}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	var wh struct{ Secret string }
	json.Unmarshal(call("POST", "/api/v2/usage/webhooks"+q, map[string]any{"url": hook.URL, "eventTypes": []string{"limit.threshold"}}, 201), &wh)
	rc.mu.Lock()
	rc.secret = wh.Secret
	rc.mu.Unlock()

	limit := func(name, clientID string, value int, thresholds []int, enforced bool) {
		call("POST", "/api/v2/usage/limits"+q, map[string]any{"name": name, "scope": "client", "clientId": clientID, "metric": "requests",
			"value": value, "window": map[string]any{"type": "month"}, "thresholds": thresholds, "enforced": enforced}, 201)
	}
	limit("free", "free", 60, []int{50, 80, 100}, true)
	limit("pro", "pro", 150, []int{50, 100}, true)
	limit("notify", "notify", 200, []int{50, 100}, false)
	limit("batch", "batch", 500, []int{50, 100}, false)
	// A rolling hour, which the restart must read back minute by minute.
	var burst struct{ SelfURI string }
	json.Unmarshal(call("POST", "/api/v2/usage/limits"+q, map[string]any{"name": "burst", "scope": "client", "clientId": "burst", "metric": "requests",
		"value": 50, "window": map[string]any{"type": "rolling", "minutes": 60}, "thresholds": []int{50, 100}, "enforced": true}, 201), &burst)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	px := startProxy(t, "--listen", proxyAddr, "--upstream", up.URL, "--templates", templates, "--server", base, "--token", admin,
		"--spool", spoolDir, "--header-org", "X-Org", "--header-client", "X-Client", "--header-client-name", "X-Client")
	_ = px

	// The test's own count: what each client sent and was answered.
	var mu sync.Mutex
	sent := map[string]int{}
	answered := map[string]map[int]int{}
	through := func(c string, n int) {
		for range n {
			req, _ := http.NewRequest("GET", "http://"+proxyAddr+"/api/v2/things", nil)
			req.Header.Set("X-Org", org.ID)
			req.Header.Set("X-Client", c)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("through the proxy: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			sent[c]++
			if answered[c] == nil {
				answered[c] = map[int]int{}
			}
			answered[c][resp.StatusCode]++
			mu.Unlock()
		}
	}
	batchSeq := 0
	batches := func(n int) { // n batches of 10 new events, each sent twice
		for range n {
			var body []byte
			for range 10 {
				ev := fmt.Sprintf(`{"id":"b-%d","time":%q,"organizationId":%q,"clientId":"batch","clientName":"batch","templateUri":"api/v2/things","httpMethod":"GET","status":200}`+"\n",
					batchSeq, time.Now().UTC().Format(time.RFC3339), org.ID)
				body = append(body, ev...)
				batchSeq++
			}
			for range 2 {
				for try := 0; ; try++ {
					status, _, err := post(base, admin, "/api/v2/usage/events", "application/x-ndjson", body)
					if err == nil && status == 200 {
						break
					}
					if try > 300 {
						t.Fatalf("a batch was never taken: %d %v", status, err)
					}
					time.Sleep(100 * time.Millisecond) // usaged is down: retry
				}
			}
		}
	}
	run := func(free, pro, notify, batch int) {
		var wg sync.WaitGroup
		wg.Go(func() { through("free", free) })
		wg.Go(func() { through("pro", pro) })
		wg.Go(func() { through("notify", notify) })
		wg.Go(func() { through("burst", free) })
		wg.Go(func() { batches(batch) })
		wg.Wait()
	}

	run(40, 90, 60, 15)
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.cmd.Wait()
	// Usaged down: the proxy serves on what it knew, counting locally.
	var wg sync.WaitGroup
	wg.Go(func() { run(20, 30, 20, 0) })
	wg.Go(func() { time.Sleep(time.Second); srv = serve() })
	wg.Wait()
	run(30, 60, 30, 25)

	// Enforced: exactly the limit served, the rest refused.
	for c, lim := range map[string]int{"free": 60, "pro": 150, "burst": 50} {
		if a := answered[c]; a[200] != lim || a[429] != sent[c]-lim {
			t.Errorf("%s sent %d, answered %v; want %d served and the rest refused", c, sent[c], a, lim)
		}
	}
	if a := answered["notify"]; a[200] != sent["notify"] {
		t.Errorf("notify, not enforced, answered %v", a)
	}

	// Counted once each, 429s as such, by the test's count.
	deadline := time.Now().Add(60 * time.Second)
	for {
		now := time.Now().UTC()
		body := fmt.Sprintf(`{"organizationId":%q,"interval":"%s/%s","groupBy":["OAuthClientId"],"metrics":["requests","status200","status429"]}`,
			org.ID, now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
		status, out, err := post(base, admin, "/api/v2/usage/aggregate", "application/json", []byte(body))
		if err != nil || status != 200 {
			t.Fatalf("aggregate: %d %s %v", status, out, err)
		}
		var res struct {
			Results []struct {
				ClientID                       string `json:"clientId"`
				Requests, Status200, Status429 int
			} `json:"results"`
		}
		json.Unmarshal(out, &res)
		got := map[string][3]int{}
		for _, r := range res.Results {
			g := got[r.ClientID]
			got[r.ClientID] = [3]int{g[0] + r.Requests, g[1] + r.Status200, g[2] + r.Status429}
		}
		want := map[string][3]int{"batch": {batchSeq, batchSeq, 0}}
		for c := range sent {
			want[c] = [3]int{sent[c], answered[c][200], answered[c][429]}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		for c, g := range got {
			if g[0] > want[c][0] {
				t.Fatalf("usaged counts %v, more than sent %v: counted twice", got, want)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("usaged counts %v, sent %v", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The rolling hour holds every request of burst, served or refused,
	// those before the crash too.
	var st struct{ Value float64 }
	json.Unmarshal(call("GET", burst.SelfURI+"/status", nil, 200), &st)
	if int(st.Value) != sent["burst"] {
		t.Errorf("burst's rolling hour counts %v, the test sent %d", st.Value, sent["burst"])
	}

	// Every crossing once, at the request that met it, and no other.
	want := []string{
		"batch 50% at 250",
		"burst 100% at 50", "burst 50% at 25",
		"free 100% at 60", "free 50% at 30", "free 80% at 48",
		"notify 50% at 100",
		"pro 100% at 150", "pro 50% at 75",
	}
	if sent["notify"] >= 200 || batchSeq < 250 || batchSeq >= 500 {
		t.Fatalf("the traffic does not cross what the test expects: notify %d, batch %d", sent["notify"], batchSeq)
	}
	deadline = time.Now().Add(30 * time.Second)
	for got, _ := rc.crossings(); !slices.Equal(got, want); got, _ = rc.crossings() {
		if time.Now().After(deadline) {
			t.Fatalf("crossings\n%q\nwant\n%q", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing more comes
	got, again := rc.crossings()
	if !slices.Equal(got, want) {
		t.Fatalf("crossings, later\n%q\nwant\n%q", got, want)
	}
	t.Logf("%d crossings, %d deliveries repeated an id", len(got), again)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("deliveries with bad signatures: %q", rc.bad)
	}
}
