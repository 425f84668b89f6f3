package clickhouse_test

import (
	"context"
	"testing"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/storetest"
)

// TestUsageConformance runs the suite every usage backend passes, against
// the real servers: each store in a database of its own; Reopen opens the
// same database again, as a restarted node would.
func TestUsageConformance(t *testing.T) {
	open := func(t *testing.T, cfg clickhouse.Config) store.Usage {
		s, err := clickhouse.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	configs := map[store.Usage]clickhouse.Config{}
	storetest.RunUsage(t, storetest.UsageBackend{
		Open: func(t *testing.T) store.Usage {
			cfg := testConfig(t)
			s := open(t, cfg)
			configs[s] = cfg
			return s
		},
		Reopen: func(t *testing.T, s store.Usage) store.Usage {
			cfg := configs[s]
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, cfg)
			configs[s] = cfg
			return s
		},
	})
}
