package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
)

// startQuery POSTs an organization usage query and returns the response.
func startQuery(t *testing.T, base, token string) (*http.Response, map[string]any) {
	t.Helper()
	resp, b, err := apptest.Send("POST", base+"/api/v2/usage/query", token, "application/json", []byte(`{"interval":"P1D/2026-01-02"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// A real usaged serve enforces --max-executions-per-org: an organization
// past it is answered 429 with Retry-After, the others are not, and the
// count survives a restart.
func TestExecutionLimitFlags(t *testing.T) {
	t.Parallel()
	if _, err := tryCLI(t, nil, "serve", "--max-executions-per-org", "0"); err == nil || !strings.Contains(err.Error(), "--max-executions-per-org must be positive") {
		t.Fatalf("--max-executions-per-org 0: %v", err)
	}
	const admin = "execution-limit-admin-token"
	data := t.TempDir()
	args := []string{"--max-executions-per-org", "2", "--results-ttl", "1h"}
	srv := startServe(t, data, admin, args...)
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": admin}
	var tokens []string
	for _, name := range []string{"Noisy", "Quiet"} {
		org := mustJSON[orgBody](t, runCLI(t, env, "org", "create", "--name", name, "--format", "json"))
		c := mustJSON[clientBody](t, runCLI(t, env, "client", "create", "--org", org.ID, "--name", name,
			"--permissions", "usage:organization:view", "--format", "json"))
		tokens = append(tokens, clientToken(t, srv.base, c.ID, c.Secret))
	}
	noisy, quiet := tokens[0], tokens[1]
	for range 2 {
		if resp, body := startQuery(t, srv.base, noisy); resp.StatusCode != 202 {
			t.Fatalf("POST: %d %v", resp.StatusCode, body)
		}
	}
	refused := func() {
		t.Helper()
		resp, body := startQuery(t, srv.base, noisy)
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		msg, _ := body["message"].(string)
		if resp.StatusCode != 429 || body["code"] != "too.many.requests.retry.after" || retry < 3000 || retry > 3600 ||
			!strings.Contains(msg, "keeps 2 query executions, its limit") {
			t.Fatalf("over the limit: %d, Retry-After %q, %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	refused()
	if resp, body := startQuery(t, srv.base, quiet); resp.StatusCode != 202 {
		t.Fatalf("another organization: %d %v", resp.StatusCode, body)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("usaged serve did not stop on SIGTERM")
	}
	srv = startServe(t, data, admin, args...)
	refused()
}
