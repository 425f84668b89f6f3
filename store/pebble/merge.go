package pebble

import (
	"io"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// countsMerger adds counts values, counts and measures (see encodeValue).
// Appends write merge operands rather than reading and rewriting counters,
// so a commit never waits on a read; Pebble folds the operands on reads and
// compactions. Addition and usage.Measures.Merge are associative and
// commutative, so operand order does not matter. Values without measures,
// those of stores written before measures were kept among them, merge as
// zero measures, which is why the merger keeps its name. (A binary older
// than the measures reads their values but drops the measures when it
// merges them.)
//
// Reads merge the operands of keys that no compaction has folded yet, so a
// merger and its buffers are pooled: Finish hands the merged value to
// Pebble with the merger as its io.Closer, which Pebble closes once it no
// longer needs the value, returning the merger to the pool.
var countsMerger = &pebbledb.Merger{
	Name: "usaged.counts.v1",
	Merge: func(key, value []byte) (pebbledb.ValueMerger, error) {
		m := mergers.Get().(*countsValue)
		return m, m.add(value)
	},
}

var mergers = sync.Pool{New: func() any { return &countsValue{} }}

type countsValue struct {
	c          usage.Counts
	m, scratch usage.Measures
	buf        []byte // the merged value
}

func (m *countsValue) add(value []byte) error { return addValue(&m.c, &m.m, &m.scratch, value) }

func (m *countsValue) MergeNewer(value []byte) error { return m.add(value) }
func (m *countsValue) MergeOlder(value []byte) error { return m.add(value) }
func (m *countsValue) Finish(bool) ([]byte, io.Closer, error) {
	m.buf = encodeValue(m.buf[:0], &m.c, &m.m)
	return m.buf, m, nil
}

// Close returns m to the pool, emptied, its storage kept.
func (m *countsValue) Close() error {
	m.c = usage.Counts{}
	m.m.Latency.Reset()
	m.m = usage.Measures{Latency: m.m.Latency}
	mergers.Put(m)
	return nil
}
