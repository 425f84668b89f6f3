package main

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/open"
)

func (c *cli) serveCommand() *cmdline.Command {
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
	cfg := server.DefaultConfig("./usaged-data")
	cfg.HTTP.Addr = "127.0.0.1:8080"
	cfg.Data.Store = open.Location{} // unset: the default store of --data, known once every flag is
	cfg.Limits.Memory = &server.MemoryLimit{Auto: true}
	logFormat := flagvalue.OneOf{Value: "auto", Allowed: []string{"auto", "text", "json"}}
	var logLevel string
	f := cmd.Flags
	f.StringVar(&cfg.HTTP.Addr, "addr", cfg.HTTP.Addr, "address to listen on; port 0 picks a free port")
	f.StringVar(&cfg.Data.Dir, "data", cfg.Data.Dir, "data directory, created if missing")
	f.Func("store", "where the store is kept, a `location`: pebble:DIR for the embedded store in directory DIR, memory: to keep it in memory, where everything recorded is lost when usaged exits, or clickhouse://host:port[,host:port…]/database for a cluster (with --metadata, --keeper and --claims)", func(v string) (err error) {
		cfg.Data.Store, err = open.Parse(v)
		return err
	})
	f.Lookup("store").DefValue = "pebble:<data>/store" // known once --data is
	f.Func("metadata", "a `location` of its own for the metadata (organizations, clients, the service registry, query executions): postgres://user@host:port/database; needed with --store clickhouse://…", func(v string) (err error) {
		cfg.Data.Metadata, err = open.ParseMetadata(v)
		return err
	})
	f.Func("keeper", "with --store clickhouse://…, the ZooKeeper or ClickHouse Keeper `servers` of the replicas, host:port[,host:port…]", func(v string) error {
		cfg.Data.Cluster.Keeper = strings.Split(v, ",")
		return nil
	})
	f.StringVar(&cfg.Data.Cluster.Claims, "claims", "", "with --store clickhouse://…, the claim store of the events' ids, a Redis `URL` (redis://host:port)")
	f.DurationVar(&cfg.Data.Cluster.Lease, "lease", 0, "with --store clickhouse://…, how long an ingest batch owns its events' ids before another node may abort it; 0: 10s")
	f.StringVar(&cfg.Data.SigningKeyFile, "signing-key-file", "", "`file` of the key that signs OAuth tokens, created if missing; default: token-signing-key in the data directory. The nodes of a cluster must share one")
	f.StringVar(&cfg.Data.Cluster.Failpoint, "test-failpoint", "", "for fault tests only: exit at once after this `step` of the cluster's ingest protocol")
	f.BoolVar(&cfg.Data.Cluster.UnsafeClaims, "test-unsafe-claims", false, "for fault tests only: take over expired claims without the keeper's decision, which breaks exactly-once")
	f.StringVar(&cfg.Auth.AdminToken, "admin-token", "", "admin bearer token, at least 16 bytes; default: the one kept in the data directory, generated on first start; ps shows it to every user: prefer --admin-token-file")
	f.String("admin-token-file", "", "file holding the admin token (whitespace trimmed), instead of --admin-token")
	f.Var((*flagvalue.DayDuration)(&cfg.Ingest.DedupeWindow), "dedupe-window", "how far back in event time duplicate ids are detected; older events are rejected (a `duration`: Go syntax or days, e.g. 35d)")
	f.Var((*flagvalue.ByteSize)(&cfg.Ingest.MaxBody), "max-body", "limit on an event request body after decompression (a `size`, e.g. 16MiB)")
	f.Var(&logFormat, "log-format", "log `format`: text, json, or auto (text on a terminal, else json)")
	f.StringVar(&logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	f.DurationVar(&cfg.HTTP.ShutdownTimeout, "shutdown-timeout", cfg.HTTP.ShutdownTimeout, "on SIGINT or SIGTERM, how long requests in flight may take to finish")
	f.DurationVar(&cfg.Query.ResultsTTL, "results-ttl", cfg.Query.ResultsTTL, "how long query executions and their results are kept after they start")
	f.IntVar(&cfg.Query.Workers, "query-workers", cfg.Query.Workers, "query executions answered at once; 0: one per CPU")
	f.IntVar(&cfg.Limits.RateLimit, "rate-limit", cfg.Limits.RateLimit, "requests per minute per OAuth client, API key or the admin token on every route but event ingest and /oauth/token (per IP address without a valid credential); -1: unlimited")
	f.IntVar(&cfg.Limits.IngestRateLimit, "ingest-rate-limit", cfg.Limits.IngestRateLimit, "requests per minute per OAuth client, API key or the admin token to POST /api/v2/usage/events and POST /api/services/{guid}/events; -1: unlimited")
	f.IntVar(&cfg.Limits.TokenRateLimit, "token-rate-limit", cfg.Limits.TokenRateLimit, "requests per minute per IP address to POST /oauth/token, a budget of its own; -1: unlimited")
	f.IntVar(&cfg.Auth.FailedLoginLimit, "failed-login-limit", cfg.Auth.FailedLoginLimit, "failed logins per minute per client id, from any address, before its logins are refused until the minute ends; -1: unlimited")
	f.IntVar(&cfg.Auth.FailedLoginAddressLimit, "failed-login-address-limit", cfg.Auth.FailedLoginAddressLimit, "failed logins per minute per IP address, whatever the client ids, before its logins are refused until the minute ends; -1: unlimited")
	f.Var((*flagvalue.Reserve)(&cfg.Data.DiskReserve), "disk-reserve", "free space to keep on the data directory's filesystem, at most 5% of it: below it, event ingest, registry changes and new query executions are refused with 503 (a `size`, e.g. 256MiB; 0: no reserve)")
	f.IntVar(&cfg.Ingest.MaxEvents, "max-events", cfg.Ingest.MaxEvents, "limit on the events of one ingest request (API request events and service activity); a request with more is refused with 413")
	f.Var((*flagvalue.MemoryLimit)(cfg.Limits.Memory), "memory-limit", "soft limit on the Go heap, past which the collector works harder (a `size` such as 4GiB); auto: 3/4 of the cgroup's memory limit or of the machine's memory, unless GOMEMLIMIT is set; off: none")
	f.IntVar(&cfg.HTTP.MaxConnections, "max-connections", cfg.HTTP.MaxConnections, "connections served at once, lowered to leave file descriptors for the store; at the limit the longest idle keep-alive connection is closed to admit a new one")
	f.IntVar(&cfg.Query.MaxPendingPerOrg, "max-pending-executions-per-org", cfg.Query.MaxPendingPerOrg, "query executions one organization may have queued or running; more are answered 429; -1: unlimited")
	f.IntVar(&cfg.Query.MaxExecutionsPerOrg, "max-executions-per-org", cfg.Query.MaxExecutionsPerOrg, "query executions one organization may have stored until they expire (see --results-ttl); more are answered 429; -1: unlimited")
	f.Var((*flagvalue.ByteSize)(&cfg.Query.MaxResultBytesPerOrg), "max-result-bytes-per-org", "stored query results one organization may hold until they expire, counted as their strings plus 8 bytes per number; beyond it new executions are answered 429 (a `size`, e.g. 256MiB)")
	f.BoolVar(&cfg.Demo.Enabled, "demo", false, "seed a demo organization and demo services with 30 days of traffic and activity on first start and print credentials to query them")
	f.IntVar(&cfg.Demo.EventsPerDay, "demo-events-per-day", cfg.Demo.EventsPerDay, "with --demo, average events per day to seed")
	f.BoolVar(&cfg.Webhooks.AllowPrivate, "webhook-allow-private", false, "let webhooks reach loopback, private (RFC 1918, fc00::/7), link-local, shared (100.64.0.0/10) and other non-public addresses, which are refused by default")
	f.BoolVar(&cfg.Data.AcceptWALLoss, "accept-wal-loss", false, "start even if the store's write-ahead log is damaged in its middle, dropping the acknowledged writes from the damage on (logged at ERROR); without it such a store refuses to start")
	cmd.Run = func(ctx context.Context) error { return c.serve(ctx, &cfg, logFormat.Value, logLevel) }
	return cmd
}

func (c *cli) serve(ctx context.Context, sc *server.Config, logFormat, logLevel string) (err error) {
	log, err := cmdline.NewLogger(c.stderr, logFormat, logLevel)
	if err != nil {
		return err
	}
	if sc.Data.Store.Scheme == "" {
		sc.Data.Store = open.Default(sc.Data.Dir)
	}
	sc.Log = server.LogConfig{Logger: log, Stdout: c.stdout}
	sc.Demo.Seed = func(ctx context.Context, s *server.Server) (server.Demo, error) {
		return c.seedDemo(ctx, s, sc.Data.Dir, sc.Demo.EventsPerDay)
	}
	if err := sc.Validate(); err != nil {
		return cmdline.UsageError{Err: server.FirstProblem(err)}
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
	srv, err := server.New(ctx, *sc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	return srv.Run(ctx)
}

// seedDemo seeds the demo into s's components, or reuses what an earlier
// start made, and returns what serve shows of it: the dashboard's session
// and the banner, with the counts the store holds now.
func (c *cli) seedDemo(ctx context.Context, s *server.Server, dir string, eventsPerDay int) (server.Demo, error) {
	l := &demo.Local{
		Dir: dir, EventsPerDay: eventsPerDay, Stdout: c.stdout, Logger: s.Logger(),
		Auth: s.Auth(), Ingest: s.Ingest(), Registry: s.Registry(), Events: s.Queries(),
	}
	d, err := l.Seed(ctx)
	if err != nil {
		return server.Demo{}, err
	}
	return server.Demo{Session: d.DashboardSession(), Banner: func(w io.Writer, base string) {
		d.Print(w, base)
		if d.ServiceUsage != nil && d.ServicesSeeded {
			demo.PrintServices(w, base, d.ServiceUsage)
		}
	}}, nil
}
