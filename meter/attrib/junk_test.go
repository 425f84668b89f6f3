package attrib_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/meter/attrib"
)

// Tokens usaged refused, which anyone can make up by the million, must not
// turn into lookups: each is asked about once, and usaged is asked at a
// bounded rate, and not at all while it asks to be left alone.

// TestUsagedRefusalIsFinal: a refused token is not asked about again for
// minutes, and refusals never push valid identities out of the cache.
func TestUsagedRefusalIsFinal(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{MaxEntries: 10})
	none := attrib.Identity{}
	tok, id := e.mustToken(time.Hour)

	e.want(u, tok, id, true, 1)
	e.want(u, "junk", none, false, 2)
	e.clk.Advance(4 * time.Minute)
	e.want(u, "junk", none, false, 2) // still refused, without asking

	// Many more refused tokens than MaxEntries: the valid one stays known.
	for i := range 50 {
		e.want(u, fmt.Sprint("junk-", i), none, false, int64(3+i))
	}
	e.want(u, tok, id, true, 52)
	e.want(u, "junk-0", none, false, 52)

	// Past the negative TTL a refusal is forgotten.
	e.clk.Advance(attrib.DefaultNegativeTTL)
	e.want(u, "junk", none, false, 53)
}

// TestUsagedLookupRate: however many unknown tokens arrive at once, usaged
// is asked at most the burst at once and then at the rate; the tokens not
// asked about are failures, so the caller tries them again later.
func TestUsagedLookupRate(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{}) // the defaults: 50 a second, 100 at once
	deferred := 0
	for i := range 1000 {
		_, ok, err := u.Attribute(t.Context(), bearer(fmt.Sprint("junk-", i)))
		if ok {
			t.Fatal("junk attributed")
		}
		if err != nil {
			if !errors.Is(err, attrib.ErrDeferred) {
				t.Fatalf("junk-%d: %v, want ErrDeferred", i, err)
			}
			deferred++
		}
	}
	if n := e.calls.Load(); n > 100 || int(n)+deferred != 1000 {
		t.Fatalf("1000 unknown tokens at once: %d lookups, %d deferred; want at most 100 lookups, the others deferred", n, deferred)
	}
	// A second later, the bucket holds 50 more lookups.
	e.clk.Advance(time.Second)
	before := e.calls.Load()
	for i := range 1000 {
		u.Attribute(t.Context(), bearer(fmt.Sprint("junk-", i)))
	}
	if n := e.calls.Load() - before; n > 50 {
		t.Fatalf("a second later: %d lookups, want at most 50", n)
	}
}

// TestUsagedRetryAfter: usaged answering 429 stops every lookup, of any
// token, for at least its Retry-After.
func TestUsagedRetryAfter(t *testing.T) {
	e := mustUsagedLimited(t, 3) // 3 invalid tokens a minute from one address
	u := e.mustAttributor(attrib.UsagedConfig{})
	none := attrib.Identity{}
	for i := range 3 {
		e.want(u, fmt.Sprint("junk-", i), none, false, int64(i+1))
	}
	if _, ok, err := u.Attribute(t.Context(), bearer("junk-3")); ok || err == nil || e.limited.Load() != 1 {
		t.Fatalf("4th junk token: %v, %v, %d answers 429; want an error and one 429", ok, err, e.limited.Load())
	}
	ra, err := strconv.Atoi(e.retryAfter.Load().(string))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", e.retryAfter.Load())
	}
	retryAfter := time.Duration(ra) * time.Second

	// Until Retry-After has passed, usaged is not asked about any token.
	var waited time.Duration
	for _, at := range []time.Duration{0, retryAfter / 2, retryAfter - time.Second} {
		e.clk.Advance(at - waited)
		waited = at
		if _, ok, err := u.Attribute(t.Context(), bearer("junk-4")); ok || err == nil {
			t.Fatalf("%s into Retry-After %s: %v, %v; want an error", at, retryAfter, ok, err)
		}
		if n := e.calls.Load(); n != 4 {
			t.Fatalf("%d lookups %s into Retry-After %s, want 4", n, at, retryAfter)
		}
	}
	// Past it, and past the jitter (at most a quarter more), lookups resume.
	e.clk.Advance(retryAfter - waited + retryAfter/4 + time.Second)
	e.want(u, "junk-4", none, false, 5)
	e.want(u, "junk-3", none, false, 6)
}

// TestUsagedBackoff: usaged failing without saying for how long is asked
// again after exponentially longer pauses, capped, not at every request.
func TestUsagedBackoff(t *testing.T) {
	e := MustUsaged(t) // for its clock
	var mu sync.Mutex
	var asked []time.Time
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, e.clk.Now())
		mu.Unlock()
		http.Error(w, `{"status":503}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	u, err := attrib.NewUsaged(attrib.UsagedConfig{Server: failing.URL, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// A request a second for ten minutes, each with a new token.
	for i := range 600 {
		if _, ok, err := u.Attribute(t.Context(), bearer(fmt.Sprint("tok-", i))); ok || err == nil {
			t.Fatalf("usaged failing: %v, %v", ok, err)
		}
		e.clk.Advance(time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	// Pauses of 1, 2, 4, … seconds up to a minute, each up to a quarter
	// longer: about 15 lookups in ten minutes instead of 600.
	if len(asked) < 8 || len(asked) > 20 {
		t.Fatalf("%d lookups in 10 minutes of failures, want 8 to 20", len(asked))
	}
	want := time.Second
	for i := 1; i < len(asked); i++ {
		gap := asked[i].Sub(asked[i-1])
		if gap < want || gap > want*5/4+time.Second {
			t.Fatalf("pause %d: %s, want %s to %s", i, gap, want, want*5/4+time.Second)
		}
		want = min(2*want, time.Minute) // DefaultMaxBackoff
	}
}
