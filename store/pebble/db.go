// Package pebble is usaged's embedded storage backend, built on CockroachDB's
// Pebble LSM engine. It keeps, per organization, pre-aggregated counters at
// three levels (every dimension per hour, per client per hour, per client per
// day), a dedupe record per event, a dictionary interning dimension values,
// the registry of organizations and clients, and asynchronous query
// executions with their result rows. See keys.go for the layout.
package pebble

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zeebo/xxh3"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// DB is both halves of a backend and every optional interface of package
// store.
var (
	_ store.Usage         = (*DB)(nil)
	_ store.Metadata      = (*DB)(nil)
	_ store.DedupeExpirer = (*DB)(nil)
	_ store.Health        = (*DB)(nil)
	_ store.DiskUser      = (*DB)(nil)
	_ store.OutboxWatcher = (*DB)(nil)
)

// Config configures Open.
type Config struct {
	Dir        string       // data directory; created if missing
	Logger     *slog.Logger // default slog.Default()
	CacheBytes int64        // block cache size; default 64 MiB
	// FilterCapacity is the number of dedupe records the in-memory filter is
	// first sized for; it grows as records are added. Default 16 Mi (32 MiB).
	FilterCapacity int
	// RunRecords is the number of dedupe records kept in memory before they
	// are written out as a run (dedupe.go). Default 512 Ki: ~16 MiB of
	// memory, a table of ~8 MiB.
	RunRecords int
	// DiskReserve is the free space, in bytes, to keep on Dir's filesystem:
	// below it, writes that add data fail with usage.KindUnavailable (see
	// headroom). It is capped at 5% of the filesystem's size. 0 means
	// DefaultDiskReserve; a negative value disables the check.
	DiskReserve int64
	// AcceptWALLoss lets Open start on a write-ahead log damaged in its
	// middle: the log is cut where the damage starts, the writes from there
	// on are lost and logged at ERROR. Without it Open returns a
	// *WALDamageError. See wal.go.
	AcceptWALLoss bool
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("pebble store: Dir is required"))
	}
	if c.RunRecords < 0 {
		errs = append(errs, errors.New("pebble store: RunRecords must not be negative"))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, errors.New("pebble store: CacheBytes must not be negative"))
	}
	if c.FilterCapacity < 0 {
		errs = append(errs, errors.New("pebble store: FilterCapacity must not be negative"))
	}
	return errors.Join(errs...)
}

// DB is the Pebble-backed store. It is safe for concurrent use.
type DB struct {
	db  *pebbledb.DB
	log *slog.Logger
	// doneSweep is when delivered notifications were last swept
	// (MarkNotificationsDone, under mu).
	doneSweep time.Time
	seed      uint64 // keys the event id hash, so ids cannot be crafted to collide
	dict      *dict

	// life is held for reading by the methods that do not take mu (the
	// executions and ClientNames) while they use the store, and for writing
	// by Close, so that they see closed instead of a closed Pebble, which
	// panics. It is taken before mu.
	life sync.RWMutex

	// hookMu serializes the writes of a webhook endpoint's delivery log,
	// which count it to keep it bounded (webhooks.go).
	hookMu sync.Mutex

	// mu serializes Append's building of its batch. The batches are then
	// applied to the memtable in mu's order but outside mu, each after the
	// one before it (applied), so that one batch is built while the one
	// before is applied; the WAL fsync is awaited outside mu, so concurrent
	// Appends share fsyncs. Applying in mu's order means a batch can only
	// depend (for a duplicate verdict, or a dictionary entry) on batches
	// earlier in the WAL, which are durable whenever it is. Everything else
	// that takes mu takes it through lock, which also waits for the batches
	// built before to be applied.
	mu        sync.Mutex
	applied   chan struct{}    // closed once the last batch built under mu is applied (or failed)
	filter    *filter          // the dedupe index (dedupe.go)
	next      *filter          // the filter a refill is filling, or nil
	refillCap int              // the capacity of a refill an expiry asked for, or 0
	logSeq    uint64           // the arrival log's next entry
	recent    map[runKey]uint8 // records logged since the last run began (dedupe.go)
	frozen    map[runKey]uint8 // records of the run being written, or nil
	frozenSeq uint64           // the log sequence after frozen's records
	unsaved   atomic.Int64     // records logged since the last checkpoint began
	minDay    uint16           // no dedupe record is older than this event day
	maxDay    uint16           // the latest event day of any dedupe record
	closed    bool             // set under both mu and life; read under either

	// limitMu orders the writes of limits, so that UpdateLimit's check
	// and write are one step.
	limitMu sync.Mutex

	// watch sees the events each Append accepts (see WatchCommits).
	watch func(accepted []*usage.Event) store.Effects
	// outboxed is told of notifications added, once durable (WatchOutbox).
	outboxed atomic.Pointer[func()]

	// The index's maintenance goroutine, and what it alone uses once Open
	// has returned (Close stops it first).
	dir        string
	saved      uint64 // the checkpoint file on disk, 0 if none
	wake       chan struct{}
	stopMaint  context.CancelFunc
	maintDone  chan struct{}
	indexBytes atomic.Int64      // the checkpoint file's size
	runMu      sync.Mutex        // one run written at a time (writeRun)
	runSeq     atomic.Uint64     // every record logged before it is a 'd' key: a checkpoint trims the log no further
	runRecords int               // Config.RunRecords
	cpSeq      atomic.Uint64     // the recorded checkpoint's log sequence
	opts       *pebbledb.Options // as opened: runs' tables are written with them

	health    *health // the failed state (health.go)
	space     *headroom
	plog      pebbleLogger
	diskUsage atomic.Uint64 // as last read, reported once failed
	stalls    *stalls       // Pebble's write stalls, for /metrics (metrics.go)
}

// Open opens or creates the store in cfg.Dir.
func Open(cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 64 << 20
	}
	if cfg.FilterCapacity == 0 {
		cfg.FilterCapacity = 16 << 20
	}
	if cfg.RunRecords == 0 {
		cfg.RunRecords = 512 << 10
	}
	h := newHealth(cfg.Logger)
	plog := newPebbleLogger(cfg.Logger, h)
	cache := pebbledb.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	// The directory is locked before the write-ahead logs are checked (and,
	// with AcceptWALLoss, cut), so that no other process is using them.
	fs := privateFS{vfs.Default}
	if err := fs.MkdirAll(cfg.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("pebble store: create %s: %w", cfg.Dir, err)
	}
	if err := tighten(cfg.Dir); err != nil {
		// Only the owner may change modes; a store this process can write
		// to but does not own is still usable.
		cfg.Logger.Warn("could not restrict the store's files to their owner", "dir", cfg.Dir, "err", err)
	}
	lock, err := pebbledb.LockDirectory(cfg.Dir, fs)
	if err != nil {
		return nil, fmt.Errorf("pebble store: lock %s: %w", cfg.Dir, err)
	}
	// Open takes its own reference on the lock and drops it at Close; ours
	// goes once Open is done with it.
	defer lock.Close()
	if err := checkWAL(cfg.Dir, cfg.AcceptWALLoss, cfg.Logger); err != nil {
		return nil, err
	}
	listener := &pebbledb.EventListener{BackgroundError: h.backgroundError(plog)}
	st := &stalls{}
	st.listen(listener)
	opts := &pebbledb.Options{
		FS:    fs,
		Lock:  lock,
		Cache: cache,
		// WAL chunks that record how far the log was synced when they were
		// written: that is what tells damage from a torn tail (wal.go). Its
		// table format differs from the default only by value blocks, which
		// this store's keys (no MVCC suffix) never use.
		FormatMajorVersion: pebbledb.FormatWALSyncChunks,
		Merger:             countsMerger,
		MemTableSize:       16 << 20,
		Logger:             plog,
		// A flush or compaction that cannot write is retried at once, for
		// ever; on a full or failing disk that is a stall, not a failure, so
		// the store fails instead (see health.backgroundError). Write
		// stalls are counted for /metrics.
		EventListener: listener,
		// Fewer, larger levels: ingest writes two keys per event, and every
		// level a key passes through is another rewrite of it.
		LBaseMaxBytes:         256 << 20,
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 32,
	}
	for i := range opts.Levels {
		opts.Levels[i].BlockSize = 32 << 10 // larger blocks compress better; scans dominate reads
	}
	setTableOptions(opts)
	opts.EnsureDefaults()
	start := time.Now()
	pdb, err := pebbledb.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("pebble store: open %s: %w", cfg.Dir, err)
	}
	cfg.Logger.Debug("storage engine opened", "took", time.Since(start))
	applied := make(chan struct{})
	close(applied)
	d := &DB{
		db: pdb, opts: opts, runRecords: cfg.RunRecords, log: cfg.Logger, dict: newDict(), health: h, plog: plog, space: newHeadroom(cfg.Dir, cfg.DiskReserve, cfg.Logger),
		dir: cfg.Dir, wake: make(chan struct{}, 1), maintDone: make(chan struct{}), applied: applied, stalls: st,
	}
	if err := d.init(cfg.FilterCapacity); err != nil {
		if d.filter != nil {
			d.filter.release()
		}
		pdb.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopMaint = cancel
	go d.maintain(ctx)
	if d.checkpointDue() {
		d.wakeMaintenance()
	}
	return d, nil
}

func (d *DB) init(capacity int) error {
	seedKey := []byte{famMeta, 's', 'e', 'e', 'd'}
	v, closer, err := d.db.Get(seedKey)
	switch {
	case err == nil:
		if len(v) != 8 {
			closer.Close()
			return errCorrupt
		}
		d.seed = binary.BigEndian.Uint64(v)
		closer.Close()
	case errors.Is(err, pebbledb.ErrNotFound):
		var b [8]byte
		rand.Read(b[:])
		d.seed = binary.BigEndian.Uint64(b[:])
		if err := d.db.Set(seedKey, b[:], pebbledb.Sync); err != nil {
			return err
		}
	default:
		return err
	}
	start := time.Now()
	if err := d.dict.load(d.db); err != nil {
		return fmt.Errorf("pebble store: load dictionary: %w", err)
	}
	d.log.Debug("dictionary loaded", "took", time.Since(start))
	d.lock()
	defer d.mu.Unlock()
	return d.openIndex(capacity)
}

// compareFull orders full keys as their encodings sort. It returns at the
// first difference (cmp.Or would evaluate every comparison).
func compareFull(a, b fullKey) int {
	x := [...]uint32{a.org, a.hour, a.client, a.user, a.template, a.method, a.platform}
	y := [...]uint32{b.org, b.hour, b.client, b.user, b.template, b.method, b.platform}
	for i := range x {
		if x[i] != y[i] {
			return cmp.Compare(x[i], y[i])
		}
	}
	return 0
}

// hourOf returns t's hour since the Unix epoch; times before it count as hour
// 0 (events that early are refused by ingest, and query bounds that early
// cover nothing more).
func hourOf(t time.Time) uint32 { return uint32(max(t.Unix(), 0) / 3600) }

// cell is a group's counts and measures: what a batch adds to one counts
// key, or what a query sums for one of its groups.
type cell struct {
	c usage.Counts
	m usage.Measures
}

func (c *cell) add(counts usage.Counts, ev *usage.Event) {
	c.c.Add(counts)
	c.m.AddEvent(ev)
}

// cells are a batch's cells by key. A map holding cells, which are larger
// than 128 bytes, would box each one in an allocation of its own; this one
// maps keys to indexes of one slice.
type cells[K comparable] struct {
	index map[K]int32
	c     []cell
}

// newCells returns empty cells with room for n.
func newCells[K comparable](n int) cells[K] {
	return cells[K]{index: make(map[K]int32, n), c: make([]cell, 0, n)}
}

// at returns k's cell, a new zero one the first time; the pointer is good
// until the next call.
func (s *cells[K]) at(k K) *cell {
	i, ok := s.index[k]
	if !ok {
		i = int32(len(s.c))
		s.c = append(s.c, cell{})
		s.index[k] = i
	}
	return &s.c[i]
}

// Append implements store.EventAppender.
func (d *DB) Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.writable(int64(len(events)) * eventBytes); err != nil {
		return nil, err
	}
	outs := make([]usage.Outcome, len(events))
	b := d.db.NewBatch()
	fromHour := hourOf(dedupeFrom)

	d.mu.Lock()
	if err := d.usable(); err != nil {
		d.mu.Unlock()
		b.Close()
		return nil, err
	}
	type record struct {
		id   idKey
		hour uint32
	}
	added := make([]record, 0, len(events))
	var accepted []*usage.Event
	inBatch := make(map[idKey]struct{}, len(events))
	full := newCells[fullKey](len(events)) // about one each at high cardinality
	perHour := newCells[rollupKey](0)
	for i := range events {
		ev := &events[i]
		id := d.eventID(d.dict.intern(kindOrg, ev.OrganizationID, b), ev.ID)
		hour := hourOf(ev.Time)
		if _, dup := inBatch[id]; dup {
			outs[i] = usage.Duplicate
			continue
		}
		dup, err := d.seen(&id, hour, fromHour)
		if err != nil {
			err = d.fail(err)
			d.mu.Unlock()
			b.Close()
			return nil, err
		}
		if dup {
			outs[i] = usage.Duplicate
			continue
		}
		inBatch[id] = struct{}{}
		added = append(added, record{id, hour})
		if d.watch != nil {
			accepted = append(accepted, ev)
		}

		client := d.dict.intern(kindClient, ev.ClientID, b)
		d.dict.setName(id.org, client, ev.ClientName, b)
		fk := fullKey{
			org: id.org, hour: hour, client: client,
			user:     d.dict.intern(kindUser, ev.UserID, b),
			template: d.dict.intern(kindTemplate, ev.TemplateURI, b),
			method:   d.dict.intern(kindMethod, ev.HTTPMethod, b),
			platform: d.dict.intern(kindPlatform, ev.Platform, b),
		}
		c := usage.CountsFor(ev.Status)
		full.at(fk).add(c, ev)
		perHour.at(rollupKey{fam: famClientHour, org: id.org, bucket: hour, client: client}).add(c, ev)
	}

	entry := make([]byte, 0, len(added)*logEntryLen)
	for _, r := range added {
		entry = d.addRecord(entry, &r.id, r.hour)
	}
	d.logRecords(b, entry)
	// Keys go into the batch in key order: Pebble inserts a batch into its
	// memtable skiplist key by key, and neighbouring keys share the search
	// path, which measurably cuts the cache misses of random order.
	var kbuf [fullLen]byte
	vbuf := make([]byte, 0, 64)
	fulls := make([]fullKey, 0, len(full.index))
	for k := range full.index {
		fulls = append(fulls, k)
	}
	slices.SortFunc(fulls, compareFull)
	for _, k := range fulls {
		c := &full.c[full.index[k]]
		vbuf = encodeValue(vbuf[:0], &c.c, &c.m)
		b.Merge(k.encode(kbuf[:0]), vbuf, nil)
	}
	days := newCells[rollupKey](len(perHour.c))
	for k, i := range perHour.index {
		c := &perHour.c[i]
		vbuf = encodeValue(vbuf[:0], &c.c, &c.m)
		b.Merge(k.encode(kbuf[:0]), vbuf, nil)
		day := days.at(rollupKey{fam: famClientDay, org: k.org, bucket: k.bucket / 24, client: k.client})
		day.c.Add(c.c)
		day.m.Merge(&c.m)
	}
	for k, i := range days.index {
		c := &days.c[i]
		vbuf = encodeValue(vbuf[:0], &c.c, &c.m)
		b.Merge(k.encode(kbuf[:0]), vbuf, nil)
	}
	notified := false
	if len(accepted) > 0 {
		eff := d.watch(accepted)
		if len(eff.Notifications) > 0 {
			// addEffects reads which notifications are pending: the
			// batches before must be applied for it to see theirs.
			<-d.applied
		}
		if err := addEffects(d.db, b, &eff); err != nil {
			err = d.fail(err)
			d.mu.Unlock()
			b.Close()
			return nil, err
		}
		notified = len(eff.Notifications) > 0
	}
	err := d.applyInTurn(b)
	d.guard(b.Close)
	if err != nil {
		return nil, err
	}
	if notified {
		d.tellOutboxed()
	}
	return outs, nil
}

// WatchCommits implements store.CommitWatcher: it runs start under the
// lock that orders the commits, writes its effects, and then, unless either
// failed, has fn see the events each later Append accepts, in order, under
// that lock; the effects fn returns go into the same batch as those
// events' counts.
func (d *DB) WatchCommits(start func(state store.StateReader) (store.Effects, error), fn func(accepted []*usage.Event) store.Effects) error {
	return d.hold(start, func() { d.watch = fn })
}

// HoldCommits implements store.CommitWatcher: it runs fn with no Append
// between the events it has seen and those it will see, and writes its
// effects before the next.
func (d *DB) HoldCommits(fn func(state store.StateReader) (store.Effects, error)) error {
	return d.hold(fn, nil)
}

// hold runs fn under the append lock, writes the effects it returns in one
// durable batch, and then runs then, if set, still under the lock.
func (d *DB) hold(fn func(state store.StateReader) (store.Effects, error), then func()) error {
	notified := false
	err := d.live(func() error {
		d.lock()
		defer d.mu.Unlock()
		if err := d.usable(); err != nil {
			return err
		}
		eff, err := fn(d.readState)
		if err != nil {
			return err
		}
		if !eff.Empty() {
			b := d.db.NewBatch()
			defer b.Close()
			if err := addEffects(d.db, b, &eff); err != nil {
				return err
			}
			if err := b.Commit(pebbledb.Sync); err != nil {
				return err
			}
			notified = len(eff.Notifications) > 0
		}
		if then != nil {
			then()
		}
		return nil
	})
	if err == nil && notified {
		d.tellOutboxed()
	}
	return err
}

// readState is the watcher's store.StateReader: its keys are kept under
// famWatcher.
func (d *DB) readState(prefix []byte, fn func(key, value []byte) error) error {
	lower := append([]byte{famWatcher}, prefix...)
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()[1:], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// addEffects adds a watcher's effects to b.
func addEffects(db *pebbledb.DB, b *pebbledb.Batch, eff *store.Effects) error {
	if err := addNotifications(db, b, eff.Notifications); err != nil {
		return err
	}
	key := make([]byte, 0, 64)
	for _, c := range eff.State {
		key = append(append(key[:0], famWatcher), c.Key...)
		var err error
		if c.Value == nil {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, c.Value, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WatchOutbox implements store.OutboxWatcher.
func (d *DB) WatchOutbox(fn func()) {
	if fn == nil {
		d.outboxed.Store(nil)
		return
	}
	d.outboxed.Store(&fn)
}

func (d *DB) tellOutboxed() {
	if fn := d.outboxed.Load(); fn != nil {
		(*fn)()
	}
}

// eventID returns the dedupe key of event id within an interned scope (an
// organization, or a service's dedupeScope).
func (d *DB) eventID(scope uint32, id string) idKey {
	k := idKey{org: scope}
	h := xxh3.HashString128Seed(id, d.seed)
	binary.BigEndian.PutUint64(k.hash[0:8], h.Hi)
	binary.BigEndian.PutUint32(k.hash[8:12], uint32(h.Lo))
	return k
}

// applyInTurn applies b, built while holding mu, after the batches built
// before it and outside mu, so that the next batch is built meanwhile;
// then it waits for b to be durable. The caller holds mu; applyInTurn
// releases it. On failure the store is put into the failed state and that
// error is returned; the batches after b then fail too, as they may name
// dictionary entries or depend on duplicate verdicts that b carried.
func (d *DB) applyInTurn(b *pebbledb.Batch) error {
	prev := d.applied
	if b.Empty() {
		// Nothing to apply, but its duplicate verdicts may rest on the
		// batches before: it answers once they are applied.
		d.mu.Unlock()
		<-prev
		return d.health.err()
	}
	mine := make(chan struct{})
	d.applied = mine
	d.mu.Unlock()
	<-prev
	hook("apply")
	err := d.health.err()
	if err == nil {
		err = d.guard(func() error { return d.db.ApplyNoSyncWait(b, pebbledb.Sync) })
	}
	close(mine)
	if err == nil {
		err = d.guard(b.SyncWait)
	}
	if err != nil {
		return d.fail(err)
	}
	return nil
}

// lock takes mu for anything but building an Append's batch, and waits
// for the batches built before to be applied: what runs under it sees the
// store as of every batch whose effects are in memory.
func (d *DB) lock() {
	d.mu.Lock()
	<-d.applied
}

// fail puts the store in the failed state after err stopped an append, and
// returns the failed state's error: its batch may be visible without being
// durable, and the dictionary may hold ids whose entries never reached disk,
// so further writes are refused rather than built on either.
func (d *DB) fail(err error) error {
	return d.health.fail(fmt.Errorf("pebble store: append failed: %w", err))
}

// usable reports why appends are refused, if they are. The caller holds mu.
func (d *DB) usable() error {
	if d.closed {
		return errClosed
	}
	return d.health.err()
}

// eventBytes estimates what one appended event adds on disk before
// compaction (WAL, memtable flush): its dedupe record and its share of the
// counters, with their keys. It only paces the free-space checks.
const eventBytes = 128

// writable reports why a write that adds about n bytes is refused, if it
// is: the store failed, or the disk is below its reserve.
func (d *DB) writable(n int64) error {
	if err := d.health.err(); err != nil {
		return err
	}
	return d.space.need(n)
}

var errClosed = errors.New("pebble store: closed")

// live runs fn unless the store is closed, keeping Close from closing Pebble
// under it. Unlike usable it ignores the failed state: that guards Append's
// batches and dictionary, which nothing run here builds on.
func (d *DB) live(fn func() error) error {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed {
		return errClosed
	}
	return d.guard(fn)
}

// DiskUsage returns the bytes the store occupies on disk. Once the store has
// failed it returns the last value read: Pebble's metrics take a lock that
// a failed engine may hold forever.
func (d *DB) DiskUsage() uint64 {
	if d.health.err() == nil {
		d.guard(func() error {
			d.diskUsage.Store(d.db.Metrics().DiskSpaceUsage() + uint64(d.indexBytes.Load()))
			return nil
		})
	}
	return d.diskUsage.Load()
}

// Flush writes the memtable to disk; benchmarks call it before measuring size.
func (d *DB) Flush() error { return d.db.Flush() }

// Compact compacts the whole key space; used to measure settled disk usage.
func (d *DB) Compact() error {
	return d.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true)
}

// Close implements store.Usage and store.Metadata. Appends in progress finish first. Closing a
// store that has failed, or fails while closing, gives up after
// failedCloseTimeout: its engine may wait
// forever on a lock held by the goroutine that failed, and the files are
// released when the process exits, which is what follows a failure.
func (d *DB) Close() error {
	defer d.plog.flush()
	done := make(chan error, 1)
	go func() { done <- d.guard(d.close) }()
	// A healthy close waits as long as it takes (the memtable flush and the
	// compactions in progress); one that fails before or while closing gives
	// up after failedCloseTimeout.
	select {
	case err := <-done:
		return err
	case <-d.health.done:
	}
	select {
	case err := <-done:
		return err
	case <-time.After(failedCloseTimeout):
		return fmt.Errorf("pebble store: failed, and did not close within %s; its files are released when the process exits", failedCloseTimeout)
	}
}

// failedCloseTimeout bounds Close of a failed store.
const failedCloseTimeout = 2 * time.Second

func (d *DB) close() error {
	// The maintenance goroutine takes mu; it stops before Close does.
	d.stopMaint()
	<-d.maintDone
	d.life.Lock()
	defer d.life.Unlock()
	if d.closed { // only Close sets it, under life
		return errors.New("pebble store: already closed")
	}
	if d.health.err() == nil {
		// A clean restart then has no records to keep in memory. An Append
		// after it leaves its records in the log, for the next open.
		if err := d.writeRun(true); err != nil {
			d.log.Warn("writing the dedupe records' run at close failed; the next open replays the arrival log", "err", err)
		}
	}
	d.lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.health.err() == nil && d.unsaved.Load() > 0 {
		// A clean restart then replays nothing.
		if err := d.writeCheckpoint(false); err != nil {
			d.log.Warn("checkpointing the dedupe index at close failed; the next open replays the arrival log", "err", err)
		}
	}
	d.filter.release()
	if d.next != nil {
		d.next.release()
	}
	d.flushOnClose()
	return d.db.Close()
}
