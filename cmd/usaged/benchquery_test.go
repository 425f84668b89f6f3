package main

import (
	"strings"
	"testing"
)

// bench query runs against a small server, agrees with itself on the row
// count and removes the client it made.
func TestBenchQuery(t *testing.T) {
	t.Parallel()
	const token = "bench-query-admin-token"
	// The loops share one token, which the default rate limit would stop.
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token, "--rate-limit", "1000000")
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}
	org := mustJSON[orgBody](t, runCLI(t, env, "org", "create", "--name", "Queried", "--format", "json"))
	runCLI(t, env, "demo", "--org", org.ID, "--clients", "3", "--users", "5", "--templates", "20", "--days", "2",
		"--events-per-day", "300", "--batch", "150", "--concurrency", "1", "--format", "json")

	rep := mustJSON[benchQueryReport](t, runCLI(t, env, "bench", "query", "--duration", "300ms", "--concurrency", "2", "--format", "json"))
	if rep.Organization != org.ID || rep.Executions == 0 || rep.Failures != 0 || rep.FirstError != "" ||
		rep.Rows < 3 || rep.ReceivedP50Ms <= 0 || rep.DecodedP50Ms < rep.ReceivedP50Ms || rep.ExecutionsPerSecond <= 0 {
		t.Fatalf("bench query: %+v", rep)
	}
	if out := runCLI(t, env, "client", "list", "--org", org.ID); strings.Contains(out, benchQueryViewer) {
		t.Fatalf("bench query left its client behind:\n%s", out)
	}
	out := runCLI(t, env, "bench", "query", "--org", org.ID, "--duration", "100ms", "--granularity", "", "--group-by", "HttpMethod")
	if !strings.Contains(out, "executions/s") || !strings.Contains(out, "no granularity, by HttpMethod") {
		t.Fatalf("bench query text report:\n%s", out)
	}
}
