package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/webhook"
)

// TestWebhookCommands drives the webhook commands against a server started
// with --webhook-allow-private and a receiver that verifies signatures.
func TestWebhookCommands(t *testing.T) {
	t.Parallel()
	const token = "webhook-commands-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token, "--webhook-allow-private")
	admin := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}
	org := mustJSON[orgBody](t, runCLI(t, admin, "org", "create", "--name", "Hooks", "--format", "json"))
	cl := mustJSON[clientBody](t, runCLI(t, admin, "client", "create", "--org", org.ID, "--name", "Hooks",
		"--permissions", "usage:limit:view,usage:limit:edit", "--validity", "3600", "--format", "json"))
	api, err := client.New(client.Config{Server: srv.base})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := api.AccessToken(t.Context(), cl.ID, cl.Secret)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_TOKEN": tok.AccessToken}

	var mu sync.Mutex
	var secret string
	var ids []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body, time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ids = append(ids, r.Header.Get(webhook.HeaderID))
	}))
	defer rcv.Close()

	h := mustJSON[wire.Webhook](t, runCLI(t, env, "webhook", "create", "--url", rcv.URL+"/in", "--format", "json"))
	if h.ID == "" || !strings.HasPrefix(h.Secret, "whsec_") || h.EventTypes[0] != "limit.threshold" || !h.Enabled {
		t.Fatalf("webhook create gave %+v", h)
	}
	mu.Lock()
	secret = h.Secret
	mu.Unlock()
	if out := runCLI(t, env, "webhook", "list"); !strings.Contains(out, h.ID) || !strings.Contains(out, rcv.URL+"/in") {
		t.Fatalf("webhook list:\n%s", out)
	}
	if out := runCLI(t, env, "webhook", "update", "--id", h.ID, "--url", rcv.URL+"/v2", "--enabled=false"); !strings.Contains(out, rcv.URL+"/v2") || !strings.Contains(out, "false") {
		t.Fatalf("webhook update:\n%s", out)
	}
	if got := mustJSON[wire.Webhook](t, runCLI(t, env, "webhook", "get", "--id", h.ID, "--format", "json")); got.URL != rcv.URL+"/v2" || got.Enabled || got.Secret != "" {
		t.Fatalf("webhook get gave %+v", got)
	}
	d := mustJSON[wire.WebhookDelivery](t, runCLI(t, env, "webhook", "test", "--id", h.ID, "--format", "json"))
	if !d.Succeeded || d.EventType != "webhook.test" {
		t.Fatalf("webhook test gave %+v", d)
	}
	r := mustJSON[wire.WebhookDelivery](t, runCLI(t, env, "webhook", "replay", "--id", h.ID, "--delivery", d.ID, "--format", "json"))
	if r.NotificationID != d.NotificationID || r.Attempt != 2 {
		t.Fatalf("webhook replay gave %+v", r)
	}
	out := runCLI(t, env, "webhook", "deliveries", "--id", h.ID, "--page-size", "1")
	if !strings.Contains(out, "more: --after ") || strings.Count(out, d.NotificationID) != 1 {
		t.Fatalf("webhook deliveries, a page of 1:\n%s", out)
	}
	if out := runCLI(t, env, "webhook", "deliveries", "--id", h.ID, "--page-size", "1", "--all"); strings.Count(out, d.NotificationID) != 2 || strings.Contains(out, "more:") {
		t.Fatalf("webhook deliveries --all:\n%s", out)
	}
	mu.Lock()
	if len(ids) != 2 || ids[0] != d.NotificationID || ids[1] != d.NotificationID {
		t.Fatalf("receiver saw %v", ids)
	}
	mu.Unlock()
	if _, err := tryCLI(t, env, "webhook", "create", "--url", "ftp://x.example/"); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Fatalf("webhook create with an ftp URL: %v", err)
	}
	runCLI(t, env, "webhook", "delete", "--id", h.ID)
	if _, err := tryCLI(t, env, "webhook", "get", "--id", h.ID); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("webhook get after delete: %v", err)
	}
}
