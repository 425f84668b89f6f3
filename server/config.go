package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ccc"
	"github.com/usaged/usaged/dashboard"
	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/notify"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/store/pebble"
)

// Config configures a Server, one section per concern. Every field must be
// set (DefaultConfig has the defaults of usaged serve): a zero limit is an
// error, not a default, so that a mistyped flag cannot silently become one.
// The messages of Validate name the flags of usaged serve, since that is
// where an operator sets them.
type Config struct {
	HTTP   HTTPConfig
	Data   DataConfig
	Auth   AuthConfig
	Ingest IngestConfig
	Query  QueryConfig
	Limits LimitsConfig
	Demo   DemoConfig
	Log    LogConfig
	// Webhooks configures the delivery of notifications to webhooks.
	Webhooks WebhooksConfig
	// Now is the clock of every component: token lifetimes, event times,
	// executions' expiry, rate limit windows. Default time.Now.
	Now func() time.Time
	// Hooks adjust the components' configurations, for tests.
	Hooks Hooks
}

// Hooks adjust each component's configuration once New has made it from
// the sections, before the component is built: for tests that need what
// usaged serve offers no setting for (a store that holds queries back, the
// bound on concurrent secret checks). A nil hook changes nothing.
type Hooks struct {
	Auth    func(*auth.Config)
	Ingest  func(*ingest.Config)
	Query   func(*query.Config)
	Genesys func(*genesys.Config)
	CCC     func(*ccc.Config)
	Notify  func(*notify.Config)
}

// WebhooksConfig is how notifications reach webhooks.
type WebhooksConfig struct {
	// AllowPrivate lets webhooks reach loopback, private, link-local and
	// other non-public addresses (--webhook-allow-private): for tests and
	// for receivers on the operator's own network.
	AllowPrivate bool
}

// apply calls hook with c, if hook is set.
func apply[C any](hook func(*C), c *C) *C {
	if hook != nil {
		hook(c)
	}
	return c
}

// DefaultMaxConnections is the default of HTTPConfig.MaxConnections: far
// more than the clients of one server, far fewer than the descriptors a
// server has.
const DefaultMaxConnections = 10_000

// DefaultConfig returns the configuration of usaged serve without flags,
// for the data directory dir, listening on 127.0.0.1 on a free port, with
// no memory limit set.
func DefaultConfig(dir string) Config {
	return Config{
		HTTP: HTTPConfig{Addr: "127.0.0.1:0", MaxConnections: DefaultMaxConnections, ShutdownTimeout: 15 * time.Second},
		Data: DataConfig{Dir: dir, Store: open.Default(dir), DiskReserve: pebble.DefaultDiskReserve},
		Auth: AuthConfig{FailedLoginLimit: auth.DefaultFailedLoginLimit, FailedLoginAddressLimit: auth.DefaultFailedLoginAddressLimit},
		Ingest: IngestConfig{
			DedupeWindow: ingest.DefaultDedupeWindow, MaxBody: ingest.DefaultMaxBody, MaxEvents: ingest.DefaultMaxEvents,
		},
		Query: QueryConfig{
			ResultsTTL: query.DefaultTTL, MaxPendingPerOrg: query.DefaultMaxPendingPerOrg,
			MaxExecutionsPerOrg: query.DefaultMaxExecutionsPerOrg, MaxResultBytesPerOrg: query.DefaultMaxResultBytesPerOrg,
		},
		Limits: LimitsConfig{
			RateLimit: genesys.DefaultRateLimit, IngestRateLimit: genesys.DefaultIngestRateLimit, TokenRateLimit: genesys.DefaultTokenRateLimit,
		},
		Demo: DemoConfig{EventsPerDay: 10_000},
	}
}

// Validate reports every problem with the configuration, each wrapped in a
// *SectionError naming its section.
func (c Config) Validate() error {
	var errs []error
	for _, s := range []struct {
		name string
		err  error
	}{
		{"http", c.HTTP.Validate()}, {"data", c.Data.Validate()}, {"auth", c.Auth.Validate()},
		{"ingest", c.Ingest.Validate()}, {"query", c.Query.Validate()}, {"limits", c.Limits.Validate()},
		{"demo", c.Demo.Validate()}, {"log", c.Log.Validate()},
	} {
		if s.err != nil {
			errs = append(errs, &SectionError{Section: s.name, Err: s.err})
		}
	}
	return errors.Join(errs...)
}

// SectionError is a problem with one section of a Config.
type SectionError struct {
	Section string // "http", "data", …
	Err     error  // the section's problems, joined
}

func (e *SectionError) Error() string { return e.Section + ": " + e.Err.Error() }
func (e *SectionError) Unwrap() error { return e.Err }

// FirstProblem returns the first problem err reports, without its section:
// the one a command line names first. For an error that is not of a Config,
// it returns err.
func FirstProblem(err error) error {
	var se *SectionError
	if !errors.As(err, &se) {
		return err
	}
	err = se.Err
	for {
		j, ok := err.(interface{ Unwrap() []error })
		if !ok || len(j.Unwrap()) == 0 {
			return err
		}
		err = j.Unwrap()[0]
	}
}

// HTTPConfig is where and how the server listens.
type HTTPConfig struct {
	Addr string // host:port; port 0 picks a free port
	// MaxConnections is the most connections served at once, lowered to
	// leave file descriptors for the store; at the limit the longest idle
	// keep-alive connection is closed to admit a new one.
	MaxConnections int
	// ShutdownTimeout is how long requests in flight may take to finish
	// once Run's context is done or the store failed.
	ShutdownTimeout time.Duration
}

// Validate reports every problem with the section.
func (c HTTPConfig) Validate() error {
	if c.MaxConnections < 1 {
		return fmt.Errorf("--max-connections must be at least 1, got %d", c.MaxConnections)
	}
	return nil
}

// DataConfig is the data directory and the store.
type DataConfig struct {
	Dir string // created if missing; holds the signing key and the admin token
	// Store is where the store is and which backend keeps it; usaged
	// serve's default is open.Default(Dir), the embedded backend in the
	// data directory.
	Store open.Location
	// DiskReserve is the free space to keep on the filesystem of a pebble
	// store; 0: no reserve.
	DiskReserve int64
	// AcceptWALLoss opens a pebble store whose write-ahead log is damaged
	// in its middle, dropping the acknowledged writes from the damage on.
	AcceptWALLoss bool
	// CacheBytes is a pebble store's block cache; 0: pebble's default.
	CacheBytes int64
	// Metadata, when set, is a metadata store of its own (postgres://…)
	// instead of the store's; a clickhouse store needs one.
	Metadata open.Location
	// Cluster configures a clickhouse store.
	Cluster ClusterConfig
	// SigningKeyFile holds the key that signs OAuth tokens, created if
	// missing; empty: the data directory's. Every node of a cluster needs
	// the same key, for a token one node issued to pass on all.
	SigningKeyFile string
}

// ClusterConfig is what a clickhouse store needs beyond its location.
type ClusterConfig struct {
	Keeper []string      // the ZooKeeper or ClickHouse Keeper servers, host:port
	Claims string        // the claim store, a Redis URL
	Lease  time.Duration // how long a batch owns its claims; 0: the backend's default
	// Failpoint and UnsafeClaims are for fault tests only: a protocol step
	// after which the process exits at once, and taking over expired
	// claims without the keeper's decision (which loses exactly-once).
	Failpoint    string
	UnsafeClaims bool
}

// Validate reports every problem with the section. The directory itself is
// checked by New, which may create it.
func (c DataConfig) Validate() error {
	var errs []error
	if _, err := open.Parse(c.Store.String()); err != nil {
		errs = append(errs, fmt.Errorf("--store: %w", err))
	}
	if c.DiskReserve < 0 {
		errs = append(errs, fmt.Errorf("--disk-reserve must not be negative, got %d", c.DiskReserve))
	}
	if c.Store.Scheme == open.SchemeClickHouse {
		if c.Metadata.Scheme == "" {
			errs = append(errs, errors.New("--metadata: a clickhouse store keeps usage only: name a PostgreSQL database for the metadata, postgres://user@host:port/database"))
		}
		if len(c.Cluster.Keeper) == 0 {
			errs = append(errs, errors.New("--keeper: a clickhouse store needs the ZooKeeper or Keeper servers its replicas use, host:port[,host:port…]"))
		}
		if c.Cluster.Claims == "" {
			errs = append(errs, errors.New("--claims: a clickhouse store needs its claim store, redis://host:port"))
		}
	}
	return errors.Join(errs...)
}

// AuthConfig is the admin token and the limits on failed logins.
type AuthConfig struct {
	// AdminToken is the admin bearer token; empty: the one kept in the data
	// directory, generated on first start.
	AdminToken string
	// FailedLoginLimit and FailedLoginAddressLimit are the failed logins
	// per minute per client id and per address; negative: unlimited.
	FailedLoginLimit, FailedLoginAddressLimit int
	// BcryptCost is the cost of hashing client secrets; 0: auth's default.
	BcryptCost int
}

// Validate reports every problem with the section.
func (c AuthConfig) Validate() error {
	var errs []error
	if c.AdminToken != "" && len(c.AdminToken) < auth.MinAdminTokenLen {
		errs = append(errs, fmt.Errorf("--admin-token (or the file of --admin-token-file) must be at least %d bytes long", auth.MinAdminTokenLen))
	}
	errs = append(errs, rateLimit("failed-login-limit", c.FailedLoginLimit), rateLimit("failed-login-address-limit", c.FailedLoginAddressLimit))
	return errors.Join(errs...)
}

// IngestConfig bounds event ingest.
type IngestConfig struct {
	// DedupeWindow is how far back in event time duplicate ids are
	// detected; 0: ingest.DefaultDedupeWindow.
	DedupeWindow time.Duration
	// MaxBody is an event body's limit, on the wire and after
	// decompression; 0: ingest.DefaultMaxBody.
	MaxBody   int64
	MaxEvents int // the events of one body
}

// Validate reports every problem with the section; the pipeline checks
// the rest.
func (c IngestConfig) Validate() error {
	if c.MaxEvents < 1 {
		return fmt.Errorf("--max-events must be at least 1, got %d", c.MaxEvents)
	}
	return nil
}

// QueryConfig is the query service's workers, retention and
// per-organization limits.
type QueryConfig struct {
	ResultsTTL time.Duration // how long executions and their results are kept
	Workers    int           // executions answered at once; 0: one per CPU
	// The per-organization limits; negative: none. A zero
	// MaxResultBytesPerOrg is query.DefaultMaxResultBytesPerOrg.
	MaxPendingPerOrg, MaxExecutionsPerOrg int
	MaxResultBytesPerOrg                  int64
}

// Validate reports every problem with the section.
func (c QueryConfig) Validate() error {
	var errs []error
	if c.ResultsTTL <= 0 {
		errs = append(errs, fmt.Errorf("--results-ttl must be positive, got %s", c.ResultsTTL))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("--query-workers must not be negative, got %d", c.Workers))
	}
	for _, l := range []struct {
		flag string
		v    int
	}{{"max-pending-executions-per-org", c.MaxPendingPerOrg}, {"max-executions-per-org", c.MaxExecutionsPerOrg}} {
		if l.v == 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, or negative for no limit, got 0", l.flag))
		}
	}
	return errors.Join(errs...)
}

// LimitsConfig is the rate limits of the faces and the process's memory
// limit.
type LimitsConfig struct {
	// RateLimit, IngestRateLimit and TokenRateLimit are the requests per
	// minute of the API, event ingest and token routes; negative:
	// unlimited.
	RateLimit, IngestRateLimit, TokenRateLimit int
	// Memory is the soft limit on the Go heap; nil leaves the runtime's as
	// it is.
	Memory *MemoryLimit
}

// Validate reports every problem with the section.
func (c LimitsConfig) Validate() error {
	return errors.Join(rateLimit("rate-limit", c.RateLimit), rateLimit("ingest-rate-limit", c.IngestRateLimit),
		rateLimit("token-rate-limit", c.TokenRateLimit))
}

// rateLimit checks the per-minute limit of flag.
func rateLimit(flag string, v int) error {
	if v == 0 || v > ratelimit.MaxLimit {
		return fmt.Errorf("--%s must be from 1 to %d, or negative for no limit, got %d", flag, ratelimit.MaxLimit, v)
	}
	return nil
}

// DemoConfig seeds demo data once the server listens.
type DemoConfig struct {
	Enabled      bool
	EventsPerDay int // with Enabled, the average events per day to seed
	// Seed seeds the demo through the server's components and returns what
	// to show; required with Enabled. Run calls it after the server
	// listens and before it reports ready.
	Seed func(ctx context.Context, s *Server) (Demo, error)
}

// Demo is what a seeded demo shows.
type Demo struct {
	Session *dashboard.Session // the dashboard signs in with it
	// Banner prints how to use the demo, once the server listens at base.
	Banner func(w io.Writer, base string)
}

// Validate reports every problem with the section.
func (c DemoConfig) Validate() error {
	var errs []error
	if c.Enabled && (c.EventsPerDay < 1 || c.EventsPerDay > 1_000_000) {
		errs = append(errs, fmt.Errorf("--demo-events-per-day must be from 1 to 1000000, got %d", c.EventsPerDay))
	}
	if c.Enabled && c.Seed == nil {
		errs = append(errs, errors.New("demo: Seed is required with Enabled"))
	}
	return errors.Join(errs...)
}

// LogConfig is where the server reports.
type LogConfig struct {
	Logger *slog.Logger // default slog.Default()
	// Stdout receives what an operator must see once: a generated admin
	// token, the address listened on, the demo's banner. Default io.Discard.
	Stdout io.Writer
}

// Validate reports every problem with the section: none so far, as every
// field has a default.
func (c LogConfig) Validate() error { return nil }
