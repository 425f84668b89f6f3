package pebble

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/store"
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
	d = reopen(t, d, dir)
	defer d.Close()
	if ids := pending(d); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("pending after reopening: %v, want a b", ids)
	}
}

// TestWatchOutbox checks that the outbox's watcher is told of every write
// that adds notifications, once the write is done, with the notifications
// already pending when it looks, and of no other write.
func TestWatchOutbox(t *testing.T) {
	t.Parallel()
	d, err := Open(Config{Dir: t.TempDir(), FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	at := time.Now().Add(-time.Minute)
	// The commit watcher returns a notification for an event named n-….
	err = d.WatchCommits(func(store.StateReader) (store.Effects, error) { return store.Effects{}, nil }, func(accepted []*usage.Event) store.Effects {
		var ns []usage.Notification
		for _, ev := range accepted {
			if strings.HasPrefix(ev.ID, "n-") {
				ns = append(ns, usage.Notification{ID: ev.ID, OrganizationID: "o", Type: usage.NotificationLimitThreshold, Time: at, Payload: []byte(`{}`)})
			}
		}
		return store.Effects{Notifications: ns}
	})
	if err != nil {
		t.Fatal(err)
	}
	var told [][]string // the pending ids at each call
	d.WatchOutbox(func() {
		ns, err := d.PendingNotifications(t.Context(), 10)
		if err != nil {
			t.Error(err)
		}
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		told = append(told, ids)
	})
	appendEvents := func(ids ...string) {
		t.Helper()
		var evs []usage.Event
		for _, id := range ids {
			evs = append(evs, usage.Event{ID: id, Time: at, OrganizationID: "o", ClientID: "c", Status: 200})
		}
		if _, err := d.Append(t.Context(), evs, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, want ...[]string) {
		t.Helper()
		if !slices.EqualFunc(told, want, slices.Equal) {
			t.Fatalf("%s: told %q, want %q", step, told, want)
		}
	}
	appendEvents("a", "b")
	check("a commit without notifications")
	appendEvents("c", "n-1")
	check("a commit with one", []string{"n-1"})
	appendEvents("n-1")
	check("a duplicate", []string{"n-1"})
	if err := d.AppendNotifications(t.Context(), []usage.Notification{{ID: "n-2", OrganizationID: "o", Type: usage.NotificationLimitThreshold, Time: at, Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	check("AppendNotifications", []string{"n-1"}, []string{"n-1", "n-2"})
	if err := d.AppendNotifications(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	check("AppendNotifications of none", []string{"n-1"}, []string{"n-1", "n-2"})
	d.WatchOutbox(nil)
	appendEvents("n-3")
	check("no watcher", []string{"n-1"}, []string{"n-1", "n-2"})
}

// A delivered notification is remembered: appended again (the limits'
// evaluator finding the crossing again at a start) it stays delivered;
// and it is forgotten once done longer ago than keepDone.
func TestDoneNotificationsRemembered(t *testing.T) {
	d, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	n := usage.Notification{ID: "ntf_1", OrganizationID: "o", Type: usage.NotificationLimitThreshold, Time: time.Now(), Payload: []byte(`{}`)}
	if err := d.AppendNotifications(ctx, []usage.Notification{n}); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkNotificationsDone(ctx, []string{n.ID}); err != nil {
		t.Fatal(err)
	}
	if err := d.AppendNotifications(ctx, []usage.Notification{n}); err != nil {
		t.Fatal(err)
	}
	if ps, err := d.PendingNotifications(ctx, 10); err != nil || len(ps) != 0 {
		t.Fatalf("pending after a delivered one was appended again: %v %v", ps, err)
	}
	// Swept once done before the cutoff: appended again, pending again.
	b := d.db.NewBatch()
	if err := d.sweepDone(b, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := d.AppendNotifications(ctx, []usage.Notification{n}); err != nil {
		t.Fatal(err)
	}
	if ps, err := d.PendingNotifications(ctx, 10); err != nil || len(ps) != 1 {
		t.Fatalf("pending after the sweep and another append: %v %v", ps, err)
	}
}

// TestWatcherState checks that the state a commit watcher returns is
// written with the commit that accepted the events, read back by prefix,
// deleted, kept apart from the store's own keys, and there after a reopen.
func TestWatcherState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	read := func(d *DB, prefix string) map[string]string {
		t.Helper()
		got := map[string]string{}
		err := d.HoldCommits(func(state store.StateReader) (store.Effects, error) {
			return store.Effects{}, state([]byte(prefix), func(k, v []byte) error {
				got[string(k)] = string(v)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// The watcher counts the accepted events of each client under "c/" and
	// deletes "gone" at the first commit.
	counts := map[string]int{}
	err = d.WatchCommits(func(store.StateReader) (store.Effects, error) {
		return store.Effects{State: []store.StateChange{{Key: []byte("gone"), Value: []byte("x")}, {Key: []byte("kept"), Value: []byte("y")}}}, nil
	}, func(accepted []*usage.Event) store.Effects {
		eff := store.Effects{State: []store.StateChange{{Key: []byte("gone")}}}
		for _, ev := range accepted {
			counts[ev.ClientID]++
			eff.State = append(eff.State, store.StateChange{Key: []byte("c/" + ev.ClientID), Value: []byte(strconv.Itoa(counts[ev.ClientID]))})
		}
		return eff
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(d, ""); !maps.Equal(got, map[string]string{"gone": "x", "kept": "y"}) {
		t.Fatalf("after start: %v", got)
	}
	evs := []usage.Event{
		{ID: "1", Time: at, OrganizationID: "o", ClientID: "a", Status: 200},
		{ID: "2", Time: at, OrganizationID: "o", ClientID: "b", Status: 200},
		{ID: "1", Time: at, OrganizationID: "o", ClientID: "a", Status: 200}, // a duplicate: never seen
		{ID: "3", Time: at, OrganizationID: "o", ClientID: "a", Status: 200},
	}
	if _, err := d.Append(t.Context(), evs, at.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"c/a": "2", "c/b": "1"}
	if got := read(d, "c/"); !maps.Equal(got, want) {
		t.Errorf("c/ after the commit = %v, want %v", got, want)
	}
	d = reopen(t, d, dir)
	defer d.Close()
	want = map[string]string{"c/a": "2", "c/b": "1", "kept": "y"}
	if got := read(d, ""); !maps.Equal(got, want) {
		t.Errorf("after a reopen = %v, want %v", got, want)
	}
}
