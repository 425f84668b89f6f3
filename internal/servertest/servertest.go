// Package servertest runs usaged's server in a test's own process, built by
// the composition root as usaged serve builds it, for tests from outside
// the packages it wires.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"

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
