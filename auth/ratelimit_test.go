package auth_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/internal/fakeclock"
)

func mustLimiter(tb testing.TB, cfg auth.LimiterConfig) *auth.Limiter {
	tb.Helper()
	l, err := auth.NewLimiter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

var minute = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func TestLimiterConfigValidate(t *testing.T) {
	err := auth.LimiterConfig{Limit: 0, Window: time.Millisecond, MaxKeys: -1}.Validate()
	for _, want := range []string{"Limit must be positive", "Window", "MaxKeys"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
	if err := (auth.LimiterConfig{Limit: 1 << 40}).Validate(); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("Validate() of a huge limit = %v", err)
	}
	if err := (auth.LimiterConfig{Limit: 1}).Validate(); err != nil {
		t.Errorf("Validate() of defaults = %v", err)
	}
}

func TestLimiterWindow(t *testing.T) {
	clk := fakeclock.New(minute.Add(15 * time.Second))
	l := mustLimiter(t, auth.LimiterConfig{Limit: 3, Now: clk.Now})
	f := func(key string, allowed bool, count int, reset time.Duration) {
		t.Helper()
		d := l.Take(key)
		want := auth.Decision{Allowed: allowed, Limit: 3, Count: count, Reset: reset}
		if d != want {
			t.Fatalf("Take(%q) = %+v, want %+v", key, d, want)
		}
	}
	// Windows are aligned to the minute: 45 s remain of this one.
	f("a", true, 1, 45*time.Second)
	f("a", true, 2, 45*time.Second)
	clk.Advance(44*time.Second + 500*time.Millisecond)
	f("a", true, 3, 500*time.Millisecond)
	f("a", false, 4, 500*time.Millisecond) // refused requests are counted too
	f("b", true, 1, 500*time.Millisecond)  // another key has its own budget
	clk.Advance(500 * time.Millisecond)
	f("a", true, 1, time.Minute) // a new window
	f("b", true, 1, time.Minute)

	// A clock that steps back does not open a fresh budget.
	clk.Advance(-30 * time.Second)
	f("a", true, 2, time.Minute)
}

func TestDecisionResetSeconds(t *testing.T) {
	f := func(reset time.Duration, want int) {
		t.Helper()
		if got := (auth.Decision{Reset: reset}).ResetSeconds(); got != want {
			t.Errorf("ResetSeconds of %s = %d, want %d", reset, got, want)
		}
	}
	f(time.Nanosecond, 1)
	f(time.Second, 1)
	f(time.Second+1, 2)
	f(59*time.Second+time.Millisecond, 60)
	f(time.Minute, 60)
}

func TestLimiterSweepsEndedWindows(t *testing.T) {
	clk := fakeclock.New(minute)
	l := mustLimiter(t, auth.LimiterConfig{Limit: 10, Now: clk.Now})
	for i := range 5000 {
		l.Take(fmt.Sprint("key-", i))
	}
	if n := l.Keys(); n != 5000 {
		t.Fatalf("%d keys, want 5000", n)
	}
	clk.Advance(time.Minute)
	// Any request to a shard drops that shard's ended window; enough keys
	// reach every shard.
	for i := range 5000 {
		l.Take(fmt.Sprint("next-", i%100))
	}
	if n := l.Keys(); n != 100 {
		t.Fatalf("%d keys after the window ended, want 100", n)
	}
}

func TestLimiterMaxKeys(t *testing.T) {
	clk := fakeclock.New(minute)
	// 64 shards of one key each.
	l := mustLimiter(t, auth.LimiterConfig{Limit: 1000, MaxKeys: 64, Now: clk.Now})
	for i := range 100_000 {
		l.Take(fmt.Sprint("flood-", i))
	}
	if n := l.Keys(); n > 64 {
		t.Fatalf("%d keys tracked, want at most 64", n)
	}
	// The flood shares its counters and is limited jointly.
	refused := 0
	for i := range 1000 {
		if !l.Take(fmt.Sprint("more-", i)).Allowed {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("keys past MaxKeys were not limited")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	clk := fakeclock.New(minute)
	const limit, workers, each = 500, 8, 200
	l := mustLimiter(t, auth.LimiterConfig{Limit: limit, Now: clk.Now})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if l.Take("shared").Allowed {
					allowed.Add(1)
				}
				l.Take(fmt.Sprint("own-", w, "-", i%3))
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != limit {
		t.Fatalf("%d requests allowed on one key, want exactly %d", got, limit)
	}
	if d := l.Take("shared"); d.Count != workers*each+1 {
		t.Fatalf("count %d, want %d", d.Count, workers*each+1)
	}
}

// BenchmarkLimiter measures one decision: on one key from every goroutine
// (one ingest token under load) and on many keys (many clients).
func BenchmarkLimiter(b *testing.B) {
	for _, keys := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			l := mustLimiter(b, auth.LimiterConfig{Limit: 1 << 30})
			names := make([]string, keys)
			for i := range names {
				names[i] = fmt.Sprintf("v1.%064d", i) // about the length of a token
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				for pb.Next() {
					l.Take(names[i%keys])
					i++
				}
			})
		})
	}
}

func TestLimiterPeek(t *testing.T) {
	clk := fakeclock.New(minute)
	l := mustLimiter(t, auth.LimiterConfig{Limit: 2, MaxKeys: 64, Now: clk.Now})
	f := func(d auth.Decision, allowed bool, count int) {
		t.Helper()
		if d.Allowed != allowed || d.Count != count || d.Limit != 2 {
			t.Fatalf("decision %+v, want allowed %v, count %d", d, allowed, count)
		}
	}
	// Peek tells what Take would, and counts nothing.
	f(l.Peek("a"), true, 1)
	f(l.Peek("a"), true, 1)
	f(l.Take("a"), true, 1)
	f(l.Peek("a"), true, 2)
	f(l.Take("a"), true, 2)
	f(l.Peek("a"), false, 3)
	f(l.Peek("a"), false, 3)
	if n := l.Keys(); n != 1 {
		t.Fatalf("Keys() = %d after peeking, want 1", n)
	}
	clk.Advance(time.Minute)
	f(l.Peek("a"), true, 1)
}
