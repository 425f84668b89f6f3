package pebble

import (
	"io"

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
var countsMerger = &pebbledb.Merger{
	Name: "usaged.counts.v1",
	Merge: func(key, value []byte) (pebbledb.ValueMerger, error) {
		m := &countsValue{}
		return m, m.add(value)
	},
}

type countsValue struct {
	c          usage.Counts
	m, scratch usage.Measures
}

func (m *countsValue) add(value []byte) error { return addValue(&m.c, &m.m, &m.scratch, value) }

func (m *countsValue) MergeNewer(value []byte) error { return m.add(value) }
func (m *countsValue) MergeOlder(value []byte) error { return m.add(value) }
func (m *countsValue) Finish(bool) ([]byte, io.Closer, error) {
	return encodeValue(nil, &m.c, &m.m), nil, nil
}
