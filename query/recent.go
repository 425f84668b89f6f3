package query

import (
	"sync"
	"unsafe"

	"github.com/usaged/usaged/usage"
)

// recentBytes bounds the memory of the rows recent keeps: they are read
// within moments of finishing, so a few executions' worth is enough.
const recentBytes = 32 << 20

// recent keeps the rows of the executions this node finished last, so that
// reading them soon after, as the client that waited for them does, takes
// them from memory rather than reading and decoding them from the store
// again: a finished execution's rows never change. Rows checks the record
// in the store first, so a deleted or expired execution is never served
// from here.
type recent struct {
	mu    sync.Mutex
	bytes int64
	order []string // oldest first
	rows  map[string]recentRows
}

type recentRows struct {
	rows  []usage.Row
	bytes int64
}

// put keeps the rows of execution id, whose strings take strBytes,
// forgetting the oldest kept beyond recentBytes; rows larger than a quarter
// of it are not kept.
func (r *recent) put(id string, rows []usage.Row, strBytes int64) {
	bytes := strBytes + int64(len(rows))*int64(unsafe.Sizeof(usage.Row{}))
	if bytes > recentBytes/4 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rows == nil {
		r.rows = map[string]recentRows{}
	}
	if _, ok := r.rows[id]; ok {
		return
	}
	r.rows[id] = recentRows{rows, bytes}
	r.order = append(r.order, id)
	r.bytes += bytes
	for r.bytes > recentBytes {
		oldest := r.order[0]
		r.order = r.order[1:]
		r.bytes -= r.rows[oldest].bytes
		delete(r.rows, oldest)
	}
}

// get returns rows [offset, offset+limit) of execution id, and whether
// they are kept. The rows are the ones kept, not a copy (copying a large
// result took longer than answering from it): they must not be changed.
func (r *recent) get(id string, offset, limit int) ([]usage.Row, bool) {
	r.mu.Lock()
	kept, ok := r.rows[id]
	r.mu.Unlock()
	if !ok {
		return nil, false
	}
	from := min(offset, len(kept.rows))
	to := from + min(limit, len(kept.rows)-from)
	return kept.rows[from:to:to], true
}
