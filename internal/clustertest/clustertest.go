// Package clustertest gives tests the addresses of the external servers a
// usaged cluster runs on (ClickHouse, ZooKeeper, Redis, PostgreSQL), as
// deploy/local-cluster.sh starts them and exports them in the environment.
//
// A test that needs a server it is not given skips with a loud message, or
// fails when USAGED_REQUIRE_CLUSTER=1 (CI sets it): a missing server never
// passes silently for a tested one.
package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/usaged/usaged/store/clickhouse"
)

// The environment variables deploy/local-cluster.sh exports.
const (
	EnvClickHouse = "USAGED_CLICKHOUSE" // clickhouse://host:port,host:port/database
	EnvZooKeeper  = "USAGED_ZOOKEEPER"  // host:port[,host:port]
	EnvRedis      = "USAGED_REDIS"      // redis://host:port
	EnvPostgres   = "USAGED_POSTGRES"   // postgres://user@host:port/database

	// EnvClickHouseHTTP is the ClickHouse replicas' HTTP interfaces:
	// http://host:port,http://host:port.
	EnvClickHouseHTTP = "USAGED_CLICKHOUSE_HTTP"
	// EnvRequire makes a missing server a failure instead of a skip.
	EnvRequire = "USAGED_REQUIRE_CLUSTER"
)

// ClickHouse returns the ClickHouse location of the test cluster.
func ClickHouse(t testing.TB) string { return need(t, EnvClickHouse, "ClickHouse") }

// ClickHouseHTTP returns the HTTP URL of the test cluster's first
// ClickHouse replica.
func ClickHouseHTTP(t testing.TB) string {
	return strings.Split(need(t, EnvClickHouseHTTP, "ClickHouse's HTTP interface"), ",")[0]
}

// ZooKeeper returns the ZooKeeper servers of the test cluster.
func ZooKeeper(t testing.TB) string { return need(t, EnvZooKeeper, "ZooKeeper") }

// Redis returns the Redis URL of the test cluster.
func Redis(t testing.TB) string { return need(t, EnvRedis, "Redis") }

// Postgres returns the PostgreSQL URL of the test cluster.
func Postgres(t testing.TB) string { return need(t, EnvPostgres, "PostgreSQL") }

// Required reports whether a missing server fails the test.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

func need(t testing.TB, env, what string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(env))
	if v != "" {
		return v
	}
	msg := what + " is not given (" + env + " is empty): start the servers with deploy/local-cluster.sh start and source its env"
	if Required() {
		t.Fatal(msg + "; " + EnvRequire + "=1 makes this a failure")
	}
	t.Skip("SKIPPED, " + t.Name() + " is NOT tested: " + msg + "; set " + EnvRequire + "=1 to make this a failure")
	return ""
}

// ClickHouseDatabase returns the configuration of a clickhouse store on the
// test cluster in a database of its own (usaged_test_ and random hex), with
// the cluster's keeper and claim store; the database and its keeper and
// claim state are dropped when t ends, unless USAGED_KEEP_TEST_DATABASES=1.
func ClickHouseDatabase(t testing.TB) clickhouse.Config {
	t.Helper()
	cfg, err := clickhouse.ParseLocation(ClickHouse(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keeper = strings.Split(ZooKeeper(t), ",")
	cfg.Claims = Redis(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	cfg.Database = "usaged_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if os.Getenv("USAGED_KEEP_TEST_DATABASES") != "1" {
			_ = clickhouse.Drop(context.Background(), cfg)
		}
	})
	return cfg
}
