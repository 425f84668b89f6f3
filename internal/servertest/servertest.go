// Package servertest runs usaged's server in a test's own process, built by
// the composition root as usaged serve builds it, for tests from outside
// the packages it wires.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/open"
)

// Config returns the configuration Start begins from: usaged serve's
// defaults for a data directory under tb.TempDir, on a free loopback port,
// with a quiet log, the cheapest secret hashes and a small block cache.
func Config(tb testing.TB) server.Config {
	cfg := server.DefaultConfig(tb.TempDir())
	cfg.Log = server.LogConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard}
	cfg.Auth.BcryptCost = bcrypt.MinCost
	cfg.Data.CacheBytes = 8 << 20
	return cfg
}

// Memory keeps the server's store in memory (--store memory:), for tests of
// what the server answers rather than of how it stores: they start and run
// faster than over Pebble. A test of durability, of a failed store or of
// disk space runs on Pebble instead.
func Memory(c *server.Config) { c.Data.Store = open.Location{Scheme: open.SchemeMemory} }

// Pebble keeps the server's store in Pebble in the data directory, as
// usaged serve does by default: Config's choice, for a test that needs it
// after a tuning that chose Memory.
func Pebble(c *server.Config) { c.Data.Store = open.Default(c.Data.Dir) }

// Start builds a server from Config adjusted by tune, serves it, and stops
// and closes it when tb ends.
func Start(tb testing.TB, tune ...func(*server.Config)) *server.Server {
	tb.Helper()
	cfg := Config(tb)
	for _, fn := range tune {
		fn(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			tb.Errorf("server: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("closing the server: %v", err)
		}
	})
	return s
}

// Cluster returns the tuning that keeps the server's usage on the test
// cluster (internal/clustertest: ClickHouse, ZooKeeper, Redis) in a
// ClickHouse database of its own (clustertest.ClickHouseDatabase), and its
// metadata in a PostgreSQL database of the same name, both dropped when tb
// ends. Without the cluster's
// servers it skips tb, or fails it where they are required.
func Cluster(tb testing.TB) func(*server.Config) {
	tb.Helper()
	cfg := clustertest.ClickHouseDatabase(tb)
	name, pgURL := cfg.Database, clustertest.Postgres(tb)
	pg, err := url.Parse(pgURL)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", pgURL, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if conn, err := pgx.Connect(ctx, pgURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	pg.Path = "/" + name
	store, err := open.Parse("clickhouse://" + strings.Join(cfg.Replicas, ",") + "/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	meta, err := open.ParseMetadata(pg.String())
	if err != nil {
		tb.Fatal(err)
	}
	return func(c *server.Config) {
		c.Data.Store, c.Data.Metadata = store, meta
		c.Data.Cluster = server.ClusterConfig{Keeper: cfg.Keeper, Claims: cfg.Claims}
	}
}
