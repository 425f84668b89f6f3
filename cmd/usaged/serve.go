package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ccc"
	"github.com/usaged/usaged/dashboard"
	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/tenancy"
)

// Files kept in the data directory next to the store.
const (
	signingKeyFile = "token-signing-key"
	adminTokenFile = "admin-token"
	storeDir       = "store"
)

type serveConfig struct {
	addr             string
	data             string
	adminToken       string
	dedupeWindow     dayDuration
	maxBody          byteSize
	logFormat        oneOf
	logLevel         string
	shutdownTimeout  time.Duration
	demo             bool
	demoEventsPerDay int
	resultsTTL       time.Duration
	queryWorkers     int
	rateLimit        int
	ingestRateLimit  int
}

func (c *cli) serveCommand() *command {
	cmd := c.newCommand("serve", "run the usaged server",
		`Serves the Genesys-compatible API (/oauth/token, /api/v2/...), the service-usage
reports (/api/services/...), the dashboard at /, GET /healthz and GET /metrics
(Prometheus). The data directory holds the store, the token signing
key and, unless --admin-token is given, the admin token, which is generated on
first start and printed once. SIGINT or SIGTERM stop accepting connections,
let requests in flight finish and close the store.

With --demo, the first start seeds an organization "Demo Org" with 30 days of
synthetic traffic and prints a client id and secret to query it with, then
seeds the service-usage reports with demo partners, resellers and services and
30 days of their activity, and prints a partner's API key to read them with;
later starts reuse both. The dashboard then opens signed in as the demo viewer.`)
	cfg := &serveConfig{
		dedupeWindow: dayDuration(ingest.DefaultDedupeWindow),
		maxBody:      ingest.DefaultMaxBody,
		logFormat:    oneOf{value: "auto", allowed: []string{"auto", "text", "json"}},
	}
	f := cmd.fs
	f.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on; port 0 picks a free port")
	f.StringVar(&cfg.data, "data", "./usaged-data", "data directory, created if missing")
	f.StringVar(&cfg.adminToken, "admin-token", "", "admin bearer token, at least 16 bytes; default: the one kept in the data directory, generated on first start; ps shows it to every user: prefer --admin-token-file")
	f.String("admin-token-file", "", "file holding the admin token (whitespace trimmed), instead of --admin-token")
	f.Var(&cfg.dedupeWindow, "dedupe-window", "how far back in event time duplicate ids are detected; older events are rejected (a `duration`: Go syntax or days, e.g. 35d)")
	f.Var(&cfg.maxBody, "max-body", "limit on an event request body after decompression (a `size`, e.g. 16MiB)")
	f.Var(&cfg.logFormat, "log-format", "log `format`: text, json, or auto (text on a terminal, else json)")
	f.StringVar(&cfg.logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	f.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGINT or SIGTERM, how long requests in flight may take to finish")
	f.DurationVar(&cfg.resultsTTL, "results-ttl", query.DefaultTTL, "how long query executions and their results are kept after they start")
	f.IntVar(&cfg.queryWorkers, "query-workers", 0, "query executions answered at once; 0: one per CPU")
	f.IntVar(&cfg.rateLimit, "rate-limit", genesys.DefaultRateLimit, "requests per minute per bearer token on every route but event ingest (per IP address without a valid token); -1: unlimited")
	f.IntVar(&cfg.ingestRateLimit, "ingest-rate-limit", genesys.DefaultIngestRateLimit, "requests per minute per bearer token to POST /api/v2/usage/events; -1: unlimited")
	f.BoolVar(&cfg.demo, "demo", false, "seed a demo organization and demo services with 30 days of traffic and activity on first start and print credentials to query them")
	f.IntVar(&cfg.demoEventsPerDay, "demo-events-per-day", 10_000, "with --demo, average events per day to seed")
	cmd.run = func(ctx context.Context) error { return c.serve(ctx, cfg) }
	return cmd
}

func (c *cli) serve(ctx context.Context, cfg *serveConfig) (err error) {
	if os.Getenv("GOGC") == "" {
		// The heap is mostly short-lived request bodies; the large long-lived
		// state (the dedupe filter, the block cache) lives outside it. A higher
		// target trades a little memory for much less collector work on ingest.
		debug.SetGCPercent(400)
	}
	log, err := newLogger(c.stderr, cfg.logFormat.value, cfg.logLevel)
	if err != nil {
		return err
	}
	if cfg.demo && (cfg.demoEventsPerDay < 1 || cfg.demoEventsPerDay > 1_000_000) {
		return usageError{err: fmt.Errorf("--demo-events-per-day must be from 1 to 1000000, got %d", cfg.demoEventsPerDay)}
	}
	if cfg.resultsTTL <= 0 {
		return usageError{err: fmt.Errorf("--results-ttl must be positive, got %s", cfg.resultsTTL)}
	}
	if cfg.queryWorkers < 0 {
		return usageError{err: fmt.Errorf("--query-workers must not be negative, got %d", cfg.queryWorkers)}
	}
	for _, l := range []struct {
		flag string
		v    int
	}{{"rate-limit", cfg.rateLimit}, {"ingest-rate-limit", cfg.ingestRateLimit}} {
		if l.v == 0 || l.v > genesys.MaxRateLimit {
			return usageError{err: fmt.Errorf("--%s must be from 1 to %d, or negative for no limit, got %d", l.flag, genesys.MaxRateLimit, l.v)}
		}
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	key, err := loadOrCreate(filepath.Join(cfg.data, signingKeyFile), func() ([]byte, error) { return randomBytes(32), nil })
	if err != nil {
		return fmt.Errorf("token signing key: %w", err)
	}
	adminToken, err := c.adminToken(cfg)
	if err != nil {
		return err
	}

	db, err := pebble.Open(pebble.Config{Dir: filepath.Join(cfg.data, storeDir), Logger: log.With("component", "store")})
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	// The store closes last, after the server and the maintenance loop have
	// stopped using it.
	var background sync.WaitGroup
	defer func() {
		background.Wait()
		if cerr := db.Close(); cerr != nil {
			log.Error("closing the store", "err", cerr)
			err = errors.Join(err, cerr)
		} else {
			log.Info("store closed")
		}
	}()

	authSvc, err := auth.New(ctx, auth.Config{Registry: db, AdminToken: adminToken, SigningKey: key, Logger: log.With("component", "auth")})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "usaged_store_disk_bytes",
			Help: "Disk space used by the store, in bytes.",
		}, func() float64 { return float64(db.DiskUsage()) }),
	)
	metrics, err := genesys.NewMetrics(reg)
	if err != nil {
		return err
	}
	pipeline, err := ingest.New(ingest.Config{
		Store:             db,
		Services:          db,
		DedupeWindow:      time.Duration(cfg.dedupeWindow),
		KnownOrganization: authSvc.KnownOrganization,
		Logger:            log.With("component", "ingest"),
		Observe:           metrics.ObserveIngest,
	})
	if err != nil {
		return err
	}
	queries, err := query.New(ctx, query.Config{
		Events:     db,
		Executions: db,
		Workers:    cfg.queryWorkers,
		TTL:        cfg.resultsTTL,
		Logger:     log.With("component", "query"),
		Observe:    metrics.ObserveQuery,
	})
	if err != nil {
		return err
	}
	// Executions interrupted by shutdown stay queued in the store and are
	// resumed on the next start.
	defer queries.Close()
	api, err := genesys.New(genesys.Config{
		Auth:    authSvc,
		Ingest:  pipeline,
		Events:  db,
		Queries: queries,
		Logger:  log.With("component", "http"),
		MaxBody: int64(cfg.maxBody),
		Metrics: metrics,
		// Never 0 here, which would mean the default.
		RateLimit:       cfg.rateLimit,
		IngestRateLimit: cfg.ingestRateLimit,
	})
	if err != nil {
		return err
	}

	registry, err := tenancy.New(ctx, tenancy.Config{Store: db, Logger: log.With("component", "tenancy")})
	if err != nil {
		return err
	}
	reports, err := ccc.New(ccc.Config{
		Registry: registry,
		Ingest:   pipeline,
		Reports:  db,
		Admin: func(token string) bool {
			p, err := authSvc.Authenticate(ctx, token)
			return err == nil && p.Admin
		},
		MaxBody: int64(cfg.maxBody),
		Logger:  log.With("component", "ccc"),
	})
	if err != nil {
		return err
	}

	var (
		ready       atomic.Bool
		demoSession atomic.Pointer[dashboard.Session]
	)
	mux := http.NewServeMux()
	api.Register(mux)
	reports.Register(mux)
	if err := dashboard.Register(mux, dashboard.Config{Demo: demoSession.Load}); err != nil {
		return err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "starting")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Event bodies are up to --max-body, possibly over slow links.
		ReadTimeout:    2 * time.Minute,
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	maintainCtx, stopMaintain := context.WithCancel(context.Background())
	defer stopMaintain()
	background.Go(func() { pipeline.Maintain(maintainCtx, time.Hour) })

	base := "http://" + ln.Addr().String()
	var demoInfo *demoCredentials
	if cfg.demo {
		demoInfo, err = c.seedDemo(ctx, log, cfg, authSvc, pipeline, registry)
		if err != nil {
			stopMaintain()
			srv.Close()
			return err
		}
	}
	ready.Store(true)
	log.Info("listening", "addr", ln.Addr().String(), "data", cfg.data, "dedupeWindow", cfg.dedupeWindow.String())
	fmt.Fprintf(c.stdout, "listening on %s\n", base)
	if demoInfo != nil {
		demoSession.Store(demoInfo.dashboardSession())
		demoInfo.print(c.stdout, base)
	}

	select {
	case err := <-serveErr:
		stopMaintain()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout.String())
	ready.Store(false)
	stopMaintain()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout were cut off", "err", err)
		srv.Close()
	}
	return nil
}

// adminToken returns the admin token: from the flag, else from the data
// directory, else newly generated, kept there and printed this once.
func (c *cli) adminToken(cfg *serveConfig) (string, error) {
	if cfg.adminToken != "" {
		if len(cfg.adminToken) < auth.MinAdminTokenLen {
			return "", usageError{err: fmt.Errorf("--admin-token (or the file of --admin-token-file) must be at least %d bytes long", auth.MinAdminTokenLen)}
		}
		return cfg.adminToken, nil
	}
	path := filepath.Join(cfg.data, adminTokenFile)
	created := false
	b, err := loadOrCreate(path, func() ([]byte, error) {
		created = true
		return []byte(base64.RawURLEncoding.EncodeToString(randomBytes(32)) + "\n"), nil
	})
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < auth.MinAdminTokenLen {
		return "", fmt.Errorf("admin token in %s is shorter than %d bytes: replace it or pass --admin-token", path, auth.MinAdminTokenLen)
	}
	if created {
		fmt.Fprintf(c.stdout, "admin token (generated now, shown only this once, kept in %s):\n    %s\n", path, tok)
	}
	return tok, nil
}

// loadOrCreate returns the contents of the secret file at path, creating it
// with mode 0600 from create if it does not exist yet.
func loadOrCreate(path string, create func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) == 0 {
			return nil, fmt.Errorf("%s is empty: delete it to have it generated again", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b, err = create()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return nil, err
	}
	return b, nil
}

// writeFileAtomic writes a 0600 file through a temporary one, so that a
// crash never leaves a truncated secret behind.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return b
}
