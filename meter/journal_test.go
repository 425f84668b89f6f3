package meter_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/internal/syncbuf"
	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/spool"
)

// Requests still waiting for attribution when the Meter closes stay in the
// Journal and are attributed by the next Meter: not recorded under the
// anonymous client, not lost.
func TestWaitingRequestsSurviveRestart(t *testing.T) {
	const requests = 5
	dir := t.TempDir()
	sp, err := spool.Open(spool.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gateway := []string{"X-Org", "X-Client", "X-Client-Name", "X-User"}
	down := &flaky{failures: 1 << 62, next: mustHeaders(t)}
	m, sink := mustMeter(t, func(c *meter.Config) {
		c.Attributor, c.Journal, c.KeepHeaders = down, sp, gateway
		c.Anonymous, c.AnonymousOrganization = "anonymous", "org-anonymous"
	})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range requests {
		r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
		identify(r, fmt.Sprint("u-", i))
		r.Header.Set("Cookie", "session=not-to-be-kept")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	waitFor(t, "every request to wait", func() bool { return sp.Stats().Waiting == requests })
	m.Close()
	if evs := sink.events(); len(evs) != 0 {
		t.Fatalf("recorded at Close while attribution still fails: %+v", evs)
	}
	if st := m.Stats(); st.LeftWaiting != requests || st.Anonymous != 0 || st.Unidentified != 0 {
		t.Errorf("stats %+v, want %d left waiting and none anonymous or unidentified", st, requests)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "pending"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file of waiting requests holds credentials and must be mode 0600: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pending")); strings.Contains(string(b), "not-to-be-kept") {
		t.Error("a header attribution does not read was kept on disk")
	}

	// The next process: attribution works again.
	sp, err = spool.Open(spool.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	m2, sink2 := mustMeter(t, func(c *meter.Config) {
		c.Journal, c.KeepHeaders, c.RetryEvery = sp, gateway, 10*time.Millisecond
	})
	waitFor(t, "the waiting requests to be recorded", func() bool { return m2.Stats().Recorded == requests })
	m2.Close()
	got := byUser(t, sink2.events())
	for i := range requests {
		if ev := got[fmt.Sprint("u-", i)]; ev.OrganizationID != "org-1" || ev.ClientID != "client-1" || ev.TemplateURI != "api/v2/users/{userId}" {
			t.Errorf("request %d: recorded %+v", i, ev)
		}
	}
	if st := sp.Stats(); st.Waiting != 0 {
		t.Errorf("%d requests still wait", st.Waiting)
	}
	if err := sp.Flush(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "pending")); err != nil || fi.Size() != 0 {
		t.Errorf("nothing waits, and the file still holds %d bytes (%v)", fi.Size(), err)
	}
}

// Requests nobody can be identified for are logged as a count at most every
// ten seconds, however many there are.
func TestUnattributedLoggedAtABoundedRate(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	var logs syncbuf.Buffer
	m, _ := mustMeter(t, func(c *meter.Config) {
		c.Now = clk.Now
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(n int) {
		for range n {
			r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
			r.Header.Set("Authorization", "Bearer nobody-knows-me")
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
	}
	counts := func() []float64 {
		var cs []float64
		for line := range strings.Lines(logs.String()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && strings.Contains(rec["msg"].(string), "were not recorded") {
				cs = append(cs, rec["count"].(float64))
			}
		}
		return cs
	}
	serve(100)
	waitFor(t, "100 unidentified", func() bool { return m.Stats().Unidentified == 100 })
	if cs := counts(); len(cs) != 1 || cs[0] != 1 {
		t.Fatalf("after 100 unattributable requests in one instant, warnings with counts %v, want one, of the first", cs)
	}
	clk.Advance(10 * time.Second)
	serve(1)
	waitFor(t, "101 unidentified", func() bool { return m.Stats().Unidentified == 101 })
	if cs := counts(); len(cs) != 2 || cs[1] != 100 {
		t.Fatalf("ten seconds later, warnings with counts %v, want a second one counting the 100 since the first", cs)
	}
}
