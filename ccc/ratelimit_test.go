package ccc_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/usaged/usaged/ccc"
	"github.com/usaged/usaged/server"
)

// Requests with an unknown key count against their address: a flood of
// them is refused once the address's budget is spent, in the ResponseStatus
// shape with Retry-After, and a valid key is not held back by it.
func TestRateLimitByAddress(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, func(c *server.Config) {
		c.Limits.RateLimit, c.Limits.IngestRateLimit = ccc.DefaultRateLimit, ccc.DefaultIngestRateLimit
	}) // the defaults: 300 a minute
	partner := e.createPartner(t, "Acme")
	key := e.createKey(t, "partner", partner.PartnerGuid)
	for i := range 300 {
		if status, _, body := e.get(t, "/api/services", "usk_not-a-key"); status != 401 {
			t.Fatalf("request %d with an unknown key: %d %s", i+1, status, body)
		}
	}
	status, h, body := e.get(t, "/api/services", "usk_not-a-key")
	// The clock stands at 15:04:05: 55 seconds are left of the minute.
	wantError(t, "301st request", status, h, body, 429, responseStatus{ErrorCode: "TooManyRequests",
		Message: "Rate limit of 300 requests a minute exceeded; retry in 55 seconds"})
	if got := h.Get("Retry-After"); got != "55" {
		t.Fatalf("Retry-After %q", got)
	}
	if status, _, body := e.get(t, "/api/services", key); status != 200 {
		t.Fatalf("valid key after the flood: %d %s", status, body)
	}
}

// Each key, and the admin token, has a budget of its own; activity events
// have a separate one.
func TestRateLimitByKey(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, func(c *server.Config) { c.Limits.RateLimit, c.Limits.IngestRateLimit = 3, 2 })
	partner := e.createPartner(t, "Acme") // the admin's first request
	reseller := e.createReseller(t, partner.PartnerGuid, "Resale")
	svc := e.createService(t, map[string]any{"name": "Contoso", "resellerGuid": reseller.ResellerGuid, "primaryDomain": "contoso.com"})
	// The admin has made 3 requests.
	status, h, body := e.get(t, "/api/partners", adminToken)
	wantError(t, "admin's 4th request", status, h, body, 429, responseStatus{ErrorCode: "TooManyRequests",
		Message: "Rate limit of 3 requests a minute exceeded; retry in 55 seconds"})

	// The admin's budget is spent until the minute ends: make the keys in
	// the next one.
	e.clk.Set(epoch.Add(55e9))
	k1, k2 := e.createKey(t, "partner", partner.PartnerGuid), e.createKey(t, "partner", partner.PartnerGuid)
	for i := range 3 {
		if status, _, body := e.get(t, "/api/services", k1); status != 200 {
			t.Fatalf("k1 request %d: %d %s", i+1, status, body)
		}
	}
	status, h, body = e.get(t, "/api/services", k1)
	wantError(t, "k1's 4th request", status, h, body, 429, responseStatus{ErrorCode: "TooManyRequests",
		Message: "Rate limit of 3 requests a minute exceeded; retry in 60 seconds"})
	if status, _, body := e.get(t, "/api/services", k2); status != 200 {
		t.Fatalf("another key: %d %s", status, body)
	}
	// Events have their own budget: k1 may still send them, twice.
	for i := range 3 {
		ev := fmt.Sprintf(`[{"type":"storage","id":"s-%d","time":"2026-03-10T15:00:00Z","bytes":1}]`, i)
		status, h, body := e.postEvents(t, svc.ServiceGuid, k1, "application/json", []byte(ev), false)
		if i < 2 {
			if status != http.StatusOK {
				t.Fatalf("events %d: %d %s", i+1, status, body)
			}
			continue
		}
		wantError(t, "3rd events request", status, h, body, 429, responseStatus{ErrorCode: "TooManyRequests",
			Message: "Rate limit of 2 requests a minute exceeded; retry in 60 seconds"})
	}
}
