package pebble

import (
	"slices"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// TestNotificationsInAnotherBatch adds notifications to a batch that also
// carries other writes, as a usage commit will: they are pending exactly
// when that batch commits, after a reopen too, and a batch that is dropped
// leaves none.
func TestNotificationsInAnotherBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	n := func(id string) usage.Notification {
		return usage.Notification{ID: id, OrganizationID: "o", Type: usage.NotificationLimitThreshold, Time: at, Payload: []byte(`{}`)}
	}
	pending := func(d *DB) []string {
		t.Helper()
		ns, err := d.PendingNotifications(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}

	dropped := d.db.NewBatch()
	if err := addNotifications(d.db, dropped, []usage.Notification{n("gone")}); err != nil {
		t.Fatal(err)
	}
	dropped.Close()

	b := d.db.NewBatch()
	if err := b.Set([]byte{famMeta, 'x'}, []byte("counts"), nil); err != nil {
		t.Fatal(err)
	}
	if err := addNotifications(d.db, b, []usage.Notification{n("a"), n("b"), n("a")}); err != nil {
		t.Fatal(err)
	}
	if ids := pending(d); len(ids) != 0 {
		t.Fatalf("pending before the commit: %v", ids)
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if ids := pending(d); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("pending after the commit: %v, want a b", ids)
	}
	// Already pending: not added again, whatever its time now says.
	again := n("a")
	again.Time = at.Add(-time.Hour)
	b = d.db.NewBatch()
	if err := addNotifications(d.db, b, []usage.Notification{again}); err != nil {
		t.Fatal(err)
	}
	if !b.Empty() {
		t.Fatal("a pending notification was added to the batch again")
	}
	b.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ids := pending(d); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("pending after reopening: %v, want a b", ids)
	}
}
