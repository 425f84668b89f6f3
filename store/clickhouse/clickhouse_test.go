package clickhouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/store/clickhouse"
)

// testConfig returns the Config of a store in a database of its own on the
// test cluster, dropped at the end of the test unless
// USAGED_KEEP_TEST_DATABASES=1.
func testConfig(t *testing.T) clickhouse.Config {
	t.Helper()
	cfg, err := clickhouse.ParseLocation(clustertest.ClickHouse(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keeper = strings.Split(clustertest.ZooKeeper(t), ",")
	cfg.Claims = clustertest.Redis(t)
	// The suites append one small call at a time: a shorter gathering
	// only shortens them.
	cfg.GroupCommit = 2 * time.Millisecond
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

func TestOpenMigratesOnceAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	stores := make([]*clickhouse.Store, 3)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = clickhouse.Open(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	versions, err := stores[0].AppliedMigrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for replica, vs := range versions {
		if len(vs) != 1 || vs[0] != 1 {
			t.Errorf("replica %s applied %v, want [1] once", replica, vs)
		}
	}
}
