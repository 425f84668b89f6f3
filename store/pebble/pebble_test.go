package pebble_test

import (
	"testing"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/storetest"
)

// dirs opens pebble stores in directories of their own and reopens them on
// the same directory.
type dirs map[*pebble.DB]string

func (d dirs) open(t *testing.T, dir string) *pebble.DB {
	// Small runs, so that the suites find records in memory, being written
	// out and written out.
	db, err := pebble.Open(pebble.Config{Dir: dir, FilterCapacity: 1024, RunRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	d[db] = dir
	return db
}

func (d dirs) reopen(t *testing.T, db *pebble.DB) *pebble.DB {
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return d.open(t, d[db])
}

func TestUsageConformance(t *testing.T) {
	t.Parallel()
	d := dirs{}
	storetest.RunUsage(t, storetest.UsageBackend{
		Open:     func(t *testing.T) store.Usage { return d.open(t, t.TempDir()) },
		Reopen:   func(t *testing.T, s store.Usage) store.Usage { return d.reopen(t, s.(*pebble.DB)) },
		Measures: true,
	})
}

func TestMetadataConformance(t *testing.T) {
	t.Parallel()
	d := dirs{}
	storetest.RunMetadata(t, storetest.MetadataBackend{
		Open:   func(t *testing.T) store.Metadata { return d.open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Metadata) store.Metadata { return d.reopen(t, s.(*pebble.DB)) },
	})
}

func TestWebhooksConformance(t *testing.T) {
	t.Parallel()
	d := dirs{}
	storetest.RunWebhooks(t, storetest.WebhooksBackend{
		Open:   func(t *testing.T) store.Webhooks { return d.open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Webhooks) store.Webhooks { return d.reopen(t, s.(*pebble.DB)) },
	})
	storetest.RunOutbox(t, storetest.OutboxBackend{
		Open:   func(t *testing.T) store.Outbox { return d.open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Outbox) store.Outbox { return d.reopen(t, s.(*pebble.DB)) },
	})
}
