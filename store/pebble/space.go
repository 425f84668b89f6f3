package pebble

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/usaged/usaged/usage"
)

// DefaultDiskReserve is the free space the store keeps by default. It is
// what Pebble may need to bring a store back after a failure without
// writing anything new: replaying the WAL flushes its memtables (up to two of
// 16 MiB before writes stall) into L0, and the compaction that follows
// rewrites about as much again before deleting its inputs; 256 MiB covers
// that several times over. It is capped at maxReservePercent of the
// filesystem (see Config.DiskReserve), so a small volume is not refused
// outright.
const DefaultDiskReserve = 256 << 20

// maxReservePercent caps the reserve as a share of the filesystem's size.
const maxReservePercent = 5

// Free space is read with statfs at most every spaceRefresh, or sooner once
// spaceRefreshBytes were written since, between which the bytes written are
// subtracted from the last reading: a burst of ingest cannot overshoot the
// reserve by more than that.
const (
	spaceRefresh      = time.Second
	spaceRefreshBytes = 8 << 20
)

// reserveRetryAfter is what clients refused for want of space are told to
// wait: freeing space is an operator's job, so there is no point in hurrying.
const reserveRetryAfter = 30 * time.Second

// headroom refuses writes that add data when the filesystem of the store has
// less free space than the reserve. Deletions, expiry and finishing work
// already accepted are not refused: they free space or take little, and
// refusing them would leave work half done.
type headroom struct {
	dir     string
	reserve int64 // as configured; 0 disables the check
	now     func() time.Time
	// log receives one line when free space falls below the reserve and one
	// when it is back above, rather than one per refused request; nil logs
	// nothing.
	log *slog.Logger

	mu      sync.Mutex
	read    time.Time // of the last statfs, zero before the first
	free    int64     // at the last statfs, less what was written since
	written int64     // since the last statfs
	total   int64
	err     error // of the last statfs; the check is skipped while it fails
	below   bool  // the last check refused
}

// statfsFunc reads a filesystem's free (for unprivileged users) and total
// bytes; a variable so that tests can run on a pretend filesystem.
var statfsFunc = statfs

func (h *headroom) refresh(now time.Time) {
	free, total, err := statfsFunc(h.dir)
	h.read, h.written, h.err = now, 0, err
	if err == nil {
		h.free, h.total = int64(free), int64(total)
	}
}

// effective returns the reserve in force: the configured one, capped at
// maxReservePercent of the filesystem. The caller holds mu.
func (h *headroom) effective() int64 {
	if h.total <= 0 {
		return h.reserve
	}
	return min(h.reserve, h.total/100*maxReservePercent)
}

// need reports an error of kind usage.KindUnavailable when writing about n
// more bytes would go below the reserve, and otherwise counts them.
func (h *headroom) need(n int64) error {
	if h.reserve <= 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if h.read.IsZero() || now.Sub(h.read) >= spaceRefresh || h.written >= spaceRefreshBytes {
		h.refresh(now)
	}
	if h.err != nil {
		return nil // fail open: a filesystem that cannot tell is no reason to stop
	}
	reserve := h.effective()
	if h.free-h.written-n < reserve {
		if !h.below && h.log != nil {
			h.log.Warn("free disk space is below the reserve: writes that add data are refused until space is freed",
				"free", fmtBytes(max(h.free-h.written, 0)), "reserve", fmtBytes(reserve), "dir", h.dir)
		}
		h.below = true
		return &usage.Error{
			Kind: usage.KindUnavailable,
			Message: fmt.Sprintf("the store's disk has %s free, less than its reserve of %s: writes that add data are refused until space is freed; retry later",
				fmtBytes(max(h.free-h.written, 0)), fmtBytes(reserve)),
			RetryAfter: reserveRetryAfter,
		}
	}
	if h.below && h.log != nil {
		h.log.Info("free disk space is above the reserve again: writes resume", "free", fmtBytes(h.free-h.written), "reserve", fmtBytes(reserve))
	}
	h.below = false
	h.written += n
	return nil
}

// freeBytes returns the free space as last read, refreshing a reading older
// than spaceRefresh, and whether it is known.
func (h *headroom) freeBytes() (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := h.now(); h.read.IsZero() || now.Sub(h.read) >= spaceRefresh {
		h.refresh(now)
	}
	return max(h.free-h.written, 0), h.err == nil
}

// fmtBytes formats n in binary units, as the --disk-reserve flag takes them.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// newHeadroom returns the check of reserve bytes for dir (see
// Config.DiskReserve).
func newHeadroom(dir string, reserve int64, log *slog.Logger) *headroom {
	switch {
	case reserve < 0:
		reserve = 0 // disabled; free space is still reported
	case reserve == 0:
		reserve = DefaultDiskReserve
	}
	return &headroom{dir: dir, reserve: reserve, now: time.Now, log: log}
}

// FreeDiskBytes returns the free space of the store's filesystem as last
// read (at most a second ago), and whether it is known.
func (d *DB) FreeDiskBytes() (int64, bool) { return d.space.freeBytes() }
