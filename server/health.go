package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/open"
)

// storeHealth is the failed state of a store: of each of its halves that
// can fail (store.Health), once each. It is empty for a backend that cannot
// fail, whose Failed is then always nil.
type storeHealth []store.Health

// Failed returns the first failure of a half, or nil while all work.
func (h storeHealth) Failed() error {
	for _, x := range h {
		if err := x.Failed(); err != nil {
			return err
		}
	}
	return nil
}

// failedC returns the channel closed when half i fails, and nil, which
// never receives, past the last half.
func (h storeHealth) failedC(i int) <-chan struct{} {
	if i < len(h) {
		return h[i].FailedC()
	}
	return nil
}

// halves returns the halves of st that implement T, once each (pebble and
// memory are both halves in one value).
func halves[T any](st open.Stores) []T {
	var found []T
	var seen []any
	for _, h := range []any{st.Usage, st.Metadata} {
		if t, ok := h.(T); ok && !slices.Contains(seen, h) {
			found, seen = append(found, t), append(seen, h)
		}
	}
	return found
}

// storeCollectors reports on /metrics whether the store failed, for a
// backend that can (health), and its disk space, for one on a local disk
// (disks): nothing of either for a backend without.
func storeCollectors(health storeHealth, disks []store.DiskUser) []prometheus.Collector {
	var cs []prometheus.Collector
	if len(health) > 0 {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "usaged_store_failed",
			Help: "1 once the store has failed and refuses writes (see /healthz for why; usaged then exits to be restarted), else 0.",
		}, func() float64 {
			if health.Failed() != nil {
				return 1
			}
			return 0
		}))
	}
	if len(disks) == 0 {
		return cs
	}
	return append(cs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "usaged_store_disk_bytes",
			Help: "Disk space used by the store, in bytes.",
		}, func() float64 {
			var n uint64
			for _, d := range disks {
				n += d.DiskUsage()
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "usaged_store_free_bytes",
			Help: "Free space of the store's filesystem, in bytes, read at most a second ago; -1 when unknown.",
		}, func() float64 {
			free := int64(-1) // the least of the filesystems the store is on
			for _, d := range disks {
				if n, ok := d.FreeDiskBytes(); ok && (free < 0 || n < free) {
					free = n
				}
			}
			return float64(free)
		}),
	)
}

// healthz answers GET /healthz: 503 while starting or once the store has
// failed, with the reason, else 200 "ok".
func healthz(ready *atomic.Bool, db storeHealth) http.HandlerFunc {
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
	db  storeHealth
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
