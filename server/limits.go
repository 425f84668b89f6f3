package server

import (
	"bufio"
	"bytes"
	"container/list"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits of the process as a whole: memory, file descriptors, connections.

// MemoryLimit is the soft limit on the Go heap, past which the collector
// works harder.
type MemoryLimit struct {
	// Auto takes autoMemoryShare of the cgroup's memory limit or of the
	// machine's memory, unless GOMEMLIMIT is set.
	Auto bool
	// Bytes is the limit when not Auto; 0 means none.
	Bytes int64
}

// autoMemoryShare is the share of the machine's memory (or of the cgroup's
// limit) that --memory-limit=auto gives the Go heap: the rest is for the
// store's block cache and memtables, which live outside the heap, and for
// the page cache.
const autoMemoryShare = 0.75

// applyMemoryLimit sets the Go runtime's soft memory limit as m says and
// logs it. GOMEMLIMIT, if the operator set it, wins over auto; an explicit
// size or off wins over GOMEMLIMIT.
func applyMemoryLimit(log *slog.Logger, m MemoryLimit) {
	var limit int64
	switch {
	case m.Auto && os.Getenv("GOMEMLIMIT") != "":
		log.Info("memory limit", "bytes", debug.SetMemoryLimit(-1), "from", "GOMEMLIMIT")
		return
	case m.Auto:
		total, from := machineMemory()
		if total == 0 {
			log.Warn("memory limit: the machine's memory could not be read; no limit is set: pass --memory-limit")
			return
		}
		limit = int64(float64(total) * autoMemoryShare)
		log.Info("memory limit", "bytes", limit, "from", fmt.Sprintf("%.0f%% of %s", autoMemoryShare*100, from))
	case m.Bytes == 0:
		limit = math.MaxInt64
		log.Info("memory limit", "bytes", "off")
	default:
		limit = m.Bytes
		log.Info("memory limit", "bytes", limit, "from", "--memory-limit")
	}
	debug.SetMemoryLimit(limit)
}

// machineMemory returns the memory this process may use: the cgroup v2
// limit when one is set, else the machine's total; and where it was read.
// It returns 0 when neither can be read.
func machineMemory() (uint64, string) {
	total := memTotal()
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			return n, "the cgroup's memory.max"
		}
	}
	return total, "MemTotal"
}

// memTotal returns MemTotal from /proc/meminfo, or 0.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				if n, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}

// raiseFileLimit raises the soft limit on open files to the hard limit and
// returns the limit in force. (The Go runtime does the same at start; doing
// it here too makes the value known, logged and independent of that.)
func raiseFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}

// storeFileReserve is how many file descriptors are kept from connections
// for the store, its files and everything else the process opens: the store
// keeps up to 1,000 tables open (Pebble's default), so 1,024 when the limit
// allows, and half of a smaller limit.
func storeFileReserve(fdLimit uint64) uint64 { return min(1024, fdLimit/2) }

// connectionBudget returns the most connections to serve at once: want,
// lowered if needed to leave storeFileReserve descriptors of fdLimit free.
func connectionBudget(want int, fdLimit uint64) (n int, lowered bool) {
	budget := fdLimit - storeFileReserve(fdLimit)
	if uint64(want) > budget {
		return int(max(budget, 1)), true
	}
	return want, false
}

// connLimiter is a listener that holds at most max connections open. At
// the limit, a new connection is admitted by closing the connection that has
// been idle (between keep-alive requests) the longest; only when every
// connection is busy with a request does Accept wait, leaving new clients in
// the kernel's accept queue, until one closes. Idle connections therefore
// never keep a new client out, and the server never runs out of descriptors
// for its store. It learns which connections are idle from the http.Server
// it serves, through ConnState.
type connLimiter struct {
	net.Listener
	max int
	log *slog.Logger

	mu    sync.Mutex
	open  int       // connections open, and a slot taken by an Accept under way
	idle  list.List // of *limitedConn, the longest idle first
	freed chan struct{}
	done  chan struct{}
	once  sync.Once

	idleClosed atomic.Int64 // idle connections closed to admit new ones
	waits      atomic.Int64 // times Accept had to wait for a busy connection to end
	lastWarn   atomic.Int64 // unix nanoseconds of the last warning
}

func newConnLimiter(ln net.Listener, max int, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, log: log, freed: make(chan struct{}, 1), done: make(chan struct{})}
}

// limitedConn is a connection counted by its connLimiter.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	elem   *list.Element // in l.idle while idle; guarded by l.mu
	closed bool          // guarded by l.mu
}

func (l *connLimiter) Accept() (net.Conn, error) {
	if err := l.acquire(); err != nil {
		return nil, err
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// acquire takes a slot for the next connection, closing the longest idle
// connection if there is no free one, or waiting for one to close.
func (l *connLimiter) acquire() error {
	for {
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			return nil
		}
		if e := l.idle.Front(); e != nil {
			c := e.Value.(*limitedConn)
			l.idle.Remove(e)
			c.elem = nil
			l.mu.Unlock()
			c.Close() // frees its slot
			l.idleClosed.Add(1)
			l.warn()
			continue
		}
		l.mu.Unlock()
		l.waits.Add(1)
		l.warn()
		select {
		case <-l.freed:
		case <-l.done:
			return net.ErrClosed
		}
	}
}

func (l *connLimiter) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	l.signal()
}

// signal wakes an Accept waiting for a slot or an idle connection.
func (l *connLimiter) signal() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// warn logs that the limit was reached, at most once a minute, so that a
// flood of connections cannot flood the log too.
func (l *connLimiter) warn() {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Minute) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("connection limit reached: idle keep-alive connections are closed to admit new ones, and new connections wait while every one is busy (--max-connections)",
		"maxConnections", l.max, "idleClosed", l.idleClosed.Load(), "waits", l.waits.Load())
}

// ConnState is the http.Server's ConnState hook: it keeps the list of idle
// connections.
func (l *connLimiter) ConnState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	if lc.closed {
		l.mu.Unlock()
		return
	}
	becameIdle := false
	switch s {
	case http.StateIdle:
		if lc.elem == nil {
			lc.elem = l.idle.PushBack(lc)
			becameIdle = true
		}
	default:
		if lc.elem != nil {
			l.idle.Remove(lc.elem)
			lc.elem = nil
		}
	}
	l.mu.Unlock()
	if becameIdle {
		l.signal() // a waiting Accept may close it
	}
}

// Open returns the number of connections open.
func (l *connLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	l := c.l
	l.mu.Lock()
	first := !c.closed
	if first {
		c.closed = true
		if c.elem != nil {
			l.idle.Remove(c.elem)
			c.elem = nil
		}
		l.open--
	}
	l.mu.Unlock()
	if first {
		l.signal()
	}
	return err
}
