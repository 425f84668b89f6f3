package pebble

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// TestRepeatedLogLines: an identical line (up to its digits) is logged once
// per window, its repeats counted and reported in one summary line.
func TestRepeatedLogLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := pebbleLogger{l: slog.New(slog.NewTextHandler(&buf, nil)), health: newHealth(slog.Default()), rep: newRepeats(time.Minute, func() time.Time { return now })}
	for i := range 15000 {
		p.Errorf("background error: write %06d.sst: no space left on device", i)
	}
	p.Errorf("a different error")
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("15001 lines of 2 kinds logged %d lines, want 2:\n%s", got, buf.String())
	}
	now = now.Add(61 * time.Second)
	p.Errorf("background error: write 015000.sst: no space left on device")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("after the window, want the summary and the line again, got:\n%s", buf.String())
	}
	if !strings.Contains(lines[2], "repeated 14999 times in the last 1m1s") || !strings.Contains(lines[2], "000000.sst") {
		t.Errorf("summary = %s", lines[2])
	}
	if !strings.Contains(lines[3], "015000.sst") {
		t.Errorf("after the summary the line is logged again: %s", lines[3])
	}
	p.Errorf("background error: write 015001.sst: no space left on device")
	p.flush()
	if last := lines[len(lines)-1]; !strings.Contains(buf.String(), "repeated 1 times") {
		t.Errorf("flush did not report the pending repeat; last line %s", last)
	}

	f := func(in, want string) {
		t.Helper()
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
	f("write 000123.log: offset 4096", "write #.log: offset #")
	f("no digits", "no digits")
	f("", "")
}

// TestFatalUnwindsToGuard: Pebble's Fatalf on a goroutine inside guard
// becomes the failed state's error, and every write is then refused with
// it.
func TestFatalUnwindsToGuard(t *testing.T) {
	t.Parallel()
	d, err := Open(Config{Dir: t.TempDir(), FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	err = d.guard(func() error {
		d.plog.Fatalf("pebble: fatal commit error: %v", "no space left on device")
		return nil
	})
	if usage.KindOf(err) != usage.KindUnavailable || !strings.Contains(errors.Unwrap(err).Error(), "no space left") {
		t.Fatalf("guard returned %v, want the failed state", err)
	}
	select {
	case <-d.FailedC():
	default:
		t.Fatal("FailedC not closed")
	}
	if d.Failed() != err {
		t.Errorf("Failed() = %v", d.Failed())
	}
	ctx := context.Background()
	ev := usage.Event{ID: "e", OrganizationID: "o", ClientID: "c", Time: time.Now()}
	writes := map[string]error{
		"Append":          func() error { _, err := d.Append(ctx, []usage.Event{ev}, time.Time{}); return err }(),
		"AppendActivity":  func() error { _, err := d.AppendActivity(ctx, usage.GUID{1}, nil, time.Time{}); return err }(),
		"PutOrganization": d.PutOrganization(ctx, usage.Organization{ID: "o"}),
		"PutClient":       d.PutClient(ctx, usage.Client{ID: "c", OrganizationID: "o"}),
		"PutPartner":      d.PutPartner(ctx, usage.Partner{}),
		"DeleteAPIKey":    d.DeleteAPIKey(ctx, [32]byte{}),
		"PutExecution":    d.PutExecution(ctx, usage.Execution{ID: "x"}),
		"FinishExecution": d.FinishExecution(ctx, usage.Execution{ID: "x"}, nil),
		"DeleteExecution": d.DeleteExecution(ctx, "x"),
		"ExpireDedupe":    d.ExpireDedupe(ctx, time.Now()),
	}
	for name, err := range writes {
		if err != d.Failed() {
			t.Errorf("%s on a failed store: %v, want the failed state's error", name, err)
		}
	}
	// Reads still work; Close gives up rather than hang.
	if _, err := d.Organizations(ctx); err != nil {
		t.Errorf("read on a failed store: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Close() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Close of a failed store hangs")
	}
}

// TestPanicInGuard: a plain panic of the engine is recovered too.
func TestPanicInGuard(t *testing.T) {
	t.Parallel()
	d, err := Open(Config{Dir: t.TempDir(), FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.guard(func() error { panic(errors.New("write 000006.log: no space left on device")) })
	if usage.KindOf(err) != usage.KindUnavailable || d.Failed() == nil {
		t.Fatalf("guard returned %v, Failed %v", err, d.Failed())
	}
}

// TestHeadroom: writes that add data are refused below the reserve, which
// is capped at 5% of the filesystem.
func TestHeadroom(t *testing.T) {
	free, total := int64(100<<20), int64(1<<30)
	defer func(f func(string) (uint64, uint64, error)) { statfsFunc = f }(statfsFunc)
	statfsFunc = func(string) (uint64, uint64, error) { return uint64(free), uint64(total), nil }
	now := time.Unix(0, 0)
	h := &headroom{reserve: 256 << 20, now: func() time.Time { return now }}
	// 5% of 1 GiB is 51.2 MiB, less than 256 MiB.
	if err := h.need(1 << 20); err != nil {
		t.Fatalf("100 MiB free, reserve capped at 51.2 MiB: %v", err)
	}
	if err := h.need(48 << 20); usage.KindOf(err) != usage.KindUnavailable || usage.RetryAfterOf(err) == 0 || !strings.Contains(err.Error(), "reserve of 51.2 MiB") {
		t.Fatalf("writing past the reserve: %v", err)
	}
	// Bytes written count until the next reading.
	free = 53 << 20
	now = now.Add(spaceRefresh)
	if err := h.need(1 << 20); err != nil {
		t.Fatalf("52 MiB left after the write: %v", err)
	}
	if err := h.need(1 << 20); err == nil {
		t.Error("the bytes written since the last reading were not counted")
	}
	free = 900 << 20
	now = now.Add(spaceRefresh)
	if err := h.need(1 << 20); err != nil {
		t.Errorf("after space was freed: %v", err)
	}
	off := &headroom{reserve: 0, now: time.Now}
	free = 0
	if err := off.need(1 << 30); err != nil {
		t.Errorf("no reserve: %v", err)
	}
}

// TestHeadroomLogsTransitions: crossing the reserve is logged once each way,
// however many writes are refused meanwhile.
func TestHeadroomLogsTransitions(t *testing.T) {
	free := int64(10 << 20)
	defer func(f func(string) (uint64, uint64, error)) { statfsFunc = f }(statfsFunc)
	statfsFunc = func(string) (uint64, uint64, error) { return uint64(free), 1 << 40, nil }
	now := time.Unix(0, 0)
	var buf bytes.Buffer
	h := &headroom{reserve: 256 << 20, now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 100 {
		if err := h.need(1); err == nil {
			t.Fatal("10 MiB free under a 256 MiB reserve: not refused")
		}
		now = now.Add(spaceRefresh)
	}
	free = 1 << 30
	for range 100 {
		if err := h.need(1); err != nil {
			t.Fatalf("1 GiB free: %v", err)
		}
		now = now.Add(spaceRefresh)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[1], "level=INFO") {
		t.Fatalf("want one WARN below the reserve and one INFO back above, got %d lines:\n%s", len(lines), buf.String())
	}
}
