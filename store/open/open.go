// Package open opens the store a location names, as the --store value of a
// server gives it: "pebble:DIR" for the embedded backend in directory DIR,
// "memory:" for an in-memory store that keeps nothing across restarts,
// "clickhouse://host:port,…/database" for the cluster backend, whose
// metadata is in the PostgreSQL database a second location names
// ("postgres://…", --metadata). It is the one place that knows every
// backend, so that the composition root chooses one by configuration and
// nothing else imports a backend.
package open

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/postgres"
)

// The schemes of a location.
const (
	SchemePebble     = "pebble"
	SchemeMemory     = "memory"
	SchemeClickHouse = "clickhouse"
	SchemePostgres   = "postgres"
)

// schemes are the known schemes of a store location, for error messages.
var schemes = []string{SchemePebble, SchemeMemory, SchemeClickHouse}

// Location names a backend and where its data is: Scheme, then after a
// colon a Path whose meaning is the scheme's (a directory for pebble,
// nothing for memory).
type Location struct {
	Scheme string
	Path   string
}

// String returns l as Parse takes it.
func (l Location) String() string { return l.Scheme + ":" + l.Path }

// DefaultDir is the directory of the default store within a data directory.
const DefaultDir = "store"

// Default returns the location of the default store of a data directory:
// the embedded backend in its subdirectory "store".
func Default(dataDir string) Location {
	return Location{Scheme: SchemePebble, Path: filepath.Join(dataDir, DefaultDir)}
}

// Parse parses a location, "scheme:path". The scheme must be known; pebble
// needs a directory, memory takes none, and clickhouse a URL
// (clickhouse.ParseLocation).
func Parse(s string) (Location, error) {
	scheme, path, ok := strings.Cut(s, ":")
	if !ok || !slices.Contains(schemes, scheme) {
		return Location{}, fmt.Errorf("store location %q names no backend: want one of %s (as in pebble:./usaged-data/store)",
			s, strings.Join(schemes, ":, ")+":")
	}
	l := Location{Scheme: scheme, Path: path}
	switch {
	case scheme == SchemePebble && path == "":
		return Location{}, fmt.Errorf("store location %q needs a directory after pebble:, as pebble:./usaged-data/store", s)
	case scheme == SchemeMemory && path != "":
		return Location{}, fmt.Errorf("store location %q: memory: takes nothing after the colon", s)
	case scheme == SchemeClickHouse:
		if _, err := clickhouse.ParseLocation(s); err != nil {
			return Location{}, err
		}
	}
	return l, nil
}

// ParseMetadata parses the location of a metadata store of its own,
// "postgres://…" (or "postgresql://…"), a PostgreSQL connection URL.
func ParseMetadata(s string) (Location, error) {
	scheme, path, _ := strings.Cut(s, ":")
	if scheme != SchemePostgres && scheme != "postgresql" || !strings.HasPrefix(path, "//") {
		return Location{}, fmt.Errorf("metadata location %q: want a PostgreSQL URL, postgres://user@host:port/database", s)
	}
	return Location{Scheme: SchemePostgres, Path: path}, nil
}

// Config is what the composition root gives every backend.
type Config struct {
	// Pebble configures a pebble store; its Dir is the location's path.
	Pebble pebble.Config
	// ClickHouse configures a clickhouse store beyond what its location
	// says: the keeper, the claim store, the lease.
	ClickHouse clickhouse.Config
	// Metadata, when set, is where the metadata is kept instead of the
	// store's own (a postgres location); the clickhouse backend needs it.
	Metadata Location
}

// Stores are the halves of the store a location opened. A backend that
// implements one contract leaves the other nil; pebble and memory
// implement both, with one value. The optional interfaces of package store
// (store.Health, store.DiskUser, store.DedupeExpirer) are found on each
// half by type assertion.
type Stores struct {
	Usage    store.Usage
	Metadata store.Metadata
	closers  []io.Closer
}

// Close closes every backend that Open opened, once each.
func (s Stores) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Open opens the store at l. The errors of a backend are returned as it
// made them, so that callers can tell them apart (errors.As with
// *pebble.WALDamageError, for one).
func Open(ctx context.Context, l Location, cfg Config) (Stores, error) {
	if err := ctx.Err(); err != nil {
		return Stores{}, err
	}
	s, err := openUsage(ctx, l, cfg)
	if err != nil || cfg.Metadata.Scheme == "" {
		return s, err
	}
	md, closer, err := openMetadata(ctx, cfg.Metadata)
	if err != nil {
		s.Close()
		return Stores{}, err
	}
	s.Metadata = md
	s.closers = append(s.closers, closer)
	return s, nil
}

// openUsage opens the store at l, both halves where the backend has both.
func openUsage(ctx context.Context, l Location, cfg Config) (Stores, error) {
	switch l.Scheme {
	case SchemePebble:
		pc := cfg.Pebble
		pc.Dir = l.Path
		db, err := pebble.Open(pc)
		if err != nil {
			return Stores{}, err
		}
		return Stores{Usage: db, Metadata: db, closers: []io.Closer{db}}, nil
	case SchemeMemory:
		db := memory.New()
		return Stores{Usage: db, Metadata: db, closers: []io.Closer{db}}, nil
	case SchemeClickHouse:
		if cfg.Metadata.Scheme == "" {
			return Stores{}, fmt.Errorf("store location %q keeps usage only: name a metadata store (--metadata postgres://…)", l)
		}
		cc, err := clickhouse.ParseLocation(l.String())
		if err != nil {
			return Stores{}, err
		}
		c := cfg.ClickHouse
		c.Replicas, c.Database, c.User, c.Password = cc.Replicas, cc.Database, cc.User, cc.Password
		db, err := clickhouse.Open(ctx, c)
		if err != nil {
			return Stores{}, err
		}
		return Stores{Usage: db, closers: []io.Closer{db}}, nil
	}
	return Stores{}, fmt.Errorf("store location %q names no backend: want one of %s", l, strings.Join(schemes, ", "))
}

// openMetadata opens the metadata store at l, a postgres location.
func openMetadata(ctx context.Context, l Location) (store.Metadata, io.Closer, error) {
	if l.Scheme != SchemePostgres {
		return nil, nil, fmt.Errorf("metadata location %q: want postgres://…", l)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: l.String()})
	if err != nil {
		return nil, nil, err
	}
	return db, db, nil
}
