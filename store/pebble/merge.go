package pebble

import (
	"io"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// countsMerger adds counts values. Appends write merge operands rather than
// reading and rewriting counters, so a commit never waits on a read; Pebble
// folds the operands on reads and compactions. Addition is associative and
// commutative, so operand order does not matter.
var countsMerger = &pebbledb.Merger{
	Name: "usaged.counts.v1",
	Merge: func(key, value []byte) (pebbledb.ValueMerger, error) {
		m := &countsValue{}
		return m, addCounts(&m.c, value)
	},
}

type countsValue struct{ c usage.Counts }

func (m *countsValue) MergeNewer(value []byte) error { return addCounts(&m.c, value) }
func (m *countsValue) MergeOlder(value []byte) error { return addCounts(&m.c, value) }
func (m *countsValue) Finish(bool) ([]byte, io.Closer, error) {
	return encodeCounts(nil, &m.c), nil, nil
}
