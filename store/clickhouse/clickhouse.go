// Package clickhouse is the scale-out usage backend: several stateless
// usaged nodes record events and activity in ClickHouse, exactly once, with
// the claims of their idempotency keys in Redis and the commit point of
// every batch in ZooKeeper (or ClickHouse Keeper). It implements
// store.Usage; metadata lives elsewhere (store/postgres).
//
// A node gathers its concurrent Append (or AppendActivity) calls for
// Config.GroupCommit into one batch: quorum inserts into a table are
// serialized on the cluster, so that a batch per call would be slow. One
// ingest batch goes through these steps (docs/scale-out.md has the
// reasons and the failure of every step):
//
//  1. claim: each event's key is claimed in Redis for the batch, with a
//     deadline (the lease). A key committed within the window is a
//     Duplicate; a key pending for another batch is settled through that
//     batch's commit record (below).
//  2. journal: the accepted events are inserted into the events (or
//     activity) journal with insert_quorum, in deterministic blocks.
//  3. commit: one create of the batch's record in the keeper, state
//     committed. The create is the decision: a batch whose record another
//     node created first, as aborted, is aborted, and the call fails.
//  4. publish: the count blocks, deterministic from the batch's journal
//     rows and id, are inserted with insert_quorum (a retry or a recovery by
//     another node is deduplicated by ClickHouse), then the published rows.
//  5. settle: the batch's mark in Redis makes its claims committed, and
//     the record is deleted.
//
// Between steps 3 and 4, where limits are evaluated (EvaluateLimits), the
// batch is counted into the limits' counters in Redis and the crossings it
// causes are written to the outbox (see limits.go).
//
// The call returns after step 4 and settles in the background; any node finishes a committed batch whose
// owner died after step 3, from its journal rows: each node's sweeper
// looks for committed records older than the lease every second (see
// publish.go). Stats counts what a node's protocol did.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/usage"
)

// Config configures a Store.
type Config struct {
	// Replicas are the native-protocol addresses (host:port) of the
	// ClickHouse replicas of the shard; writes go to any of them with
	// insert_quorum = Quorum, reads to the first that answers.
	Replicas []string
	// Database is the ClickHouse database; usaged creates it and its
	// tables. Its name also roots usaged's nodes in the keeper.
	Database string
	// User and Password authenticate to ClickHouse (default user "default").
	User, Password string
	// Keeper are the ZooKeeper (or ClickHouse Keeper) servers, host:port.
	Keeper []string
	// Claims is the Redis URL of the claim store (redis://host:port/db).
	Claims string
	// Quorum is the insert_quorum of every write: the replicas that must
	// have a block before an insert returns. Default: the number of
	// replicas, at most 2 (with 3 replicas, one may be down).
	Quorum int
	// Lease is how long a batch owns its claims before another node may
	// abort it (default 10 s). A batch must commit within it.
	Lease time.Duration
	// DedupeWindow is the node's dedupe window (default 35 days, ingest's).
	// The first node of a cluster fixes the claims' generation length from
	// it (see claims.go); a node with a wider window reads more generations.
	DedupeWindow time.Duration
	// GroupCommit is how long a node gathers concurrent calls into one
	// batch (default 20 ms).
	GroupCommit time.Duration
	// Logger receives what goes wrong in the background (settling,
	// recovery); nil: slog.Default().
	Logger *slog.Logger
	// Failpoint, for tests of crash safety only, names a protocol step
	// ("after-claim", "after-journal", "after-commit", "after-limits", "after-counts",
	// "after-published", "after-settle") after which the process exits at
	// once with status 86, as if killed, or, prefixed with "stall-", stalls
	// for three leases (see failpoint.go); empty in production.
	Failpoint string
	// Unsafe, for tests only, takes over a claim pending past its batch's
	// deadline without the keeper: no record read, none created as
	// aborted. A paused batch then commits too and its events count twice:
	// the negative control the exactly-once tests must catch. Never in
	// production.
	Unsafe bool
}

// ParseLocation parses the location of a cluster store,
// "clickhouse://[user[:password]@]host:port[,host:port…]/database", into
// the ClickHouse part of a Config.
func ParseLocation(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return Config{}, fmt.Errorf("store location %q: want clickhouse://host:port[,host:port…]/database", s)
	}
	c := Config{Database: strings.Trim(u.Path, "/"), Replicas: strings.Split(u.Host, ",")}
	if c.Database == "" {
		c.Database = "usaged"
	}
	if !validIdent(c.Database) {
		return Config{}, fmt.Errorf("store location %q: database %q must be letters, digits and _", s, c.Database)
	}
	for _, r := range c.Replicas {
		if !strings.Contains(r, ":") {
			return Config{}, fmt.Errorf("store location %q: replica %q needs a port (the native protocol's, 9000 by default)", s, r)
		}
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	return c, nil
}

func validIdent(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Store is the ClickHouse usage backend. Its methods are safe for
// concurrent use.
type Store struct {
	cfg      Config
	replicas []driver.Conn // one pool per replica, in Config order
	keeper   *zk.Conn
	claims   *redis.Client
	root     string // the store's root in the keeper: /usaged/DATABASE
	seed     uint64 // the cluster's seed of the claims' hashes
	genLen   int64  // ms: the claims' generation length, read at Open (claims.go)

	eventCalls, activityCalls chan *call      // to the group committers
	life                      context.Context // ended by Close: stops the batches and the sweeper
	end                       context.CancelFunc
	closing                   sync.Once
	kick                      chan struct{} // makes the sweeper run now
	settles                   chan struct{} // a slot per batch answered and settling
	wg                        sync.WaitGroup
	stats                     stats
	steps                     *prometheus.HistogramVec      // seconds per step of a batch, see metrics.go
	hook                      func(step string) (stop bool) // tests' failpoints, see failpoint.go
	limits                    atomic.Pointer[Limits]        // the limits evaluated, once EvaluateLimits has started
}

// Open connects to the replicas, the keeper and the claim store, and
// brings the schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) { return open(ctx, cfg, nil) }

// open is Open, with the failpoint hook of tests (see failpoint.go).
func open(ctx context.Context, cfg Config, hook func(step string) bool) (*Store, error) {
	if len(cfg.Replicas) == 0 || len(cfg.Keeper) == 0 || cfg.Claims == "" {
		return nil, errors.New("clickhouse store: replicas, keeper and claims are all needed")
	}
	if cfg.Database == "" {
		cfg.Database = "usaged"
	}
	if cfg.Quorum <= 0 {
		cfg.Quorum = min(len(cfg.Replicas), 2)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Second
	}
	if cfg.GroupCommit <= 0 {
		cfg.GroupCommit = 20 * time.Millisecond
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = 35 * 24 * time.Hour
	}
	s, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.hook = hook
	if err := s.loadSeed(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.loadGeneration(cfg.DedupeWindow); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.convertClaims(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.wg.Add(3)
	go s.gather('e', s.eventCalls)
	go s.gather('a', s.activityCalls)
	go s.sweeper()
	return s, nil
}

// connect opens the connections of a Store, without touching the schema.
func connect(cfg Config) (*Store, error) {
	if cfg.User == "" {
		cfg.User = "default"
	}
	s := &Store{
		cfg: cfg, root: "/usaged/" + cfg.Database,
		eventCalls: make(chan *call), activityCalls: make(chan *call),
		kick: make(chan struct{}, 1), settles: make(chan struct{}, settlesInFlight),
		steps: newStepSeconds(),
	}
	s.life, s.end = context.WithCancel(context.Background())
	for _, addr := range cfg.Replicas {
		conn, err := ch.Open(&ch.Options{
			Addr:         []string{addr},
			Auth:         ch.Auth{Username: cfg.User, Password: cfg.Password},
			DialTimeout:  5 * time.Second,
			MaxOpenConns: 32,
			MaxIdleConns: 8,
			ReadTimeout:  60 * time.Second,
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("clickhouse store: replica %s: %w", addr, err)
		}
		s.replicas = append(s.replicas, conn)
	}
	keeper, events, err := zk.Connect(cfg.Keeper, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("clickhouse store: keeper %v: %w", cfg.Keeper, err)
	}
	go func() { // drain the session events; the connection reconnects itself
		for range events {
		}
	}()
	s.keeper = keeper
	opts, err := redis.ParseURL(cfg.Claims)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("clickhouse store: claims %q: %w", cfg.Claims, err)
	}
	opts.PoolSize = 64
	s.claims = redis.NewClient(opts)
	return s, nil
}

// claimPrefix is the prefix of the store's keys in the claim store.
func (s *Store) claimPrefix() string { return "usaged:" + s.cfg.Database + ":" }

// Close stops the group committers and the sweeper, ends the batches under
// way and waits for them (one that had committed is finished by another
// node's recovery), and releases the connections. Calls waiting for a
// batch return an error.
func (s *Store) Close() error {
	first := false
	s.closing.Do(func() { first = true })
	if !first {
		return errClosed
	}
	s.end()
	s.wg.Wait()
	var errs []error
	for _, r := range s.replicas {
		errs = append(errs, r.Close())
	}
	if s.keeper != nil {
		s.keeper.Close()
	}
	if s.claims != nil {
		errs = append(errs, s.claims.Close())
	}
	return errors.Join(errs...)
}

// unavailable wraps err, a failure of one of the servers, as an error of
// kind usage.KindUnavailable: the faces answer 503 and clients retry.
func unavailable(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	e := usage.Errorf(usage.KindUnavailable, "", format, args...)
	e.Err = err
	return e
}
