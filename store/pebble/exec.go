package pebble

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/store/rowchunk"
	"github.com/usaged/usaged/usage"
)

// Executions are few (one per asynchronous query, kept for a TTL) and read by
// id, so their records are JSON like the registry's. Their rows can number a
// million, so they are chunks of rowchunk's compact encoding, rowsPerChunk to
// a key (see keys.go).
//
// Execution methods do not take mu: they never touch the dedupe state or the
// dictionary, so they do not wait for Appends. Like the registry's methods
// they only need Pebble itself, through live, so that after Close they
// return an error instead of reaching the closed Pebble, which panics. Their
// writes are refused once the store has failed (see health.go): the engine
// may then block forever.

// rowsPerChunk is the number of rows stored under one 'r' key; only the last
// chunk of an execution may hold fewer. It is part of the on-disk format:
// ExecutionRows finds the chunk of an offset by dividing by it.
const rowsPerChunk = rowchunk.Size

// execPage is how many records ExecutionsBy reads per iterator, so that fn
// runs with no iterator open and may call the store, e.g. to delete.
const execPage = 256

const execVersion = 1 // execRecord.V

// checkExecID refuses ids the key layout cannot hold: the 0x00 byte ends the
// id in 'r' keys, and an empty id would make the record key the family prefix.
func checkExecID(id string) error {
	if id == "" || strings.IndexByte(id, 0) >= 0 {
		return usage.Errorf(usage.KindInvalid, "executionId", "an execution id must not be empty or contain a NUL byte")
	}
	return nil
}

// execRecord is the stored form of a usage.Execution. It and its parts are
// converted to and from the usage types field by field, or by Go conversions
// where the shapes match (filterRecord, sortRecord), so that a field added to
// usage.Filter or usage.SortKey fails to compile here rather than go unsaved.
// It is its own type so
// that nothing about the encoding depends on the usage types: enumerations
// are stored as their numbers (the order of usage's constants is part of this
// format, as their names are free to change), and times are RFC 3339 in UTC
// with nanoseconds, as encoding/json writes them. Strings must be valid UTF-8,
// as encoding/json replaces invalid bytes; ids and labels reach the store from
// JSON requests, so they are. Slices keep the difference between nil and
// empty. Error.Err, the cause meant for logs, is not stored.
type execRecord struct {
	V              int          `json:"v"`
	ID             string       `json:"id"`
	OrganizationID string       `json:"org"`
	Operation      string       `json:"op"`
	ClientID       string       `json:"client"`
	Name           string       `json:"name"`
	Query          queryRecord  `json:"query"`
	Sort           []sortRecord `json:"sort"`
	Limit          int          `json:"limit"`
	Status         int          `json:"status"`
	Error          *errorRecord `json:"error"`
	RowCount       int          `json:"rowCount"`
	ResultBytes    int64        `json:"resultBytes,omitempty"` // absent from records written before it existed
	Truncated      bool         `json:"truncated"`
	Created        time.Time    `json:"created"`
	Finished       time.Time    `json:"finished"`
	Expires        time.Time    `json:"expires"`
}

type queryRecord struct {
	OrganizationID string       `json:"org"`
	Start          time.Time    `json:"start"`
	End            time.Time    `json:"end"`
	Granularity    int          `json:"granularity"`
	GroupBy        []int        `json:"groupBy"`
	Metrics        []int        `json:"metrics"`
	Filter         filterRecord `json:"filter"`
	MaxRows        int          `json:"maxRows"`
}

type filterRecord struct {
	ClientIDs    []string `json:"clientIds"`
	ClientNames  []string `json:"clientNames"`
	UserIDs      []string `json:"userIds"`
	TemplateURIs []string `json:"templateUris"`
	HTTPMethods  []string `json:"httpMethods"`
	Platforms    []string `json:"platforms"`
}

type sortRecord struct {
	Field string `json:"field"`
	Desc  bool   `json:"desc"`
}

type errorRecord struct {
	Kind    int    `json:"kind"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// convert maps a slice element by element, keeping nil nil.
func convert[S ~[]E, E, T any](s S, f func(E) T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

func toInt[T ~int](v T) int   { return int(v) }
func fromInt[T ~int](v int) T { return T(v) }

func encodeExec(e *usage.Execution) ([]byte, error) {
	q := &e.Query
	r := execRecord{
		V:              execVersion,
		ID:             e.ID,
		OrganizationID: e.OrganizationID,
		Operation:      e.Operation,
		ClientID:       e.ClientID,
		Name:           e.Name,
		Query: queryRecord{
			OrganizationID: q.OrganizationID,
			Start:          q.Interval.Start.UTC(),
			End:            q.Interval.End.UTC(),
			Granularity:    int(q.Granularity),
			GroupBy:        convert(q.GroupBy, toInt[usage.Dimension]),
			Metrics:        convert(q.Metrics, toInt[usage.Metric]),
			Filter:         filterRecord(q.Filter),
			MaxRows:        q.MaxRows,
		},
		Sort:        convert(e.Sort, func(k usage.SortKey) sortRecord { return sortRecord(k) }),
		Limit:       e.Limit,
		Status:      int(e.Status),
		RowCount:    e.RowCount,
		ResultBytes: e.ResultBytes,
		Truncated:   e.Truncated,
		Created:     e.Created.UTC(),
		Finished:    e.Finished.UTC(),
		Expires:     e.Expires.UTC(),
	}
	if e.Error != nil {
		r.Error = &errorRecord{Kind: int(e.Error.Kind), Field: e.Error.Field, Message: e.Error.Message}
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, usage.Errorf(usage.KindInvalid, "", "execution %s cannot be stored: %v", e.ID, err)
	}
	return b, nil
}

func decodeExec(b []byte) (usage.Execution, error) {
	var r execRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return usage.Execution{}, fmt.Errorf("pebble store: corrupt execution record: %w", err)
	}
	if r.V != execVersion {
		return usage.Execution{}, fmt.Errorf("pebble store: execution record %s has unknown version %d", r.ID, r.V)
	}
	e := usage.Execution{
		ID:             r.ID,
		OrganizationID: r.OrganizationID,
		Operation:      r.Operation,
		ClientID:       r.ClientID,
		Name:           r.Name,
		Query: usage.Query{
			OrganizationID: r.Query.OrganizationID,
			Interval:       usage.Interval{Start: r.Query.Start, End: r.Query.End},
			Granularity:    usage.Granularity(r.Query.Granularity),
			GroupBy:        convert(r.Query.GroupBy, fromInt[usage.Dimension]),
			Metrics:        convert(r.Query.Metrics, fromInt[usage.Metric]),
			Filter:         usage.Filter(r.Query.Filter),
			MaxRows:        r.Query.MaxRows,
		},
		Sort:        convert(r.Sort, func(k sortRecord) usage.SortKey { return usage.SortKey(k) }),
		Limit:       r.Limit,
		Status:      usage.ExecutionStatus(r.Status),
		RowCount:    r.RowCount,
		ResultBytes: r.ResultBytes,
		Truncated:   r.Truncated,
		Created:     r.Created,
		Finished:    r.Finished,
		Expires:     r.Expires,
	}
	if r.Error != nil {
		e.Error = &usage.Error{Kind: usage.Kind(r.Error.Kind), Field: r.Error.Field, Message: r.Error.Message}
	}
	return e, nil
}

// PutExecution implements store.Executions.
func (d *DB) PutExecution(ctx context.Context, e usage.Execution) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkExecID(e.ID); err != nil {
		return err
	}
	rec, err := encodeExec(&e)
	if err != nil {
		return err
	}
	// Only a new submission is refused below the disk reserve: later
	// updates finish or cancel work already accepted.
	need := int64(0)
	if e.Status == usage.ExecutionQueued {
		need = int64(len(rec))
	}
	if err := d.writable(need); err != nil {
		return err
	}
	return d.live(func() error { return d.db.Set(execKey(e.ID), rec, pebbledb.Sync) })
}

// FinishExecution implements store.Executions. One batch holds the rows and
// the record, so they commit together. It first deletes any rows stored
// before, so that finishing an execution again replaces its rows rather than
// leaving chunks of a longer answer behind.
func (d *DB) FinishExecution(ctx context.Context, e usage.Execution, rows []usage.Row) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkExecID(e.ID); err != nil {
		return err
	}
	if e.RowCount != len(rows) {
		return usage.Errorf(usage.KindInvalid, "rowCount", "execution %s has RowCount %d but %d rows", e.ID, e.RowCount, len(rows))
	}
	if uint64(len(rows)/rowsPerChunk) >= math.MaxUint32 {
		return usage.Errorf(usage.KindInvalid, "rowCount", "execution %s has too many rows to store", e.ID)
	}
	rec, err := encodeExec(&e)
	if err != nil {
		return err
	}
	if err := d.health.err(); err != nil {
		return err
	}
	return d.live(func() error {
		b := d.db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange(rowsKey(e.ID, 0), rowsEnd(e.ID), nil); err != nil {
			return err
		}
		var buf []byte
		for i, n := 0, uint32(0); i < len(rows); i, n = i+rowsPerChunk, n+1 {
			buf = rowchunk.Append(buf[:0], rows[i:min(i+rowsPerChunk, len(rows))])
			if err := b.Set(rowsKey(e.ID, n), buf, nil); err != nil { // Set copies buf
				return err
			}
		}
		if err := b.Set(execKey(e.ID), rec, nil); err != nil {
			return err
		}
		return b.Commit(pebbledb.Sync)
	})
}

// getExec reads the record of id from r (the DB or a snapshot).
func getExec(r pebbledb.Reader, id string) (usage.Execution, error) {
	v, closer, err := r.Get(execKey(id))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return usage.Execution{}, usage.ErrNotFound
	}
	if err != nil {
		return usage.Execution{}, err
	}
	defer closer.Close()
	return decodeExec(v)
}

// Execution implements store.Executions.
func (d *DB) Execution(ctx context.Context, id string) (usage.Execution, error) {
	if err := ctx.Err(); err != nil {
		return usage.Execution{}, err
	}
	if err := checkExecID(id); err != nil {
		return usage.Execution{}, err
	}
	var e usage.Execution
	err := d.live(func() (err error) {
		e, err = getExec(d.db, id)
		return err
	})
	return e, err
}

// ExecutionRows implements store.Executions. It reads the record and the rows
// from one snapshot, so that a concurrent FinishExecution or DeleteExecution
// is seen whole or not at all, and reads only the chunks from the one holding
// offset until limit rows are found. A negative offset or limit is a
// usage.KindInvalid error; a limit of 0 returns no rows.
func (d *DB) ExecutionRows(ctx context.Context, id string, offset, limit int) ([]usage.Row, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkExecID(id); err != nil {
		return nil, err
	}
	if offset < 0 || limit < 0 {
		return nil, usage.Errorf(usage.KindInvalid, "", "offset and limit must not be negative: got %d and %d", offset, limit)
	}
	rows := []usage.Row{}
	err := d.live(func() error {
		snap := d.db.NewSnapshot()
		defer snap.Close()
		if _, closer, err := snap.Get(execKey(id)); errors.Is(err, pebbledb.ErrNotFound) {
			return usage.ErrNotFound
		} else if err != nil {
			return err
		} else {
			closer.Close()
		}
		if limit == 0 || uint64(offset/rowsPerChunk) > math.MaxUint32 {
			return nil
		}
		chunk := uint32(offset / rowsPerChunk)
		skip := offset % rowsPerChunk
		it, err := snap.NewIter(&pebbledb.IterOptions{LowerBound: rowsKey(id, chunk), UpperBound: rowsEnd(id)})
		if err != nil {
			return err
		}
		err = readChunks(ctx, it, id, chunk, skip, limit, &rows)
		return errors.Join(err, it.Close())
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// readChunks appends to rows up to limit rows from the chunks it iterates,
// which start at chunk, skipping the first skip rows.
func readChunks(ctx context.Context, it *pebbledb.Iterator, id string, chunk uint32, skip, limit int, rows *[]usage.Row) error {
	keyLen := len(rowsKey(id, 0))
	short := false // the previous chunk held fewer than rowsPerChunk rows: it must have been the last
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) != keyLen || binary.BigEndian.Uint32(k[keyLen-4:]) != chunk || short {
			return fmt.Errorf("pebble store: execution %s: chunk %d: %w", id, chunk, rowchunk.ErrCorrupt)
		}
		dec, err := rowchunk.NewDecoder(it.Value())
		if err != nil {
			return fmt.Errorf("pebble store: execution %s: chunk %d: %w", id, chunk, err)
		}
		short = dec.Len() < rowsPerChunk
		if cap(*rows) == 0 {
			*rows = make([]usage.Row, 0, min(limit, rowsPerChunk))
		}
		var r usage.Row
		for dec.Len() > 0 {
			if err := dec.Next(&r); err != nil {
				return fmt.Errorf("pebble store: execution %s: chunk %d: %w", id, chunk, err)
			}
			if skip > 0 {
				skip--
				continue
			}
			*rows = append(*rows, r)
			if len(*rows) == limit {
				return nil
			}
		}
		chunk++
	}
	return nil
}

// ExecutionsBy implements store.Executions. It reads execPage records at a
// time and calls fn with no iterator open or lock held, so fn may call any
// method of the store, DeleteExecution included; records put or deleted
// meanwhile may or may not be seen.
func (d *DB) ExecutionsBy(ctx context.Context, fn func(usage.Execution) bool) error {
	lower := []byte{famExec}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page := make([]usage.Execution, 0, execPage)
		err := d.live(func() error {
			it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: []byte{famExec + 1}})
			if err != nil {
				return err
			}
			for it.First(); it.Valid() && len(page) < execPage; it.Next() {
				e, err := decodeExec(it.Value())
				if err != nil {
					it.Close()
					return err
				}
				page = append(page, e)
				if len(page) == execPage {
					lower = append(slices.Clone(it.Key()), 0) // the key right after this one
				}
			}
			return it.Close()
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if !fn(e) {
				return nil
			}
		}
		if len(page) < execPage {
			return nil
		}
	}
}

// DeleteExecution implements store.Executions.
func (d *DB) DeleteExecution(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkExecID(id); err != nil {
		return err
	}
	if err := d.health.err(); err != nil {
		return err
	}
	return d.live(func() error {
		b := d.db.NewBatch()
		defer b.Close()
		if err := b.Delete(execKey(id), nil); err != nil {
			return err
		}
		if err := b.DeleteRange(rowsKey(id, 0), rowsEnd(id), nil); err != nil {
			return err
		}
		return b.Commit(pebbledb.Sync)
	})
}
