package enforce

import (
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
)

// The counters of a limit on each client are dropped once their window
// ended, so that the clients seen over months do not pile up.
func TestPrunesEndedWindows(t *testing.T) {
	now := time.Date(2026, 6, 15, 10, 30, 0, 0, time.UTC)
	e, err := New(Config{Server: "http://127.0.0.1:1", Token: "t", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e.next = map[string]map[string]*enforced{}
	steps := []client.LimitEvent{
		{Type: "limit", Limit: &wire.LimitStreamLimit{OrganizationID: "o", Limit: wire.Limit{ID: "l", Scope: "eachClient", Metric: "requests",
			Window: wire.LimitWindow{Type: "hour"}, Value: 10, Enforced: true, Version: 1}}},
		{Type: "value", Value: &wire.LimitStreamValue{OrganizationID: "o", LimitID: "l", Version: 1, ClientID: "a",
			WindowStart: "2026-06-15T10:00:00Z", WindowEnd: "2026-06-15T11:00:00Z", Value: 3}},
		{Type: "value", Value: &wire.LimitStreamValue{OrganizationID: "o", LimitID: "l", Version: 1, ClientID: "b",
			WindowStart: "2026-06-15T10:00:00Z", WindowEnd: "2026-06-15T11:00:00Z", Value: 4}},
		{Type: "ready"},
	}
	for _, ev := range steps {
		if err := e.handle(ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.byOrg["o"]["l"].counters); n != 2 {
		t.Fatalf("%d counters, want 2", n)
	}
	e.handle(client.LimitEvent{Type: "heartbeat"}) // within the window: kept
	if n := len(e.byOrg["o"]["l"].counters); n != 2 {
		t.Fatalf("%d counters within the window, want 2", n)
	}
	now = now.Add(2 * time.Hour)
	e.handle(client.LimitEvent{Type: "heartbeat"})
	if n := len(e.byOrg["o"]["l"].counters); n != 0 {
		t.Fatalf("%d counters after their window ended, want 0", n)
	}
}
