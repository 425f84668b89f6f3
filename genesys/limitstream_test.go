package genesys_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	usagedclient "github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/usage"
)

// streamed is what a follower of the limits stream has heard.
type streamed struct {
	mu       sync.Mutex
	limits   map[string]int64   // limit id → version
	values   map[string]float64 // "limit/client" → value
	windows  map[string]string  // "limit/client" → window start
	removed  map[string]bool
	ready    bool
	err      error
	changed  chan struct{}
	heardAt  map[string]time.Time // "limit/client" → when its value last changed
	wrongOrg []string
}

// follow follows the limits stream with token for org until the test
// ends; want is the only organization its limits may belong to ("" for
// any).
func follow(t *testing.T, e *env, token, org, want string) *streamed {
	t.Helper()
	api, err := usagedclient.New(usagedclient.Config{Server: e.url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	s := &streamed{limits: map[string]int64{}, values: map[string]float64{}, windows: map[string]string{}, removed: map[string]bool{},
		heardAt: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		err := api.StreamLimits(ctx, org, 20*time.Second, func(ev usagedclient.LimitEvent) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch ev.Type {
			case "limit":
				s.limits[ev.Limit.ID] = ev.Limit.Version
				delete(s.removed, ev.Limit.ID)
				if want != "" && ev.Limit.OrganizationID != want {
					s.wrongOrg = append(s.wrongOrg, ev.Limit.OrganizationID)
				}
			case "value":
				k := ev.Value.LimitID + "/" + ev.Value.ClientID
				if s.limits[ev.Value.LimitID] != ev.Value.Version {
					return fmt.Errorf("value of %s v%d before its limit event", ev.Value.LimitID, ev.Value.Version)
				}
				if s.values[k] != ev.Value.Value || s.windows[k] != ev.Value.WindowStart {
					s.heardAt[k] = time.Now()
				}
				s.values[k], s.windows[k] = ev.Value.Value, ev.Value.WindowStart
			case "removed":
				delete(s.limits, ev.Removed.LimitID)
				s.removed[ev.Removed.LimitID] = true
			case "ready":
				s.ready = true
			}
			select {
			case s.changed <- struct{}{}:
			default:
			}
			return nil
		})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}()
	return s
}

// waitFor waits up to within for cond, checked under s's lock.
func (s *streamed) waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		s.mu.Lock()
		ok, err := cond(), s.err
		s.mu.Unlock()
		if ok {
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: the stream ended: %v", what, err)
		}
		select {
		case <-s.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("%s: not within %s; limits %v, values %v, removed %v", what, within, s.limits, s.values, s.removed)
		}
	}
}

// valuesAre reports whether s holds exactly want for the limits of want's
// keys' limits.
func (s *streamed) valuesAre(want map[string]float64) bool {
	for k, v := range want {
		if got, ok := s.values[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// TestLimitStream follows the enforced limits through the stream, on the
// embedded store (values sent as commits change them) and on the
// in-memory one (values counted every second), and checks every value
// against the test's own count of the distinct events sent, duplicates
// resent in every batch; and that a change, a delete, a limit no longer
// enforced, another organization and a token without usage:limit:view are
// each told as they should be.
func TestLimitStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		within time.Duration // from an ingest call's answer to the value heard
	}{
		{"embedded", time.Second},
		{"memory", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			if tc.name == "embedded" {
				dir := t.TempDir()
				e = MustEnv(t, func(c *server.Config) { c.Data.Dir = dir; c.Data.Store = open.Default(dir) })
			} else {
				e = MustEnv(t)
			}
			e.clk.Advance(10 * time.Minute) // 12:10 UTC, 21:10 in Tokyo
			acme := e.mustOrg("Acme").ID
			other := e.mustOrg("Other").ID
			editor := e.limitsToken(acme, usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd)
			ingestOnly := e.limitsToken(acme, usage.PermEventAdd)
			otherViewer := e.limitsToken(other, usage.PermLimitView, usage.PermLimitEdit)

			wantError(t, e.do("GET", "/api/v2/usage/limits/stream", ingestOnly, nil), 403, "missing.any.permissions", "usage:limit:view")
			wantError(t, e.do("GET", "/api/v2/usage/limits/stream?organizationId="+other, editor, nil), 404, "not.found", "organization")

			daily := e.mustLimit(editor, map[string]any{"name": "daily", "metric": "requests", "value": 100,
				"window": map[string]any{"type": "day"}, "enforced": true})
			tokyo := e.mustLimit(editor, map[string]any{"name": "ok per client", "scope": "eachClient", "metric": "status200", "value": 50,
				"window": map[string]any{"type": "hour", "timeZone": "Asia/Tokyo"}, "enforced": true})
			narrow := e.mustLimit(editor, map[string]any{"name": "c2 on x", "scope": "client", "clientId": "c2",
				"filter": map[string]any{"templateUris": []string{"api/v2/x"}}, "metric": "requests", "value": 10,
				"window": map[string]any{"type": "month"}, "enforced": true})
			quiet := e.mustLimit(editor, map[string]any{"name": "not enforced", "metric": "requests", "value": 5,
				"window": map[string]any{"type": "day"}})
			theirs := e.mustLimit(otherViewer, map[string]any{"name": "theirs", "metric": "requests", "value": 5,
				"window": map[string]any{"type": "day"}, "enforced": true})
			wantError(t, e.do("POST", limitsPath, editor, map[string]any{"name": "errors", "metric": "errorRate", "value": 0.1,
				"window": map[string]any{"type": "day"}, "enforced": true}), 400, "bad.request", "cannot be enforced")

			// The test's own count, by hand: distinct events only.
			sent := 0
			count := map[string]float64{}
			send := func(n int, clientID, template string, status int) time.Time {
				t.Helper()
				var batch []any
				for range n {
					batch = append(batch, event(fmt.Sprintf("ev-%d", sent), "time", e.clk.Now().Add(-time.Minute).Format(time.RFC3339),
						"clientId", clientID, "templateUri", template, "status", status))
					sent++
					count[daily.ID+"/"]++
					if status/100 == 2 {
						count[tokyo.ID+"/"+clientID]++
					}
					if clientID == "c2" && template == "api/v2/x" {
						count[narrow.ID+"/"]++
					}
				}
				for i := range min(sent-n, 3) { // old ones again: never counted twice
					batch = append(batch, event(fmt.Sprintf("ev-%d", i), "time", e.clk.Now().Add(-time.Minute).Format(time.RFC3339)))
				}
				res := decode[result](t, e.do("POST", "/api/v2/usage/events", editor, batch), 200)
				if res.Accepted != n {
					t.Fatalf("sent %d new: %+v", n, res)
				}
				return time.Now()
			}
			send(5, "c1", "api/v2/a", 200)
			send(3, "c2", "api/v2/x", 500)
			send(2, "c2", "api/v2/b", 200)
			count[narrow.ID+"/"] += 0 // present even when 0

			s := follow(t, e, editor, "", acme)
			s.waitFor(t, 5*time.Second, "the snapshot", func() bool { return s.ready })
			s.mu.Lock()
			if _, ok := s.limits[quiet.ID]; ok {
				t.Errorf("a limit not enforced is in the stream")
			}
			if _, ok := s.limits[theirs.ID]; ok {
				t.Errorf("another organization's limit is in the stream")
			}
			if len(s.limits) != 3 || !s.valuesAre(count) || len(s.values) != len(count) {
				t.Errorf("snapshot: limits %v, values %v, want values %v", s.limits, s.values, count)
			}
			s.mu.Unlock()

			// Every change of a value is heard within the bound.
			for round := range 5 {
				acked := send(4+round, "c1", "api/v2/a", 200)
				send(1, "c2", "api/v2/x", 200)
				want := maps.Clone(count)
				s.waitFor(t, tc.within+time.Second, fmt.Sprintf("round %d", round), func() bool { return s.valuesAre(want) })
				s.mu.Lock()
				if heard := s.heardAt[daily.ID+"/"]; heard.Sub(acked) > tc.within {
					t.Errorf("round %d: the value was heard %s after the ingest call answered; bound %s", round, heard.Sub(acked), tc.within)
				}
				s.mu.Unlock()
			}

			// A new version: its limit event, then its values.
			decode[wire.Limit](t, e.do("PUT", daily.SelfURI, editor, map[string]any{"name": "daily", "metric": "requests", "value": 200,
				"window": map[string]any{"type": "day"}, "enforced": true}), 200)
			s.waitFor(t, tc.within+time.Second, "version 2", func() bool { return s.limits[daily.ID] == 2 && s.valuesAre(count) })
			// Deleted, and no longer enforced: removed.
			e.do("DELETE", narrow.SelfURI, editor, nil)
			decode[wire.Limit](t, e.do("PUT", tokyo.SelfURI, editor, map[string]any{"name": "ok per client", "scope": "eachClient", "metric": "status200",
				"value": 50, "window": map[string]any{"type": "hour", "timeZone": "Asia/Tokyo"}}), 200)
			s.waitFor(t, tc.within+time.Second, "removed", func() bool { return s.removed[narrow.ID] && s.removed[tokyo.ID] && len(s.limits) == 1 })
			// And enforced again: back, from the count.
			decode[wire.Limit](t, e.do("PUT", tokyo.SelfURI, editor, map[string]any{"name": "ok per client", "scope": "eachClient", "metric": "status200",
				"value": 50, "window": map[string]any{"type": "hour", "timeZone": "Asia/Tokyo"}, "enforced": true}), 200)
			s.waitFor(t, tc.within+time.Second, "enforced again", func() bool {
				return s.limits[tokyo.ID] == 3 && s.values[tokyo.ID+"/c1"] == count[tokyo.ID+"/c1"] && s.values[tokyo.ID+"/c2"] == count[tokyo.ID+"/c2"]
			})

			// The admin token follows every organization; a client's token
			// its own only.
			all := follow(t, e, adminToken, "", "")
			all.waitFor(t, 5*time.Second, "the admin's snapshot", func() bool {
				_, mine := all.limits[daily.ID]
				_, their := all.limits[theirs.ID]
				return all.ready && mine && their
			})
			only := follow(t, e, otherViewer, "", other)
			only.waitFor(t, 5*time.Second, "the other organization's snapshot", func() bool { return only.ready && len(only.limits) == 1 })
			for _, f := range []*streamed{s, only} {
				f.mu.Lock()
				if len(f.wrongOrg) > 0 {
					t.Errorf("limits of %v in a client's stream", f.wrongOrg)
				}
				f.mu.Unlock()
			}
		})
	}
}
