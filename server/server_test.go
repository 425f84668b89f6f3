package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/syncbuf"
	"github.com/usaged/usaged/server"
)

func TestServeAndShutdown(t *testing.T) {
	cfg := server.DefaultConfig(t.TempDir())
	cfg.Log.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	out := &syncbuf.Buffer{}
	cfg.Log.Stdout = out
	s, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("not listening; printed %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz answers %d once listening", resp.StatusCode)
	}
	if !strings.Contains(out.String(), "admin token (generated now") || !strings.Contains(out.String(), "listening on "+s.URL()) {
		t.Fatalf("printed %q", out.String())
	}
	routes := s.Routes()
	for _, want := range []string{"POST /oauth/token", "POST /api/v2/usage/events", "POST /api/services/{ServiceGuid}/events", "GET /{$}", "GET /healthz", "GET /openapi.json", "GET /metrics"} {
		if !slices.Contains(routes, want) {
			t.Errorf("Routes() lacks %q: %q", want, routes)
		}
	}
	if slices.Contains(routes, "unmatched") {
		t.Errorf("Routes() lists the catch-all: %q", routes)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := server.DefaultConfig(t.TempDir())
	cfg.Ingest.MaxEvents = 0
	cfg.Limits.RateLimit = 0
	err := cfg.Validate()
	var se *server.SectionError
	if !errors.As(err, &se) || se.Section != "ingest" || !strings.Contains(err.Error(), "limits: --rate-limit must be from 1") {
		t.Fatalf("Validate = %v", err)
	}
	if got := server.FirstProblem(err).Error(); got != "--max-events must be at least 1, got 0" {
		t.Fatalf("FirstProblem = %q", got)
	}
	if _, err := server.New(t.Context(), cfg); err == nil {
		t.Fatal("New accepted an invalid configuration")
	}
}
