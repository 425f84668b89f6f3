// Package pebble is usaged's embedded storage backend, built on CockroachDB's
// Pebble LSM engine. It keeps, per organization, pre-aggregated counters at
// three levels (every dimension per hour, per client per hour, per client per
// day), a dedupe record per event, a dictionary interning dimension values,
// and the registry of organizations and clients. See keys.go for the layout.
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
	// first sized for; it grows as records are added. Default 4 Mi.
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

	// mu serializes the dedupe decision, interning and batch building of
	// Append. The commit (and its fsync) happens outside mu, so concurrent
	// Appends share fsyncs through Pebble's commit pipeline.
	mu       sync.Mutex
	filter   *filter
	inflight map[dedupeKey]int // dedupe records of batches built but not yet committed
	failed   error             // set when a commit fails; the store then refuses appends
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
		cfg.FilterCapacity = 4 << 20
	}
	cache := pebbledb.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	opts := &pebbledb.Options{
		Cache:        cache,
		Merger:       countsMerger,
		MemTableSize: 16 << 20,
		Logger:       pebbleLogger{cfg.Logger},
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
	d := &DB{db: pdb, log: cfg.Logger, dict: newDict(), inflight: make(map[dedupeKey]int)}
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
// from the stored and in-flight dedupe records. The caller holds mu.
func (d *DB) rebuildFilter(capacity int) error {
	start := time.Now()
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famDedupe}, UpperBound: []byte{famDedupe + 1}})
	if err != nil {
		return err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	f := newFilter(max(capacity, 2*(n+len(d.inflight))))
	for it.First(); it.Valid(); it.Next() {
		if k, ok := decodeDedupe(it.Key()); ok {
			f.add(&k)
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for k := range d.inflight {
		f.add(&k)
	}
	d.filter = f
	d.log.Debug("dedupe filter built", "records", f.n, "capacity", f.cap, "bytes", f.sizeBytes(), "took", time.Since(start))
	return nil
}

func compareFull(a, b fullKey) int {
	return cmp.Or(cmp.Compare(a.org, b.org), cmp.Compare(a.hour, b.hour), cmp.Compare(a.client, b.client),
		cmp.Compare(a.user, b.user), cmp.Compare(a.template, b.template), cmp.Compare(a.method, b.method),
		cmp.Compare(a.platform, b.platform))
}

// hourOf returns t's hour since the Unix epoch.
func hourOf(t time.Time) uint32 { return uint32(t.Unix() / 3600) }

// Append implements store.Events.
func (d *DB) Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	outs := make([]usage.Outcome, len(events))
	b := d.db.NewBatch()
	defer b.Close()
	fromHour := hourOf(dedupeFrom)

	d.mu.Lock()
	if d.failed != nil {
		d.mu.Unlock()
		return nil, d.failed
	}
	added := make([]dedupeKey, 0, len(events))
	hours := make([]uint32, 0, len(events)) // event hour of each added record
	full := make(map[fullKey]usage.Counts)
	perHour := make(map[rollupKey]usage.Counts)
	var kbuf [fullLen]byte
	for i := range events {
		ev := &events[i]
		dk := dedupeKey{org: d.dict.intern(kindOrg, ev.OrganizationID, b)}
		h := xxh3.HashString128Seed(ev.ID, d.seed)
		binary.BigEndian.PutUint64(dk.hash[0:8], h.Hi)
		binary.BigEndian.PutUint32(dk.hash[8:12], uint32(h.Lo))
		dup, err := d.seen(&dk, fromHour)
		if err != nil {
			d.unreserve(added)
			d.mu.Unlock()
			return nil, err
		}
		if dup {
			outs[i] = usage.Duplicate
			continue
		}
		d.inflight[dk]++
		d.filter.add(&dk)
		added = append(added, dk)
		hour := hourOf(ev.Time)
		hours = append(hours, hour)

		client := d.dict.intern(kindClient, ev.ClientID, b)
		d.dict.setName(dk.org, client, ev.ClientName, b)
		fk := fullKey{
			org: dk.org, hour: hour, client: client,
			user:     d.dict.intern(kindUser, ev.UserID, b),
			template: d.dict.intern(kindTemplate, ev.TemplateURI, b),
			method:   d.dict.intern(kindMethod, ev.HTTPMethod, b),
			platform: d.dict.intern(kindPlatform, ev.Platform, b),
		}
		c := usage.CountsFor(ev.Status)
		acc := full[fk]
		acc.Add(c)
		full[fk] = acc
		hk := rollupKey{fam: famClientHour, org: dk.org, bucket: hour, client: client}
		acc = perHour[hk]
		acc.Add(c)
		perHour[hk] = acc
	}
	if d.filter.full() {
		if err := d.rebuildFilter(2 * d.filter.cap); err != nil {
			d.unreserve(added)
			d.mu.Unlock()
			return nil, err
		}
	}
	d.mu.Unlock()

	// Keys go into the batch in key order: Pebble inserts a batch into its
	// memtable skiplist key by key, and neighbouring keys share the search
	// path, which measurably cuts the cache misses of random order.
	var vbuf [countsSize]byte
	order := make([]int, len(added))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		return cmp.Or(cmp.Compare(added[i].org, added[j].org), bytes.Compare(added[i].hash[:], added[j].hash[:]))
	})
	for _, i := range order {
		b.Set(added[i].encode(kbuf[:0]), binary.AppendUvarint(vbuf[:0], uint64(hours[i])), nil)
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

	err := d.db.Apply(b, pebbledb.Sync)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unreserve(added)
	if err != nil {
		// The dictionary may now hold ids whose entries never reached disk;
		// refuse further appends rather than write counts that reference them.
		d.failed = fmt.Errorf("pebble store: commit failed, store is read-only until restarted: %w", err)
		d.log.Error("commit failed", "err", err)
		return nil, d.failed
	}
	if d.failed != nil {
		// An earlier batch this one's duplicates may depend on failed.
		return nil, d.failed
	}
	return outs, nil
}

// seen reports whether a dedupe record for k with event hour >= fromHour is
// stored or in flight. The caller holds mu.
func (d *DB) seen(k *dedupeKey, fromHour uint32) (bool, error) {
	if d.inflight[*k] > 0 {
		return true, nil
	}
	if !d.filter.mayContain(k) {
		return false, nil
	}
	var kbuf [dedupeLen]byte
	v, closer, err := d.db.Get(k.encode(kbuf[:0]))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	hour, n := binary.Uvarint(v)
	if n <= 0 {
		return false, errCorrupt
	}
	return uint32(hour) >= fromHour, nil
}

// unreserve drops keys from the in-flight set. The caller holds mu.
func (d *DB) unreserve(keys []dedupeKey) {
	for _, k := range keys {
		if d.inflight[k] <= 1 {
			delete(d.inflight, k)
		} else {
			d.inflight[k]--
		}
	}
}

// ExpireDedupe implements store.Events. It rebuilds the in-memory filter
// afterwards so that expired records stop costing disk reads.
func (d *DB) ExpireDedupe(ctx context.Context, before time.Time) error {
	cutoff := hourOf(before)
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famDedupe}, UpperBound: []byte{famDedupe + 1}})
	if err != nil {
		return err
	}
	b := d.db.NewBatch()
	deleted := 0
	for it.First(); it.Valid(); it.Next() {
		hour, n := binary.Uvarint(it.Value())
		if n > 0 && uint32(hour) < cutoff {
			b.Delete(it.Key(), nil)
			deleted++
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebbledb.NoSync); err != nil {
				it.Close()
				return err
			}
			b = d.db.NewBatch()
		}
		if deleted%4096 == 0 && ctx.Err() != nil {
			break
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return err
	}
	d.log.Info("expired dedupe records", "before", before.UTC().Format(time.RFC3339), "deleted", deleted)
	d.mu.Lock()
	defer d.mu.Unlock()
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

// Close implements store.Store.
func (d *DB) Close() error { return d.db.Close() }

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
