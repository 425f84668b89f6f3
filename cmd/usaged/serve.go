package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/store/pebble"
)

type serveConfig struct {
	addr                    string
	data                    string
	store                   storeLocation
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

func (c *cli) serveCommand() *command {
	cmd := c.newCommand("serve", "run the usaged server",
		`Serves the Genesys-compatible API (/oauth/token, /api/v2/...), the service-usage
reports (/api/services/...), the dashboard at /, GET /healthz and GET /metrics
(Prometheus). The data directory holds the token signing key, the admin
token unless --admin-token is given (generated on first start and printed
once) and, unless --store says otherwise, the store. SIGINT or SIGTERM stop
accepting connections, let requests in flight finish and close the store.

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
	f := cmd.Flags
	f.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on; port 0 picks a free port")
	f.StringVar(&cfg.data, "data", "./usaged-data", "data directory, created if missing")
	f.Var(&cfg.store, "store", "where the store is kept, a `location`: pebble:DIR for the embedded store in directory DIR, or memory: to keep it in memory, where everything recorded is lost when usaged exits")
	f.Lookup("store").DefValue = "pebble:<data>/store" // known once --data is
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
	f.IntVar(&cfg.maxConnections, "max-connections", server.DefaultMaxConnections, "connections served at once, lowered to leave file descriptors for the store; at the limit the longest idle keep-alive connection is closed to admit a new one")
	f.IntVar(&cfg.maxPendingPerOrg, "max-pending-executions-per-org", query.DefaultMaxPendingPerOrg, "query executions one organization may have queued or running; more are answered 429; -1: unlimited")
	f.IntVar(&cfg.maxExecutionsPerOrg, "max-executions-per-org", query.DefaultMaxExecutionsPerOrg, "query executions one organization may have stored until they expire (see --results-ttl); more are answered 429; -1: unlimited")
	cfg.maxResultBytesPerOrg = query.DefaultMaxResultBytesPerOrg
	f.Var(&cfg.maxResultBytesPerOrg, "max-result-bytes-per-org", "stored query results one organization may hold until they expire, counted as their strings plus 8 bytes per number; beyond it new executions are answered 429 (a `size`, e.g. 256MiB)")
	f.BoolVar(&cfg.demo, "demo", false, "seed a demo organization and demo services with 30 days of traffic and activity on first start and print credentials to query them")
	f.IntVar(&cfg.demoEventsPerDay, "demo-events-per-day", 10_000, "with --demo, average events per day to seed")
	f.BoolVar(&cfg.acceptWALLoss, "accept-wal-loss", false, "start even if the store's write-ahead log is damaged in its middle, dropping the acknowledged writes from the damage on (logged at ERROR); without it such a store refuses to start")
	cmd.Run = func(ctx context.Context) error { return c.serve(ctx, cfg) }
	return cmd
}

func (c *cli) serve(ctx context.Context, cfg *serveConfig) (err error) {
	log, err := newLogger(c.stderr, cfg.logFormat.value, cfg.logLevel)
	if err != nil {
		return err
	}
	sc := cfg.server(log, c.stdout)
	sc.Demo.Seed = func(ctx context.Context, s *server.Server) (server.Demo, error) { return c.seedDemo(ctx, s, cfg) }
	if err := sc.Validate(); err != nil {
		return usageError{Err: server.FirstProblem(err)}
	}
	if os.Getenv("GOGC") == "" {
		// The heap is mostly short-lived request bodies; the large long-lived
		// state (the dedupe filter, the block cache) lives outside it. A higher
		// target trades a little memory for much less collector work on
		// ingest (a median 1.45x the events/s of GOGC=100, BENCHMARKS.md).
		// The memory limit bounds what the higher target may cost: near it
		// the collector runs as often as it must, whatever GOGC says.
		debug.SetGCPercent(400)
	}
	srv, err := server.New(ctx, sc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	return srv.Run(ctx)
}

// seedDemo seeds the demo into s's components, or reuses what an earlier
// start made, and returns what serve shows of it: the dashboard's session
// and the banner, with the counts the store holds now.
func (c *cli) seedDemo(ctx context.Context, s *server.Server, cfg *serveConfig) (server.Demo, error) {
	l := &demo.Local{
		Dir: cfg.data, EventsPerDay: cfg.demoEventsPerDay, Stdout: c.stdout, Logger: s.Logger(),
		Auth: s.Auth(), Ingest: s.Ingest(), Registry: s.Registry(), Events: s.Queries(),
	}
	d, err := l.Seed(ctx)
	if err != nil {
		return server.Demo{}, err
	}
	return server.Demo{Session: d.DashboardSession(), Banner: func(w io.Writer, base string) {
		d.Print(w, base)
		if d.ServiceUsage != nil && d.ServicesSeeded {
			printServiceDemo(w, base, d.ServiceUsage)
		}
	}}, nil
}

// server is the server's configuration for the flags.
func (cfg *serveConfig) server(log *slog.Logger, stdout io.Writer) server.Config {
	return server.Config{
		HTTP: server.HTTPConfig{Addr: cfg.addr, MaxConnections: cfg.maxConnections, ShutdownTimeout: cfg.shutdownTimeout},
		Data: server.DataConfig{Dir: cfg.data, Store: cfg.store.or(cfg.data), DiskReserve: int64(cfg.diskReserve), AcceptWALLoss: cfg.acceptWALLoss},
		Auth: server.AuthConfig{
			AdminToken:       cfg.adminToken,
			FailedLoginLimit: cfg.failedLoginLimit, FailedLoginAddressLimit: cfg.failedLoginAddressLimit,
		},
		Ingest: server.IngestConfig{DedupeWindow: time.Duration(cfg.dedupeWindow), MaxBody: int64(cfg.maxBody), MaxEvents: cfg.maxEvents},
		Query: server.QueryConfig{
			ResultsTTL: cfg.resultsTTL, Workers: cfg.queryWorkers,
			MaxPendingPerOrg: cfg.maxPendingPerOrg, MaxExecutionsPerOrg: cfg.maxExecutionsPerOrg,
			MaxResultBytesPerOrg: int64(cfg.maxResultBytesPerOrg),
		},
		Limits: server.LimitsConfig{
			RateLimit: cfg.rateLimit, IngestRateLimit: cfg.ingestRateLimit, TokenRateLimit: cfg.tokenRateLimit,
			Memory: cfg.memoryLimit.limit(),
		},
		Demo: server.DemoConfig{Enabled: cfg.demo, EventsPerDay: cfg.demoEventsPerDay},
		Log:  server.LogConfig{Logger: log, Stdout: stdout},
	}
}

// storeLocation is the --store flag, a location as open.Parse takes it.
// Unset it is the zero Location, and the default store of --data, which is
// known only once every flag is.
type storeLocation open.Location

func (l *storeLocation) String() string {
	if l.Scheme == "" {
		return ""
	}
	return open.Location(*l).String()
}

func (l *storeLocation) Set(s string) error {
	loc, err := open.Parse(s)
	if err != nil {
		return err
	}
	*l = storeLocation(loc)
	return nil
}

// or returns the location, or when unset the default store of the data
// directory data.
func (l storeLocation) or(data string) open.Location {
	if l.Scheme == "" {
		return open.Default(data)
	}
	return open.Location(l)
}
