package genesys_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/usage"
)

// TestEventLimits checks the limits of one events request: more events than
// MaxEvents is a 413 that records nothing, and an answer lists the first
// MaxErrors rejected events with the others counted in errorsOmitted.
func TestEventLimits(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, func(c *server.Config) {
		c.Hooks.Ingest = func(ic *ingest.Config) { ic.Limits = ingest.Limits{MaxEvents: 10, MaxErrors: 3} }
	})
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	events := func(n int, bad func(i int) bool) string {
		var b strings.Builder
		for i := range n {
			ev := event("e" + string(rune('a'+i)))
			if bad(i) {
				ev["status"] = "x"
			}
			j, _ := json.Marshal(ev)
			b.Write(j)
			b.WriteString("\n")
		}
		return b.String()
	}

	// Eleven good events: refused whole, nothing recorded.
	body := events(11, func(int) bool { return false })
	eb := wantError(t, e.do("POST", "/api/v2/usage/events", tok, body, "Content-Type", "application/x-ndjson"),
		413, "request.entity.too.large", "more than 10 events")
	if !strings.Contains(eb.Message, "--max-events") {
		t.Fatalf("message %q does not name the flag", eb.Message)
	}
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, gzipped(t, "["+strings.Repeat("1,", 10)+"1]"), "Content-Encoding", "gzip"),
		413, "request.entity.too.large", "more than 10 events")
	if rows := e.aggregate(tok, map[string]any{"interval": day}).Results; len(rows) != 0 {
		t.Fatalf("a refused body recorded %v", rows)
	}

	// Ten, six of them bad: the first three listed, the other three counted.
	body = events(10, func(i int) bool { return i%3 != 0 })
	res := decode[ingest.Result](t, e.do("POST", "/api/v2/usage/events", tok, body, "Content-Type", "application/x-ndjson"), 200)
	if res.Accepted != 4 || res.Rejected != 6 || len(res.Errors) != 3 || res.ErrorsOmitted != 3 ||
		res.Errors[0].Index != 1 || res.Errors[1].Index != 2 || res.Errors[2].Index != 4 {
		t.Fatalf("result %+v, want 4 accepted, 6 rejected, errors of elements 1, 2, 4 and 3 omitted", res)
	}
}
