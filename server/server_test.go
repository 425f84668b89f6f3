package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/syncbuf"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/open"
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
	stop := runUntilListening(t, s, out)
	if code, _ := get(t, s.URL()+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answers %d once listening", code)
	}
	if _, err := os.Stat(filepath.Join(cfg.Data.Dir, server.StoreDir)); err != nil {
		t.Fatalf("the default store is not in the data directory: %v", err)
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
	if err := stop(); err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A store in memory leaves nothing of it in the data directory, which
// still keeps the signing key and the admin token; the server warns that
// everything is lost at exit, answers /healthz and has no disk or failure
// to report on /metrics.
func TestServeInMemory(t *testing.T) {
	cfg := server.DefaultConfig(t.TempDir())
	cfg.Data.Store = open.Location{Scheme: open.SchemeMemory}
	logs, out := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	cfg.Log = server.LogConfig{Logger: slog.New(slog.NewTextHandler(logs, nil)), Stdout: out}
	s, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilListening(t, s, out)
	if code, body := get(t, s.URL()+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz answers %d %q", code, body)
	}
	_, metrics := get(t, s.URL()+"/metrics")
	if !strings.Contains(metrics, "usaged_http_connections") || strings.Contains(metrics, "usaged_store_") {
		t.Fatalf("/metrics of a store in memory:\n%s", metrics)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "everything recorded is lost when usaged exits") {
		t.Fatalf("no warning that the store is in memory:\n%s", logs)
	}
	for name, want := range map[string]bool{server.SigningKeyFile: true, server.AdminTokenFile: true, server.StoreDir: false} {
		if _, err := os.Stat(filepath.Join(cfg.Data.Dir, name)); (err == nil) != want {
			t.Errorf("%s in the data directory: %v, want present %t", name, err, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// runUntilListening runs s until the returned stop is called, which
// returns Run's error; it returns once s printed on out that it listens.
func runUntilListening(t *testing.T, s *server.Server, out *syncbuf.Buffer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("not listening; printed %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() error { cancel(); return <-done }
}

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
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

// A store location that names no backend is a problem of the data section,
// named by its flag.
func TestConfigValidateStore(t *testing.T) {
	cfg := server.DefaultConfig(t.TempDir())
	cfg.Data.Store = open.Location{Scheme: "sqlite", Path: "x"}
	if got := server.FirstProblem(cfg.Validate()); got == nil || !strings.HasPrefix(got.Error(), "--store: store location \"sqlite:x\" names no backend") {
		t.Fatalf("FirstProblem = %v", got)
	}
}
