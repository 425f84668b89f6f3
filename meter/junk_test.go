package meter_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/server"
)

// tokenServer is a real usaged Genesys face on 127.0.0.1, with its default
// rate limits, that counts the token lookups reaching it.
type tokenServer struct {
	url     string
	auth    *auth.Service
	lookups atomic.Int64 // GET /api/v2/tokens/me, whatever the answer
	limited atomic.Int64 // of those, answered 429

	mu       sync.Mutex
	answered map[[32]byte]int // tokens answered 200 or 401, by digest
}

func mustTokenServer(t *testing.T, rateLimit int) *tokenServer {
	t.Helper()
	s := servertest.Start(t, servertest.Memory, func(c *server.Config) {
		c.Auth.AdminToken = "admin-token-for-tests"
		c.Limits.RateLimit = rateLimit
	})
	mux := s.Handler()
	as := s.Auth()
	ts := &tokenServer{auth: as, answered: map[[32]byte]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/tokens/me" {
			mux.ServeHTTP(w, r)
			return
		}
		ts.lookups.Add(1)
		rec := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusTooManyRequests:
			ts.limited.Add(1)
		case http.StatusOK, http.StatusUnauthorized:
			ts.mu.Lock()
			ts.answered[sha256.Sum256([]byte(r.Header.Get("Authorization")))]++
			ts.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	return ts
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// mustClient creates a client of a new organization and returns a token of
// it and the identity it stands for.
func (ts *tokenServer) mustClient(t *testing.T, name string) (string, attrib.Identity) {
	t.Helper()
	org, err := ts.auth.CreateOrganization(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	c, secret, err := ts.auth.CreateClient(t.Context(), org.ID, auth.ClientSpec{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := ts.auth.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok, attrib.Identity{OrganizationID: org.ID, ClientID: c.ID, ClientName: name}
}

// maxAnswered is the most answers any one token got.
func (ts *tokenServer) maxAnswered() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, c := range ts.answered {
		n = max(n, c)
	}
	return n
}

// get sends GET path through the proxy with tok, and fails unless the
// upstream answered.
func get(t *testing.T, proxy *httptest.Server, tok string, header ...string) {
	req, _ := http.NewRequest("GET", proxy.URL+"/api/v2/users/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := proxy.Client().Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("proxied request: %s", resp.Status)
	}
}

// TestProxyJunkTokens: 2,000 requests with made-up tokens, against usaged
// with its default rate limits, ask usaged about each token at most once,
// stop asking while usaged answers 429, and leave the valid clients'
// requests counted exactly.
func TestProxyJunkTokens(t *testing.T) {
	ts := mustTokenServer(t, genesys.DefaultRateLimit)
	upstream := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	who, err := attrib.NewUsaged(attrib.UsagedConfig{Server: ts.url})
	if err != nil {
		t.Fatal(err)
	}
	// Retries every 50 ms instead of 2 s, so that any retry storm shows
	// within the test.
	m, sink := mustMeter(t, func(c *meter.Config) {
		c.Attributor, c.RetryEvery = attrib.Chain(who), 50*time.Millisecond
		c.Anonymous, c.AnonymousOrganization = "anon", "org-anon"
	})
	proxy := mustProxy(t, m, upstream.URL, false)

	const clients, junk = 3, 2000
	var toks []string
	var ids []attrib.Identity
	sent := map[string]int{} // by client id: the independent tally
	for i := range clients {
		tok, id := ts.mustClient(t, fmt.Sprint("client ", i))
		toks, ids = append(toks, tok), append(ids, id)
	}
	// The valid clients are known before the flood starts.
	for i := range clients {
		for range 10 {
			get(t, proxy, toks[i], "X-Test", "warm-up")
			sent[ids[i].ClientID]++
		}
	}
	waitFor(t, "the valid requests to be recorded", func() bool { return m.Stats().Recorded == clients*10 })
	before := ts.lookups.Load()

	// The flood, with a valid request after every 10 junk ones.
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= junk {
					return
				}
				get(t, proxy, fmt.Sprintf("junk-%d-%x", i, sha256.Sum256([]byte(fmt.Sprint(i)))))
				if i%10 == 9 {
					c := int(i/10) % clients
					get(t, proxy, toks[c])
					mu.Lock()
					sent[ids[c].ClientID]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	inBurst := ts.lookups.Load() - before
	time.Sleep(2 * time.Second)
	after := ts.lookups.Load() - before - inBurst
	t.Logf("%d junk requests: %d lookups during the burst, %d in the next 2 s, %d answered 429", junk, inBurst, after, ts.limited.Load())
	if inBurst > junk {
		t.Errorf("%d lookups during the burst of %d junk tokens, want at most %d", inBurst, junk, junk)
	}
	// At most a burst and 2 s of the lookup rate (100 + 2×50), however
	// many requests wait.
	if after > 200 {
		t.Errorf("%d lookups in the 2 s after the burst, want at most 200", after)
	}
	if n := ts.maxAnswered(); n > 1 {
		t.Errorf("a token was answered %d times, want once", n)
	}

	m.Close()
	got := map[string]int{}
	for _, ev := range sink.events() {
		got[ev.ClientID]++
	}
	for i := range clients {
		if got[ids[i].ClientID] != sent[ids[i].ClientID] {
			t.Errorf("client %d: %d events, sent %d", i, got[ids[i].ClientID], sent[ids[i].ClientID])
		}
	}
	if got["anon"] != junk {
		t.Errorf("%d anonymous events, want %d: %v", got["anon"], junk, got)
	}
	if len(got) != clients+1 {
		t.Errorf("events of %d clients, want %d: %v", len(got), clients+1, got)
	}
}

// TestProxyPendingBounded: while usaged asks the proxy to wait (429), the
// requests of unknown tokens wait for attribution within MaxRetrying and
// MaxRetryingBytes, the ones beyond are recorded as anonymous at once, and
// the valid clients, known before, are counted exactly throughout.
func TestProxyPendingBounded(t *testing.T) {
	ts := mustTokenServer(t, 1) // one invalid token a minute from one address
	upstream := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	who, err := attrib.NewUsaged(attrib.UsagedConfig{Server: ts.url})
	if err != nil {
		t.Fatal(err)
	}
	const maxRetrying, maxBytes = 100, 1 << 20
	m, sink := mustMeter(t, func(c *meter.Config) {
		c.Attributor, c.RetryEvery = who, 50*time.Millisecond
		c.MaxRetrying, c.MaxRetryingBytes = maxRetrying, maxBytes
		c.Anonymous, c.AnonymousOrganization = "anon", "org-anon"
	})
	proxy := mustProxy(t, m, upstream.URL, false)

	const clients, junk = 3, 1000
	var toks []string
	var ids []attrib.Identity
	sent := map[string]int{}
	for i := range clients {
		tok, id := ts.mustClient(t, fmt.Sprint("client ", i))
		toks, ids = append(toks, tok), append(ids, id)
		get(t, proxy, tok)
		sent[id.ClientID]++
	}
	waitFor(t, "the valid requests to be recorded", func() bool { return m.Stats().Recorded == clients })

	// Sample the waiting requests while the flood goes on.
	stop := make(chan struct{})
	var maxSeen meter.Stats
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			st := m.Stats()
			maxSeen.Retrying, maxSeen.RetryingBytes = max(maxSeen.Retrying, st.Retrying), max(maxSeen.RetryingBytes, st.RetryingBytes)
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	pad := strings.Repeat("p", 16<<10) // a client chooses how big its headers are
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= junk {
					return
				}
				get(t, proxy, fmt.Sprint("junk-", i), "X-Pad", pad)
				if i%10 == 9 {
					c := int(i/10) % clients
					get(t, proxy, toks[c], "X-Pad", pad)
					mu.Lock()
					sent[ids[c].ClientID]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "every junk request to be recorded or waiting", func() bool {
		st := m.Stats()
		return int(st.Recorded)+st.Retrying == clients+junk+junk/10
	})
	close(stop)
	sampler.Wait()
	st := m.Stats()
	t.Logf("stats %+v; at most %d requests, %d bytes waiting; %d lookups, %d answered 429", st, maxSeen.Retrying, maxSeen.RetryingBytes, ts.lookups.Load(), ts.limited.Load())
	if maxSeen.Retrying > maxRetrying || maxSeen.RetryingBytes > maxBytes {
		t.Errorf("up to %d requests, %d bytes waited; want at most %d, %d", maxSeen.Retrying, maxSeen.RetryingBytes, maxRetrying, maxBytes)
	}
	if st.Retrying == 0 || int(st.Overflow)+st.Retrying < junk-10 {
		t.Errorf("%d waiting, %d overflowed; want the junk requests waiting up to the bound and the others overflowed", st.Retrying, st.Overflow)
	}
	// In each of usaged's one-minute windows: one refusal, then the 429s of
	// the lookups already under way, then nothing until Retry-After; the
	// test may span the end of a window.
	if n := ts.lookups.Load(); n > clients+50 {
		t.Errorf("%d lookups, want at most %d", n, clients+50)
	}

	m.Close()
	got := map[string]int{}
	for _, ev := range sink.events() {
		got[ev.ClientID]++
	}
	for i := range clients {
		if got[ids[i].ClientID] != sent[ids[i].ClientID] {
			t.Errorf("client %d: %d events, sent %d", i, got[ids[i].ClientID], sent[ids[i].ClientID])
		}
	}
	if got["anon"] != junk {
		t.Errorf("%d anonymous events, want %d", got["anon"], junk)
	}
}
