package pebble

// Checks of the write-ahead log before Pebble replays it.
//
// Pebble replays at Open every WAL the manifest does not record as flushed
// and treats a log that stops being readable as its end: that is how a crash
// leaves the last log (a record half written after the last fsync), but it is
// also what a flipped or deleted byte in the middle of the log looks like, and
// then every acknowledged write after the damage is silently dropped. Pebble
// only tells the two apart when a later chunk, block-aligned, carries a sync
// offset past the damage; a deleted byte shifts every later chunk and defeats
// that, and its message goes to the info log.
//
// So Open scans those logs first, chunk by chunk as Pebble's record reader
// does. Where one stops being readable, it looks at every byte offset after
// that point for a chunk that is valid (checksum, this log's number) and was
// written after the writer had synced past the damage (its sync offset says
// so): such a chunk proves that the unreadable bytes had been acknowledged, so
// the log is damaged, not torn, and Open refuses to start unless
// Config.AcceptWALLoss is set. A tail with no such chunk after it is what a
// crash leaves and is recovered silently, as Pebble does.
//
// What this cannot see: a log cut short or deleted after a crash looks like
// the crash itself, and damage to the last records of a log (with nothing
// written after them) looks like a torn tail. Close flushes the memtable so
// that after a clean shutdown no log holds anything the store needs: cutting
// or deleting it then loses nothing.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// WALDamageError reports a write-ahead log damaged in its middle: acknowledged
// writes from Offset on cannot be replayed.
type WALDamageError struct {
	File     string // the damaged log
	Offset   int64  // where its readable records end
	Size     int64  // its size in bytes
	Evidence int64  // offset of a valid record written after the damage
	// Later are the logs after the damaged one; their writes depend on the
	// lost ones and are dropped with them when the loss is accepted.
	Later []string
}

func (e *WALDamageError) Error() string {
	later := ""
	if len(e.Later) > 0 {
		later = fmt.Sprintf(", and the %d later log(s) %s", len(e.Later), strings.Join(e.Later, ", "))
	}
	return fmt.Sprintf("pebble store: write-ahead log %s is damaged at offset %d: a record written after it (at offset %d) "+
		"shows that acknowledged writes follow; replaying would drop the %d bytes from offset %d to the end of the file%s",
		e.File, e.Offset, e.Evidence, e.Size-e.Offset, e.Offset, later)
}

// damagedSuffix names the copy of a damaged log kept when its loss is
// accepted. Pebble ignores files it cannot parse as its own.
const damagedSuffix = ".damaged"

// checkWAL scans the logs Pebble will replay from dir. A damaged one is
// returned as a *WALDamageError, or, with accept, cut at its readable end
// (kept whole beside it, as are the later logs it drops) after logging at
// ERROR what is lost.
func checkWAL(dir string, accept bool, log *slog.Logger) error {
	desc, err := pebbledb.Peek(dir, vfs.Default)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // a new store
		}
		return fmt.Errorf("pebble store: inspect %s: %w", dir, err)
	}
	if !desc.Exists {
		return nil
	}
	minLog, err := minUnflushedLog(desc.ManifestFilename)
	if err != nil {
		return fmt.Errorf("pebble store: read manifest %s: %w", desc.ManifestFilename, err)
	}
	logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: dir})
	if err != nil {
		return fmt.Errorf("pebble store: list write-ahead logs in %s: %w", dir, err)
	}
	var paths []string // the logs Pebble replays, oldest first
	var nums []uint32
	for _, l := range logs {
		if uint64(l.Num) < minLog {
			continue // flushed; deleted or recycled by Pebble
		}
		for i := range l.NumSegments() {
			_, p := l.SegmentLocation(i)
			paths = append(paths, p)
			nums = append(nums, uint32(l.Num))
		}
	}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("pebble store: read write-ahead log: %w", err)
		}
		s := scanLog(b, nums[i])
		if s.evidence < 0 {
			continue
		}
		derr := &WALDamageError{File: p, Offset: s.good, Size: int64(len(b)), Evidence: s.evidence}
		derr.Later = append(derr.Later, paths[i+1:]...)
		if !accept {
			return derr
		}
		return dropDamaged(b, derr, s, log)
	}
	return nil
}

// flushOnClose writes the memtable to an sstable, so that after a clean
// shutdown no write-ahead log holds anything the store needs: a log cut short
// or deleted while the server is stopped then loses nothing, where no check
// at open could tell it from a crash. It costs one memtable flush (at most 16
// MiB) at shutdown. A failed store is not flushed: its memtable may hold a
// batch that never became durable. The caller holds mu.
func (d *DB) flushOnClose() {
	if d.health.err() != nil {
		return
	}
	start := time.Now()
	if err := d.db.Flush(); err != nil {
		d.log.Warn("flushing the memtable at close failed; the write-ahead log keeps its writes", "err", err)
		return
	}
	d.log.Debug("memtable flushed at close", "took", time.Since(start))
}

// dropDamaged cuts the damaged log at its readable end and moves the later
// logs aside, keeping a whole copy of each next to it, so that Pebble replays
// a consistent prefix of the writes: later writes may build on lost ones (a
// dictionary entry, a dedupe record), so none after the damage is kept.
func dropDamaged(b []byte, e *WALDamageError, s logScan, log *slog.Logger) error {
	lost := e.Size - e.Offset
	if err := writeSynced(e.File+damagedSuffix, b); err != nil {
		return fmt.Errorf("pebble store: keep a copy of the damaged log: %w", err)
	}
	if err := truncateSynced(e.File, e.Offset); err != nil {
		return fmt.Errorf("pebble store: cut the damaged log: %w", err)
	}
	for _, p := range e.Later {
		if fi, err := os.Stat(p); err == nil {
			lost += fi.Size()
		}
		if err := os.Rename(p, p+damagedSuffix); err != nil {
			return fmt.Errorf("pebble store: move aside a log after the damaged one: %w", err)
		}
	}
	if err := syncDir(filepath.Dir(e.File)); err != nil {
		return err
	}
	log.Error("write-ahead log damaged: acknowledged writes after the damage are lost, as accepted",
		"file", e.File, "offset", e.Offset, "evidenceOffset", e.Evidence,
		"bytesLost", lost, "recordsLostAtLeast", s.chunksAfter, "laterLogsDropped", e.Later,
		"copies", "kept with the suffix "+damagedSuffix)
	return nil
}

// minUnflushedLog returns the number of the oldest log the manifest does not
// record as flushed: Pebble replays it and every later one. Each version edit
// writes that number right after the comparator name, if at all (see
// VersionEdit.Encode), so an edit is read only up to it; the last edit that
// sets it wins. A torn last record ends the manifest, as in Pebble.
func minUnflushedLog(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	const tagComparator, tagLogNumber = 1, 2
	var minLog uint64
	rr := record.NewReader(f, 0)
	for {
		r, err := rr.Next()
		if err == io.EOF || record.IsInvalidRecord(err) {
			return minLog, nil
		}
		if err != nil {
			return 0, err
		}
		edit, err := io.ReadAll(r)
		if err == io.EOF || record.IsInvalidRecord(err) {
			return minLog, nil
		}
		if err != nil {
			return 0, err
		}
		br := bytes.NewReader(edit)
		tag, err := binary.ReadUvarint(br)
		if err == nil && tag == tagComparator {
			var n uint64
			if n, err = binary.ReadUvarint(br); err == nil {
				_, err = br.Seek(int64(n), io.SeekCurrent)
			}
			if err == nil {
				tag, err = binary.ReadUvarint(br)
			}
		}
		if err == nil && tag == tagLogNumber {
			if n, err := binary.ReadUvarint(br); err == nil {
				minLog = n
			}
		}
	}
}

// The record format of Pebble's record package (see its package comment):
// 32 KiB blocks of chunks, each a header (checksum, length, type, and in the
// recyclable and WAL-sync formats the log number, and in the latter the
// offset the writer had synced to) and a payload.
const (
	blockSize     = 32 << 10
	legacyHeader  = 7
	recycleHeader = 11
	syncHeader    = 19
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkSum is the record format's checksum: a masked CRC-32C.
func chunkSum(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// chunk is a valid chunk: its end, its place in its record, and the offset
// its writer had synced to (-1 if the format does not say).
type chunk struct {
	end    int
	pos    byte // 1 full, 2 first, 3 middle, 4 last
	synced int64
	logNum uint32
	hasNum bool
}

// chunkAt parses a valid chunk at off, or reports false.
func chunkAt(b []byte, off int) (chunk, bool) {
	blockEnd := min(off-off%blockSize+blockSize, len(b))
	if off+legacyHeader > blockEnd {
		return chunk{}, false
	}
	typ := b[off+6]
	c := chunk{synced: -1}
	hdr := legacyHeader
	switch {
	case typ >= 1 && typ <= 4:
	case typ >= 5 && typ <= 8:
		hdr = recycleHeader
	case typ >= 9 && typ <= 12:
		hdr = syncHeader
	default:
		return chunk{}, false
	}
	if off+hdr > blockEnd {
		return chunk{}, false
	}
	c.end = off + hdr + int(binary.LittleEndian.Uint16(b[off+4:]))
	if c.end > blockEnd || binary.LittleEndian.Uint32(b[off:]) != chunkSum(b[off+6:c.end]) {
		return chunk{}, false
	}
	c.pos = (typ-1)%4 + 1
	if hdr > legacyHeader {
		c.logNum, c.hasNum = binary.LittleEndian.Uint32(b[off+7:]), true
	}
	if hdr == syncHeader {
		c.synced = int64(binary.LittleEndian.Uint64(b[off+11:]))
	}
	return c, true
}

// logScan is what scanLog found in a log.
type logScan struct {
	good        int64 // end of the last whole record: what Pebble replays
	stop        int64 // where reading stopped, if not at a clean end
	evidence    int64 // offset of a chunk proving damage, or -1
	chunksAfter int   // valid chunks of this log after stop
}

// scanLog reads the records of log logNum as Pebble's reader does and, if it
// stops before a clean end, looks for proof that the stop is damage rather
// than a torn tail.
func scanLog(b []byte, logNum uint32) logScan {
	s := logScan{evidence: -1}
	off, inRecord := 0, false
	for {
		blockEnd := min(off-off%blockSize+blockSize, len(b))
		if off >= len(b) {
			if !inRecord {
				s.good, s.stop = int64(off), -1
				return s // the end of the file at a record boundary
			}
			break
		}
		if off+legacyHeader > blockEnd {
			if blockEnd == len(b) {
				break // a few bytes that cannot be a chunk end the file
			}
			off = blockEnd // the writer zero-fills a block's last bytes
			continue
		}
		h := b[off : off+legacyHeader]
		if binary.LittleEndian.Uint32(h) == 0 && binary.LittleEndian.Uint16(h[4:]) == 0 && h[6] == 0 {
			// Zeros where a header would go: the padding at the end of a
			// block, else the end of what was written.
			if off+syncHeader > blockEnd && allZero(b[off:blockEnd]) {
				off = blockEnd
				continue
			}
			break
		}
		// A writer closing a log cleanly ends it with a chunk numbered as
		// the next log, which Pebble's reader takes as the end unchecked.
		if !inRecord && h[6] >= 5 && h[6] <= 12 && off+recycleHeader <= blockEnd &&
			binary.LittleEndian.Uint32(b[off+7:]) == logNum+1 {
			s.good, s.stop = int64(off), -1
			return s
		}
		c, ok := chunkAt(b, off)
		if !ok || (c.hasNum && c.logNum != logNum) {
			break
		}
		switch {
		case !inRecord && c.pos == 1:
			s.good = int64(c.end)
		case !inRecord && c.pos == 2:
			inRecord = true
		case !inRecord:
			// A stray continuation is skipped, as Pebble's reader does.
		case c.pos == 3:
		case c.pos == 4:
			inRecord = false
			s.good = int64(c.end)
		default:
			s.stop = int64(off)
			return s.lookAfter(b, logNum)
		}
		off = c.end
	}
	s.stop = int64(off)
	return s.lookAfter(b, logNum)
}

// lookAfter searches every offset after the stop for a valid chunk of this
// log that its writer wrote after syncing past the stop. Every byte offset is
// tried, not just the chunk boundaries of an intact log, so that a deleted or
// inserted byte, which shifts all that follows, is still caught. Chunks of
// the older recyclable format carry no sync offset; any valid one counts
// (they only exist in logs written before the store's format was raised).
func (s logScan) lookAfter(b []byte, logNum uint32) logScan {
	for off := int(s.stop) + 1; off+legacyHeader <= len(b); off++ {
		if t := b[off+6]; t < 5 || t > 12 {
			continue // legacy chunks carry no log number: never proof
		}
		c, ok := chunkAt(b, off)
		if !ok || c.logNum != logNum {
			continue
		}
		if c.synced < 0 || c.synced > s.stop {
			if s.evidence < 0 {
				s.evidence = int64(off)
			}
			s.chunksAfter++
			off = c.end - 1
		}
	}
	return s
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func truncateSynced(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
