package pebble

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestFamilySizes measures what each key family of a store takes on disk,
// and what the largest ones would take written with other table settings:
// the measure behind setTableOptions. It is opt-in and reads the (closed)
// store in USAGED_SIZES_STORE, e.g. one `usaged bench store` loaded.
func TestFamilySizes(t *testing.T) {
	dir := os.Getenv("USAGED_SIZES_STORE")
	if dir == "" {
		t.Skip("USAGED_SIZES_STORE names no store to measure")
	}
	d, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for fam := range 256 {
		n, err := d.db.EstimateDiskUsage([]byte{byte(fam)}, []byte{byte(fam), 0xff, 0xff, 0xff, 0xff, 0xff})
		if err != nil {
			t.Fatal(err)
		}
		if n > 1<<20 {
			t.Logf("family %q: %d bytes on disk", byte(fam), n)
		}
	}

	// zstd at level 1 on every block, which Pebble registers no profile for.
	zstd1 := *sstable.BalancedCompression
	zstd1.Name, zstd1.OtherBlocks, zstd1.AdaptiveReductionCutoffPercent = "zstd 1", zstd1.DataBlocks, 0
	settings := []struct {
		name   string
		comp   *sstable.CompressionProfile
		filter bool
	}{
		{"Snappy, Bloom filter", sstable.SnappyCompression, true},
		{"Snappy", sstable.SnappyCompression, false},
		{"zstd 1", &zstd1, false},
		{"zstd 3", sstable.ZstdCompression, false},
	}
	out := t.TempDir()
	for _, fam := range []byte{famFull, famClientHour, famDedupe} {
		for _, s := range settings {
			wo := d.opts.MakeWriterOptions(len(d.opts.Levels)-1, d.db.TableFormat())
			wo.Compression, wo.FilterPolicy = s.comp, pebbledb.NoFilterPolicy
			if s.filter {
				wo.FilterPolicy = bloom.FilterPolicy(bloomBits)
			}
			keys, size := rewriteFamily(t, d, fam, wo, filepath.Join(out, fmt.Sprintf("%c.sst", fam)))
			t.Logf("family %q, %s: %d keys in %d bytes, %.2f bytes/key", fam, s.name, keys, size, float64(size)/float64(max(keys, 1)))
		}
	}
}

// rewriteFamily writes the keys of family fam into one table at name, with
// wo, and returns how many there are and the table's size.
func rewriteFamily(t *testing.T, d *DB, fam byte, wo sstable.WriterOptions, name string) (keys int, size int64) {
	t.Helper()
	f, err := vfs.Default.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo)
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		if err := w.Set(it.Key(), it.Value()); err != nil {
			t.Fatal(err)
		}
		keys++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return keys, fi.Size()
}
