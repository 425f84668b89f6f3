// Package spool keeps recorded usage events on local disk until usaged has
// them, and ships them there.
//
// A Spool is a meter.Sink: Add appends an event to an in-memory buffer and
// returns; a writer goroutine appends the buffer to a segment file and
// fsyncs it every SyncEvery. A Shipper reads durable events in order (Next),
// posts them to usaged in gzip NDJSON batches and acknowledges what usaged
// answered (Ack); acknowledged segments are deleted.
//
// # Durability
//
// An event is durable once the fsync of the write that holds it returned;
// Flush waits for that. Events Added since the last fsync are lost by a crash
// of the process or the machine — at most SyncEvery's worth — and nothing
// else is: a record is read back only if it is whole and its CRC-32C
// matches, so a write torn by SIGKILL or power loss is dropped at Open, not
// mis-read, and the file is cut back to its last whole record.
//
// Nothing is counted twice: an event's id is assigned before it is spooled
// and is stored with it, and usaged deduplicates by id. The acknowledged
// position is written (write temporary, fsync, rename, fsync directory)
// after usaged answered and before a segment is deleted, so a restart
// resends at most the batch that was in flight, and resending is harmless.
//
// # Disk format
//
// The directory holds segment files named by a 16-digit hexadecimal sequence
// number with the suffix .seg, each a sequence of records (length,
// CRC-32C, versioned binary payload; see appendRecord); a file ack holding the
// acknowledged position (segment, offset) with its own checksum; a file
// LOCK that keeps a second process out of the directory; and a file pending, of
// mode 0600, holding the requests waiting for attribution with the headers
// that attribute them (see Keep). Every Open starts a
// new segment, so a segment is only ever appended to by the process that
// created it.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/usage"
)

// Spool implements meter.Sink. The interface is spelled out rather than
// named so that the spool does not import the metering package and, with
// it, the proxy's routing and attribution.
var _ interface{ Add(usage.Event) } = (*Spool)(nil)

// Defaults and limits.
const (
	DefaultMaxBytes  = 1 << 30                // Config.MaxBytes when 0
	DefaultSyncEvery = 100 * time.Millisecond // Config.SyncEvery when 0
	// MinMaxBytes is the smallest MaxBytes accepted: room for eight
	// segments of some eighty events.
	MinMaxBytes = 64 << 10

	defaultSegmentBytes = 64 << 20
	// defaultBufferBytes bounds the memory Add may fill while the writer
	// is slow or stuck (a hung disk): beyond it Add drops rather than
	// blocks or grows without bound.
	defaultBufferBytes = 32 << 20
)

// ErrClosed is returned by the methods of a closed Spool.
var ErrClosed = errors.New("spool: closed")

// ErrCorrupt is returned by Next when a record the spool wrote and fsynced
// in this process no longer reads back (the disk or memory corrupted it).
// Reopening the spool drops the corrupt segment's tail and goes on.
var ErrCorrupt = errors.New("spool: corrupt record")

// Config configures Open.
type Config struct {
	Dir string // required; created if missing
	// MaxBytes bounds the bytes of segment files on disk, counting what is
	// buffered to be written. When full, Add drops the event and counts it.
	// Space is reclaimed a segment at a time, and a segment is an eighth of
	// MaxBytes (at most 64 MiB), so acknowledged events still hold at most
	// that much of it. Default DefaultMaxBytes; at least MinMaxBytes.
	MaxBytes int64
	// SyncEvery is how often buffered events are written and fsynced: the
	// most a crash can lose. Default DefaultSyncEvery.
	SyncEvery time.Duration
	Logger    *slog.Logger // default slog.Default()

	// segmentBytes and bufferBytes override the defaults in tests.
	segmentBytes int64
	bufferBytes  int
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("spool: Dir is required: the directory that keeps events until usaged has them"))
	}
	if c.MaxBytes < 0 || c.MaxBytes > 0 && c.MaxBytes < MinMaxBytes {
		errs = append(errs, fmt.Errorf("spool: MaxBytes must be at least %d (or 0 for the default of %d), got %d", MinMaxBytes, DefaultMaxBytes, c.MaxBytes))
	}
	if c.SyncEvery < 0 {
		errs = append(errs, fmt.Errorf("spool: SyncEvery must not be negative, got %s", c.SyncEvery))
	}
	return errors.Join(errs...)
}

// pos is a position in the spool: an offset in a segment.
type pos struct {
	seg uint64
	off int64
}

// segment is a segment file on disk. size is how much of it holds whole,
// fsynced records: readers never look past it.
type segment struct {
	id   uint64
	size int64
}

// Spool is a durable, bounded queue of events on disk. Add is safe for
// concurrent use; Next and Ack are for one consumer (the Shipper).
type Spool struct {
	cfg         Config
	log         *slog.Logger
	segBytes    int64 // roll to a new segment once the active one is this big
	bufferBytes int
	kickBytes   int // a buffer this big wakes the writer before its tick
	lock        *os.File

	// mu guards the buffer Add appends to. It is held only for an append,
	// never across I/O.
	mu           sync.Mutex
	buf          []byte
	bufEvents    int
	writing      int // bytes handed to the writer and not yet durable
	writingCount int // events in them
	closed       bool

	// wmu serializes writing: the writer goroutine, Flush and Close.
	wmu       sync.Mutex
	active    *os.File // nil after a write failed: the next write starts a new segment
	activeID  uint64
	activeOff int64
	spare     []byte // the buffer written last, reused by Add
	lastWrite int    // bytes written by the last flush
	unwritten []byte // taken from Add, not yet durable (kept across a failed write)
	unwrCount int
	wclosed   bool
	lastWErr  time.Time

	// smu guards what readers and the writer share.
	smu           sync.Mutex
	segs          []segment // on disk, in order; the last is the active one
	ack           pos       // first unacknowledged record, always in segs
	pendingEvents int       // durable and not acknowledged
	pendingBytes  int64
	durable       chan struct{} // closed and replaced whenever more is durable

	// rmu serializes the consumer's Next and Ack.
	rmu   sync.Mutex
	batch []batchEntry // the rest of the last Next's batch, not yet acknowledged
	rf    *os.File     // the segment Next read last
	rfID  uint64
	rr    recordReader // its buffers are reused from batch to batch

	// pmu guards pend, the requests waiting for attribution (pending.go).
	pmu     sync.Mutex
	pend    pendingState
	pclosed bool

	diskBytes atomic.Int64
	spooled   atomic.Uint64
	shipped   atomic.Uint64
	drops     [numDropReasons]atomic.Uint64
	reported  [numDropReasons]uint64 // drops already logged, by the writer
	// lastDropLog is when drops were last logged, by the writer.
	lastDropLog time.Time

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	closedCh chan struct{}
	once     sync.Once
	closeErr error
}

// batchEntry is where a record returned by Next ends, and its size.
type batchEntry struct {
	end  pos
	size int64
}

// Why Add dropped an event.
const (
	dropFull     = iota // MaxBytes reached
	dropBehind          // the in-memory buffer is full: the writer is stuck
	dropTooLarge        // the event does not fit a record
	dropClosed          // Add after Close
	numDropReasons
)

// dropReasons say in the log why events were dropped, by reason.
var dropReasons = [numDropReasons]string{
	"the spool is full (MaxBytes): usaged has not taken events for a while",
	"the disk writer is behind: writes or fsyncs are stuck",
	"the event is too large for a record",
	"the spool is closed",
}

// Open opens the spool in cfg.Dir, creating it if missing, and replays what
// an earlier process left: every whole record after the acknowledged
// position is pending again. A torn tail (a write cut short by a crash) is
// logged and cut off.
func Open(cfg Config) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = DefaultSyncEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.segmentBytes == 0 {
		cfg.segmentBytes = defaultSegmentBytes
	}
	if cfg.bufferBytes == 0 {
		cfg.bufferBytes = defaultBufferBytes
	}
	s := &Spool{
		cfg: cfg, log: cfg.Logger,
		// Space is reclaimed a segment at a time, so a segment must be a
		// small part of MaxBytes or a full spool could not take events
		// again until a whole large segment is acknowledged.
		segBytes:    min(cfg.segmentBytes, max(cfg.MaxBytes/8, 4<<10)),
		bufferBytes: cfg.bufferBytes,
		durable:     make(chan struct{}),
		kick:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		closedCh:    make(chan struct{}),
	}
	s.kickBytes = min(1<<20, s.bufferBytes/4)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: creating the directory: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.replay(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if err := s.replayPending(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if err := s.roll(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.reclaim()
	go s.run()
	return s, nil
}

// segName is the file name of segment id; names sort in id order.
func segName(id uint64) string { return fmt.Sprintf("%016x.seg", id) }

// segPath is the path of segment id.
func (s *Spool) segPath(id uint64) string { return filepath.Join(s.cfg.Dir, segName(id)) }

// replay finds the segments and the acknowledged position an earlier
// process left, validates every record after it and cuts torn tails off.
func (s *Spool) replay() error {
	ack, err := readAck(s.cfg.Dir)
	if err != nil {
		// The position is only an optimisation: starting over resends
		// events usaged already has, which it counts once.
		s.log.Warn("spool: the acknowledged position cannot be read; events still spooled will be sent again (usaged ignores the duplicates)", "err", err)
		ack = pos{}
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: reading the directory: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		name := e.Name()
		if name == ackFile+".tmp" {
			os.Remove(filepath.Join(s.cfg.Dir, name)) // an interrupted ack write
			continue
		}
		hex, ok := strings.CutSuffix(name, ".seg")
		if !ok || len(hex) != 16 {
			continue
		}
		id, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s.activeID = ack.seg // roll creates activeID+1: never reuse an acknowledged id
	for _, id := range ids {
		s.activeID = max(s.activeID, id)
		if id < ack.seg {
			// Fully acknowledged: only the deletion was interrupted.
			if err := os.Remove(s.segPath(id)); err != nil {
				s.log.Warn("spool: removing an acknowledged segment failed", "segment", segName(id), "err", err)
			}
			continue
		}
		seg, events, bytes, ackOff, err := s.replaySegment(id, ack)
		if err != nil {
			return err
		}
		if id == ack.seg {
			ack.off = ackOff
		}
		s.segs = append(s.segs, seg)
		s.pendingEvents += events
		s.pendingBytes += bytes
		s.diskBytes.Add(seg.size)
	}
	if len(s.segs) == 0 || s.segs[0].id != ack.seg {
		// The acknowledged segment is gone (deleted once done): start at
		// the first segment after it, or at the one roll creates.
		ack = pos{seg: s.activeID + 1}
		if len(s.segs) > 0 {
			ack.seg = s.segs[0].id
		}
	}
	s.ack = ack
	if s.pendingEvents > 0 {
		s.log.Info("spool: replayed events left by an earlier process", "events", s.pendingEvents, "bytes", s.pendingBytes, "segments", len(s.segs))
	}
	return nil
}

// replaySegment validates segment id and cuts off whatever follows its last
// whole record. It returns the events and bytes at or after ack, and the
// acknowledged offset moved onto a record boundary (if ack is in it).
func (s *Spool) replaySegment(id uint64, ack pos) (segment, int, int64, int64, error) {
	f, err := os.OpenFile(s.segPath(id), os.O_RDWR, 0)
	if err != nil {
		return segment{}, 0, 0, 0, fmt.Errorf("spool: opening segment %s: %w", segName(id), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, 0, 0, 0, fmt.Errorf("spool: segment %s: %w", segName(id), err)
	}
	ackOff := int64(0)
	if id == ack.seg {
		ackOff = ack.off
	}
	rr := newRecordReader(f, 0, fi.Size())
	var events int
	var bytes int64
	newAck := int64(-1)
	for {
		start := rr.off
		payload, n, err := rr.next()
		if errors.Is(err, errTorn) {
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return segment{}, 0, 0, 0, fmt.Errorf("spool: reading segment %s: %w", segName(id), err)
		}
		if payload[0] != recordVersion {
			// A whole record of another format, written by another
			// build: refuse rather than drop events this one cannot read.
			return segment{}, 0, 0, 0, fmt.Errorf("spool: segment %s holds records of version %d and this build reads version %d: run the build that wrote them until the spool is shipped, or move the directory aside", segName(id), payload[0], recordVersion)
		}
		// A record that ends after the acknowledged offset is pending; if
		// the offset falls inside it (it never should), the record is
		// resent rather than lost.
		if start+n > ackOff {
			if newAck < 0 {
				newAck = start
			}
			events++
			bytes += n
		}
	}
	end := rr.off
	if newAck < 0 {
		newAck = end
	}
	if end < fi.Size() {
		// The tail is a write cut short (or garbage): drop it, and cut it
		// off so that the disk accounting is exact and the next Open does
		// not meet it again. Only the last segment of a crashed process
		// should have one; records past damage elsewhere cannot be found
		// again without trusting a length that failed its checksum.
		s.log.Warn("spool: dropping a torn or corrupt tail left by a crash", "segment", segName(id), "offset", end, "bytes", fi.Size()-end)
		if err := f.Truncate(end); err != nil {
			return segment{}, 0, 0, 0, fmt.Errorf("spool: cutting the torn tail off segment %s: %w", segName(id), err)
		}
		if err := f.Sync(); err != nil {
			return segment{}, 0, 0, 0, fmt.Errorf("spool: cutting the torn tail off segment %s: %w", segName(id), err)
		}
	}
	return segment{id: id, size: end}, events, bytes, newAck, nil
}

// roll closes the active segment (already fsynced) and creates the next.
// The directory is fsynced so that the new file survives a crash with the
// records fsynced into it.
func (s *Spool) roll() error {
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
	id := s.activeID + 1
	f, err := os.OpenFile(s.segPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating segment %s: %w", segName(id), err)
	}
	if err := syncDir(s.cfg.Dir); err != nil {
		f.Close()
		os.Remove(s.segPath(id))
		return err
	}
	s.active, s.activeID, s.activeOff = f, id, 0
	s.smu.Lock()
	s.segs = append(s.segs, segment{id: id})
	s.smu.Unlock()
	return nil
}

// Add spools ev. It never blocks on disk and never fails: when the spool is
// full, the writer is behind, the event cannot be encoded or the spool is
// closed, the event is dropped and counted in Stats.Dropped. Times are kept
// as instants and come back in UTC.
func (s *Spool) Add(ev usage.Event) {
	rec := recordPool.Get().(*[]byte)
	b, ok := appendRecord((*rec)[:0], &ev)
	*rec = b
	if !ok {
		s.drops[dropTooLarge].Add(1)
		recordPool.Put(rec)
		return
	}
	n := len(b)
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		s.drops[dropClosed].Add(1)
	case len(s.buf)+s.writing+n > s.bufferBytes:
		s.mu.Unlock()
		s.drops[dropBehind].Add(1)
	case s.diskBytes.Load()+int64(len(s.buf)+s.writing+n) > s.cfg.MaxBytes:
		s.mu.Unlock()
		s.drops[dropFull].Add(1)
	default:
		s.buf = append(s.buf, b...)
		s.bufEvents++
		big := len(s.buf) >= s.kickBytes
		s.mu.Unlock()
		s.spooled.Add(1)
		if big {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
	recordPool.Put(rec)
}

// recordPool holds encoding buffers, so that Add encodes outside the lock
// without allocating.
var recordPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// run is the writer: it makes the buffer durable every SyncEvery, or sooner
// when it grows big.
func (s *Spool) run() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.Flush(); err != nil && !errors.Is(err, ErrClosed) {
			// Logged at most every 10 s: a full disk fails every tick.
			if time.Since(s.lastWErr) > 10*time.Second {
				s.lastWErr = time.Now()
				s.log.Error("spool: writing events to disk failed; they stay buffered and are retried (Add drops once the buffer is full)", "err", err)
			}
		}
		// Drops are logged at most every 10 s too: a full spool drops
		// every event, and the log must not become the next full disk.
		if time.Since(s.lastDropLog) > 10*time.Second {
			s.reportDrops()
		}
	}
}

// reportDrops logs the drops since the last report. It runs on the writer
// (and in Close), never in Add, so that logging cannot slow a request down.
func (s *Spool) reportDrops() {
	s.lastDropLog = time.Now()
	for i := range s.drops {
		n := s.drops[i].Load()
		if d := n - s.reported[i]; d > 0 {
			s.reported[i] = n
			s.log.Warn("spool: events dropped", "count", d, "reason", dropReasons[i])
		}
	}
}

// Flush writes what is buffered now and fsyncs it; when it returns nil,
// every event Added before the call is durable. After a failed write the
// events stay buffered and the next Flush writes them to a new segment.
func (s *Spool) Flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wclosed {
		return ErrClosed
	}
	return s.flushAllLocked()
}

// flushAllLocked makes the events durable, then the waiting requests, so
// that a request's Done is never durable before its event.
func (s *Spool) flushAllLocked() error {
	w := s.takePending()
	if err := s.flushLocked(); err != nil {
		s.putBack(w)
		return err
	}
	return s.writePending(w)
}

func (s *Spool) flushLocked() error {
	// Add appends to the spare buffer next. Sized like the last write, it
	// rarely has to grow, which would copy it while Add holds the lock.
	next := s.spare
	if next == nil {
		next = make([]byte, 0, min(max(s.lastWrite, 64<<10), s.bufferBytes))
	}
	s.mu.Lock()
	chunk, n := s.buf, s.bufEvents
	s.buf, s.bufEvents = next[:0], 0
	s.writing += len(chunk)
	s.writingCount += n
	s.mu.Unlock()
	s.spare = nil
	if len(s.unwritten) == 0 {
		s.unwritten, s.unwrCount = chunk, n
	} else {
		// An earlier write failed: its events go first, to keep the order.
		s.unwritten = append(s.unwritten, chunk...)
		s.unwrCount += n
	}
	whole := s.unwritten
	for len(s.unwritten) > 0 {
		if s.active == nil || s.activeOff >= s.segBytes {
			if err := s.roll(); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			s.reclaim() // the segment just finished may be fully acknowledged
		}
		size, count := split(s.unwritten, s.segBytes-s.activeOff)
		if err := s.write(s.unwritten[:size]); err != nil {
			return err
		}
		s.activeOff += int64(size)
		s.diskBytes.Add(int64(size)) // before writing shrinks: momentarily counted twice, never zero times
		s.smu.Lock()
		s.segs[len(s.segs)-1].size = s.activeOff
		s.pendingEvents += count
		s.pendingBytes += int64(size)
		close(s.durable)
		s.durable = make(chan struct{})
		s.smu.Unlock()
		s.mu.Lock()
		s.writing -= size
		s.writingCount -= count
		s.mu.Unlock()
		s.unwritten, s.unwrCount = s.unwritten[size:], s.unwrCount-count
	}
	s.lastWrite = len(whole)
	if cap(whole) <= s.bufferBytes/2 { // a burst's buffer is not kept forever
		s.spare = whole[:0]
	}
	s.unwritten = nil
	return nil
}

// split returns how many bytes of the whole records at the start of p fit
// in room, and how many records they are; at least one record, so that an
// event larger than a segment still gets written. Keeping segments near
// their size is what lets acknowledged space be reclaimed in small steps.
func split(p []byte, room int64) (int, int) {
	off, count := 0, 0
	for off < len(p) {
		n := recordHeader + int(binary.LittleEndian.Uint32(p[off:]))
		if count > 0 && int64(off+n) > room {
			break
		}
		off += n
		count++
	}
	return off, count
}

// write appends p to the active segment and fsyncs it.
func (s *Spool) write(p []byte) error {
	_, err := s.active.Write(p)
	if err == nil {
		err = s.active.Sync()
	}
	if err != nil {
		// What the file holds past activeOff is unknown, and after a failed
		// fsync the kernel may have dropped the dirty pages and marked them
		// clean, so a second fsync proves nothing. Never trust this file
		// for new writes: cut it back and write p again to a new segment.
		// Should the cut fail too, Open finds either whole records (sent
		// twice: usaged counts them once) or a torn tail (dropped).
		s.active.Truncate(s.activeOff)
		s.active.Close()
		s.active = nil
		return fmt.Errorf("spool: writing segment %s: %w", segName(s.activeID), err)
	}
	return nil
}

// Stats are a Spool's counters since Open.
type Stats struct {
	Spooled uint64 // events Add took
	Shipped uint64 // events acknowledged
	Dropped uint64 // events Add dropped: spool full, writer behind, too large or closed
	// PendingBytes and PendingEvents are what is not acknowledged yet,
	// buffered or on disk, including what an earlier process left.
	PendingBytes  int64
	PendingEvents int
	// Waiting are the requests kept waiting for attribution (Keep, not yet
	// Done), WaitingDurable those of them on disk.
	Waiting        int
	WaitingDurable int
}

// Stats returns the counters so far.
func (s *Spool) Stats() Stats {
	var st Stats
	st.Spooled = s.spooled.Load()
	st.Shipped = s.shipped.Load()
	for i := range s.drops {
		st.Dropped += s.drops[i].Load()
	}
	s.mu.Lock()
	st.PendingBytes = int64(len(s.buf) + s.writing)
	st.PendingEvents = s.bufEvents + s.writingCount
	s.mu.Unlock()
	s.smu.Lock()
	st.PendingBytes += s.pendingBytes
	st.PendingEvents += s.pendingEvents
	s.smu.Unlock()
	s.pmu.Lock()
	st.Waiting, st.WaitingDurable = len(s.pend.live), s.pend.durable
	s.pmu.Unlock()
	return st
}

// Close makes what is buffered durable, stops the writer and wakes a
// blocked Next. Add after Close drops; Next and Ack fail with ErrClosed.
func (s *Spool) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		s.wmu.Lock()
		err := s.flushAllLocked()
		s.pmu.Lock()
		s.pclosed = true
		s.pmu.Unlock()
		s.wclosed = true
		s.wmu.Unlock()
		s.reportDrops()
		close(s.closedCh)
		s.rmu.Lock()
		s.closeFiles()
		s.rmu.Unlock()
		s.closeErr = err
	})
	return s.closeErr
}

// closeFiles closes every file the spool holds, the lock last.
func (s *Spool) closeFiles() {
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
	if s.pend.file != nil {
		s.pend.file.Close()
		s.pend.file = nil
	}
	if s.lock != nil {
		unlockDir(s.lock)
		s.lock = nil
	}
}

// syncDir fsyncs a directory, making the creation, renaming or removal of
// its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: opening the directory to fsync it: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: fsyncing the directory: %w", err)
	}
	return nil
}
