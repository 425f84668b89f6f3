package enforce_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/limiteval"
	"github.com/usaged/usaged/meter/enforce"
)

// TestRollingWindowEnforced enforces a limit of 10 requests in a rolling
// window of two minutes through two proxies, on a clock the test moves:
// the first proxy lets exactly 10 through and refuses the rest with
// Retry-After at the minute's turn; the second, which served none, refuses
// once usaged's value reaches it; both let requests through again once the
// minute of the first ten has left the window, the first from its own count
// and the second from usaged's value falling. A refusal is a request (a
// 429) and counts towards a requests limit, as usaged counts it.
func TestRollingWindowEnforced(t *testing.T) {
	clk := fakeclock.New(time.Now().UTC().Truncate(time.Minute).Add(10 * time.Second))
	srvURL, api, _ := usagedAt(t, clk.Now)
	limit := wire.LimitRequest{Name: "burst", Scope: "client", ClientID: "c1", Metric: "requests", Value: value(10),
		Window: &wire.LimitWindow{Type: "rolling", Minutes: 2}, Enforced: true}
	orgID, ls, up, upURL := acme(t, api, limit)
	tune := func(c *enforce.Config) { c.Now = clk.Now }
	p1 := startProxy(t, srvURL, upURL, tune)
	p2 := startProxy(t, srvURL, upURL, tune)
	p1.ready(t, 1)
	p2.ready(t, 1)

	burst := func(p *proxy, n int) (passed int) {
		t.Helper()
		for range n {
			status, h := p.get(t, orgID, "c1", "/api/v2/things")
			switch status {
			case http.StatusOK:
				passed++
			case http.StatusTooManyRequests:
				left := 60 - clk.Now().Second()
				if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra != left || h.Get("RateLimit-Policy") != "10;w=120" {
					t.Fatalf("Retry-After %q (%s), want %d s to the minute's turn", h.Get("Retry-After"), h.Get("RateLimit-Policy"), left)
				}
			default:
				t.Fatalf("status %d", status)
			}
		}
		return passed
	}
	// settled waits until usaged counts want in the window and has told
	// the proxies.
	settled := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := api.LimitStatus(t.Context(), ls[0].ID, client.LimitOptions{OrganizationID: orgID})
			if err != nil {
				t.Fatal(err)
			}
			if st.Value == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("usaged's value %v, want %v", st.Value, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(3 * limiteval.FeedEvery)
	}
	if got := burst(p1, 15); got != 10 {
		t.Fatalf("minute 0: %d passed, want 10", got)
	}
	settled(15)
	if got := burst(p2, 2); got != 0 {
		t.Fatalf("minute 0, second proxy: %d passed, want none", got)
	}
	clk.Advance(time.Minute) // minute 1: minute 0 is still in the window
	if got := burst(p1, 1); got != 0 {
		t.Fatalf("minute 1: %d passed, want none", got)
	}
	clk.Advance(time.Minute) // minute 2: minute 0 has left; minute 1's refusal is a request and counts
	if got := burst(p1, 6); got != 6 {
		t.Fatalf("minute 2: %d passed, want 6", got)
	}
	// The second proxy hears usaged's value of minute 2 (7, once shipped)
	// and lets the other 3 through.
	deadline := time.Now().Add(10 * time.Second)
	passed := 0
	for passed < 3 && time.Now().Before(deadline) {
		passed += burst(p2, 1)
		time.Sleep(10 * time.Millisecond)
	}
	if passed != 3 {
		t.Fatalf("minute 2, second proxy: %d passed, want 3", passed)
	}
	// Once usaged counted the 10 and told both, neither lets one more by.
	settled(10)
	if a, b := burst(p1, 3), burst(p2, 3); a+b != 0 {
		t.Fatalf("minute 2, at 10: %d and %d passed, want none", a, b)
	}
	if got := up.count("c1"); got != 19 {
		t.Errorf("the upstream served c1 %d times, want 19", got)
	}
}
