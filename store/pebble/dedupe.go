package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/zeebo/xxh3"
)

// The dedupe index: the in-memory filter over the dedupe records, and how
// it outlives a restart without a scan of the records.
//
// The records themselves ('d' keys) are the truth: the filter only spares
// Append a disk read for events it surely has not seen, so it may hold more
// than the records (a false positive costs a Get) but never less. Keeping it
// whole across a restart, cheaply, rests on three parts:
//
//   - An arrival log. Every batch that adds records also writes, in the same
//     Pebble batch, one 'l' key numbered in commit order whose value lists
//     the batch's records (org, day, hash). A record is durable exactly when
//     its log entry is.
//   - Checkpoints. The maintenance goroutine writes the filter to a file of
//     its own in the store's directory, then records in one Pebble write the file's number, checksum
//     and the log sequence S it covers, and deletes the log before S. It
//     reads S before copying, and bits are only ever set, so the file holds
//     every record logged before S. Each checkpoint is a new file: a crash
//     while one is written leaves the previous one, which the metadata still
//     names. Close writes a last checkpoint, so a clean restart replays
//     nothing.
//   - Open loads the named file, checks it, and adds the log's entries from
//     S on: after a crash, at most a checkpoint interval of records
//     (checkpointDue). Open is one sequential read of the filter, whatever
//     the number of records; a store without a checkpoint (created by an
//     earlier version, or whose file is lost) is rebuilt from its records
//     once.
//
// Nothing rebuilds the filter under the ingest lock. When it fills up, or a
// day's records expire, the maintenance goroutine refills a new filter from
// the records in chunks, taking the lock only to add each chunk, while
// Append adds new records to both; the new filter replaces the old at once
// when the scan ends. A crash during a refill loses only the refill.

// famLog is the arrival log's family: 'l' seq(uint64) → entries of logEntryLen.
const famLog = 'l'

// logEntryLen is one record in the arrival log: org, day and hash, its
// dedupe key without the family byte.
const logEntryLen = dedupeLen - 1

// minCheckpointRecords is the fewest records logged between checkpoints:
// below it a checkpoint costs more than the replay it saves. A variable
// so that tests can checkpoint often.
var minCheckpointRecords = 1 << 18

// refillChunk is the number of records a refill reads at once, and
// checkpointChunk the blocks a checkpoint copies at once (1 MiB).
const (
	refillChunk     = 16 << 10
	checkpointChunk = 16 << 10
)

// indexKey names the checkpoint in the store's metadata.
var indexKey = []byte{famMeta, 'd', 'e', 'd', 'u', 'p', 'e', '-', 'i', 'n', 'd', 'e', 'x'}

// checkpoint is the metadata of a checkpoint file.
type checkpoint struct {
	file           uint64 // its number: the file is indexDir/filter-<number>
	logSeq         uint64 // every record logged before this entry is in the file
	records, cap   uint64 // the filter's count and capacity
	blocks         uint64
	minDay, maxDay uint16
	sum            uint64 // xxh3 of the file's contents after the header
}

const checkpointLen = 1 + 8*6 + 2*2

func (c *checkpoint) encode() []byte {
	b := []byte{1} // version
	for _, v := range [...]uint64{c.file, c.logSeq, c.records, c.cap, c.blocks, c.sum} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, c.minDay)
	return binary.BigEndian.AppendUint16(b, c.maxDay)
}

func decodeCheckpoint(b []byte) (checkpoint, bool) {
	if len(b) != checkpointLen || b[0] != 1 {
		return checkpoint{}, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[1+8*i:]) }
	return checkpoint{
		file: u(0), logSeq: u(1), records: u(2), cap: u(3), blocks: u(4), sum: u(5),
		minDay: binary.BigEndian.Uint16(b[49:]), maxDay: binary.BigEndian.Uint16(b[51:]),
	}, true
}

// The checkpoint file: a header, then the filter's blocks as they are in
// memory (native byte order, which the header's order word checks).
const (
	indexMagic = "usaged dedupe 1\n"
	headerLen  = len(indexMagic) + 8 + 8 + 8 // magic, seed, blocks, order word
	orderWord  = 0x0102030405060708
	// indexPrefix begins the name of a checkpoint file, in the store's
	// directory (Pebble ignores files it does not name).
	indexPrefix = "dedupe-filter-"
)

func (d *DB) indexFile(n uint64) string {
	return filepath.Join(d.dir, indexPrefix+strconv.FormatUint(n, 10))
}

// logKey is the arrival log's key of entry seq.
func logKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{famLog}, seq)
}

// openIndex gives the store its filter at open: the checkpoint and the log
// after it, or else a scan of the records. The caller holds mu.
func (d *DB) openIndex(capacity int) error {
	last, err := d.lastLogSeq()
	if err != nil {
		return err
	}
	d.logSeq = last
	start := time.Now()
	cp, err := d.loadCheckpoint()
	if err == nil {
		var replayed int
		replayed, err = d.replayLog(cp.logSeq)
		if err == nil {
			d.log.Debug("dedupe index loaded", "records", d.filter.n.Load(), "replayed", replayed, "bytes", d.filter.sizeBytes(), "took", time.Since(start))
			d.unsaved.Store(int64(replayed))
			d.saved = cp.file
			d.removeStaleFiles()
			return nil
		}
		d.filter.release()
		d.filter = nil
	}
	if !errors.Is(err, errNoCheckpoint) {
		d.log.Warn("dedupe index checkpoint unusable; rebuilding it from the records", "err", err)
	}
	if err := d.scanRecords(capacity); err != nil {
		return err
	}
	if n := d.filter.n.Load(); n > 0 {
		d.log.Info("dedupe index rebuilt from the records", "records", n, "took", time.Since(start))
	}
	// Everything is in the filter and nothing on disk: checkpoint at once.
	d.unsaved.Store(max(d.filter.n.Load(), 1))
	d.removeStaleFiles()
	return nil
}

var errNoCheckpoint = errors.New("no checkpoint")

// lastLogSeq returns the sequence number after the log's last entry.
func (d *DB) lastLogSeq() (uint64, error) {
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famLog}, UpperBound: []byte{famLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	if len(it.Key()) != 9 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(it.Key()[1:]) + 1, nil
}

// loadCheckpoint reads the checkpoint named in the metadata into d.filter
// and the day bounds.
func (d *DB) loadCheckpoint() (checkpoint, error) {
	v, closer, err := d.db.Get(indexKey)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return checkpoint{}, errNoCheckpoint
	}
	if err != nil {
		return checkpoint{}, err
	}
	cp, ok := decodeCheckpoint(v)
	closer.Close()
	if !ok {
		return cp, errors.New("corrupt checkpoint record")
	}
	f, err := os.Open(d.indexFile(cp.file))
	if err != nil {
		return cp, err
	}
	defer f.Close()
	var h [headerLen]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return cp, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if string(h[:len(indexMagic)]) != indexMagic ||
		binary.BigEndian.Uint64(h[len(indexMagic):]) != d.seed ||
		binary.BigEndian.Uint64(h[len(indexMagic)+8:]) != cp.blocks ||
		binary.NativeEndian.Uint64(h[len(indexMagic)+16:]) != orderWord {
		return cp, fmt.Errorf("%s: header does not match the store", f.Name())
	}
	if cp.blocks == 0 || cp.blocks > math.MaxInt32 || cp.cap == 0 {
		return cp, fmt.Errorf("%s: %d blocks", f.Name(), cp.blocks)
	}
	flt := newFilterBlocks(int(cp.blocks), int(cp.cap))
	if _, err := io.ReadFull(f, flt.bytes()); err != nil {
		flt.release()
		return cp, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if sum := xxh3.Hash(flt.bytes()); sum != cp.sum {
		flt.release()
		return cp, fmt.Errorf("%s: checksum %x, recorded %x", f.Name(), sum, cp.sum)
	}
	if fi, err := f.Stat(); err == nil {
		d.indexBytes.Store(fi.Size())
	}
	flt.n.Store(int64(cp.records))
	d.filter = flt
	d.minDay, d.maxDay = cp.minDay, cp.maxDay
	return cp, nil
}

// replayLog adds the log's entries from seq on to the filter.
func (d *DB) replayLog(seq uint64) (int, error) {
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: logKey(seq), UpperBound: []byte{famLog + 1}})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v)%logEntryLen != 0 {
			it.Close()
			return n, fmt.Errorf("log entry %x: %d bytes", it.Key(), len(v))
		}
		for ; len(v) > 0; v = v[logEntryLen:] {
			k := idKey{org: binary.BigEndian.Uint32(v)}
			day := binary.BigEndian.Uint16(v[4:])
			copy(k.hash[:], v[6:logEntryLen])
			d.filter.add(&k)
			d.minDay, d.maxDay = min(d.minDay, day), max(d.maxDay, day)
			n++
		}
	}
	return n, it.Close()
}

// scanRecords builds the filter from the records, for at least capacity.
func (d *DB) scanRecords(capacity int) error {
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famDedupe}, UpperBound: []byte{famDedupe + 1}})
	if err != nil {
		return err
	}
	// The records' disk footprint gives an estimate of their number (about
	// 12 bytes each compressed), which spares a counting pass; an
	// underestimate only means an earlier refill.
	n := 0
	if size, err := d.db.EstimateDiskUsage([]byte{famDedupe}, []byte{famDedupe + 1}); err == nil {
		n = int(size / 12)
	}
	f := newFilter(max(capacity, 2*n))
	d.minDay = math.MaxUint16
	for it.First(); it.Valid(); it.Next() {
		k, ok := decodeDedupe(it.Key())
		if !ok {
			it.Close()
			f.release()
			return errCorrupt
		}
		f.add(&k)
		day := binary.BigEndian.Uint16(it.Key()[5:])
		d.minDay, d.maxDay = min(d.minDay, day), max(d.maxDay, day)
	}
	if err := it.Close(); err != nil {
		f.release()
		return err
	}
	d.filter = f
	return nil
}

// removeStaleFiles deletes the checkpoint files other than the current one:
// those of a checkpoint a crash interrupted, or that a later one replaced.
func (d *DB) removeStaleFiles() {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return
	}
	keep := filepath.Base(d.indexFile(d.saved))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), indexPrefix) && e.Name() != keep {
			os.Remove(filepath.Join(d.dir, e.Name()))
		}
	}
}

// addRecord adds the record of id at day to the filters, the day bounds
// and the batch's log entry. The caller holds mu.
func (d *DB) addRecord(entry []byte, id *idKey, day uint16) []byte {
	d.filter.add(id)
	if d.next != nil {
		d.next.add(id)
	}
	d.minDay, d.maxDay = min(d.minDay, day), max(d.maxDay, day)
	entry = binary.BigEndian.AppendUint32(entry, id.org)
	entry = binary.BigEndian.AppendUint16(entry, day)
	return append(entry, id.hash[:]...)
}

// logRecords puts the batch's log entry into b, and asks for the
// maintenance its growth calls for. The caller holds mu and applies b
// before releasing it, so that log order is commit order.
func (d *DB) logRecords(b *pebbledb.Batch, entry []byte) {
	if len(entry) == 0 {
		return
	}
	b.Set(logKey(d.logSeq), entry, nil)
	d.logSeq++
	d.unsaved.Add(int64(len(entry) / logEntryLen))
	if d.filter.full() && d.next == nil || d.checkpointDue() {
		d.wakeMaintenance()
	}
}

// checkpointDue reports whether enough records were logged since the last
// checkpoint: a thirty-second of the filter's capacity. A record replayed
// costs about 150 ns (an add to a filter far larger than the caches), so
// a crash leaves at most about a second to replay at a hundred million
// records (4 Mi of them); a checkpoint writes the filter, 2 bytes per unit
// of capacity, so this costs 64 bytes written per record logged. The caller holds
// mu, or is the maintenance goroutine (which alone replaces d.filter).
func (d *DB) checkpointDue() bool {
	return d.unsaved.Load() >= int64(max(d.filter.cap/32, minCheckpointRecords))
}

func (d *DB) wakeMaintenance() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// maintain runs the index's maintenance until ctx ends: refills and
// checkpoints, when Append or ExpireDedupe ask for them.
func (d *DB) maintain(ctx context.Context) {
	defer close(d.maintDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for ctx.Err() == nil && d.health.err() == nil {
			d.mu.Lock()
			capacity := d.refillCap // an expiry's
			d.refillCap = 0
			if d.filter.full() {
				capacity = max(capacity, 2*d.filter.cap)
			}
			due := d.checkpointDue()
			d.mu.Unlock()
			if capacity > 0 {
				if err := d.refill(ctx, capacity); err != nil {
					if ctx.Err() == nil {
						d.log.Error("refilling the dedupe index failed; the current one stays until the next try", "err", err)
					}
					break
				}
				continue // the batches meanwhile may call for more
			}
			if due {
				if err := d.writeCheckpoint(true); err != nil {
					d.log.Error("checkpointing the dedupe index failed; the arrival log keeps its records", "err", err)
				}
			}
			break
		}
	}
}

// hook is called at each step of the index's maintenance; crash tests set
// it to stop the process there.
var hook = func(step string) {}

// refill builds a new filter for capacity from the records, and puts it in
// place of the current one. Append adds every record applied after the
// scan's iterator was opened to the new filter too, so the two together
// hold them all.
func (d *DB) refill(ctx context.Context, capacity int) error {
	start := time.Now()
	d.mu.Lock()
	if err := d.usable(); err != nil {
		d.mu.Unlock()
		return err
	}
	var it *pebbledb.Iterator
	err := d.guard(func() (err error) {
		it, err = d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famDedupe}, UpperBound: []byte{famDedupe + 1}})
		return err
	})
	if err != nil {
		d.mu.Unlock()
		return err
	}
	next := newFilter(capacity)
	d.next = next
	d.mu.Unlock()
	abandon := func(err error) error {
		it.Close()
		d.mu.Lock()
		d.next = nil
		d.mu.Unlock()
		next.release()
		return err
	}
	keys := make([]idKey, 0, refillChunk)
	valid, first := false, true
	for {
		keys = keys[:0]
		err := d.guard(func() error {
			if first {
				valid, first = it.First(), false
			}
			for ; valid && len(keys) < refillChunk; valid = it.Next() {
				k, ok := decodeDedupe(it.Key())
				if !ok {
					return errCorrupt
				}
				keys = append(keys, k)
			}
			return it.Error()
		})
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return abandon(err)
		}
		// Without mu: Append adds to next too, but both add atomically,
		// and Append holds mu for a whole batch, far longer than a chunk.
		for i := range keys {
			next.add(&keys[i])
		}
		due := d.checkpointDue()
		hook("refill-chunk")
		if !valid {
			break
		}
		if due {
			// A long refill must not let the log grow without bound.
			if err := d.writeCheckpoint(true); err != nil {
				d.log.Error("checkpointing the dedupe index failed; the arrival log keeps its records", "err", err)
			}
		}
	}
	it.Close()
	d.mu.Lock()
	old := d.filter
	d.filter, d.next = d.next, nil
	// The new filter is on disk only once checkpointed.
	d.unsaved.Store(max(d.unsaved.Load(), int64(d.filter.cap/32), int64(minCheckpointRecords)))
	records, bytes := d.filter.n.Load(), d.filter.sizeBytes()
	d.mu.Unlock()
	old.release()
	hook("refill-swapped")
	d.log.Info("dedupe index refilled", "records", records, "capacity", capacity, "bytes", bytes, "took", time.Since(start))
	return d.writeCheckpoint(true)
}

// writeCheckpoint writes the filter to a new file and records it. With
// lock, it takes mu to read where the log and the filter stand (the
// maintenance goroutine); without, the caller holds mu (Close). The copy
// itself runs without mu: bits are set atomically, and only set.
func (d *DB) writeCheckpoint(lock bool) error {
	start := time.Now()
	if lock {
		d.mu.Lock()
	}
	f := d.filter
	cp := checkpoint{
		file: d.saved + 1, logSeq: d.logSeq, records: uint64(f.n.Load()), cap: uint64(f.cap),
		blocks: uint64(len(f.blocks)), minDay: d.minDay, maxDay: d.maxDay,
	}
	unsaved := d.unsaved.Swap(0)
	if lock {
		d.mu.Unlock()
	}
	err := d.writeIndexFile(&cp, f)
	if err == nil {
		hook("checkpoint-written")
		err = d.guard(func() error {
			b := d.db.NewBatch()
			defer b.Close()
			b.Set(indexKey, cp.encode(), nil)
			b.DeleteRange(logKey(0), logKey(cp.logSeq), nil)
			return b.Commit(pebbledb.Sync)
		})
	}
	if err != nil {
		os.Remove(d.indexFile(cp.file))
		d.unsaved.Add(unsaved)
		return err
	}
	hook("checkpoint-recorded")
	os.Remove(d.indexFile(d.saved))
	d.saved = cp.file
	d.log.Debug("dedupe index checkpointed", "records", cp.records, "log", cp.logSeq, "bytes", len(f.blocks)*64, "took", time.Since(start))
	return nil
}

// writeIndexFile writes f to cp's file and syncs it, setting cp.sum.
func (d *DB) writeIndexFile(cp *checkpoint, f *filter) error {
	name := d.indexFile(cp.file)
	w, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Chmod(fileMode); err != nil {
		return err
	}
	h := make([]byte, 0, headerLen)
	h = append(h, indexMagic...)
	h = binary.BigEndian.AppendUint64(h, d.seed)
	h = binary.BigEndian.AppendUint64(h, cp.blocks)
	h = binary.NativeEndian.AppendUint64(h, orderWord)
	if _, err := w.Write(h); err != nil {
		return err
	}
	sum := xxh3.New()
	buf := make([]byte, checkpointChunk*64)
	for i := 0; i < len(f.blocks); i += checkpointChunk {
		b := f.copyBlocks(buf, i, min(i+checkpointChunk, len(f.blocks)))
		sum.Write(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	if err := w.Sync(); err != nil {
		return err
	}
	if err := syncDir(d.dir); err != nil {
		return err
	}
	cp.sum = sum.Sum64()
	if fi, err := w.Stat(); err == nil {
		d.indexBytes.Store(fi.Size())
	}
	return nil
}

// seen reports whether a dedupe record for id with an event hour at or after
// fromHour is applied. The record is looked for at the event's own day first
// (a retry carries the same time), then at every other day of the window.
// The caller holds mu.
func (d *DB) seen(id *idKey, hour, fromHour uint32) (bool, error) {
	if !d.filter.mayContain(id) {
		return false, nil
	}
	fromDay := uint16(fromHour / 24)
	own := uint16(hour / 24)
	if own >= fromDay {
		if ok, err := d.recorded(id, own, fromHour); ok || err != nil {
			return ok, err
		}
	}
	for day := fromDay; day <= d.maxDay && day >= fromDay; day++ {
		if day == own {
			continue
		}
		if ok, err := d.recorded(id, day, fromHour); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// recorded reports whether id has a record at day with an hour >= fromHour.
func (d *DB) recorded(id *idKey, day uint16, fromHour uint32) (found bool, err error) {
	err = d.guard(func() error {
		var kbuf [dedupeLen]byte
		v, closer, err := d.db.Get(dedupeKey(kbuf[:0], id, day))
		if errors.Is(err, pebbledb.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		if len(v) != 1 {
			return errCorrupt
		}
		found = uint32(day)*24+uint32(v[0]) >= fromHour
		return nil
	})
	return found, err
}

// ExpireDedupe implements store.DedupeExpirer. Records are kept per day, so it
// deletes the whole days before the day of before, with one range deletion
// per organization; records of that day itself stay until the next day's
// expiry (Append ignores those outside the window anyway). It then asks for
// a refill of the filter in the background, so that expired records stop
// costing disk reads, only when a day was actually expired.
func (d *DB) ExpireDedupe(ctx context.Context, before time.Time) error {
	day := uint16(hourOf(before) / 24)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	if day <= d.minDay {
		return nil // nothing that old is kept
	}
	d.dict.mu.RLock()
	orgs := uint32(len(d.dict.strs[kindOrg]))
	d.dict.mu.RUnlock()
	b := d.db.NewBatch()
	defer b.Close()
	for org := uint32(1); org < orgs; org++ {
		if err := b.DeleteRange(dedupePrefix(org, 0), dedupePrefix(org, day), nil); err != nil {
			return err
		}
	}
	if err := d.guard(func() error { return b.Commit(pebbledb.Sync) }); err != nil {
		return err
	}
	d.minDay = day
	d.log.Info("expired dedupe records", "before", time.Unix(int64(day)*86400, 0).UTC().Format(time.DateOnly))
	d.refillCap = max(d.refillCap, d.filter.cap)
	d.wakeMaintenance()
	return nil
}
