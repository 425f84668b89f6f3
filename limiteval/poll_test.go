package limiteval

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// The subscribers of one organization share one count: two proxies cost
// the store the queries of one; the last to leave stops it.
func TestPollerSharesACount(t *testing.T) {
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	l, err := usage.Limit{ID: "l", OrganizationID: "o", Name: "daily", Metric: usage.LimitRequests, Value: 10,
		Window: usage.Window{Type: usage.WindowDay}, Enforced: true, Version: 1}.Normalize(now)
	if err != nil {
		t.Fatal(err)
	}
	var queries atomic.Int64
	var n atomic.Int64 // the count the store holds
	p, err := NewPoller(PollerConfig{
		Limits: func(context.Context, string) ([]usage.Limit, error) { return []usage.Limit{l}, nil },
		Rows: func(context.Context, usage.Query) ([]usage.Row, error) {
			queries.Add(1)
			return []usage.Row{{Counts: usage.Counts{Requests: n.Load()}}}, nil
		},
		Every: 20 * time.Millisecond,
		Now:   func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	snap1, ch1, cancel1, err := p.Subscribe(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	snap2, ch2, cancel2, err := p.Subscribe(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap1.Limits) != 1 || len(snap2.Limits) != 1 || len(snap2.Values) != 1 || snap2.Values[0].Value != 0 {
		t.Fatalf("snapshots %+v, %+v", snap1, snap2)
	}
	n.Store(7)
	for _, ch := range []<-chan usage.LimitUpdate{ch1, ch2} {
		select {
		case u := <-ch:
			if len(u.Values) != 1 || u.Values[0].Value != 7 {
				t.Fatalf("update %+v", u)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
		}
	}
	before := queries.Load()
	time.Sleep(200 * time.Millisecond) // about ten counts
	if q := queries.Load() - before; q > 14 {
		t.Fatalf("%d queries in 200 ms at one a count every 20 ms: the subscribers do not share the count", q)
	}
	cancel1()
	cancel2()
	if _, ok := <-ch1; ok {
		t.Fatal("a channel still open after cancel")
	}
	time.Sleep(50 * time.Millisecond)
	before = queries.Load()
	time.Sleep(100 * time.Millisecond)
	if q := queries.Load() - before; q != 0 {
		t.Fatalf("%d queries after every subscriber left", q)
	}
}

// A rolling limit is streamed with the values of the status function given
// for it, its window moving with the minute; without one it is left out.
func TestPollerRolling(t *testing.T) {
	now := time.Date(2026, 6, 15, 12, 0, 30, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	l, err := usage.Limit{ID: "r", OrganizationID: "o", Name: "last five minutes", Metric: usage.LimitRequests, Value: 10,
		Window: usage.Window{Type: usage.WindowRolling, Minutes: 5}, Enforced: true, Version: 1}.Normalize(now)
	if err != nil {
		t.Fatal(err)
	}
	var value atomic.Int64
	cfg := PollerConfig{
		Limits: func(context.Context, string) ([]usage.Limit, error) { return []usage.Limit{l}, nil },
		Rows: func(context.Context, usage.Query) ([]usage.Row, error) {
			t.Error("a rolling limit was queried")
			return nil, nil
		},
		Every: 10 * time.Millisecond,
		Now:   func() time.Time { return time.Unix(0, clock.Load()).UTC() },
	}
	p, err := NewPoller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	snap, _, cancel, err := p.Subscribe(t.Context(), "o")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if len(snap.Limits) != 0 || len(snap.Values) != 0 {
		t.Fatalf("without a status function: %+v", snap)
	}

	cfg.Rolling = func(_ context.Context, rl *usage.Limit) (usage.LimitStatus, error) {
		at := time.Unix(0, clock.Load()).UTC()
		return usage.LimitStatus{Window: rl.Window.RollingIn(at, time.UTC), Value: float64(value.Load())}, nil
	}
	if p, err = NewPoller(cfg); err != nil {
		t.Fatal(err)
	}
	value.Store(3)
	snap, ch, cancel, err := p.Subscribe(t.Context(), "o")
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if len(snap.Limits) != 1 || len(snap.Values) != 1 || snap.Values[0].Value != 3 ||
		!snap.Values[0].Window.Start.Equal(now.Truncate(time.Minute).Add(-4*time.Minute)) {
		t.Fatalf("snapshot %+v", snap)
	}
	// The next minute, the same value: sent again, of the window moved on.
	clock.Store(now.Add(time.Minute).UnixNano())
	select {
	case u := <-ch:
		if len(u.Values) != 1 || u.Values[0].Value != 3 || !u.Values[0].Window.Start.Equal(now.Truncate(time.Minute).Add(-3*time.Minute)) {
			t.Fatalf("update %+v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update as the window moved")
	}
	value.Store(1)
	select {
	case u := <-ch:
		if len(u.Values) != 1 || u.Values[0].Value != 1 {
			t.Fatalf("update %+v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update as the value fell")
	}
}
