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
	"github.com/usaged/usaged/httpmw"
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
	addr                    string
	data                    string
	adminToken              string
	dedupeWindow            dayDuration
	maxBody                 byteSize
	logFormat               oneOf
	logLevel                string
	shutdownTimeout         time.Duration
	demo                    bool
	demoEventsPerDay        int
	resultsTTL              time.Duration
	queryWorkers            int
	rateLimit               int
	ingestRateLimit         int
	diskReserve             reserveSize
	acceptWALLoss           bool
	maxEvents               int
	memoryLimit             memoryLimit
	maxConnections          int
	tokenRateLimit          int
	failedLoginLimit        int
	failedLoginAddressLimit int

	// Per-organization limits of the query service (query.Config).
	maxPendingPerOrg     int
	maxExecutionsPerOrg  int
	maxResultBytesPerOrg byteSize
}

// defaultMaxConnections is the default of --max-connections: far more than
// the clients of one server, far fewer than the descriptors a server has.
const defaultMaxConnections = 10_000

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
		diskReserve:  pebble.DefaultDiskReserve,
		memoryLimit:  memoryLimit{auto: true},
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
	f.IntVar(&cfg.rateLimit, "rate-limit", genesys.DefaultRateLimit, "requests per minute per OAuth client, API key or the admin token on every route but event ingest and /oauth/token (per IP address without a valid credential); -1: unlimited")
	f.IntVar(&cfg.ingestRateLimit, "ingest-rate-limit", genesys.DefaultIngestRateLimit, "requests per minute per OAuth client, API key or the admin token to POST /api/v2/usage/events and POST /api/services/{guid}/events; -1: unlimited")
	f.IntVar(&cfg.tokenRateLimit, "token-rate-limit", genesys.DefaultTokenRateLimit, "requests per minute per IP address to POST /oauth/token, a budget of its own; -1: unlimited")
	f.IntVar(&cfg.failedLoginLimit, "failed-login-limit", auth.DefaultFailedLoginLimit, "failed logins per minute per client id, from any address, before its logins are refused until the minute ends; -1: unlimited")
	f.IntVar(&cfg.failedLoginAddressLimit, "failed-login-address-limit", auth.DefaultFailedLoginAddressLimit, "failed logins per minute per IP address, whatever the client ids, before its logins are refused until the minute ends; -1: unlimited")
	f.Var(&cfg.diskReserve, "disk-reserve", "free space to keep on the data directory's filesystem, at most 5% of it: below it, event ingest, registry changes and new query executions are refused with 503 (a `size`, e.g. 256MiB; 0: no reserve)")
	f.IntVar(&cfg.maxEvents, "max-events", ingest.DefaultMaxEvents, "limit on the events of one ingest request (API request events and service activity); a request with more is refused with 413")
	f.Var(&cfg.memoryLimit, "memory-limit", "soft limit on the Go heap, past which the collector works harder (a `size` such as 4GiB); auto: 3/4 of the cgroup's memory limit or of the machine's memory, unless GOMEMLIMIT is set; off: none")
	f.IntVar(&cfg.maxConnections, "max-connections", defaultMaxConnections, "connections served at once, lowered to leave file descriptors for the store; at the limit the longest idle keep-alive connection is closed to admit a new one")
	f.IntVar(&cfg.maxPendingPerOrg, "max-pending-executions-per-org", query.DefaultMaxPendingPerOrg, "query executions one organization may have queued or running; more are answered 429; -1: unlimited")
	f.IntVar(&cfg.maxExecutionsPerOrg, "max-executions-per-org", query.DefaultMaxExecutionsPerOrg, "query executions one organization may have stored until they expire (see --results-ttl); more are answered 429; -1: unlimited")
	cfg.maxResultBytesPerOrg = query.DefaultMaxResultBytesPerOrg
	f.Var(&cfg.maxResultBytesPerOrg, "max-result-bytes-per-org", "stored query results one organization may hold until they expire, counted as their strings plus 8 bytes per number; beyond it new executions are answered 429 (a `size`, e.g. 256MiB)")
	f.BoolVar(&cfg.demo, "demo", false, "seed a demo organization and demo services with 30 days of traffic and activity on first start and print credentials to query them")
	f.IntVar(&cfg.demoEventsPerDay, "demo-events-per-day", 10_000, "with --demo, average events per day to seed")
	f.BoolVar(&cfg.acceptWALLoss, "accept-wal-loss", false, "start even if the store's write-ahead log is damaged in its middle, dropping the acknowledged writes from the damage on (logged at ERROR); without it such a store refuses to start")
	cmd.run = func(ctx context.Context) error { return c.serve(ctx, cfg) }
	return cmd
}

func (c *cli) serve(ctx context.Context, cfg *serveConfig) (err error) {
	log, err := newLogger(c.stderr, cfg.logFormat.value, cfg.logLevel)
	if err != nil {
		return err
	}
	if cfg.maxEvents < 1 {
		return usageError{err: fmt.Errorf("--max-events must be at least 1, got %d", cfg.maxEvents)}
	}
	if cfg.maxConnections < 1 {
		return usageError{err: fmt.Errorf("--max-connections must be at least 1, got %d", cfg.maxConnections)}
	}
	if os.Getenv("GOGC") == "" {
		// The heap is mostly short-lived request bodies; the large long-lived
		// state (the dedupe filter, the block cache) lives outside it. A higher
		// target trades a little memory for much less collector work on
		// ingest (a median 1.45x the events/s of GOGC=100, BENCHMARKS.md).
		// The memory limit below bounds what the higher target may cost:
		// near it the collector runs as often as it must, whatever GOGC says.
		debug.SetGCPercent(400)
	}
	applyMemoryLimit(log, cfg.memoryLimit)
	maxConns := cfg.maxConnections
	if fdLimit, err := raiseFileLimit(); err != nil {
		log.Warn("the limit on open files could not be read or raised", "err", err)
	} else {
		n, lowered := connectionBudget(maxConns, fdLimit)
		log.Info("open files limit", "limit", fdLimit, "maxConnections", n, "reservedForStore", storeFileReserve(fdLimit))
		if lowered {
			log.Info("--max-connections lowered to leave file descriptors for the store; raise the hard limit on open files (ulimit -Hn, LimitNOFILE=) to allow more",
				"maxConnections", cfg.maxConnections, "lowered", n, "openFilesLimit", fdLimit)
			maxConns = n
		}
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
	}{{"max-pending-executions-per-org", cfg.maxPendingPerOrg}, {"max-executions-per-org", cfg.maxExecutionsPerOrg}} {
		if l.v == 0 {
			return usageError{err: fmt.Errorf("--%s must be positive, or negative for no limit, got 0", l.flag)}
		}
	}
	for _, l := range []struct {
		flag string
		v    int
	}{
		{"rate-limit", cfg.rateLimit}, {"ingest-rate-limit", cfg.ingestRateLimit},
		{"token-rate-limit", cfg.tokenRateLimit}, {"failed-login-limit", cfg.failedLoginLimit}, {"failed-login-address-limit", cfg.failedLoginAddressLimit},
	} {
		if l.v == 0 || l.v > genesys.MaxRateLimit {
			return usageError{err: fmt.Errorf("--%s must be from 1 to %d, or negative for no limit, got %d", l.flag, genesys.MaxRateLimit, l.v)}
		}
	}
	if err := checkDataDir(cfg.data); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	key, err := loadOrCreate(filepath.Join(cfg.data, signingKeyFile), func() ([]byte, error) { return randomBytes(32), nil })
	if err != nil {
		return fmt.Errorf("token signing key: %w", err)
	}
	adminToken, announceToken, err := c.adminToken(cfg)
	if err != nil {
		return err
	}

	db, err := pebble.Open(pebble.Config{
		Dir:           filepath.Join(cfg.data, storeDir),
		Logger:        log.With("component", "store"),
		DiskReserve:   cfg.diskReserve.storeReserve(),
		AcceptWALLoss: cfg.acceptWALLoss,
	})
	if err != nil {
		return storeOpenError(cfg.data, err)
	}
	steps := &shutdownSteps{db: db, log: log}
	// The store closes last, after the server and the maintenance loop have
	// stopped using it.
	var background sync.WaitGroup
	defer func() {
		steps.run("stopping store maintenance", background.Wait)
		if cerr := db.Close(); cerr != nil {
			log.Error("closing the store", "err", cerr)
			err = errors.Join(err, cerr)
		} else {
			log.Info("store closed")
		}
	}()

	authSvc, err := auth.New(ctx, auth.Config{
		Registry: db, AdminToken: adminToken, SigningKey: key, Logger: log.With("component", "auth"),
		// Never 0 here, which would mean the default.
		FailedLoginLimit:        cfg.failedLoginLimit,
		FailedLoginAddressLimit: cfg.failedLoginAddressLimit,
	})
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
	reg.MustRegister(storeCollectors(db)...)
	stack, err := httpmw.New(httpmw.Config{Logger: log.With("component", "http"), Registerer: reg, Failed: db.Failed})
	if err != nil {
		return err
	}
	pipeline, err := ingest.New(ingest.Config{
		Store:             db,
		Services:          db,
		DedupeWindow:      time.Duration(cfg.dedupeWindow),
		KnownOrganization: authSvc.KnownOrganization,
		Logger:            log.With("component", "ingest"),
		Registerer:        reg,
		Limits:            ingest.Limits{MaxEvents: cfg.maxEvents},
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
		Registerer: reg,

		// Never 0 here, which would mean the default.
		MaxPendingPerOrg:     cfg.maxPendingPerOrg,
		MaxExecutionsPerOrg:  cfg.maxExecutionsPerOrg,
		MaxResultBytesPerOrg: int64(cfg.maxResultBytesPerOrg),
	})
	if err != nil {
		return err
	}
	// Executions interrupted by shutdown stay queued in the store and are
	// resumed on the next start.
	defer steps.run("closing the query service", func() { queries.Close() })
	api, err := genesys.New(genesys.Config{
		Auth:    authSvc,
		Ingest:  pipeline,
		Events:  db,
		Queries: queries,
		Logger:  log.With("component", "http"),
		MaxBody: int64(cfg.maxBody),
		Stack:   stack,
		// Never 0 here, which would mean the default.
		RateLimit:       cfg.rateLimit,
		IngestRateLimit: cfg.ingestRateLimit,
		TokenRateLimit:  cfg.tokenRateLimit,
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
		MaxBody:         int64(cfg.maxBody),
		Logger:          log.With("component", "ccc"),
		RateLimit:       cfg.rateLimit,
		IngestRateLimit: cfg.ingestRateLimit,
		Stack:           stack,
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
	mux.HandleFunc("GET /healthz", healthz(&ready, db))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	tcp, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --addr %s (give another, or port 0 for a free one): %w", cfg.addr, err)
	}
	if err := announceToken(); err != nil {
		tcp.Close()
		return err
	}
	ln := newConnLimiter(tcp, maxConns, log.With("component", "http"))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "usaged_http_connections",
		Help: "HTTP connections open.",
	}, func() float64 { return float64(ln.Open()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "usaged_http_idle_connections_closed_total",
		Help: "Idle keep-alive connections closed to admit new ones at --max-connections.",
	}, func() float64 { return float64(ln.idleClosed.Load()) }))
	srv := &http.Server{
		Handler:           mux,
		ConnState:         ln.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
		// Event bodies are up to --max-body, possibly over slow links.
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 2 * time.Minute,
		// Long enough for a client sending steadily to reuse its connection,
		// short enough that abandoned ones do not pile up; at the connection
		// limit idle ones are closed anyway.
		IdleTimeout:    30 * time.Second,
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
		if err := demoInfo.refreshCounts(ctx, db, registry); err != nil {
			log.Warn("the demo's banner shows the counts of its seed", "err", err)
		}
	}
	ready.Store(true)
	log.Info("listening", "addr", ln.Addr().String(), "data", cfg.data, "dedupeWindow", cfg.dedupeWindow.String())
	fmt.Fprintf(c.stdout, "listening on %s\n", base)
	if demoInfo != nil {
		demoSession.Store(demoInfo.dashboardSession())
		demoInfo.print(c.stdout, base)
	}

	// A failed store stops the server as a signal would, and the exit status
	// tells a supervisor to restart it: the restart recovers the store. The
	// whole shutdown, drain included, takes at most --shutdown-timeout.
	var failed error
	select {
	case err := <-serveErr:
		stopMaintain()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.shutdownTimeout.String())
	case <-db.FailedC():
		failed = fmt.Errorf("the store failed, restart usaged to recover it: %w", errors.Unwrap(db.Failed()))
		log.Error("shutting down: the store failed and refuses writes; exiting for a restart", "err", errors.Unwrap(db.Failed()), "timeout", cfg.shutdownTimeout.String())
	}
	shutdownBy := time.Now().Add(cfg.shutdownTimeout)
	steps.start(shutdownBy)
	ready.Store(false)
	stopMaintain()
	if failed != nil {
		drainFailed(ctx, cfg.shutdownTimeout)
	}
	sctx, cancel := context.WithDeadline(context.Background(), shutdownBy)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout were cut off", "err", err)
		srv.Close()
	}
	if err := db.Failed(); err != nil && failed == nil {
		failed = fmt.Errorf("the store failed, restart usaged to recover it: %w", errors.Unwrap(err))
	}
	return failed
}

// adminToken returns the admin token: from the flag, else from the data
// directory, else newly generated. A new token is kept in the data
// directory and printed, once, by announce, which serve calls when it
// listens: a start that fails before (port in use, store locked) neither
// prints a token nor keeps one nobody saw, and the next start generates and
// shows its own. announce does nothing for a token that was not new.
func (c *cli) adminToken(cfg *serveConfig) (tok string, announce func() error, err error) {
	none := func() error { return nil }
	if cfg.adminToken != "" {
		if len(cfg.adminToken) < auth.MinAdminTokenLen {
			return "", nil, usageError{err: fmt.Errorf("--admin-token (or the file of --admin-token-file) must be at least %d bytes long", auth.MinAdminTokenLen)}
		}
		return cfg.adminToken, none, nil
	}
	path := filepath.Join(cfg.data, adminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tok = base64.RawURLEncoding.EncodeToString(randomBytes(32))
		return tok, func() error {
			if err := writeFileAtomic(path, []byte(tok+"\n")); err != nil {
				return fmt.Errorf("admin token: %w", err)
			}
			fmt.Fprintf(c.stdout, "admin token (generated now, shown only this once, kept in %s):\n    %s\n", path, tok)
			return nil
		}, nil
	case err != nil:
		return "", nil, fmt.Errorf("admin token: %w", err)
	}
	tok = strings.TrimSpace(string(b))
	if len(tok) < auth.MinAdminTokenLen {
		return "", nil, fmt.Errorf("admin token in %s is shorter than %d bytes: replace it or pass --admin-token", path, auth.MinAdminTokenLen)
	}
	return tok, none, nil
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
