package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/store"
)

// storeCollectors reports the store's health on /metrics.
func storeCollectors(db interface {
	store.Health
	store.DiskUser
}) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "usaged_store_failed",
			Help: "1 once the store has failed and refuses writes (see /healthz for why; usaged then exits to be restarted), else 0.",
		}, func() float64 {
			if db.Failed() != nil {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "usaged_store_free_bytes",
			Help: "Free space of the data directory's filesystem, in bytes, read at most a second ago; -1 when unknown.",
		}, func() float64 {
			n, ok := db.FreeDiskBytes()
			if !ok {
				return -1
			}
			return float64(n)
		}),
	}
}

// healthz answers GET /healthz: 503 while starting or once the store has
// failed, with the reason, else 200 "ok".
func healthz(ready *atomic.Bool, db store.Health) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := db.Failed(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			cause := errors.Unwrap(err)
			if cause == nil {
				cause = err
			}
			fmt.Fprintf(w, "store failed: %v\n", cause)
			return
		}
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "starting")
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// shutdownSteps bounds the steps of a shutdown once the store has failed: a
// step blocked on the failed engine is abandoned at the deadline, since the
// process exits next and that releases everything. With a working store
// every step runs to its end, as it always did.
type shutdownSteps struct {
	db  store.Health
	log *slog.Logger
	by  atomic.Pointer[time.Time] // the deadline, set when shutdown starts
}

func (s *shutdownSteps) start(by time.Time) { s.by.Store(&by) }

func (s *shutdownSteps) run(step string, fn func()) {
	if s.db.Failed() == nil {
		fn()
		return
	}
	wait := 100 * time.Millisecond
	if by := s.by.Load(); by != nil {
		wait = max(time.Until(*by), wait)
	}
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(wait):
		s.log.Error("shutdown step abandoned: it waits on the failed store", "step", step)
	}
}

// drainFailed keeps serving for a third of the shutdown timeout (at most 5
// seconds) after the store failed, before the server stops accepting:
// writes are refused with 503 meanwhile, and load balancers and monitors
// polling /healthz see why the server goes away. A signal cuts it short.
func drainFailed(ctx context.Context, timeout time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(min(timeout/3, 5*time.Second)):
	}
}
