package pebble

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/usaged/usaged/usage"
)

// appendFlushed appends n events, ids and users from first on, each a group
// of its own (a user each, a second apart, back from crashNow), and flushes
// them into a table.
func appendFlushed(t *testing.T, d *DB, first, n int) {
	t.Helper()
	evs := make([]usage.Event, n)
	for i := range evs {
		evs[i] = usage.Event{
			ID: fmt.Sprint(first + i), Time: crashNow.Add(-time.Duration(i) * time.Second), OrganizationID: "org",
			ClientID: "c", UserID: fmt.Sprint("user-", first+i), TemplateURI: "api/v2/items", HTTPMethod: "GET", Status: 200,
		}
	}
	if _, err := d.Append(t.Context(), evs, crashNow.Add(-time.Duration(n)*time.Second-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Pebble falls back to Snappy, silently, for a compression profile the
// table format cannot write; this checks what the tables record. Two
// flushes of the same hours overlap, so the full compaction writes the
// last level's groups (a table moved down whole, or a dedupe run ingested
// there, keeps what it was written with).
func TestLastLevelIsZstd(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	appendFlushed(t, d, 0, 5000)
	appendFlushed(t, d, 5000, 5000)
	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	levels, err := d.db.SSTables(pebbledb.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for level, tables := range levels {
		for _, tb := range tables {
			if tb.Smallest.UserKey[0] > famFull || tb.Largest.UserKey[0] < famFull {
				continue // no groups: a dedupe run, or the dictionary alone
			}
			want := "Snappy"
			if level == len(levels)-1 {
				want = "ZSTD"
				last++
			}
			if got := tb.Properties.CompressionName; got != want {
				t.Errorf("a table of groups in level %d is compressed with %q, want %q", level, got, want)
			}
			if got := tb.Properties.FilterPolicyName; got != "usaged.bloom-without-counts" {
				t.Errorf("a table of level %d has the filter %q", level, got)
			}
		}
	}
	if last == 0 {
		t.Fatal("no table of groups in the last level after a full compaction")
	}
}

func TestFiltersLeaveOutCounts(t *testing.T) {
	t.Parallel()
	key := func(fam byte, i int) []byte {
		return binary.BigEndian.AppendUint64([]byte{fam}, uint64(i)*0x9e3779b97f4a7c15)
	}
	w := countsUnfiltered{}.NewWriter(pebbledb.TableFilter)
	for i := range 10000 {
		for _, fam := range []byte{famFull, famClientHour, famClientDay} {
			w.AddKey(key(fam, i))
		}
	}
	if f := w.Finish(nil); len(f) > 5 {
		t.Fatalf("a filter over counts keys alone takes %d bytes, want the empty filter's 5", len(f))
	}
	for i := range 1000 {
		w.AddKey(key(famDedupe, i))
		w.AddKey(key(famFull, i))
	}
	f := w.Finish(nil)
	if max := 1000*bloomBits/8 + 128; len(f) > max {
		t.Fatalf("a filter over 1,000 dedupe keys takes %d bytes, want at most %d", len(f), max)
	}
	may := func(k []byte) bool { return countsUnfiltered{}.MayContain(pebbledb.TableFilter, f, k) }
	for i := range 1000 {
		if !may(key(famDedupe, i)) {
			t.Fatalf("dedupe key %d, in the filter, is not found", i)
		}
	}
	for i := range 1000 {
		// Not in the filter: a counts key may always be in the table.
		if !may(key(famFull, 5000+i)) || !may(key(famClientDay, i)) {
			t.Fatalf("counts key %d is ruled out by a filter that does not hold counts", i)
		}
	}
	positives := 0
	for i := 1000; i < 11000; i++ {
		if may(key(famDedupe, i)) {
			positives++
		}
	}
	if positives > 300 {
		t.Fatalf("%d of 10,000 absent dedupe keys pass the filter, want about 1 %%", positives)
	}
}

// A store's tables written before its filter policy was its own carry plain
// Bloom filters; they must still rule keys out.
func TestFiltersOfEarlierTablesRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	opts := &pebbledb.Options{FormatMajorVersion: pebbledb.FormatWALSyncChunks, Merger: countsMerger}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	raw, err := pebbledb.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) []byte {
		id := idKey{org: 1}
		binary.BigEndian.PutUint64(id.hash[:], uint64(i)*0x9e3779b97f4a7c15)
		return dedupeKey(nil, &id, 20000)
	}
	for i := 0; i < 2000; i += 2 {
		if err := raw.Set(key(i), []byte{3}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	d, err = Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	before := d.db.Metrics().Filter.Hits
	for i := range 2000 {
		_, closer, err := d.db.Get(key(i))
		if found := err == nil; found != (i%2 == 0) {
			t.Fatalf("key %d: found %v (%v)", i, found, err)
		}
		if err == nil {
			closer.Close()
		}
	}
	if hits := d.db.Metrics().Filter.Hits - before; hits < 900 {
		t.Fatalf("the earlier table's filter ruled out %d of the 1,000 absent keys, want nearly all", hits)
	}
}
