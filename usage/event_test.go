package usage

import "testing"

func TestClampMeasures(t *testing.T) {
	e := Event{DurationMs: 2 * MaxDurationMs, RequestBytes: -1, ResponseBytes: 5}
	e.ClampMeasures()
	if e.DurationMs != MaxDurationMs || e.RequestBytes != 0 || e.ResponseBytes != 5 {
		t.Fatalf("clamped to %d ms, %d and %d bytes", e.DurationMs, e.RequestBytes, e.ResponseBytes)
	}
}
