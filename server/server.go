// Package server is the composition root of usaged serve: from one Config it
// opens the store its location names (store/open), builds every component
// (auth, ingest, query, the service registry), puts the Genesys face, the
// service-usage face, the dashboard, /healthz and /metrics behind one
// middleware stack, and serves them until its context is done or the store
// fails. Tests build their server with it too, so that what they test is
// wired as usaged serve wires it.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	"github.com/usaged/usaged/internal/secretfile"
	"github.com/usaged/usaged/limiteval"
	"github.com/usaged/usaged/notify"
	"github.com/usaged/usaged/openapi"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// Files kept in the data directory, and the directory of its default
// store.
const (
	SigningKeyFile = "token-signing-key"
	AdminTokenFile = "admin-token"
	StoreDir       = open.DefaultDir
)

// Server is usaged serve's server: its store, components and listener. New
// builds it, Run serves, Close releases what New opened.
type Server struct {
	cfg Config
	log *slog.Logger

	stores   open.Stores
	health   storeHealth // of the halves that can fail; empty for memory:
	auth     *auth.Service
	ingest   *ingest.Pipeline
	queries  *query.Service
	registry *tenancy.Registry
	notifier *notify.Worker // nil when the metadata store keeps no webhooks
	stack    *httpmw.Stack
	metrics  *prometheus.Registry

	ln  *connLimiter
	srv *http.Server

	ready       atomic.Bool
	demoSession atomic.Pointer[dashboard.Session]

	steps        *shutdownSteps
	background   sync.WaitGroup
	maintainCtx  context.Context
	stopMaintain context.CancelFunc
	closeOnce    sync.Once
	closeErr     error
}

// New validates cfg, prepares the data directory (its signing key and admin
// token), opens the store, builds every component and listens on
// cfg.HTTP.Addr. A newly generated admin token is printed on
// cfg.Log.Stdout once the server listens, so that a start that fails before
// shows none that nobody will see again. The caller must Close the Server.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log.Logger == nil {
		cfg.Log.Logger = slog.Default()
	}
	if cfg.Log.Stdout == nil {
		cfg.Log.Stdout = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Log.Logger
	if cfg.Limits.Memory != nil {
		applyMemoryLimit(log, *cfg.Limits.Memory)
	}
	maxConns := cfg.HTTP.MaxConnections
	if fdLimit, err := raiseFileLimit(); err != nil {
		log.Warn("the limit on open files could not be read or raised", "err", err)
	} else {
		n, lowered := connectionBudget(maxConns, fdLimit)
		log.Info("open files limit", "limit", fdLimit, "maxConnections", n, "reservedForStore", storeFileReserve(fdLimit))
		if lowered {
			log.Info("--max-connections lowered to leave file descriptors for the store; raise the hard limit on open files (ulimit -Hn, LimitNOFILE=) to allow more",
				"maxConnections", cfg.HTTP.MaxConnections, "lowered", n, "openFilesLimit", fdLimit)
			maxConns = n
		}
	}
	data, loc := cfg.Data.Dir, cfg.Data.Store
	if loc.Scheme == open.SchemePebble {
		if err := checkDataDir(data, loc.Path); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	keyFile := cfg.Data.SigningKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(data, SigningKeyFile)
	}
	key, err := secretfile.LoadOrCreate(keyFile, func() ([]byte, error) { return randomBytes(32), nil })
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	adminToken, announceToken, err := loadAdminToken(cfg)
	if err != nil {
		return nil, err
	}

	cl := cfg.Data.Cluster
	stores, err := open.Open(ctx, loc, open.Config{
		Pebble: pebble.Config{
			Logger:        log.With("component", "store"),
			DiskReserve:   storeReserve(cfg.Data.DiskReserve),
			AcceptWALLoss: cfg.Data.AcceptWALLoss,
			CacheBytes:    cfg.Data.CacheBytes,
		},
		ClickHouse: clickhouse.Config{Keeper: cl.Keeper, Claims: cl.Claims, Lease: cl.Lease, DedupeWindow: cfg.Ingest.DedupeWindow, Failpoint: cl.Failpoint, Unsafe: cl.UnsafeClaims},
		Metadata:   cfg.Data.Metadata,
	})
	if err != nil {
		if loc.Scheme == open.SchemePebble {
			return nil, storeOpenError(data, loc.Path, err)
		}
		return nil, fmt.Errorf("opening the store %s: %w", loc, err)
	}
	if loc.Scheme == open.SchemeMemory {
		log.Warn("the store is in memory (--store memory:): everything recorded is lost when usaged exits")
	}
	health := storeHealth(halves[store.Health](stores))
	s := &Server{cfg: cfg, log: log, stores: stores, health: health, steps: &shutdownSteps{db: health, log: log}}
	s.maintainCtx, s.stopMaintain = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.build(ctx, key, adminToken); err != nil {
		return nil, err
	}
	if err := s.listen(maxConns); err != nil {
		return nil, err
	}
	if err := announceToken(); err != nil {
		return nil, err
	}
	return s, nil
}

// MetadataReload is how often a node whose metadata store other nodes
// share reloads its caches of organizations, clients and the service
// registry: the longest a deleted client's tokens, a rotated secret or a
// new service or API key takes to be seen by every node. New
// organizations and clients are found at once.
const MetadataReload = time.Second

// sharedMetadata reports whether the metadata store may be shared with
// other nodes: one of its own (--metadata), which a cluster's nodes share.
func (s *Server) sharedMetadata() bool { return s.cfg.Data.Metadata.Scheme != "" }

// reloadMetadata reloads the caches of auth and the service registry every
// interval until ctx ends; a failed reload is logged and tried again.
func (s *Server) reloadMetadata(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := errors.Join(s.auth.Reload(ctx), s.registry.Reload(ctx)); err != nil && ctx.Err() == nil {
			s.log.Warn("reloading the metadata failed; the caches keep what they had", "err", err)
		}
	}
}

// build makes the components and the routes.
func (s *Server) build(ctx context.Context, key []byte, adminToken string) error {
	cfg, log := &s.cfg, s.log
	usageDB, meta := s.stores.Usage, s.stores.Metadata
	var err error
	s.auth, err = auth.New(ctx, *apply(cfg.Hooks.Auth, &auth.Config{
		Registry: meta, AdminToken: adminToken, SigningKey: key, Logger: log.With("component", "auth"),
		Now: cfg.Now, BcryptCost: cfg.Auth.BcryptCost,
		// Never 0 here, which would mean the default.
		FailedLoginLimit:        cfg.Auth.FailedLoginLimit,
		FailedLoginAddressLimit: cfg.Auth.FailedLoginAddressLimit,
		ReadThrough:             s.sharedMetadata(),
	}))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	s.metrics = reg
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(storeCollectors(s.health, halves[store.DiskUser](s.stores))...)
	reg.MustRegister(halves[prometheus.Collector](s.stores)...) // a backend's own metrics
	if s.stack, err = httpmw.New(httpmw.Config{Logger: log.With("component", "http"), Registerer: reg, Failed: s.health.Failed}); err != nil {
		return err
	}
	s.ingest, err = ingest.New(*apply(cfg.Hooks.Ingest, &ingest.Config{
		Store:             usageDB,
		Services:          usageDB,
		DedupeWindow:      cfg.Ingest.DedupeWindow,
		KnownOrganization: s.auth.KnownOrganization,
		Now:               cfg.Now,
		Logger:            log.With("component", "ingest"),
		Registerer:        reg,
		Limits:            ingest.Limits{MaxEvents: cfg.Ingest.MaxEvents},
	}))
	if err != nil {
		return err
	}
	s.queries, err = query.New(ctx, *apply(cfg.Hooks.Query, &query.Config{
		Events:     usageDB,
		Executions: meta,
		Workers:    cfg.Query.Workers,
		TTL:        cfg.Query.ResultsTTL,
		Now:        cfg.Now,
		Logger:     log.With("component", "query"),
		Registerer: reg,

		// Never 0 here, which would mean the default.
		MaxPendingPerOrg:     cfg.Query.MaxPendingPerOrg,
		MaxExecutionsPerOrg:  cfg.Query.MaxExecutionsPerOrg,
		MaxResultBytesPerOrg: cfg.Query.MaxResultBytesPerOrg,
	}))
	if err != nil {
		return err
	}
	var hooks store.Webhooks
	if h, ok := meta.(store.Webhooks); ok {
		hooks = h
		outbox := outboxOf(usageDB, meta) // nil: replays and tests only
		if s.notifier, err = notify.New(*apply(cfg.Hooks.Notify, &notify.Config{
			Outbox:   outbox,
			Webhooks: h,
			Client:   notify.NewClient(cfg.Webhooks.AllowPrivate),
			Now:      cfg.Now,
			Logger:   log.With("component", "webhooks"),
		})); err != nil {
			return err
		}
	}
	var sender genesys.WebhookSender
	if s.notifier != nil {
		sender = s.notifier
		// A commit that crosses a threshold wakes the deliveries, so that
		// its webhook leaves within milliseconds rather than at the next poll.
		if ow, ok := usageDB.(store.OutboxWatcher); ok {
			ow.WatchOutbox(s.notifier.Wake)
		}
	}
	watch, feed, err := watchLimits(ctx, usageDB, meta, cfg.Now)
	if err != nil {
		return err
	}
	if feed == nil {
		pc := limiteval.PollerConfig{
			Limits: func(ctx context.Context, org string) ([]usage.Limit, error) { return allLimits(ctx, meta, org) },
			Rows:   s.queries.Query,
			Now:    cfg.Now,
		}
		// The cluster counts rolling windows in its claim store: the
		// stream sends those that are enforced too.
		if rw, ok := watch.(genesys.RollingWatch); ok {
			pc.Rolling = rw.RollingStatus
		}
		feed, err = limiteval.NewPoller(pc)
		if err != nil {
			return err
		}
	}
	api, err := genesys.New(*apply(cfg.Hooks.Genesys, &genesys.Config{
		Webhooks:      hooks,
		WebhookSender: sender,
		Auth:          s.auth,
		Ingest:        s.ingest,
		Events:        usageDB,
		Queries:       s.queries,
		Limits:        meta,
		LimitWatch:    watch,
		LimitFeed:     feed,
		Now:           cfg.Now,
		Logger:        log.With("component", "http"),
		MaxBody:       cfg.Ingest.MaxBody,
		Stack:         s.stack,
		// Never 0 here, which would mean the default.
		RateLimit:       cfg.Limits.RateLimit,
		IngestRateLimit: cfg.Limits.IngestRateLimit,
		TokenRateLimit:  cfg.Limits.TokenRateLimit,
	}))
	if err != nil {
		return err
	}
	if s.registry, err = tenancy.New(ctx, tenancy.Config{Store: meta, Now: cfg.Now, Logger: log.With("component", "tenancy")}); err != nil {
		return err
	}
	reports, err := ccc.New(*apply(cfg.Hooks.CCC, &ccc.Config{
		Registry: s.registry,
		Ingest:   s.ingest,
		Reports:  usageDB,
		Admin: func(token string) bool {
			p, err := s.auth.Authenticate(ctx, token)
			return err == nil && p.Admin
		},
		MaxBody:         cfg.Ingest.MaxBody,
		Now:             cfg.Now,
		Logger:          log.With("component", "ccc"),
		RateLimit:       cfg.Limits.RateLimit,
		IngestRateLimit: cfg.Limits.IngestRateLimit,
		Stack:           s.stack,
	}))
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	api.Register(mux)
	reports.Register(mux)
	plain := &routes{mux: mux, stack: s.stack}
	if err := dashboard.Register(plain, dashboard.Config{Demo: s.demoSession.Load}); err != nil {
		return err
	}
	plain.HandleFunc("GET /healthz", healthz(&s.ready, s.health))
	openapi.Register(plain)
	plain.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.srv = &http.Server{
		Handler:           mux,
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
	return nil
}

// routes registers the routes of the server's own pages (the dashboard,
// /healthz, /metrics) behind the stack, with no rate limit and plain-text
// errors.
type routes struct {
	mux   *http.ServeMux
	stack *httpmw.Stack
	face  httpmw.Face
}

func (r *routes) Handle(pattern string, h http.Handler) {
	r.mux.Handle(pattern, r.stack.Wrap(&r.face, httpmw.Route{Pattern: pattern}, h))
}

func (r *routes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(h))
}

// listen opens the listener, limited to maxConns connections.
func (s *Server) listen(maxConns int) error {
	tcp, err := net.Listen("tcp", s.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --addr %s (give another, or port 0 for a free one): %w", s.cfg.HTTP.Addr, err)
	}
	s.ln = newConnLimiter(tcp, maxConns, s.log.With("component", "http"))
	s.srv.ConnState = s.ln.ConnState
	s.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "usaged_http_connections",
		Help: "HTTP connections open.",
	}, func() float64 { return float64(s.ln.Open()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "usaged_http_idle_connections_closed_total",
		Help: "Idle keep-alive connections closed to admit new ones at --max-connections.",
	}, func() float64 { return float64(s.ln.idleClosed.Load()) }))
	return nil
}

// Run serves until ctx is done or the store fails, then shuts the HTTP
// server down within cfg.HTTP.ShutdownTimeout: it stops accepting
// connections and lets requests in flight finish. With cfg.Demo.Enabled it
// seeds the demo first, while /healthz still answers "starting". It returns
// nil after a shutdown asked for by ctx, and an error when serving failed
// or the store failed: a supervisor restarts the server, which recovers the
// store. Run is called once; Close follows it.
func (s *Server) Run(ctx context.Context) error {
	log, cfg := s.log, &s.cfg
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.srv.Serve(s.ln) }()
	s.background.Go(func() { s.ingest.Maintain(s.maintainCtx, time.Hour) })
	if s.notifier != nil {
		s.background.Go(func() { s.notifier.Run(s.maintainCtx) })
	}
	if s.sharedMetadata() {
		s.background.Go(func() { s.reloadMetadata(s.maintainCtx, MetadataReload) })
	}

	base := s.URL()
	var demo *Demo
	if cfg.Demo.Enabled {
		d, err := cfg.Demo.Seed(ctx, s)
		if err != nil {
			s.stopMaintain()
			s.srv.Close()
			return err
		}
		demo = &d
	}
	s.ready.Store(true)
	log.Info("listening", "addr", s.ln.Addr().String(), "data", cfg.Data.Dir, "store", cfg.Data.Store.String(), "dedupeWindow", days(s.ingest.DedupeWindow()))
	fmt.Fprintf(cfg.Log.Stdout, "listening on %s\n", base)
	if demo != nil {
		s.demoSession.Store(demo.Session)
		if demo.Banner != nil {
			demo.Banner(cfg.Log.Stdout, base)
		}
	}

	// A failed store stops the server as a signal would, and the exit status
	// tells a supervisor to restart it: the restart recovers the store. The
	// whole shutdown, drain included, takes at most the shutdown timeout.
	timeout := cfg.HTTP.ShutdownTimeout
	var failed error
	storeFailed := func() {
		failed = fmt.Errorf("the store failed, restart usaged to recover it: %w", errors.Unwrap(s.health.Failed()))
		log.Error("shutting down: the store failed and refuses writes; exiting for a restart", "err", errors.Unwrap(s.health.Failed()), "timeout", timeout.String())
	}
	select {
	case err := <-serveErr:
		s.stopMaintain()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		log.Info("shutting down", "timeout", timeout.String())
	case <-s.health.failedC(0): // nil, never ready, for a backend that cannot fail
		storeFailed()
	case <-s.health.failedC(1): // for a store whose halves are two backends
		storeFailed()
	}
	shutdownBy := time.Now().Add(timeout)
	s.steps.start(shutdownBy)
	s.ready.Store(false)
	s.stopMaintain()
	if failed != nil {
		drainFailed(ctx, timeout)
	}
	sctx, cancel := context.WithDeadline(context.Background(), shutdownBy)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout were cut off", "err", err)
		s.srv.Close()
	}
	if err := s.health.Failed(); err != nil && failed == nil {
		failed = fmt.Errorf("the store failed, restart usaged to recover it: %w", errors.Unwrap(err))
	}
	return failed
}

// Close stops the query service (executions it interrupts stay queued in
// the store and resume on the next start) and the store's maintenance, and
// closes the listener and then the store, last, once nothing uses it. After
// a store failure a step blocked on it is abandoned at the shutdown
// deadline. Calls after the first return the first's error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.srv != nil {
			s.srv.Close() // without Run: the listener; after it: nothing left
		} else if s.ln != nil {
			s.ln.Close()
		}
		if s.queries != nil {
			s.steps.run("closing the query service", func() { s.queries.Close() })
		}
		s.stopMaintain()
		s.steps.run("stopping store maintenance", s.background.Wait)
		if err := s.stores.Close(); err != nil {
			s.log.Error("closing the store", "err", err)
			s.closeErr = err
		} else {
			s.log.Info("store closed")
		}
	})
	return s.closeErr
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the server's base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Routes returns the patterns of the routes registered behind the
// middleware stack, in the order they were registered: every route of the
// faces, the dashboard, /healthz and /metrics, without the catch-alls that
// answer 404 and 405.
func (s *Server) Routes() []string { return s.stack.Routes() }

// Handler returns the server's routes, for serving them elsewhere (a test's
// own listener).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Auth returns the organizations, clients and tokens service.
func (s *Server) Auth() *auth.Service { return s.auth }

// Ingest returns the ingest pipeline.
func (s *Server) Ingest() *ingest.Pipeline { return s.ingest }

// Queries returns the query service.
func (s *Server) Queries() *query.Service { return s.queries }

// Registry returns the registry of partners, resellers and services.
func (s *Server) Registry() *tenancy.Registry { return s.registry }

// Metrics returns the registry /metrics answers from.
func (s *Server) Metrics() prometheus.Gatherer { return s.metrics }

// Stores returns the store's halves, for recording past the components (a
// test's fixtures). Whether a half can fail, or uses a disk, is found by
// type assertion (store.Health, store.DiskUser); a failed one stops Run.
func (s *Server) Stores() open.Stores { return s.stores }

// loadAdminToken returns the admin token: from cfg, else from the data
// directory, else newly generated. A new token is kept in the data
// directory and printed, once, by announce, which New calls when it
// listens: a start that fails before (port in use, store locked) neither
// prints a token nor keeps one nobody saw, and the next start generates and
// shows its own. announce does nothing for a token that was not new.
func loadAdminToken(cfg Config) (tok string, announce func() error, err error) {
	none := func() error { return nil }
	if cfg.Auth.AdminToken != "" {
		return cfg.Auth.AdminToken, none, nil // its length is checked by Validate
	}
	path := filepath.Join(cfg.Data.Dir, AdminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tok = base64.RawURLEncoding.EncodeToString(randomBytes(32))
		return tok, func() error {
			if err := secretfile.WriteAtomic(path, []byte(tok+"\n")); err != nil {
				return fmt.Errorf("admin token: %w", err)
			}
			fmt.Fprintf(cfg.Log.Stdout, "admin token (generated now, shown only this once, kept in %s):\n    %s\n", path, tok)
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

// storeReserve is the pebble.Config.DiskReserve for a DataConfig's.
func storeReserve(r int64) int64 {
	if r == 0 {
		return -1 // no reserve
	}
	return r
}

// days formats d as usaged serve's --dedupe-window takes it: whole days as
// "35d", anything else as a Go duration.
func days(d time.Duration) string {
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return b
}

// The cluster's evaluator counts rolling windows too.
var _ genesys.RollingWatch = (*clickhouse.Limits)(nil)

// watchLimits evaluates every organization's usage limits as events commit,
// where the usage backend can: the embedded store in its commits
// (limiteval.Watch, which also feeds the limits stream), the cluster's as
// its batches commit, with the counters in its claim store and the outbox
// in the shared metadata (clickhouse.Store.EvaluateLimits). Elsewhere it
// returns nils and limits are a status on request only. feed is nil where
// the limits stream must count for itself (limiteval.Poller).
func watchLimits(ctx context.Context, u store.Usage, meta store.Metadata, now func() time.Time) (watch genesys.LimitWatch, feed genesys.LimitFeed, err error) {
	if now == nil {
		now = time.Now
	}
	if cs, ok := u.(*clickhouse.Store); ok {
		outbox, ok := meta.(store.Outbox)
		if !ok {
			return nil, nil, nil
		}
		lim, err := cs.EvaluateLimits(ctx, clickhouse.LimitsConfig{
			Outbox: outbox,
			Limits: func(ctx context.Context) ([]usage.Limit, error) { return allLimits(ctx, meta, "") },
			Now:    now,
		})
		if err != nil {
			return nil, nil, err
		}
		return lim, nil, nil
	}
	all, err := allLimits(ctx, meta, "")
	if err != nil {
		return nil, nil, err
	}
	w, err := limiteval.Watch(ctx, u, all, now)
	if w == nil || err != nil {
		return nil, nil, err
	}
	return w, w, nil
}

// allLimits returns the limits of organization org, of every organization
// for "": in one query where the metadata store can (the cluster's, which
// every node reloads often).
func allLimits(ctx context.Context, meta store.Metadata, org string) ([]usage.Limit, error) {
	if org != "" {
		return meta.Limits(ctx, org)
	}
	if m, ok := meta.(interface {
		AllLimits(ctx context.Context) ([]usage.Limit, error)
	}); ok {
		return m.AllLimits(ctx)
	}
	orgs, err := meta.Organizations(ctx)
	if err != nil {
		return nil, err
	}
	var all []usage.Limit
	for _, o := range orgs {
		ls, err := meta.Limits(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		all = append(all, ls...)
	}
	return all, nil
}

// outboxOf returns where notifications wait for delivery: the usage
// backend's outbox (the embedded store writes them in its commits), else
// the metadata store's (the cluster's, shared by its nodes), else nil.
func outboxOf(u store.Usage, meta store.Metadata) store.Outbox {
	if o, ok := u.(store.Outbox); ok {
		return o
	}
	if o, ok := meta.(store.Outbox); ok {
		return o
	}
	return nil
}
