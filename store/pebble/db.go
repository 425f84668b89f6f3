// Package pebble is usaged's embedded storage backend, built on CockroachDB's
// Pebble LSM engine. It keeps, per organization, pre-aggregated counters at
// three levels (every dimension per hour, per client per hour, per client per
// day), a dedupe record per event, a dictionary interning dimension values,
// the registry of organizations and clients, and asynchronous query
// executions with their result rows. See keys.go for the layout.
package pebble

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/zeebo/xxh3"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.Store = (*DB)(nil)

// Config configures Open.
type Config struct {
	Dir        string       // data directory; created if missing
	Logger     *slog.Logger // default slog.Default()
	CacheBytes int64        // block cache size; default 64 MiB
	// FilterCapacity is the number of dedupe records the in-memory filter is
	// first sized for; it grows as records are added. Default 16 Mi (32 MiB).
	FilterCapacity int
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("pebble store: Dir is required"))
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
	db   *pebbledb.DB
	log  *slog.Logger
	seed uint64 // keys the event id hash, so ids cannot be crafted to collide
	dict *dict

	// life is held for reading by the methods that do not take mu (the
	// executions and ClientNames) while they use the store, and for writing
	// by Close, so that they see closed instead of a closed Pebble, which
	// panics. It is taken before mu.
	life sync.RWMutex

	// mu serializes Append up to the point where its batch is applied to the
	// memtable and visible; the WAL fsync is awaited outside mu, so
	// concurrent Appends share fsyncs. Applying in mu's order means a batch
	// can only depend (for a duplicate verdict, or a dictionary entry) on
	// batches earlier in the WAL, which are durable whenever it is.
	mu     sync.Mutex
	filter *filter
	minDay uint16 // no dedupe record is older than this event day
	maxDay uint16 // the latest event day of any dedupe record
	closed bool   // set under both mu and life; read under either
	failed error  // set when a commit fails; the store then refuses appends
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
	cache := pebbledb.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	opts := &pebbledb.Options{
		Cache:        cache,
		Merger:       countsMerger,
		MemTableSize: 16 << 20,
		Logger:       pebbleLogger{cfg.Logger},
		// Fewer, larger levels: ingest writes two keys per event, and every
		// level a key passes through is another rewrite of it.
		LBaseMaxBytes:         256 << 20,
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 32,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].BlockSize = 32 << 10 // larger blocks compress better; scans dominate reads
	}
	opts.ApplyCompressionSettings(func() pebbledb.DBCompressionSettings { return pebbledb.DBCompressionBalanced })
	pdb, err := pebbledb.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("pebble store: open %s: %w", cfg.Dir, err)
	}
	d := &DB{db: pdb, log: cfg.Logger, dict: newDict()}
	if err := d.init(cfg.FilterCapacity); err != nil {
		pdb.Close()
		return nil, err
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
	if err := d.dict.load(d.db); err != nil {
		return fmt.Errorf("pebble store: load dictionary: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rebuildFilter(capacity)
}

// rebuildFilter sizes a new filter for at least capacity records and fills it
// from the stored dedupe records. The caller holds mu, so every applied batch
// is visible to the scan.
func (d *DB) rebuildFilter(capacity int) error {
	start := time.Now()
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famDedupe}, UpperBound: []byte{famDedupe + 1}})
	if err != nil {
		return err
	}
	// The current filter's count bounds the records from above (expiry only
	// removes). At open there is none: the records' disk footprint gives an
	// estimate (they take about 12 bytes each compressed), which spares a
	// counting pass; an underestimate only means an earlier regrowth.
	n := 0
	if d.filter != nil {
		n = d.filter.n
	} else if size, err := d.db.EstimateDiskUsage([]byte{famDedupe}, []byte{famDedupe + 1}); err == nil {
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
	if d.filter != nil {
		d.filter.release()
	}
	d.filter = f
	d.log.Debug("dedupe filter built", "records", f.n, "capacity", f.cap, "bytes", f.sizeBytes(), "took", time.Since(start))
	return nil
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

// Append implements store.Events.
func (d *DB) Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error) {
	if err := ctx.Err(); err != nil {
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
	inBatch := make(map[idKey]struct{}, len(events))
	full := make(map[fullKey]usage.Counts)
	perHour := make(map[rollupKey]usage.Counts)
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
			d.fail(err)
			d.mu.Unlock()
			b.Close()
			return nil, d.failed
		}
		if dup {
			outs[i] = usage.Duplicate
			continue
		}
		inBatch[id] = struct{}{}
		d.filter.add(&id)
		added = append(added, record{id, hour})

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
		acc := full[fk]
		acc.Add(c)
		full[fk] = acc
		hk := rollupKey{fam: famClientHour, org: id.org, bucket: hour, client: client}
		acc = perHour[hk]
		acc.Add(c)
		perHour[hk] = acc
	}

	// Keys go into the batch in key order: Pebble inserts a batch into its
	// memtable skiplist key by key, and neighbouring keys share the search
	// path, which measurably cuts the cache misses of random order.
	var kbuf [fullLen]byte
	var vbuf [countsSize]byte
	slices.SortFunc(added, func(a, b record) int {
		switch {
		case a.id.org != b.id.org:
			return cmp.Compare(a.id.org, b.id.org)
		case a.hour/24 != b.hour/24:
			return cmp.Compare(a.hour/24, b.hour/24)
		}
		return bytes.Compare(a.id.hash[:], b.id.hash[:])
	})
	for _, r := range added {
		day := uint16(r.hour / 24)
		d.minDay, d.maxDay = min(d.minDay, day), max(d.maxDay, day)
		b.Set(dedupeKey(kbuf[:0], &r.id, day), []byte{byte(r.hour % 24)}, nil)
	}
	fulls := make([]fullKey, 0, len(full))
	for k := range full {
		fulls = append(fulls, k)
	}
	slices.SortFunc(fulls, compareFull)
	for _, k := range fulls {
		c := full[k]
		b.Merge(k.encode(kbuf[:0]), encodeCounts(vbuf[:0], &c), nil)
	}
	days := make(map[rollupKey]usage.Counts)
	for k, c := range perHour {
		b.Merge(k.encode(kbuf[:0]), encodeCounts(vbuf[:0], &c), nil)
		dk := rollupKey{fam: famClientDay, org: k.org, bucket: k.bucket / 24, client: k.client}
		acc := days[dk]
		acc.Add(c)
		days[dk] = acc
	}
	for k, c := range days {
		b.Merge(k.encode(kbuf[:0]), encodeCounts(vbuf[:0], &c), nil)
	}
	err := d.commitUnlock(b)
	b.Close()
	if err != nil {
		return nil, err
	}
	return outs, nil
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

// commitUnlock applies b, built while holding mu, then releases mu and
// waits for b to be durable: the apply is ordered by mu, the fsync is
// shared with whatever commits meanwhile. On failure the store is put into
// the failed state and that error is returned.
func (d *DB) commitUnlock(b *pebbledb.Batch) error {
	var err error
	if !b.Empty() {
		err = d.db.ApplyNoSyncWait(b, pebbledb.Sync)
	}
	if err == nil && d.filter.full() {
		err = d.rebuildFilter(2 * d.filter.cap)
	}
	d.mu.Unlock()
	if err == nil && !b.Empty() {
		err = b.SyncWait()
	}
	if err != nil {
		d.mu.Lock()
		d.fail(err)
		d.mu.Unlock()
		return d.failed
	}
	return nil
}

// fail puts the store in the failed state after err stopped an Append: its
// batch may be visible without being durable, and the dictionary may hold ids
// whose entries never reached disk, so further appends are refused rather
// than built on either. The caller holds mu.
func (d *DB) fail(err error) {
	if d.failed == nil {
		d.failed = fmt.Errorf("pebble store: append failed, store is read-only until restarted: %w", err)
		d.log.Error("append failed", "err", err)
	}
}

// usable reports why appends are refused, if they are. The caller holds mu.
func (d *DB) usable() error {
	if d.closed {
		return errClosed
	}
	return d.failed
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
	return fn()
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
func (d *DB) recorded(id *idKey, day uint16, fromHour uint32) (bool, error) {
	var kbuf [dedupeLen]byte
	v, closer, err := d.db.Get(dedupeKey(kbuf[:0], id, day))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if len(v) != 1 {
		return false, errCorrupt
	}
	return uint32(day)*24+uint32(v[0]) >= fromHour, nil
}

// ExpireDedupe implements store.Events. Records are kept per day, so it
// deletes the whole days before the day of before, with one range deletion
// per organization; records of that day itself stay until the next day's
// expiry (Append ignores those outside the window anyway). It rebuilds the
// in-memory filter, so that expired records stop costing disk reads, only
// when a day was actually expired.
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
	if err := b.Commit(pebbledb.Sync); err != nil {
		return err
	}
	d.log.Info("expired dedupe records", "before", time.Unix(int64(day)*86400, 0).UTC().Format(time.DateOnly))
	return d.rebuildFilter(d.filter.cap)
}

// DiskUsage returns the bytes the store occupies on disk.
func (d *DB) DiskUsage() uint64 { return d.db.Metrics().DiskSpaceUsage() }

// Flush writes the memtable to disk; benchmarks call it before measuring size.
func (d *DB) Flush() error { return d.db.Flush() }

// Compact compacts the whole key space; used to measure settled disk usage.
func (d *DB) Compact() error {
	return d.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true)
}

// Close implements store.Store. Appends in progress finish first.
func (d *DB) Close() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("pebble store: already closed")
	}
	d.closed = true
	d.filter.release()
	return d.db.Close()
}

// pebbleLogger routes Pebble's own log lines through slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
