package memory_test

import (
	"testing"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/store/storetest"
)

func TestUsageConformance(t *testing.T) {
	storetest.RunUsage(t, storetest.UsageBackend{
		Open:     func(*testing.T) store.Usage { return memory.New() },
		Measures: true,
	})
}

func TestMetadataConformance(t *testing.T) {
	storetest.RunMetadata(t, storetest.MetadataBackend{
		Open: func(*testing.T) store.Metadata { return memory.New() },
	})
}

func TestWebhooksConformance(t *testing.T) {
	storetest.RunWebhooks(t, storetest.WebhooksBackend{
		Open: func(*testing.T) store.Webhooks { return memory.New() },
	})
	storetest.RunOutbox(t, storetest.OutboxBackend{
		Open: func(*testing.T) store.Outbox { return memory.New() },
	})
}
