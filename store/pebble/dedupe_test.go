package pebble

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// A store written before runs holds every record as a 'd' key and its log
// entries without the hour, in family 'l', and no runs' sequence. Opened
// now, it must find every record, those behind its checkpoint and those in
// its log, and go on in the new log.
func TestOpensStoreWrittenBeforeRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	window := crashNow.Add(-30 * 24 * time.Hour)
	batch := func(from, n int) []usage.Event {
		evs := make([]usage.Event, n)
		for i := range evs {
			evs[i] = usage.Event{
				ID: fmt.Sprintf("ev-%d", from+i), Time: crashNow.Add(-time.Duration(from+i) * time.Minute),
				OrganizationID: "org", ClientID: "c", TemplateURI: "api/v2/items", HTTPMethod: "GET", Status: 200,
			}
		}
		return evs
	}
	outcomes := func(d *DB, evs []usage.Event, want usage.Outcome) {
		t.Helper()
		outs, err := d.Append(t.Context(), evs, window)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			if o != want {
				t.Fatalf("%s: %v, want %v", evs[i].ID, o, want)
			}
		}
	}
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	d.stopMaint()
	<-d.maintDone
	// The first 500 behind a checkpoint, the next 500 in the log only; all
	// as 'd' keys, as the earlier version wrote them with each batch.
	outcomes(d, batch(0, 500), usage.Accepted)
	if err := d.writeRun(true); err != nil {
		t.Fatal(err)
	}
	if err := d.writeCheckpoint(true); err != nil {
		t.Fatal(err)
	}
	outcomes(d, batch(500, 500), usage.Accepted)
	if err := d.writeRun(true); err != nil {
		t.Fatal(err)
	}
	b := d.db.NewBatch()
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famLog}, UpperBound: []byte{famLog + 1}})
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for it.First(); it.Valid(); it.Next() {
		var old []byte
		for v := it.Value(); len(v) > 0; v = v[logEntryLen:] {
			old = append(append(old, v[:6]...), v[7:logEntryLen]...) // without the hour
		}
		b.Set(logKey(famLogV1, binary.BigEndian.Uint64(it.Key()[1:])), old, nil)
		b.Delete(it.Key(), nil)
		entries++
	}
	it.Close()
	b.Delete(runsKey, nil)
	if err := b.Commit(pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if entries == 0 {
		t.Fatal("no log entry after the checkpoint: the test would not test the old log's replay")
	}
	d.filter.release()
	if err := d.db.Close(); err != nil { // as the earlier version left it, without a last checkpoint
		t.Fatal(err)
	}

	d, err = Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.runSeq.Load(); got != d.logSeq {
		t.Fatalf("runs cover the log to %d, want all of it (%d)", got, d.logSeq)
	}
	outcomes(d, batch(0, 1000), usage.Duplicate)
	outcomes(d, batch(1000, 500), usage.Accepted)
	d.stopMaint() // nothing written behind the next "crash"
	<-d.maintDone
	d.filter.release()
	if err := d.db.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	outcomes(d, batch(0, 1500), usage.Duplicate)
	rows, err := d.Query(t.Context(), usage.Query{
		OrganizationID: "org", Granularity: usage.GranularityNone, MaxRows: 10,
		Interval: usage.Interval{Start: crashNow.Add(-48 * time.Hour), End: crashNow.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Requests != 1500 {
		t.Fatalf("rows %+v, want 1,500 requests", rows)
	}
}
