package pebble

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zeebo/xxh3"
)

// The dedupe index: the in-memory filter over the dedupe records, and how
// it outlives a restart without a scan of the records.
//
// The records are the truth: the filter only spares Append a lookup for
// events it surely has not seen, so it may hold more than the records (a
// false positive costs a lookup) but never less. A record is first an entry
// in the arrival log and in memory, and later a 'd' key:
//
//   - An arrival log. Every batch that adds records also writes, in the same
//     Pebble batch, one log key numbered in commit order whose value lists
//     the batch's records (org, day, hour, hash). A record is durable
//     exactly when its log entry is.
//   - Runs. The records logged since the last run are kept in memory
//     (recent), where Append looks first. Every Config.RunRecords records the
//     maintenance goroutine sorts them into a table of 'd' keys of its own
//     and ingests it into Pebble whole, then records in one write the log
//     sequence the runs cover. So a record never passes through the
//     write-ahead log, the memtable and a flush as a key of its own: those
//     cost as much as everything else an event writes, and were most of
//     what a restart after a crash had to redo. A crash before the record
//     leaves the log to replay into memory at open; a record in memory and
//     in a run at once is only looked up twice.
//   - Checkpoints. The maintenance goroutine writes the filter to a file of
//     its own in the store's directory, then records in one Pebble write
//     the file's number, checksum and the log sequence S it covers, and
//     deletes the log before S or the runs' sequence, the earlier. It
//     reads S before copying, and bits are only ever set, so the file holds
//     every record logged before S. Each checkpoint is a new file: a crash
//     while one is written leaves the previous one, which the metadata still
//     names. Close writes a last checkpoint, so a clean restart replays
//     nothing.
//   - Open loads the named file, checks it, and adds the log's entries from
//     S on: after a crash, at most a checkpoint interval of records
//     (checkpointDue); the entries from the runs' sequence on go into
//     memory too. Open is one sequential read of the filter, whatever the
//     number of records; a store without a checkpoint (created by an
//     earlier version, or whose file is lost) is rebuilt from its records
//     once. New entries are numbered on from the later of the two
//     sequences, whether or not the log still holds an entry.
//
// Nothing rebuilds the filter under the ingest lock. When it fills up, or a
// day's records expire, the maintenance goroutine refills a new filter from
// the records in chunks, taking the lock only to add each chunk, while
// Append adds new records to both; the new filter replaces the old at once
// when the scan ends. A crash during a refill loses only the refill.

// famLog is the arrival log's family: 'j' seq(uint64) → entries of
// logEntryLen. famLogV1 holds the entries of stores written before runs,
// in the same sequence: 'l' seq → entries of logEntryLenV1, whose records
// were written as 'd' keys with the batch.
const (
	famLog   = 'j'
	famLogV1 = 'l'
)

// logEntryLen is one record in the arrival log: org, day, hour of the day
// and hash; logEntryLenV1 one without the hour.
const (
	logEntryLen   = 4 + 2 + 1 + hashLen
	logEntryLenV1 = 4 + 2 + hashLen
)

// runKey is a record in memory: its dedupe key's parts. The map holds its
// hour of the day.
type runKey struct {
	org  uint32
	day  uint16
	hash [hashLen]byte
}

// runsKey records the log sequence before which every record is a 'd' key.
var runsKey = []byte{famMeta, 'd', 'e', 'd', 'u', 'p', 'e', '-', 'r', 'u', 'n', 's'}

// runPrefix begins the name of a run's table while it is written, in the
// store's directory; Pebble moves it in when it ingests it.
const runPrefix = "dedupe-run-"

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

// logKey is the arrival log's key of entry seq in family fam.
func logKey(fam byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{fam}, seq)
}

// trimLog deletes the log's entries before seq, of either format.
func trimLog(b *pebbledb.Batch, seq uint64) error {
	for _, fam := range [...]byte{famLogV1, famLog} {
		if err := b.DeleteRange(logKey(fam, 0), logKey(fam, seq), nil); err != nil {
			return err
		}
	}
	return nil
}

// openIndex gives the store its filter at open: the checkpoint and the log
// after it, or else a scan of the records. The caller holds mu.
func (d *DB) openIndex(capacity int) error {
	last, err := d.lastLogSeq()
	if err != nil {
		return err
	}
	runs, err := d.loadRunSeq(last)
	if err != nil {
		return err
	}
	d.runSeq.Store(runs)
	// The log may be empty, trimmed behind a checkpoint and the runs: its
	// sequence goes on from where they recorded it, or its new entries
	// would sort before them and never be replayed.
	d.logSeq = max(last, runs)
	start := time.Now()
	d.recent = make(map[runKey]uint8)
	cp, err := d.loadCheckpoint()
	if err == nil {
		var replayed int
		replayed, err = d.replayLog(cp.logSeq, runs)
		d.logSeq = max(d.logSeq, cp.logSeq)
		if err == nil {
			d.log.Debug("dedupe index loaded", "records", d.filter.n.Load(), "replayed", replayed, "inMemory", len(d.recent), "bytes", d.filter.sizeBytes(), "took", time.Since(start))
			d.unsaved.Store(int64(replayed))
			d.saved = cp.file
			d.cpSeq.Store(cp.logSeq)
			d.removeStaleFiles()
			return nil
		}
		d.filter.release()
		d.filter = nil
		d.recent = make(map[runKey]uint8)
	}
	if !errors.Is(err, errNoCheckpoint) {
		d.log.Warn("dedupe index checkpoint unusable; rebuilding it from the records", "err", err)
	}
	if err := d.scanRecords(capacity); err != nil {
		return err
	}
	// The records not yet in runs are in the log.
	if _, err := d.replayLog(runs, runs); err != nil {
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

// lastLogSeq returns the sequence number after the log's last entry, of
// either format.
func (d *DB) lastLogSeq() (uint64, error) {
	var last uint64
	for _, fam := range [...]byte{famLogV1, famLog} {
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
		if err != nil {
			return 0, err
		}
		if it.Last() {
			if len(it.Key()) != 9 {
				it.Close()
				return 0, errCorrupt
			}
			last = max(last, binary.BigEndian.Uint64(it.Key()[1:])+1)
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// loadRunSeq reads the log sequence the runs cover. A store without one
// was written before runs, when every logged record was a 'd' key at once:
// they cover the whole log, which is recorded before anything is appended.
func (d *DB) loadRunSeq(last uint64) (uint64, error) {
	v, closer, err := d.db.Get(runsKey)
	if err == nil {
		defer closer.Close()
		if len(v) != 8 {
			return 0, errCorrupt
		}
		return binary.BigEndian.Uint64(v), nil
	}
	if !errors.Is(err, pebbledb.ErrNotFound) {
		return 0, err
	}
	return last, d.db.Set(runsKey, binary.BigEndian.AppendUint64(nil, last), pebbledb.Sync)
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

// replayLog adds the log's entries from filterFrom on to the filter, and
// those from runsFrom on to the records in memory.
func (d *DB) replayLog(filterFrom, runsFrom uint64) (int, error) {
	n := 0
	add, wait := d.filter.adder()
	defer wait()
	for _, fam := range [...]byte{famLogV1, famLog} {
		from, width := min(filterFrom, runsFrom), logEntryLen
		if fam == famLogV1 {
			from, width = filterFrom, logEntryLenV1 // its records are 'd' keys
		}
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: logKey(fam, from), UpperBound: []byte{fam + 1}})
		if err != nil {
			return 0, err
		}
		for it.First(); it.Valid(); it.Next() {
			v := it.Value()
			if len(it.Key()) != 9 || len(v)%width != 0 {
				it.Close()
				return n, fmt.Errorf("log entry %x: %d bytes", it.Key(), len(v))
			}
			seq := binary.BigEndian.Uint64(it.Key()[1:])
			for ; len(v) > 0; v = v[width:] {
				k := runKey{org: binary.BigEndian.Uint32(v), day: binary.BigEndian.Uint16(v[4:])}
				copy(k.hash[:], v[width-hashLen:width])
				if seq >= filterFrom {
					add(idKey{org: k.org, hash: k.hash})
					n++
				}
				if fam == famLog && seq >= runsFrom {
					if v[6] >= 24 {
						it.Close()
						return n, fmt.Errorf("log entry %x: hour %d", it.Key(), v[6])
					}
					d.recent[k] = v[6]
				}
				d.minDay, d.maxDay = min(d.minDay, k.day), max(d.maxDay, k.day)
			}
		}
		if err := it.Close(); err != nil {
			return n, err
		}
	}
	return n, nil
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

// removeStaleFiles deletes the checkpoint files other than the current one
// (those of a checkpoint a crash interrupted, or that a later one replaced)
// and the tables of runs a crash left unfinished.
func (d *DB) removeStaleFiles() {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return
	}
	keep := filepath.Base(d.indexFile(d.saved))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), indexPrefix) && e.Name() != keep || strings.HasPrefix(e.Name(), runPrefix) {
			os.Remove(filepath.Join(d.dir, e.Name()))
		}
	}
}

// addRecord adds the record of id at the event hour to the filters, the
// records in memory, the day bounds and the batch's log entry. The caller
// holds mu.
func (d *DB) addRecord(entry []byte, id *idKey, hour uint32) []byte {
	d.filter.add(id)
	if d.next != nil {
		d.next.add(id)
	}
	day := uint16(hour / 24)
	d.recent[runKey{org: id.org, day: day, hash: id.hash}] = uint8(hour % 24)
	d.minDay, d.maxDay = min(d.minDay, day), max(d.maxDay, day)
	entry = binary.BigEndian.AppendUint32(entry, id.org)
	entry = binary.BigEndian.AppendUint16(entry, day)
	entry = append(entry, uint8(hour%24))
	return append(entry, id.hash[:]...)
}

// logRecords puts the batch's log entry into b, and asks for the
// maintenance its growth calls for. The caller holds mu and applies b in
// mu's order (applyInTurn), so that log order is commit order.
func (d *DB) logRecords(b *pebbledb.Batch, entry []byte) {
	if len(entry) == 0 {
		return
	}
	b.Set(logKey(famLog, d.logSeq), entry, nil)
	d.logSeq++
	d.unsaved.Add(int64(len(entry) / logEntryLen))
	if d.filter.full() && d.next == nil || d.checkpointDue() || d.runDue() {
		d.wakeMaintenance()
	}
}

// runDue reports whether the records in memory are enough for a run, or a
// run failed. The caller holds mu.
func (d *DB) runDue() bool {
	return len(d.recent) >= d.runRecords || d.frozen != nil // a run that failed
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

// maintain runs the index's maintenance until ctx ends: refills, runs and
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
			d.lock()
			capacity := d.refillCap // an expiry's
			d.refillCap = 0
			if d.filter.full() {
				capacity = max(capacity, 2*d.filter.cap)
			}
			due, runDue := d.checkpointDue(), d.runDue()
			d.mu.Unlock()
			if runDue {
				if err := d.writeRun(true); err != nil {
					d.log.Error("writing the dedupe records' run failed; they stay in memory and in the log", "err", err)
					break
				}
				continue
			}
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
// with the records then in memory hold them all.
func (d *DB) refill(ctx context.Context, capacity int) error {
	start := time.Now()
	d.lock()
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
	// The records not in the iterator's 'd' keys: those in memory now. A
	// run ingested meanwhile is not in the iterator's view.
	pending := make([]idKey, 0, len(d.recent)+len(d.frozen))
	for _, m := range [...]map[runKey]uint8{d.recent, d.frozen} {
		for k := range m {
			pending = append(pending, idKey{org: k.org, hash: k.hash})
		}
	}
	d.mu.Unlock()
	for i := range pending {
		next.add(&pending[i])
	}
	abandon := func(err error) error {
		it.Close()
		d.lock()
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
		d.lock()
		runDue := d.runDue()
		d.mu.Unlock()
		hook("refill-chunk")
		if !valid {
			break
		}
		// A long refill (a minute at a hundred million records) must not
		// let the log, nor the records in memory, grow without bound. A
		// run's records are in the filters already (Append adds to both).
		if runDue {
			if err := d.writeRun(true); err != nil {
				d.log.Error("writing the dedupe records' run failed; they stay in memory and in the log", "err", err)
			}
		}
		if due {
			if err := d.writeCheckpoint(true); err != nil {
				d.log.Error("checkpointing the dedupe index failed; the arrival log keeps its records", "err", err)
			}
		}
	}
	it.Close()
	d.lock()
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
		d.lock()
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
			if err := trimLog(b, min(cp.logSeq, d.runSeq.Load())); err != nil {
				return err
			}
			return b.Commit(pebbledb.Sync)
		})
	}
	if err != nil {
		os.Remove(d.indexFile(cp.file))
		d.unsaved.Add(unsaved)
		return err
	}
	hook("checkpoint-recorded")
	d.cpSeq.Store(cp.logSeq)
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

// writeRun writes the records in memory as a run: it sets them aside
// (frozen, where Append still finds them), writes them sorted into a
// table, has Pebble ingest it, records the log sequence the runs now
// cover, and only then lets them go from memory. A run that failed is
// written again, with the records set aside then, before any other. With
// lock, it takes mu for its steps in memory (the maintenance goroutine and
// Export); without, the caller holds mu (Close).
func (d *DB) writeRun(lock bool) error {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	start := time.Now()
	if lock {
		d.lock()
	}
	if d.frozen == nil && len(d.recent) > 0 {
		// Not sized ahead: a map grows table by table, while allocating it
		// whole would hold mu for the clearing of ~16 MiB.
		d.frozen, d.frozenSeq = d.recent, d.logSeq
		d.recent = make(map[runKey]uint8)
	}
	frozen, upTo, minDay := d.frozen, d.frozenSeq, d.minDay
	if lock {
		d.mu.Unlock()
	}
	if frozen == nil {
		return nil
	}
	recs := make([]runRecord, 0, len(frozen))
	for k, h := range frozen {
		if k.day >= minDay { // older days are expired: no need to keep them
			recs = append(recs, runRecord{k, h})
		}
	}
	slices.SortFunc(recs, compareRecords)
	if len(recs) > 0 {
		if err := d.guard(func() error { return d.ingestRun(recs, upTo) }); err != nil {
			return err
		}
	}
	hook("run-ingested")
	err := d.guard(func() error {
		b := d.db.NewBatch()
		defer b.Close()
		b.Set(runsKey, binary.BigEndian.AppendUint64(nil, upTo), nil)
		if err := trimLog(b, min(upTo, d.cpSeq.Load())); err != nil {
			return err
		}
		return b.Commit(pebbledb.Sync)
	})
	if err != nil {
		return err
	}
	d.runSeq.Store(upTo)
	hook("run-recorded")
	if lock {
		d.lock()
	}
	d.frozen = nil
	if lock {
		d.mu.Unlock()
	}
	d.log.Debug("dedupe records written as a run", "records", len(recs), "log", upTo, "took", time.Since(start))
	return nil
}

// runRecord is a record with its hour of the day.
type runRecord struct {
	runKey
	hour uint8
}

// compareRecords orders records as their 'd' keys sort, reading the hash
// as 8 and 4 bytes (the assertion below stops the build if that changes).
var _ [0]struct{} = [hashLen - 12]struct{}{}

func compareRecords(a, b runRecord) int {
	if c := cmp.Compare(a.org, b.org); c != 0 {
		return c
	}
	if c := cmp.Compare(a.day, b.day); c != 0 {
		return c
	}
	if c := cmp.Compare(binary.BigEndian.Uint64(a.hash[:]), binary.BigEndian.Uint64(b.hash[:])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint32(a.hash[8:]), binary.BigEndian.Uint32(b.hash[8:]))
}

// ingestRun writes recs, sorted, into a table and ingests it. Pebble syncs
// the table and records it in its manifest before Ingest returns, and
// removes the file it was given.
func (d *DB) ingestRun(recs []runRecord, upTo uint64) error {
	name := filepath.Join(d.dir, runPrefix+strconv.FormatUint(upTo, 10)+".sst")
	f, err := d.opts.FS.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), d.opts.MakeWriterOptions(0, d.db.TableFormat()))
	var kbuf [dedupeLen]byte
	for i := range recs {
		r := &recs[i]
		if err = w.Set(dedupeKey(kbuf[:0], &idKey{org: r.org, hash: r.hash}, r.day), []byte{r.hour}); err != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		hook("run-written")
		err = d.db.Ingest(context.Background(), []string{name})
	}
	if err != nil {
		os.Remove(name)
	}
	return err
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
// The records in memory are newer than the runs, and those being written
// newer than the others: a record kept again (after its first fell out of
// the window) is found as it was last kept. The caller holds mu.
func (d *DB) recorded(id *idKey, day uint16, fromHour uint32) (found bool, err error) {
	k := runKey{org: id.org, day: day, hash: id.hash}
	for _, m := range [...]map[runKey]uint8{d.recent, d.frozen} {
		if h, ok := m[k]; ok {
			return uint32(day)*24+uint32(h) >= fromHour, nil
		}
	}
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
	// No run is being written meanwhile: one set aside before the range
	// deletions and ingested after them would bring their records back.
	d.runMu.Lock()
	defer d.runMu.Unlock()
	d.lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	if day <= d.minDay {
		return nil // nothing that old is kept
	}
	for _, m := range [...]map[runKey]uint8{d.recent, d.frozen} {
		maps.DeleteFunc(m, func(k runKey, _ uint8) bool { return k.day < day })
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
