package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// MustOpen opens a spool and closes it when the test ends.
func MustOpen(tb testing.TB, cfg Config) *Spool {
	tb.Helper()
	s, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// testEvent returns event i with every field set.
func testEvent(prefix string, i int) usage.Event {
	return usage.Event{
		ID:             fmt.Sprintf("%s-%d", prefix, i),
		Time:           time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1234567 * time.Microsecond),
		OrganizationID: "org-" + fmt.Sprint(i%3),
		ClientID:       "client-" + fmt.Sprint(i%7),
		ClientName:     "Client «" + fmt.Sprint(i%7) + "»",
		UserID:         "user-" + fmt.Sprint(i%11),
		TemplateURI:    "api/v2/users/{userId}",
		HTTPMethod:     "GET",
		Status:         200 + i%400,
		Platform:       "proxy",
		DurationMs:     int64(i % 1000),
		RequestBytes:   int64(i * 3),
		ResponseBytes:  int64(i * 1000),
	}
}

// drain reads n events through Next and Ack, failing if they do not come.
func drain(tb testing.TB, s *Spool, n, batch int) []usage.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []usage.Event
	for len(out) < n {
		evs, err := s.Next(ctx, min(batch, n-len(out)))
		if err != nil {
			tb.Fatalf("Next after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, evs...)
		if err := s.Ack(len(evs)); err != nil {
			tb.Fatalf("Ack: %v", err)
		}
	}
	return out
}

// readAll returns every pending event without acknowledging any.
func readAll(tb testing.TB, s *Spool) []usage.Event {
	tb.Helper()
	n := s.Stats().PendingEvents
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := s.Next(ctx, n)
	if err != nil {
		tb.Fatalf("Next: %v", err)
	}
	if len(evs) != n {
		tb.Fatalf("Next returned %d events, %d are pending", len(evs), n)
	}
	return evs
}

func segFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func diskSize(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	for _, f := range segFiles(tb, dir) {
		fi, err := os.Stat(f)
		if err != nil {
			tb.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestRoundTripEveryField(t *testing.T) {
	dir := t.TempDir()
	evs := []usage.Event{
		testEvent("a", 1),
		{ID: "minimal", Time: time.Unix(1767225600, 0).UTC(), OrganizationID: "o", ClientID: "c", ClientName: "c", TemplateURI: "x", HTTPMethod: "POST", Status: 599},
		{ID: "zero-time"},
		{ID: "extremes", Time: time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC), Status: -1,
			DurationMs: 1<<63 - 1, RequestBytes: -1 << 63, ResponseBytes: -5, UserID: "ü\x00\n\"", Platform: strings.Repeat("p", 5000)},
		{ID: "before-1970", Time: time.Date(1900, 1, 1, 0, 0, 0, 999, time.UTC)},
	}
	s := MustOpen(t, Config{Dir: dir})
	for _, ev := range evs {
		s.Add(ev)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = MustOpen(t, Config{Dir: dir})
	if st := s.Stats(); st.PendingEvents != len(evs) {
		t.Fatalf("after Open, %d events pending, want %d", st.PendingEvents, len(evs))
	}
	got := readAll(t, s)
	for i := range evs {
		if got[i] != evs[i] {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], evs[i])
		}
	}

	// A time in another zone comes back as the same instant, in UTC.
	z := usage.Event{ID: "zoned", Time: time.Date(2026, 1, 1, 9, 0, 0, 5, time.FixedZone("X", 5*3600))}
	b, _ := appendRecord(nil, &z)
	back, err := decodePayload(b[recordHeader:])
	if err != nil || !back.Time.Equal(z.Time) || back.Time.Location() != time.UTC {
		t.Fatalf("zoned time came back as %v (%v), want %v in UTC", back.Time, err, z.Time)
	}
}

func TestTooLargeEventIsDropped(t *testing.T) {
	s := MustOpen(t, Config{Dir: t.TempDir()})
	s.Add(usage.Event{ID: "huge", TemplateURI: strings.Repeat("x", maxPayload)})
	s.Add(testEvent("ok", 1))
	if st := s.Stats(); st.Dropped != 1 || st.Spooled != 1 {
		t.Fatalf("stats %+v, want one dropped and one spooled", st)
	}
}

func TestTornTail(t *testing.T) {
	const n = 100
	f := func(name string, damage func(b []byte) []byte, want int) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := MustOpen(t, Config{Dir: dir})
			for i := range n {
				s.Add(testEvent("e", i))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			segs := segFiles(t, dir)
			last := segs[len(segs)-1] // the one holding the events: nothing was written after
			b, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(last, damage(b), 0o644); err != nil {
				t.Fatal(err)
			}

			s = MustOpen(t, Config{Dir: dir})
			got := readAll(t, s)
			if len(got) != want {
				t.Fatalf("after the damage, %d events read back, want %d", len(got), want)
			}
			for i, ev := range got {
				if ev != testEvent("e", i) {
					t.Fatalf("event %d is %+v", i, ev)
				}
			}
			// The tail was cut off: events added now follow the good ones
			// and read back after another restart.
			s.Add(testEvent("after", 0))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = MustOpen(t, Config{Dir: dir})
			got = readAll(t, s)
			if len(got) != want+1 || got[want] != testEvent("after", 0) {
				t.Fatalf("after another restart, %d events, last %+v", len(got), got[len(got)-1])
			}
		})
	}
	f("truncated mid-record", func(b []byte) []byte { return b[:len(b)-7] }, n-1)
	f("truncated mid-header", func(b []byte) []byte {
		// Cut inside the last record's 8-byte header.
		rr := newRecordReader(bytes.NewReader(b), 0, int64(len(b)))
		var lastStart int64
		for {
			start := rr.off
			if _, _, err := rr.next(); err != nil {
				break
			}
			lastStart = start
		}
		return b[:lastStart+5]
	}, n-1)
	f("garbage appended", func(b []byte) []byte { return append(b, "\x13\x00\x00\x00garbage that is not a record"...) }, n)
	f("zeros appended", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, n)
	f("last record flipped", func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }, n-1)
	f("huge length", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5) }, n)
}

func TestAckSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, segmentBytes: 4 << 10, SyncEvery: time.Millisecond}
	s := MustOpen(t, cfg)
	for i := range 500 {
		s.Add(testEvent("e", i))
		if i%50 == 49 { // a write per 50 events: segments roll between writes
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(segFiles(t, dir)) < 5 {
		t.Fatalf("only %d segments: the test needs acknowledgements across segments", len(segFiles(t, dir)))
	}
	got := drain(t, s, 230, 70)
	// A batch acknowledged in two parts.
	evs, err := s.Next(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(5); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(5); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(11); err == nil {
		t.Fatal("Ack beyond the batch succeeded")
	}
	got = append(got, evs[:10]...)
	if st := s.Stats(); st.Shipped != 240 || st.PendingEvents != 260 {
		t.Fatalf("stats %+v, want 240 shipped and 260 pending", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = MustOpen(t, cfg)
	if st := s.Stats(); st.PendingEvents != 260 {
		t.Fatalf("after restart %d events pending, want 260", st.PendingEvents)
	}
	got = append(got, drain(t, s, 260, 100)...)
	for i, ev := range got {
		if ev != testEvent("e", i) {
			t.Fatalf("event %d is %s, want e-%d", i, ev.ID, i)
		}
	}
	// Everything is acknowledged: only the segment being written is left.
	s.Add(testEvent("x", 0)) // makes the writer roll past the finished segments
	s.Flush()
	if segs := segFiles(t, dir); len(segs) > 2 {
		t.Fatalf("%d segments left after everything was acknowledged: %v", len(segs), segs)
	}
}

func TestNextBlocksUntilDurable(t *testing.T) {
	s := MustOpen(t, Config{Dir: t.TempDir(), SyncEvery: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty spool: %v, want the context's deadline", err)
	}
	got := make(chan []usage.Event)
	go func() {
		evs, _ := s.Next(context.Background(), 10)
		got <- evs
	}()
	s.Add(testEvent("e", 0))
	select {
	case <-got:
		t.Fatal("Next returned an event that was not fsynced yet")
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if evs := <-got; len(evs) != 1 || evs[0].ID != "e-0" {
		t.Fatalf("Next returned %v", evs)
	}

	// Close wakes a blocked Next.
	s.Ack(1)
	errc := make(chan error)
	go func() {
		_, err := s.Next(context.Background(), 10)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next across Close: %v, want ErrClosed", err)
	}
	s.Add(testEvent("late", 0))
	if st := s.Stats(); st.Dropped != 1 {
		t.Fatalf("Add after Close: %+v, want one dropped", st)
	}
}

func TestMaxBytes(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = MinMaxBytes
	s := MustOpen(t, Config{Dir: dir, MaxBytes: maxBytes, SyncEvery: time.Millisecond})
	const n = 5000 // about ten times what fits
	start := time.Now()
	for i := range n {
		s.Add(testEvent("e", i))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d Adds took %s", n, d)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Spooled+st.Dropped != n || st.PendingEvents != int(st.Spooled) {
		t.Fatalf("stats %+v: want drops, and spooled + dropped = %d", st, n)
	}
	if size := diskSize(t, dir); size > maxBytes {
		t.Fatalf("segments take %d bytes, over MaxBytes %d", size, maxBytes)
	}
	// What was spooled comes back in the order it was added, each once.
	// It is mostly the first events, but not only: the room an event takes
	// on disk and in the buffer differ a little, so once the writer has
	// caught up a later event may fit where an earlier one did not.
	got := drain(t, s, int(st.Spooled), 1000)
	last := -1
	for i, ev := range got {
		var k int
		if _, err := fmt.Sscanf(ev.ID, "e-%d", &k); err != nil || k <= last {
			t.Fatalf("event %d is %s, after e-%d: not in the order added", i, ev.ID, last)
		}
		last = k
	}
	// Acknowledged space is reclaimed: the spool takes events again. (Half
	// as many: the segment being written is kept until it is full.)
	for i := range int(st.Spooled) / 2 {
		s.Add(testEvent("again", i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st2 := s.Stats(); st2.Dropped != st.Dropped || st2.PendingEvents != int(st.Spooled)/2 {
		t.Fatalf("after draining, stats %+v: the spool did not take events again", st2)
	}
	if size := diskSize(t, dir); size > maxBytes {
		t.Fatalf("segments take %d bytes, over MaxBytes %d", size, maxBytes)
	}
}

func TestAddNeverBlocksOnAStuckWriter(t *testing.T) {
	s := MustOpen(t, Config{Dir: t.TempDir(), bufferBytes: 64 << 10, SyncEvery: time.Millisecond})
	s.wmu.Lock() // the disk writer hangs, as on a dead NFS mount
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10_000 {
			s.Add(testEvent("e", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked on a stuck writer")
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Spooled+st.Dropped != 10_000 || st.PendingBytes > 64<<10 {
		t.Fatalf("stats %+v: want drops once 64 KiB are buffered", st)
	}
	s.wmu.Unlock()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, int(st.Spooled), 5000); got[len(got)-1].ID != fmt.Sprintf("e-%d", st.Spooled-1) {
		t.Fatalf("last event %s", got[len(got)-1].ID)
	}
}

func TestConcurrentAdd(t *testing.T) {
	s := MustOpen(t, Config{Dir: t.TempDir(), SyncEvery: time.Millisecond, segmentBytes: 64 << 10})
	const writers, each = 16, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				s.Add(testEvent(fmt.Sprint("w", w), i))
			}
		})
	}
	// The consumer runs while they add.
	got := drain(t, s, writers*each, 3000)
	wg.Wait()
	next := make(map[string]int)
	for _, ev := range got {
		w, i, _ := strings.Cut(ev.ID, "-")
		if want := fmt.Sprint(next[w]); i != want {
			t.Fatalf("writer %s: event %s after %d events, want %s: lost, repeated or out of order", w, i, next[w], want)
		}
		next[w]++
	}
	if st := s.Stats(); st.Spooled != writers*each || st.Shipped != writers*each || st.Dropped != 0 || st.PendingEvents != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	MustOpen(t, Config{Dir: dir})
	if s, err := Open(Config{Dir: dir}); err == nil {
		s.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestAckFileDamaged(t *testing.T) {
	dir := t.TempDir()
	s := MustOpen(t, Config{Dir: dir})
	for i := range 10 {
		s.Add(testEvent("e", i))
	}
	s.Flush()
	drain(t, s, 4, 4)
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, ackFile), []byte("nonsense"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without a position, everything left is sent again: usaged counts
	// the repeats once, and nothing is lost.
	s = MustOpen(t, Config{Dir: dir})
	if got := readAll(t, s); len(got) != 10 || got[0].ID != "e-0" {
		t.Fatalf("%d events, first %s", len(got), got[0].ID)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(c Config, want string) {
		t.Helper()
		err := c.Validate()
		if want == "" {
			if err != nil {
				t.Fatalf("Validate(%+v): %v", c, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate(%+v) = %v, want an error mentioning %q", c, err, want)
		}
	}
	f(Config{Dir: "x"}, "")
	f(Config{Dir: "x", MaxBytes: MinMaxBytes, SyncEvery: time.Second}, "")
	f(Config{}, "Dir is required")
	f(Config{Dir: "x", MaxBytes: 100}, "MaxBytes must be at least")
	f(Config{Dir: "x", MaxBytes: -1}, "MaxBytes must be at least")
	f(Config{Dir: "x", SyncEvery: -time.Second}, "SyncEvery must not be negative")
	err := Config{MaxBytes: -1, SyncEvery: -1}.Validate()
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Fatalf("Validate reported %d problems, want all 3: %v", n, err)
	}
}

// FuzzDecodePayload feeds arbitrary payloads to the record decoder: it must
// never panic, and what it decodes must encode back to the same event.
func FuzzDecodePayload(f *testing.F) {
	for _, ev := range []usage.Event{testEvent("seed", 7), {}, {ID: "x", Time: time.Unix(-1, 5)}} {
		b, _ := appendRecord(nil, &ev)
		f.Add(b[recordHeader:])
	}
	f.Add([]byte{recordVersion})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		ev, err := decodePayload(p)
		if err != nil {
			return
		}
		b, ok := appendRecord(nil, &ev)
		if !ok {
			return
		}
		back, err := decodePayload(b[recordHeader:])
		if err != nil || back != ev {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", ev, back, err)
		}
	})
}

// FuzzReplay opens a spool whose segment holds arbitrary bytes: Open must
// not fail and everything it reads must be a whole record.
func FuzzReplay(f *testing.F) {
	var good []byte
	for i := range 3 {
		ev := testEvent("seed", i)
		good, _ = appendRecord(good, &ev)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), 1, 0, 0, 0, 0, 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		n := s.Stats().PendingEvents
		if n == 0 {
			return
		}
		evs, err := s.Next(context.Background(), n)
		if err != nil || len(evs) != n {
			t.Fatalf("Next: %d of %d events, %v", len(evs), n, err)
		}
	})
}
