package pebble

import (
	"encoding/binary"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// Values written before measures were kept, the six uvarints of the counts
// alone, read as zero measures, alone and merged with values that carry
// measures, before and after compactions fold them.
func TestMeasuresOldValues(t *testing.T) {
	d, err := Open(Config{Dir: t.TempDir(), FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h := time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC)
	ev := usage.Event{ID: "a", Time: h.Add(time.Minute), OrganizationID: "o", ClientID: "c", TemplateURI: "t", HTTPMethod: "GET",
		Status: 200, DurationMs: 120, RequestBytes: 10, ResponseBytes: 300}
	if _, err := d.Append(t.Context(), []usage.Event{ev}, h.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Old operands of 2 requests, status 200: on the event's keys, and on
	// those of the next hour, which have no other value.
	old := encodeCounts(nil, &usage.Counts{Requests: 2, Status200: 2})
	var keys [][]byte
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famFull}, UpperBound: []byte{famClientDay + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		switch k := it.Key(); k[0] {
		case famFull, famClientHour, famClientDay:
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("%d counts keys, want 3", len(keys))
	}
	for _, k := range keys {
		if err := d.db.Merge(k, old, pebbledb.Sync); err != nil {
			t.Fatal(err)
		}
		if k[0] != famClientDay { // the next hour
			next := append([]byte(nil), k...)
			binary.BigEndian.PutUint32(next[5:], binary.BigEndian.Uint32(next[5:])+1)
			if err := d.db.Merge(next, old, pebbledb.Sync); err != nil {
				t.Fatal(err)
			}
		}
	}

	day := usage.Interval{Start: h.Truncate(24 * time.Hour), End: h.Truncate(24 * time.Hour).Add(24 * time.Hour)}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			name string
			q    usage.Query
			want []int64 // requests, durations, max, request bytes of each row
		}{
			{"by template, hourly", usage.Query{Granularity: usage.GranularityHour, GroupBy: []usage.Dimension{usage.DimTemplateURI}},
				[]int64{3, 1, 120, 10, 2, 0, 0, 0}},
			{"by client, hourly", usage.Query{Granularity: usage.GranularityHour, GroupBy: []usage.Dimension{usage.DimClientID}},
				[]int64{3, 1, 120, 10, 2, 0, 0, 0}},
			{"by client, daily", usage.Query{Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimClientID}},
				[]int64{3, 1, 120, 10}},
		} {
			for _, measures := range []bool{false, true} {
				q := c.q
				q.OrganizationID, q.Interval = "o", day
				if measures {
					q.Metrics = []usage.Metric{usage.MetricRequests, usage.MetricDurationMax}
				}
				q, err := q.Normalize()
				if err != nil {
					t.Fatal(err)
				}
				rows, err := d.Query(t.Context(), q)
				if err != nil {
					t.Fatalf("%s, %s: %v", when, c.name, err)
				}
				var got []int64
				for _, r := range rows {
					if (r.Measures != nil) != measures {
						t.Fatalf("%s, %s: row %+v, want measures %v", when, c.name, r, measures)
					}
					got = append(got, r.Requests)
					if measures {
						got = append(got, r.Measures.Durations, r.Measures.DurationMax, r.Measures.RequestBytes)
					} else {
						got = append(got, 0, 0, 0)
					}
				}
				want := c.want
				if !measures {
					want = append([]int64(nil), want...)
					for i := range want {
						if i%4 != 0 {
							want[i] = 0
						}
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%s, %s (measures %v): %v, want %v", when, c.name, measures, got, want)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s, %s (measures %v): %v, want %v", when, c.name, measures, got, want)
					}
				}
			}
		}
	}
	check("merged on read")
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	check("compacted")
}

// A corrupt measures encoding after the counts is an error, not a zero.
func TestMeasuresCorruptValue(t *testing.T) {
	var c usage.Counts
	var m, scratch usage.Measures
	v := encodeCounts(nil, &usage.Counts{Requests: 1})
	if err := addValue(&c, &m, &scratch, append(v, 0x80)); err == nil {
		t.Fatal("a truncated measures encoding was accepted")
	}
	if rest, err := addCounts(&c, append(v, 0x80)); err != nil || len(rest) != 1 {
		t.Fatalf("addCounts = %x, %v; want the measures left as they are", rest, err)
	}
}
