// Package postgres keeps usaged's metadata in PostgreSQL, so that several
// stateless usaged nodes share it: organizations and OAuth clients, the
// service-usage registry (partners, resellers, collections, services, API
// keys) and asynchronous query executions with their result rows. It
// implements store.Metadata, and store.Outbox for a cluster whose nodes
// share it (outbox.go); usage data lives elsewhere.
//
// Metadata is small, mutable and read by key, which is what a transactional
// database does well:
//
//   - the registries are one table per kind, keyed by the record's
//     identifier (text ids in the C collation, so that lists sort as Go
//     sorts strings; GUIDs and API key digests as bytea), the record itself
//     as JSON in a jsonb column: they are loaded whole, and a field added to
//     a domain type is kept without a migration;
//   - executions are a row of columns each, so that an operator can read
//     them with SQL; their result rows are chunks of rowchunk's encoding,
//     rowchunk.Size rows to a bytea keyed by (execution id, chunk number),
//     so that writing and reading many rows is a few values and a page of
//     rows is a range read of the primary key. FinishExecution replaces the
//     record and the chunks in one transaction.
//
// Times are stored as timestamptz, to the microsecond, and read back in UTC;
// a zero time is NULL.
//
// Open applies the schema's migrations (see migrate.go). Errors of the
// connection, of a server that is down, restarting or out of connections,
// are of kind usage.KindUnavailable, so that the faces answer 503 and
// clients retry; strings PostgreSQL cannot hold (NUL bytes) are
// usage.KindInvalid.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.Metadata = (*Store)(nil)

// Defaults of Config.
const (
	DefaultSchema         = "public"
	DefaultMaxConns       = 16
	DefaultConnectTimeout = 5 * time.Second
)

// Config says which PostgreSQL database and schema hold the metadata.
type Config struct {
	// URL is the connection string, as a URL
	// (postgres://user@host:port/database?sslmode=disable) or as libpq's
	// key=value pairs.
	URL string
	// Schema holds the tables; "" is DefaultSchema. Open creates it when
	// it does not exist. Several usaged deployments may share a database,
	// each in a schema of its own.
	Schema string
	// MaxConns bounds the connections open at once; 0 is DefaultMaxConns.
	MaxConns int
	// ConnectTimeout bounds each connection attempt when URL sets no
	// connect_timeout; 0 is DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("postgres store: a URL is required, e.g. postgres://usaged@localhost:5432/usaged"))
	} else if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("postgres store: the URL cannot be parsed: %w", err))
	}
	if c.MaxConns < 0 || c.MaxConns > 1<<20 {
		errs = append(errs, fmt.Errorf("postgres store: MaxConns must be between 0 (the default, %d) and %d: got %d", DefaultMaxConns, 1<<20, c.MaxConns))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("postgres store: ConnectTimeout must not be negative: got %v", c.ConnectTimeout))
	}
	return errors.Join(errs...)
}

// Store is the metadata of usaged in a PostgreSQL schema. It is safe for
// concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	node   string // the holder of its outbox leases (outbox.go)
	closed atomic.Bool
}

// Open connects to the database of cfg and brings its schema up to date,
// waiting for another node that is doing so. It fails with an error of kind
// usage.KindUnavailable when the server cannot be reached, and refuses a
// schema migrated by a newer usaged.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, migrations)
}

// open is Open applying the steps ms.
func open(ctx context.Context, cfg Config, ms []migration) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, err
	}
	schema := orDefault(cfg.Schema, DefaultSchema)
	pc.MaxConns = int32(orDefault(cfg.MaxConns, DefaultMaxConns))
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = orDefault(cfg.ConnectTimeout, DefaultConnectTimeout)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, classify(ctx, err)
	}
	s := &Store{pool: pool, schema: schema, node: nodeID()}
	if err := s.migrate(ctx, ms); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Close implements store.Metadata: it waits for the calls under way and
// closes the connections. Calls after Close fail with usage.KindUnavailable.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

var errClosed = &usage.Error{Kind: usage.KindUnavailable, Message: "the metadata store is closed"}

// unavailableRetry is how long a client is told to wait when the database
// cannot be reached: about what a server restart or a failover takes.
const unavailableRetry = 5 * time.Second

// classify gives err, from pgx, the kind the faces answer with: the
// connection's and the server's availability are usage.KindUnavailable,
// strings the database cannot hold usage.KindInvalid, the rest
// usage.KindInternal. The caller's own cancellation is returned as it is.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	var kindErr *usage.Error
	if errors.As(err, &kindErr) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "22021", code == "22P05": // character_not_in_repertoire, untranslatable_character
			return &usage.Error{Kind: usage.KindInvalid, Message: "a value holds a character the metadata database cannot store (a NUL byte, or bytes that are not UTF-8)", Err: err}
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "53"),    // insufficient resources: too many connections, disk full
			strings.HasPrefix(code, "57P"),   // the server is shutting down or starting
			code == "40001", code == "40P01", // serialization failure, deadlock: retry
			code == "25006": // read-only transaction: a standby answered
			return unavailable(err)
		}
		return fmt.Errorf("postgres store: %w", err)
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	// A connection pgx closed under a call (its socket went away, as when
	// the server or a proxy before it stops) is the server's availability
	// too, though pgx does not call it safe to retry.
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return unavailable(err)
	}
	return fmt.Errorf("postgres store: %w", err)
}

func unavailable(err error) error {
	return &usage.Error{
		Kind:       usage.KindUnavailable,
		Message:    "the metadata database is unavailable; retry later",
		Err:        err,
		RetryAfter: unavailableRetry,
	}
}

// exec runs a statement that returns no rows.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if s.closed.Load() {
		return pgconn.CommandTag{}, errClosed
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	return tag, classify(ctx, err)
}

// query runs sql and calls scan on each row it returns.
func (s *Store) query(ctx context.Context, scan func(pgx.Rows) error, sql string, args ...any) error {
	if s.closed.Load() {
		return errClosed
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return classify(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return classify(ctx, err)
		}
	}
	return classify(ctx, rows.Err())
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	return classify(ctx, pgx.BeginFunc(ctx, s.pool, fn))
}
