package auth

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of LimiterConfig.
const (
	DefaultRateWindow = time.Minute
	// DefaultMaxKeys bounds the keys a Limiter tracks in one window: about
	// 40 MiB of counters at most.
	DefaultMaxKeys = 1 << 20
)

// limiterShards is the number of independently locked parts of a Limiter.
// Requests with different keys rarely wait for each other.
const limiterShards = 64

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Limit is how many requests one key may make per window; required,
	// positive.
	Limit int
	// Window is the length of a counting window; default DefaultRateWindow.
	// Windows are aligned to whole multiples of Window since the Unix epoch,
	// so a one-minute window always starts on a wall-clock minute.
	Window time.Duration
	// MaxKeys bounds the keys counted separately in one window; default
	// DefaultMaxKeys. Keys first seen once the bound is reached share
	// counters (one per shard of the Limiter), so that a flood of new keys
	// is limited jointly instead of growing memory without end.
	MaxKeys int
	Now     func() time.Time // default time.Now
}

// Validate reports every problem with the configuration.
func (c LimiterConfig) Validate() error {
	var errs []error
	if c.Limit <= 0 {
		errs = append(errs, fmt.Errorf("auth: limiter Limit must be positive, got %d", c.Limit))
	}
	if c.Limit > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("auth: limiter Limit must be at most %d, got %d", math.MaxInt32, c.Limit))
	}
	if c.Window < 0 || (c.Window > 0 && c.Window < time.Second) {
		errs = append(errs, fmt.Errorf("auth: limiter Window must be 0 (the default) or at least a second, got %s", c.Window))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("auth: limiter MaxKeys must not be negative, got %d", c.MaxKeys))
	}
	return errors.Join(errs...)
}

// Limiter counts requests per key in fixed windows and tells whether each
// one is within the limit. It is safe for concurrent use.
//
// The windows are fixed, not sliding: every key's count starts again from
// zero at the same instant, when the window ends. That keeps a decision to
// one hash, one short lock and one map update, and lets a window's counters
// be dropped all at once when it ends, which is all the sweeping memory
// needs. The price is the usual one of fixed windows: a key can make up to
// twice the limit in a short time spanning the end of one window and the
// start of the next.
//
// Keys are hashed with a seed chosen when the Limiter is made; the Limiter
// keeps only the hashes, never the keys, so bearer tokens can be keys.
type Limiter struct {
	limit       uint32
	window      int64 // nanoseconds
	maxPerShard int
	now         func() time.Time
	seed        maphash.Seed
	// epoch is the newest window any request has seen. The first request
	// of a window sweeps every shard, so that counters of an ended window
	// do not outlive it in shards no request reaches.
	epoch  atomic.Int64
	shards [limiterShards]paddedShard
}

type limiterShard struct {
	mu sync.Mutex
	// epoch is the index of the window the counts belong to: the Unix time
	// in nanoseconds divided by the window length.
	epoch  int64
	counts map[uint64]uint32
	// overflow counts the requests of keys first seen after the shard was
	// full, together.
	overflow uint32
}

// paddedShard keeps each shard's lock on cache lines of its own.
type paddedShard struct {
	limiterShard
	_ [64]byte
}

// NewLimiter returns a Limiter for cfg.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultRateWindow
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{
		limit:       uint32(cfg.Limit),
		window:      int64(cfg.Window),
		maxPerShard: max(1, cfg.MaxKeys/limiterShards),
		now:         cfg.Now,
		seed:        maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].counts = make(map[uint64]uint32)
	}
	return l, nil
}

// Decision is a Limiter's answer for one request.
type Decision struct {
	Allowed bool // Count is at most Limit
	Limit   int  // requests allowed per window
	// Count is how many requests the key made in the current window, this
	// one included, refused ones too.
	Count int
	// Reset is the time left until the current window ends and the count
	// starts again; more than zero, at most the window.
	Reset time.Duration
}

// ResetSeconds is Reset in whole seconds, rounded up: when a refused
// request may be sent again.
func (d Decision) ResetSeconds() int {
	return int((d.Reset + time.Second - 1) / time.Second)
}

// Take counts one request of key and reports whether it is within the
// limit. Callers choose keys so that different subjects cannot collide,
// for example by prefixing each kind of key with a byte the other kinds
// never contain.
func (l *Limiter) Take(key string) Decision { return l.count(key, true) }

// Peek returns the Decision Take would return for key, without counting
// anything: whether one more request would be within the limit. Callers
// that count only some outcomes, such as failed logins, Peek before acting
// and Take after a failure.
func (l *Limiter) Peek(key string) Decision { return l.count(key, false) }

func (l *Limiter) count(key string, take bool) Decision {
	h := maphash.String(l.seed, key)
	now := l.now().UnixNano()
	epoch := now / l.window
	if now < 0 && now%l.window != 0 {
		epoch-- // round toward the past, not toward zero
	}
	if last := l.epoch.Load(); epoch > last && l.epoch.CompareAndSwap(last, epoch) {
		l.sweep(epoch)
	}
	sh := &l.shards[h%limiterShards].limiterShard
	sh.mu.Lock()
	if epoch > sh.epoch {
		sh.reset(epoch)
	} else if epoch < sh.epoch {
		// The clock went back: keep counting in the newer window rather
		// than hand out a second budget for it.
		epoch = sh.epoch
	}
	var n uint32
	if c, ok := sh.counts[h]; ok || len(sh.counts) < l.maxPerShard {
		n = saturatingInc(c)
		if take {
			sh.counts[h] = n
		}
	} else {
		n = saturatingInc(sh.overflow)
		if take {
			sh.overflow = n
		}
	}
	sh.mu.Unlock()
	reset := min(time.Duration((epoch+1)*l.window-now), time.Duration(l.window))
	return Decision{Allowed: n <= l.limit, Limit: int(l.limit), Count: int(n), Reset: reset}
}

// sweep drops the counters of every shard still in a window before epoch.
func (l *Limiter) sweep(epoch int64) {
	for i := range l.shards {
		sh := &l.shards[i].limiterShard
		sh.mu.Lock()
		if epoch > sh.epoch {
			sh.reset(epoch)
		}
		sh.mu.Unlock()
	}
}

// reset starts window epoch in the shard. The caller holds sh.mu.
func (sh *limiterShard) reset(epoch int64) {
	sh.epoch = epoch
	if len(sh.counts) > 1024 {
		// Give back the memory a busy window grew; a quiet one keeps its
		// buckets for the next.
		sh.counts = make(map[uint64]uint32)
	} else {
		clear(sh.counts)
	}
	sh.overflow = 0
}

func saturatingInc(n uint32) uint32 {
	if n == ^uint32(0) {
		return n
	}
	return n + 1
}

// Keys reports how many keys have their own count, for tests and metrics.
// Counts of an ended window are dropped by the first request of the next.
func (l *Limiter) Keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i].limiterShard
		sh.mu.Lock()
		n += len(sh.counts)
		sh.mu.Unlock()
	}
	return n
}
