package ingest

import (
	"testing"
	"time"
)

// FuzzParseTimeUTC checks the fast path against the standard parser.
func FuzzParseTimeUTC(f *testing.F) {
	for _, s := range []string{"2026-01-02T15:04:05Z", "2026-02-30T00:00:00Z", "2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "2026-1-02T15:04:05Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimeUTC(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339, s)
		if err != nil || !got.Equal(want) {
			t.Fatalf("parseTimeUTC(%q) = %v, but time.Parse = %v, %v", s, got, want, err)
		}
	})
}
