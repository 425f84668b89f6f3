package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usaged/usaged/usage"
)

// The failed state.
//
// Pebble has two ways of giving up: Logger.Fatalf, which it assumes never
// returns (it is called after a failed WAL or MANIFEST write, when the
// engine cannot tell what reached disk), and plain panics (a WAL that cannot
// be written, closed or created). Either may happen while Pebble holds its
// own locks, some of which it releases only on the normal path, so after
// either the engine must not be used again: later calls could block forever
// on those locks. A full disk is the usual cause.
//
// The store therefore turns both into its failed state, which it never
// leaves: every write is refused with errFailed's kind (503 for clients),
// Failed reports why, and FailedC is closed so that the server can stop and
// exit for its supervisor to restart it. A restart replays the WAL, which
// holds every acknowledged write.
//
// Every call into Pebble made on a request's goroutine goes through guard,
// which recovers a panic into the failed state. Fatalf panics (with
// fatalPanic) only on such a goroutine; on Pebble's own background goroutines
// (flushes, compactions), where nothing of the store could recover it and the
// panic would kill the process without a word to the clients in flight, it
// parks the goroutine instead, which is what "does not return" allows.

// failedRetryAfter is what clients refused in the failed state are told to
// wait: about the time a supervisor takes to restart the server.
const failedRetryAfter = 10 * time.Second

// health holds the failed state. It is shared by the DB and its Pebble
// logger, which may record a failure before Open returns.
type health struct {
	log    *slog.Logger
	failed atomic.Pointer[usage.Error]
	once   sync.Once
	done   chan struct{} // closed on failure
}

func newHealth(log *slog.Logger) *health { return &health{log: log, done: make(chan struct{})} }

// fail puts the store in the failed state with cause, once: the first cause
// is the one reported. It takes no lock of the store, as it may run on a
// goroutine that holds any of them.
func (h *health) fail(cause error) *usage.Error {
	e := &usage.Error{
		Kind:       usage.KindUnavailable,
		Message:    "the store stopped writing after a storage failure and refuses writes until usaged restarts; retry later",
		Err:        cause,
		RetryAfter: failedRetryAfter,
	}
	if h.failed.CompareAndSwap(nil, e) {
		h.log.Error("store failed: refusing writes until restarted", "err", cause)
		h.once.Do(func() { close(h.done) })
	}
	return h.failed.Load()
}

// err returns the failed state's error, or nil.
func (h *health) err() error {
	if e := h.failed.Load(); e != nil {
		return e
	}
	return nil
}

// Failed returns nil while the store accepts writes, and once it has failed
// an error of kind usage.KindUnavailable whose cause (errors.Unwrap) says
// why. A failed store stays failed until it is opened again.
func (d *DB) Failed() error { return d.health.err() }

// FailedC returns a channel that is closed when the store fails.
func (d *DB) FailedC() <-chan struct{} { return d.health.done }

// fatalPanic is what Fatalf panics with on a guarded goroutine.
type fatalPanic struct{ err error }

// guardFrame names guard in a goroutine's stack trace.
const guardFrame = "usaged/store/pebble.(*DB).guard("

// guard runs fn, which calls into Pebble, and turns a panic in it into the
// failed state, returned as fn's error. Callers release their own locks with
// defer or after guard returns, so a panic never leaves them held.
//
//go:noinline
func (d *DB) guard(fn func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if fp, ok := r.(fatalPanic); ok {
			err = d.health.fail(fp.err)
			return
		}
		d.log.Error("storage engine panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		cause, ok := r.(error)
		if !ok {
			cause = fmt.Errorf("%v", r)
		}
		err = d.health.fail(fmt.Errorf("storage engine panic: %w", cause))
	}()
	return fn()
}

// onGuardedGoroutine reports whether the calling goroutine runs inside guard,
// which will recover a panic.
func onGuardedGoroutine() bool {
	buf := make([]byte, 64<<10)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Contains(string(buf), guardFrame)
}

// fatal is Pebble's Fatalf: it records the failure, then unwinds to guard or
// parks the goroutine for good (see above). It never returns.
func (h *health) fatal(msg string) {
	err := errors.New(msg)
	h.fail(err)
	if onGuardedGoroutine() {
		panic(fatalPanic{err})
	}
	h.log.Error("storage engine goroutine parked after a fatal error; the store must be restarted", "err", err)
	select {}
}

// backgroundError is Pebble's EventListener.BackgroundError. Pebble retries a
// failed flush at once and without end, so a disk that is full or failing
// would otherwise leave the store stalled (writes wait for a flush that never
// completes) and the log flooded; those faults put the store in the failed
// state, so that the server restarts once the disk is fixed. Other background
// errors (a compaction that will be picked again) are only logged, through
// the logger that folds repeated lines.
func (h *health) backgroundError(log interface{ Errorf(string, ...any) }) func(error) {
	return func(err error) {
		log.Errorf("background error: %s", err)
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS) {
			h.fail(fmt.Errorf("storage engine background write: %w", err))
		}
	}
}
