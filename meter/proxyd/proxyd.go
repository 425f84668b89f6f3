// Package proxyd runs usaged's metering proxy: a reverse proxy that
// records every request in a durable spool, a shipper that delivers the
// spool to usaged, optional Prometheus metrics, and an orderly stop that
// loses nothing.
package proxyd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/enforce"
	"github.com/usaged/usaged/meter/route"
	"github.com/usaged/usaged/meter/spool"
)

// Config configures New.
type Config struct {
	Listen       string   // address of the proxy, e.g. 127.0.0.1:9090
	Upstream     *url.URL // the API proxied; required
	PreserveHost bool     // send the client's Host upstream
	Templates    *route.Matcher
	Attributor   attrib.Attributor
	// Server and Token are where and with what the events are shipped.
	Server, Token string
	SpoolDir      string
	SpoolMaxBytes int64
	Batch         int // events per shipment
	// Anonymous and AnonymousOrg record requests nobody could be
	// identified for; empty: they are only counted.
	Anonymous, AnonymousOrg string
	MaxPending              int
	MaxPendingBytes         int64
	// KeepHeaders are kept on disk with a request waiting for
	// attribution: those the Attributor reads.
	KeepHeaders []string
	// Enforce enforces the usage limits marked enforced (meter/enforce),
	// following them from Server with Token; FailClosed and Stale are
	// enforce.Config's.
	Enforce    bool
	FailClosed bool
	Stale      time.Duration
	// MetricsAddr, when set, serves the counters at /metrics there.
	MetricsAddr     string
	ShutdownTimeout time.Duration // for requests in flight at a stop
	Logger          *slog.Logger
}

// DefaultConfig returns the configuration of usaged proxy without flags;
// Upstream, Templates, Attributor and Token are left for the caller.
func DefaultConfig() Config {
	return Config{
		Listen: "127.0.0.1:9090", Server: "http://127.0.0.1:8080",
		SpoolDir: "./usaged-spool", SpoolMaxBytes: 1 << 30, Batch: spool.DefaultBatchSize,
		MaxPending: meter.DefaultMaxRetrying, MaxPendingBytes: meter.DefaultMaxRetryingBytes,
		ShutdownTimeout: 15 * time.Second,
		Enforce:         true, Stale: enforce.DefaultStale,
	}
}

// ErrConfig is matched (errors.Is) by New's errors that the configuration
// is at fault for.
var ErrConfig = errors.New("proxyd: invalid configuration")

type configError struct{ error }

func (e configError) Is(target error) bool { return target == ErrConfig }
func (e configError) Unwrap() error        { return e.error }

// Proxy is a metering proxy ready to run.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	sp      *spool.Spool
	shipper *spool.Shipper
	m       *meter.Meter
	gate    *enforce.Enforcer // nil when not enforcing
	h       http.Handler
}

// New opens the spool and builds the proxy; Run starts it.
func New(cfg Config) (*Proxy, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	sp, err := spool.Open(spool.Config{Dir: cfg.SpoolDir, MaxBytes: cfg.SpoolMaxBytes, Logger: log.With("component", "spool")})
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: log, sp: sp}
	if err := p.build(); err != nil {
		sp.Close()
		return nil, configError{err}
	}
	return p, nil
}

func (p *Proxy) build() error {
	cfg, log := p.cfg, p.log
	var err error
	p.shipper, err = spool.NewShipper(spool.ShipperConfig{Spool: p.sp, Server: cfg.Server, Token: cfg.Token, BatchSize: cfg.Batch, Logger: log.With("component", "shipper")})
	if err != nil {
		return err
	}
	var gate meter.Gate
	if cfg.Enforce {
		if p.gate, err = enforce.New(enforce.Config{Server: cfg.Server, Token: cfg.Token, FailClosed: cfg.FailClosed, Stale: cfg.Stale,
			Logger: log.With("component", "enforce")}); err != nil {
			return err
		}
		gate = p.gate
	}
	p.m, err = meter.New(meter.Config{
		Gate:      gate,
		Templates: meter.Paths(cfg.Templates), Attributor: cfg.Attributor, Sink: p.sp,
		Anonymous: cfg.Anonymous, AnonymousOrganization: cfg.AnonymousOrg,
		Platform: "proxy", Logger: log.With("component", "meter"),
		MaxRetrying: cfg.MaxPending, MaxRetryingBytes: cfg.MaxPendingBytes,
		// Requests waiting for attribution are kept in the spool, with the
		// headers attribution reads, so that no stop or crash loses them.
		Journal: p.sp, KeepHeaders: cfg.KeepHeaders,
	})
	if err != nil {
		return err
	}
	p.h, err = meter.NewProxy(p.m, meter.ProxyConfig{Upstream: cfg.Upstream, PreserveHost: cfg.PreserveHost, Logger: log.With("component", "proxy")})
	return err
}

// Run serves until ctx ends, then stops in order: requests in flight
// finish (up to ShutdownTimeout), requests waiting are attributed, the
// spool is flushed, and the shipper gets a moment to deliver; what it
// cannot stays in the spool for the next start. listening, if set, is
// told the proxy's address once it listens.
func (p *Proxy) Run(ctx context.Context, listening func(net.Addr)) (err error) {
	cfg, log, sp, m := p.cfg, p.log, p.sp, p.m
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		sp.Close()
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			sp.Close()
			return fmt.Errorf("--metrics-addr: listening on %s: %w", cfg.MetricsAddr, err)
		}
		metricsSrv := &http.Server{Handler: metricsHandler(m, sp, p.shipper, p.gate), ReadHeaderTimeout: 10 * time.Second}
		go metricsSrv.Serve(mln)
		defer metricsSrv.Close()
		log.Info("serving metrics", "addr", mln.Addr().String()+"/metrics")
	}
	srv := &http.Server{Handler: p.h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	shipCtx, stopShipping := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.shipper.Run(shipCtx) })
	if p.gate != nil {
		wg.Go(func() { p.gate.Run(shipCtx) })
		// Requests served before the limits are known count towards none
		// of them here: wait for them, up to the stale bound.
		wait, cancel := context.WithTimeout(ctx, cfg.Stale)
		if err := p.gate.WaitReady(wait); err != nil && ctx.Err() == nil {
			log.Warn("the usage limits are not known yet: serving without them until --server answers", "server", cfg.Server, "waited", cfg.Stale, "fail_closed", cfg.FailClosed)
		}
		cancel()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("proxying", "listen", ln.Addr().String(), "upstream", cfg.Upstream.String(), "templates", cfg.Templates.Len(), "server", cfg.Server, "spool", cfg.SpoolDir)
	if listening != nil {
		listening(ln.Addr())
	}

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
	}
	m.Close()
	if ferr := sp.Flush(); ferr != nil {
		err = errors.Join(err, ferr)
	}
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	for sp.Stats().PendingEvents > 0 && drain.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	stopShipping()
	wg.Wait()
	st, ms := sp.Stats(), m.Stats()
	log.Info("proxy stopped", "recorded", ms.Recorded, "anonymous", ms.Anonymous, "unidentified", ms.Unidentified, "overflow", ms.Overflow, "left_waiting", st.Waiting, "shipped", st.Shipped, "pending", st.PendingEvents, "dropped", st.Dropped)
	if cerr := sp.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// metricsHandler serves the proxy's counters in the Prometheus text format.
// They are read from the meter, spool and shipper at each scrape, so that
// the request path does no more than it did without them.
func metricsHandler(m *meter.Meter, sp *spool.Spool, sh *spool.Shipper, gate *enforce.Enforcer) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, v func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, v))
	}
	gauge := func(name, help string, v func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v))
	}
	counter("usaged_proxy_requests_recorded_total", "Requests recorded as usage events, the anonymous client's included.",
		func() float64 { return float64(m.Stats().Recorded) })
	counter("usaged_proxy_requests_anonymous_total", "Requests no client could be identified for (no credentials, or refused ones), recorded under --anonymous-client.",
		func() float64 { return float64(m.Stats().Anonymous) })
	counter("usaged_proxy_requests_unidentified_total", "Requests no client could be identified for (no credentials, or refused ones), not recorded: there is no --anonymous-client.",
		func() float64 { return float64(m.Stats().Unidentified) })
	counter("usaged_proxy_requests_overflow_total", "Requests whose attribution failed while --max-pending or --max-pending-bytes was reached: recorded at once as unidentified.",
		func() float64 { return float64(m.Stats().Overflow) })
	counter("usaged_proxy_attribution_errors_total", "Attribution attempts that failed (--server unreachable, or lookups deferred); the requests are retried.",
		func() float64 { return float64(m.Stats().AttribErrors) })
	gauge("usaged_proxy_requests_waiting", "Requests waiting for attribution.",
		func() float64 { return float64(m.Stats().Retrying) })
	gauge("usaged_proxy_requests_waiting_durable", "Requests waiting for attribution that are on disk in the spool, safe from a crash of the proxy.",
		func() float64 { return float64(sp.Stats().WaitingDurable) })
	gauge("usaged_proxy_spool_pending_events", "Events in the spool not yet delivered to --server.",
		func() float64 { return float64(sp.Stats().PendingEvents) })
	counter("usaged_proxy_spool_dropped_events_total", "Events the spool dropped (full, writer behind, too large).",
		func() float64 { return float64(sp.Stats().Dropped) })
	counter("usaged_proxy_shipped_events_total", "Events --server acknowledged.",
		func() float64 { return float64(sp.Stats().Shipped) })
	counter("usaged_proxy_ship_retries_total", "Shipments to --server that failed and were retried.",
		func() float64 { return float64(sh.Stats().Retries) })
	if gate != nil {
		counter("usaged_proxy_requests_refused_total", "Requests answered 429: their client was over an enforced usage limit.",
			func() float64 { return float64(gate.Stats().Refused) })
		counter("usaged_proxy_requests_failed_closed_total", "Requests answered 503 under --fail-closed: the usage limits were not known.",
			func() float64 { return float64(gate.Stats().FailedClosed) })
		gauge("usaged_proxy_limits_stream_connected", "1 while the limits stream from --server is open.",
			func() float64 {
				if gate.Stats().Connected {
					return 1
				}
				return 0
			})
		gauge("usaged_proxy_enforced_limits", "Enforced usage limits known.",
			func() float64 { return float64(gate.Stats().Limits) })
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
