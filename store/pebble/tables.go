package pebble

import (
	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// How the store's tables are written: which levels are compressed with what,
// and which keys their filters hold.

// bloomBits is the bits per key of the tables' Bloom filters: about a 1 %
// false-positive rate.
const bloomBits = 10

// setTableOptions sets the compression and the filter of every level.
//
// The upper levels use Snappy: their tables are rewritten soon, and it is
// cheap. The last level, which holds nine tenths of the data and is rewritten
// least, uses zstd: on the per-event groups it takes 17.2 bytes per key
// against 22.5 with Snappy. (Pebble's own profiles would not: on this store's
// table format, v5, any profile that uses MinLZ for some block, as all of its
// mixed ones do on amd64, falls back to Snappy everywhere.) Both profiles are
// ones Pebble registers, so that the OPTIONS file it writes names them and a
// later Open parses it. A table keeps what it was written with: one moved
// down whole, or a dedupe run ingested into the last level (written with
// level 0's options; its hashes do not compress), stays Snappy.
func setTableOptions(opts *pebbledb.Options) {
	filter := countsUnfiltered{}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = filter
		opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.SnappyCompression }
	}
	last := len(opts.Levels) - 1
	opts.Levels[last].Compression = func() *sstable.CompressionProfile { return sstable.ZstdCompression }
	// Tables written before this policy carry plain Bloom filters, which
	// Pebble finds by the name each table records.
	opts.Filters = map[string]pebbledb.FilterPolicy{
		filter.Name():                filter,
		bloom.FilterPolicy(0).Name(): bloom.FilterPolicy(bloomBits),
	}
}

// countsUnfiltered is a Bloom filter that leaves out the counts families
// ('f', 'h', 'y'). They are only ever scanned, so a filter over them is never
// read, yet it costs 1.25 bytes per key (per event, for the per-hour groups
// at high cardinality) and a hash of every key each time a table is written.
// The dedupe records keep theirs: a dedupe lookup that the in-memory filter
// lets through probes every day of the window, and the tables' filters answer
// most of those probes without a read.
type countsUnfiltered struct{}

var _ pebbledb.FilterPolicy = countsUnfiltered{}

func unfiltered(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	switch key[0] {
	case famFull, famClientHour, famClientDay:
		return true
	}
	return false
}

func (countsUnfiltered) Name() string { return "usaged.bloom-without-counts" }

func (countsUnfiltered) MayContain(ftype pebbledb.FilterType, filter, key []byte) bool {
	if unfiltered(key) {
		return true
	}
	return bloom.FilterPolicy(bloomBits).MayContain(ftype, filter, key)
}

func (countsUnfiltered) NewWriter(ftype pebbledb.FilterType) pebbledb.FilterWriter {
	return countsSkipper{bloom.FilterPolicy(bloomBits).NewWriter(ftype)}
}

// countsSkipper passes every key but the counts families' to a Bloom filter.
type countsSkipper struct{ pebbledb.FilterWriter }

func (w countsSkipper) AddKey(key []byte) {
	if !unfiltered(key) {
		w.FilterWriter.AddKey(key)
	}
}
