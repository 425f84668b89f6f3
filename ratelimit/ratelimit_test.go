package ratelimit_test

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ratelimit"
)

func refuse(w http.ResponseWriter, _ *http.Request, _ auth.Decision) {
	w.WriteHeader(http.StatusTooManyRequests)
}

func TestConfigValidate(t *testing.T) {
	f := func(cfg ratelimit.Config, want string) {
		t.Helper()
		err := cfg.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("Validate(%+v) = %v, want %q", cfg, err, want)
		}
	}
	f(ratelimit.Config{Limit: 5, Refuse: refuse}, "")
	f(ratelimit.Config{Limit: -1, Refuse: refuse}, "")
	f(ratelimit.Config{Default: 5, Refuse: refuse}, "")
	f(ratelimit.Config{Refuse: refuse}, "Default must be from 1")
	f(ratelimit.Config{Limit: 1 << 40, Refuse: refuse}, "Limit must be at most")
	f(ratelimit.Config{Limit: 5}, "Refuse is required")
}

func TestBudget(t *testing.T) {
	b, err := ratelimit.New(ratelimit.Config{Limit: 2, Refuse: refuse})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	for i, want := range []bool{true, true, false} {
		w := httptest.NewRecorder()
		if got := b.Allow(w, r, ratelimit.ClientKey("c")); got != want {
			t.Fatalf("request %d: Allow = %v", i+1, got)
		}
		if retry := w.Header().Get("Retry-After"); (retry != "") == want || !want && w.Code != 429 {
			t.Fatalf("request %d: Retry-After %q, status %d", i+1, retry, w.Code)
		}
	}
	// Keys of different kinds never share a budget.
	for _, k := range []ratelimit.Key{ratelimit.AdminKey, ratelimit.AddressKey(r), ratelimit.DigestKey("apikey", sha256.Sum256([]byte("c")))} {
		if !b.Allow(httptest.NewRecorder(), r, k) {
			t.Fatalf("key %q shares the client's budget", k)
		}
	}
	// Negative: unlimited, a nil Budget.
	if b, err := ratelimit.New(ratelimit.Config{Limit: -1, Refuse: refuse}); b != nil || err != nil || !b.Allow(httptest.NewRecorder(), r, "k") {
		t.Fatalf("unlimited: %v, %v", b, err)
	}
}
