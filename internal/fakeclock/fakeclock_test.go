package fakeclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/fakeclock"
)

func TestClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	c := fakeclock.New(t0)
	if got := c.Now(); !got.Equal(t0) || got.Location() != time.UTC {
		t.Fatalf("Now() = %v, want %v", got, t0)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); got != want {
		t.Fatalf("after Advance, Now() = %v, want %v", got, want)
	}
	c.Set(t0)
	if got := c.Now(); got != t0 {
		t.Fatalf("after Set, Now() = %v, want %v", got, t0)
	}
}

func TestClockConcurrentUse(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	c := fakeclock.New(t0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Millisecond)
				c.Now()
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(800*time.Millisecond); got != want {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}
