package pebble

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/store/rowchunk"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	d, err := Open(Config{Dir: t.TempDir(), FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// reopen closes d, which was opened on dir, and opens dir again.
func reopen(t *testing.T, d *DB, dir string) *DB {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// count returns the number of keys of family fam.
func count(t *testing.T, d *DB, fam byte) int {
	t.Helper()
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// The conformance suite allows a millisecond and nil for empty slices; this
// backend keeps times to the nanosecond and slices as they were.
func TestExecutionRecordIsExact(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	e := storetest.SampleExecution("exact")
	e.Query.Filter.Platforms = []string{}
	e.Error.Err = nil
	if err := d.PutExecution(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	got, err := d.Execution(t.Context(), "exact")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*time.Time{&e.Created, &e.Finished, &e.Expires, &e.Query.Interval.Start, &e.Query.Interval.End} {
		*p = p.UTC()
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("Execution:\n got %+v\nwant %+v", got, e)
	}
}

func TestExecutionArguments(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	c := t.Context()
	for _, id := range []string{"", "a\x00b", "\x00"} {
		e := usage.Execution{ID: id}
		for name, err := range map[string]error{
			"PutExecution":    d.PutExecution(c, e),
			"FinishExecution": d.FinishExecution(c, e, nil),
			"Execution":       func() error { _, err := d.Execution(c, id); return err }(),
			"ExecutionRows":   func() error { _, err := d.ExecutionRows(c, id, 0, 1); return err }(),
			"DeleteExecution": d.DeleteExecution(c, id),
		} {
			if usage.KindOf(err) != usage.KindInvalid {
				t.Errorf("%s(%q): %v, want invalid", name, id, err)
			}
		}
	}
	if err := d.FinishExecution(c, usage.Execution{ID: "x", RowCount: 2}, storetest.MakeRows(3)); usage.KindOf(err) != usage.KindInvalid {
		t.Errorf("FinishExecution with RowCount 2 and 3 rows: %v, want invalid", err)
	}
	if err := d.PutExecution(c, usage.Execution{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, ol := range [][2]int{{-1, 1}, {0, -1}} {
		if _, err := d.ExecutionRows(c, "x", ol[0], ol[1]); usage.KindOf(err) != usage.KindInvalid {
			t.Errorf("ExecutionRows(x, %d, %d): %v, want invalid", ol[0], ol[1], err)
		}
	}
	if rows, err := d.ExecutionRows(c, "x", math.MaxInt, math.MaxInt); err != nil || len(rows) != 0 {
		t.Errorf("ExecutionRows(x, MaxInt, MaxInt) = %d rows, %v; want none", len(rows), err)
	}
}

func TestExecutionChunks(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	c := t.Context()
	rows := storetest.MakeRows(2500)
	if err := d.FinishExecution(c, usage.Execution{ID: "x", RowCount: len(rows)}, rows); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, famRows); n != 3 {
		t.Fatalf("2500 rows in %d chunks, want 3", n)
	}
	if err := d.FinishExecution(c, usage.Execution{ID: "x", RowCount: 1}, rows[:1]); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, famRows); n != 1 {
		t.Fatalf("after finishing again with 1 row: %d chunks, want 1", n)
	}
	if err := d.DeleteExecution(c, "x"); err != nil {
		t.Fatal(err)
	}
	if n, m := count(t, d, famRows), count(t, d, famExec); n != 0 || m != 0 {
		t.Fatalf("after delete: %d chunks and %d records, want none", n, m)
	}
}

// A chunk that does not decode is an error naming the store, the execution
// and the chunk, never a panic.
func TestCorruptChunk(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	c := t.Context()
	rows := storetest.MakeRows(1500)
	if err := d.FinishExecution(c, usage.Execution{ID: "x", RowCount: len(rows)}, rows); err != nil {
		t.Fatal(err)
	}
	if err := d.db.Set(rowsKey("x", 1), []byte{1, 5, 0}, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if got, err := d.ExecutionRows(c, "x", 0, 1000); err != nil || len(got) != 1000 {
		t.Fatalf("ExecutionRows of the sound chunk: %d rows, %v", len(got), err)
	}
	_, err := d.ExecutionRows(c, "x", 0, len(rows))
	if !errors.Is(err, rowchunk.ErrCorrupt) || !strings.Contains(err.Error(), "pebble store: execution x: chunk 1:") {
		t.Fatalf("ExecutionRows of a corrupt chunk: %v, want rowchunk.ErrCorrupt naming the store, execution and chunk", err)
	}
}

// ExecutionsBy runs fn with no iterator or lock held, so that fn may delete.
func TestExecutionsByMayDelete(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	c := t.Context()
	const n = 2*execPage + 10
	for i := range n {
		if err := d.PutExecution(c, usage.Execution{ID: fmt.Sprintf("e%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	err := d.ExecutionsBy(c, func(e usage.Execution) bool {
		seen++
		if err := d.DeleteExecution(c, e.ID); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if err != nil || seen != n || count(t, d, famExec) != 0 {
		t.Fatalf("ExecutionsBy deleting: saw %d of %d, %d left, %v", seen, n, count(t, d, famExec), err)
	}
}

// Every method returns an error after Close rather than reach a closed Pebble,
// which panics.
func TestMethodsAfterClose(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	c := t.Context()
	e := usage.Execution{ID: "x"}
	for name, err := range map[string]error{
		"PutExecution":    d.PutExecution(c, e),
		"FinishExecution": d.FinishExecution(c, e, nil),
		"Execution":       func() error { _, err := d.Execution(c, "x"); return err }(),
		"ExecutionRows":   func() error { _, err := d.ExecutionRows(c, "x", 0, 1); return err }(),
		"ExecutionsBy":    d.ExecutionsBy(c, func(usage.Execution) bool { return true }),
		"DeleteExecution": d.DeleteExecution(c, "x"),
		"ClientNames":     func() error { _, err := d.ClientNames(c, "o"); return err }(),
		"PutOrganization": d.PutOrganization(c, usage.Organization{ID: "o"}),
		"Organization":    func() error { _, err := d.Organization(c, "o"); return err }(),
		"Organizations":   func() error { _, err := d.Organizations(c); return err }(),
		"PutClient":       d.PutClient(c, usage.Client{ID: "x", OrganizationID: "o"}),
		"Client":          func() error { _, err := d.Client(c, "x"); return err }(),
		"Clients":         func() error { _, err := d.Clients(c, "o"); return err }(),
		"DeleteClient":    d.DeleteClient(c, "o", "x"),
	} {
		if err == nil {
			t.Errorf("%s after Close: no error", name)
		}
	}
}

// The first event of each client writes its name key, even an empty name,
// and later events only when the name changes.
func TestNameKeys(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	defer d.Close()
	ev := usage.Event{ID: "1", Time: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), OrganizationID: "o", ClientID: "nameless", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	if _, err := d.Append(t.Context(), []usage.Event{ev}, ev.Time); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, famName); n != 1 {
		t.Fatalf("%d name keys after a nameless client's first event, want 1", n)
	}
	names, err := d.ClientNames(t.Context(), "o")
	if err != nil || !maps.Equal(names, map[string]string{"nameless": ""}) {
		t.Fatalf("ClientNames = %v, %v", names, err)
	}

	// setName writes the key for a new pair and for changes only.
	writes := func(org, client uint32, name string) uint32 {
		b := d.db.NewBatch()
		defer b.Close()
		d.mu.Lock()
		d.dict.setName(org, client, name, b)
		d.mu.Unlock()
		return b.Count()
	}
	for _, c := range []struct {
		org, client uint32
		name        string
		want        uint32
	}{
		{9, 9, "", 1}, {9, 9, "", 0}, {9, 9, "x", 1}, {9, 9, "x", 0}, {9, 10, "x", 1}, {10, 9, "", 1},
	} {
		if got := writes(c.org, c.client, c.name); got != c.want {
			t.Errorf("setName(%d, %d, %q) wrote %d keys, want %d", c.org, c.client, c.name, got, c.want)
		}
	}
}
