package retryafter

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const most = 10 * time.Minute
	f := func(v string, want time.Duration) {
		t.Helper()
		if got := Parse(v, now, most); got != want {
			t.Fatalf("Parse(%q) = %s, want %s", v, got, want)
		}
	}
	f("", 0)
	f("0", 0)
	f("-3", 0)
	f("40", 40*time.Second)
	f(" 7 ", 7*time.Second)
	f("999999999999", most)
	f("Sun, 01 Mar 2026 12:00:30 GMT", 30*time.Second)
	f("Sun, 01 Mar 2026 14:00:00 GMT", most)
	f("Sun, 01 Mar 2026 11:00:00 GMT", 0)
	f("soon", 0)
}
