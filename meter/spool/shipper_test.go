package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

const testToken = "test-token"

// fakeUsaged implements just enough of POST /api/v2/usage/events: it decodes
// gzip NDJSON with usaged's own decoder, counts every event it receives,
// deduplicates by id and answers accepted/duplicates. respond, if set,
// decides the status of request number i (from 0) of n events before
// anything is recorded; 0 records and answers 200.
type fakeUsaged struct {
	t       testing.TB
	respond func(i, n int) (status int, header http.Header)
	reject  func(ev usage.Event) bool // events answered as rejected
	// lose, if set, is asked after a batch was recorded: true holds the
	// answer back until the client gives up, as if the connection broke.
	lose func(i int) bool

	mu       sync.Mutex
	requests int
	total    int // events received, duplicates included
	events   map[string]usage.Event
	times    []time.Time // when each request came
}

func newFakeUsaged(t testing.TB) *fakeUsaged {
	return &fakeUsaged{t: t, events: make(map[string]usage.Event)}
}

func (f *fakeUsaged) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != client.EventsPath {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	format, err := ingest.FormatOf(r.Header.Get("Content-Type"))
	if err != nil || format != ingest.FormatNDJSON || r.Header.Get("Content-Encoding") != "gzip" {
		f.t.Errorf("request with Content-Type %q, Content-Encoding %q", r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"))
		http.Error(w, "want gzip NDJSON", http.StatusUnsupportedMediaType)
		return
	}
	body, err := ingest.ReadBody(r.Body, "gzip", 64<<20)
	if err != nil {
		f.t.Errorf("reading the body: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, err := ingest.Decode(body, ingest.FormatNDJSON, ingest.Limits{})
	if err != nil || len(b.Errors) > 0 {
		f.t.Errorf("decoding the body: %v %v", err, b.Errors)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	i := f.requests
	f.requests++
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	if f.respond != nil {
		if status, h := f.respond(i, len(b.Events)); status != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			http.Error(w, "no", status)
			return
		}
	}
	res := ingest.Result{Errors: []ingest.EventError{}}
	f.mu.Lock()
	for j, ev := range b.Events {
		f.total++
		if f.reject != nil && f.reject(ev) {
			res.Rejected++
			res.Errors = append(res.Errors, ingest.EventError{Index: j, ID: ev.ID, Code: ingest.CodeInvalidField, Message: "status must be 100–599"})
			continue
		}
		if _, dup := f.events[ev.ID]; dup {
			res.Duplicates++
			continue
		}
		f.events[ev.ID] = ev
		res.Accepted++
	}
	f.mu.Unlock()
	if f.lose != nil && f.lose(i) {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func (f *fakeUsaged) counts() (distinct, total, requests int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events), f.total, f.requests
}

// serve starts f on a new 127.0.0.1 server and returns its base URL.
func (f *fakeUsaged) serve(tb testing.TB) string {
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// eventually waits for cond, failing after a while.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startShipper runs a shipper until the returned stop is called (or the
// test ends).
func startShipper(tb testing.TB, cfg ShipperConfig) (*Shipper, func()) {
	tb.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	}
	sh, err := NewShipper(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return sh, stop
}

func spoolEvents(tb testing.TB, s *Spool, prefix string, n int) {
	tb.Helper()
	for i := range n {
		s.Add(testEvent(prefix, i))
	}
	if err := s.Flush(); err != nil {
		tb.Fatal(err)
	}
}

func TestShipperServerDownThenUp(t *testing.T) {
	// Take an address, then let it refuse connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	s := MustOpen(t, Config{Dir: t.TempDir()})
	const n = 2000
	spoolEvents(t, s, "e", n)
	sh, _ := startShipper(t, ShipperConfig{Spool: s, Server: "http://" + addr, BatchSize: 300})
	eventually(t, "retries while the connection is refused", func() bool { return sh.Stats().Retries >= 3 })
	if st := sh.Stats(); st.Batches != 0 || st.LastError == "" {
		t.Fatalf("stats while down: %+v", st)
	}

	// Up, but answering 503 for a while.
	f := newFakeUsaged(t)
	var mu sync.Mutex
	unavailable := true
	f.respond = func(i, n int) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if unavailable {
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the address cannot be taken again: %v", err)
	}
	srv := httptest.NewUnstartedServer(f)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	eventually(t, "retries of 503s", func() bool { _, _, r := f.counts(); return r >= 3 })
	if st := s.Stats(); st.PendingEvents != n {
		t.Fatalf("after 503s, %d events pending, want all %d", st.PendingEvents, n)
	}
	mu.Lock()
	unavailable = false
	mu.Unlock()

	eventually(t, "delivery", func() bool { return s.Stats().PendingEvents == 0 })
	distinct, total, _ := f.counts()
	if distinct != n || total != n {
		t.Fatalf("usaged received %d events, %d distinct; want each of %d exactly once", total, distinct, n)
	}
	for i := range n {
		want := testEvent("e", i)
		if got := f.events[want.ID]; got != want {
			t.Fatalf("usaged decoded\n %+v\nwant %+v", got, want)
		}
	}
	st := sh.Stats()
	if st.Accepted != n || st.Duplicates != 0 || st.Batches != (n+299)/300 || st.Retries < 6 {
		t.Fatalf("shipper stats %+v", st)
	}
	if ss := s.Stats(); ss.Shipped != n {
		t.Fatalf("spool stats %+v", ss)
	}
}

func TestShipperRestartMidStream(t *testing.T) {
	dir := t.TempDir()
	f := newFakeUsaged(t)
	// The fourth batch is recorded but its answer never arrives: the
	// proxy is stopped while waiting for it.
	f.lose = func(i int) bool { return i == 3 }
	url := f.serve(t)
	const n, batch = 1000, 100

	s := MustOpen(t, Config{Dir: dir, segmentBytes: 8 << 10})
	spoolEvents(t, s, "e", n)
	_, stop := startShipper(t, ShipperConfig{Spool: s, Server: url, BatchSize: batch})
	eventually(t, "four batches", func() bool { d, _, _ := f.counts(); return d >= 4*batch })
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = MustOpen(t, Config{Dir: dir, segmentBytes: 8 << 10})
	if p := s.Stats().PendingEvents; p != n-3*batch {
		t.Fatalf("after restart %d events pending, want %d: the three acknowledged batches are done", p, n-3*batch)
	}
	sh, _ := startShipper(t, ShipperConfig{Spool: s, Server: url, BatchSize: batch})
	eventually(t, "delivery", func() bool { return s.Stats().PendingEvents == 0 })
	distinct, total, _ := f.counts()
	if distinct != n || total != n+batch {
		t.Fatalf("usaged received %d events, %d distinct; want all %d and only the in-flight batch twice", total, distinct, n)
	}
	if st := sh.Stats(); st.Duplicates != batch || st.Accepted != n-4*batch {
		t.Fatalf("stats after restart %+v", st)
	}
}

func TestShipperRetryAfter(t *testing.T) {
	f := newFakeUsaged(t)
	f.respond = func(i, n int) (int, http.Header) {
		if i == 0 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return 0, nil
	}
	s := MustOpen(t, Config{Dir: t.TempDir()})
	spoolEvents(t, s, "e", 10)
	startShipper(t, ShipperConfig{Spool: s, Server: f.serve(t)})
	eventually(t, "delivery", func() bool { return s.Stats().PendingEvents == 0 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.times) != 2 || f.times[1].Sub(f.times[0]) < 900*time.Millisecond {
		t.Fatalf("requests at %v: want the retry a second after the 429", f.times)
	}
}

func TestShipperConfigurationErrorsLoseNothing(t *testing.T) {
	for _, status := range []int{401, 403, 400, 404, 415} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFakeUsaged(t)
			f.respond = func(i, n int) (int, http.Header) {
				if i < 3 { // until an operator fixes it
					return status, nil
				}
				return 0, nil
			}
			s := MustOpen(t, Config{Dir: t.TempDir()})
			spoolEvents(t, s, "e", 50)
			start := time.Now()
			sh, _ := startShipper(t, ShipperConfig{Spool: s, Server: f.serve(t), MinBackoff: time.Millisecond, MaxBackoff: 40 * time.Millisecond})
			eventually(t, "delivery", func() bool { return s.Stats().PendingEvents == 0 })
			if d := time.Since(start); d < 3*40*time.Millisecond {
				t.Fatalf("delivered after %s: the retries did not wait MaxBackoff", d)
			}
			st := sh.Stats()
			if st.Accepted != 50 || st.Retries != 3 || !strings.Contains(st.LastError, fmt.Sprint(status)) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestShipperHalvesBatchesOn413(t *testing.T) {
	f := newFakeUsaged(t)
	f.respond = func(i, n int) (int, http.Header) {
		if n > 60 {
			return http.StatusRequestEntityTooLarge, nil
		}
		return 0, nil
	}
	s := MustOpen(t, Config{Dir: t.TempDir()})
	const n = 1000
	spoolEvents(t, s, "e", n)
	sh, _ := startShipper(t, ShipperConfig{Spool: s, Server: f.serve(t), BatchSize: 500})
	eventually(t, "delivery", func() bool { return s.Stats().PendingEvents == 0 })
	if distinct, total, _ := f.counts(); distinct != n || total != n {
		t.Fatalf("usaged received %d events, %d distinct", total, distinct)
	}
	if st := sh.Stats(); st.Retries != 4 { // 500 → 250 → 125 → 62 → 31
		t.Fatalf("stats %+v: want four halvings", st)
	}
}

func TestShipperRejectedEventsAreAcknowledged(t *testing.T) {
	f := newFakeUsaged(t)
	f.reject = func(ev usage.Event) bool { return ev.Status >= 600 }
	s := MustOpen(t, Config{Dir: t.TempDir()})
	const n = 1000
	spoolEvents(t, s, "e", n) // statuses 200 to 599, then 200 again: none over 599
	s.Add(usage.Event{ID: "bad-1", Time: time.Now().UTC(), Status: 700})
	s.Add(usage.Event{ID: "bad-2", Time: time.Now().UTC(), Status: 999})
	s.Flush()
	sh, _ := startShipper(t, ShipperConfig{Spool: s, Server: f.serve(t)})
	eventually(t, "delivery", func() bool { return s.Stats().PendingEvents == 0 })
	if st := sh.Stats(); st.Accepted != n || st.Rejected != 2 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShipperConfigValidate(t *testing.T) {
	s := MustOpen(t, Config{Dir: t.TempDir()})
	f := func(c ShipperConfig, want string) {
		t.Helper()
		_, err := NewShipper(c)
		if want == "" {
			if err != nil {
				t.Fatalf("NewShipper(%+v): %v", c, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("NewShipper(%+v) = %v, want an error mentioning %q", c, err, want)
		}
	}
	ok := ShipperConfig{Spool: s, Server: "http://127.0.0.1:8080", Token: "t"}
	f(ok, "")
	f(ShipperConfig{}, "needs a Spool")
	f(ShipperConfig{Spool: s, Token: "t"}, "Server is required")
	f(ShipperConfig{Spool: s, Server: "127.0.0.1:8080", Token: "t"}, "absolute http or https URL")
	f(ShipperConfig{Spool: s, Server: "ftp://x", Token: "t"}, "absolute http or https URL")
	f(ShipperConfig{Spool: s, Server: "http://x"}, "Token is required")
	bad := ok
	bad.BatchSize = MaxBatchSize + 1
	f(bad, "BatchSize must be from 1")
	bad = ok
	bad.MinBackoff, bad.MaxBackoff = time.Minute, time.Second
	f(bad, "must not be over MaxBackoff")
}
