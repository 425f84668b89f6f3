package pebble

import (
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// lsmMetrics gathers d's metrics, by name and, for the written bytes, path.
func lsmMetrics(t *testing.T, d *DB) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[name] = c.GetValue()
			} else {
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

func TestLSMOnMetrics(t *testing.T) {
	t.Parallel()
	d := openTest(t)
	appendFlushed(t, d, 0, 20000)
	levels, err := d.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	m := lsmMetrics(t, d)
	// 20,000 per-event groups of 29-byte keys went through the log, and
	// out of the memtable into level 0.
	if m["usaged_store_written_bytes_total/wal"] < 20000*29 || m["usaged_store_written_bytes_total/flush"] <= 0 {
		t.Fatalf("after 20,000 events and a flush: %v", m)
	}
	if got, want := m["usaged_store_l0_tables"], float64(len(levels[0])); got != want || want == 0 {
		t.Fatalf("level 0 holds %v tables, the metric says %v", want, got)
	}
	if m["usaged_store_l0_sublevels"] < 1 {
		t.Fatalf("level 0 has tables but no sublevel: %v", m)
	}

	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	m = lsmMetrics(t, d)
	if m["usaged_store_l0_tables"] != 0 || m["usaged_store_written_bytes_total/compaction"] <= 0 {
		t.Fatalf("after a full compaction: %v", m)
	}

	// A stall counts while it lasts, and stops counting when it ends.
	d.opts.EventListener.WriteStallBegin(pebbledb.WriteStallBeginInfo{Reason: "test"})
	time.Sleep(30 * time.Millisecond)
	if m := lsmMetrics(t, d); m["usaged_store_write_stalls_total"] != 1 || m["usaged_store_write_stall_seconds_total"] < 0.03 {
		t.Fatalf("during a stall of 30 ms: %v", m)
	}
	d.opts.EventListener.WriteStallEnd()
	ended := lsmMetrics(t, d)["usaged_store_write_stall_seconds_total"]
	time.Sleep(10 * time.Millisecond)
	if after := lsmMetrics(t, d)["usaged_store_write_stall_seconds_total"]; after != ended {
		t.Fatalf("an ended stall still counts: %v, then %v", ended, after)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	m = lsmMetrics(t, d)
	if _, ok := m["usaged_store_l0_tables"]; ok || m["usaged_store_write_stalls_total"] != 1 {
		t.Fatalf("a closed store reports its stalls alone: %v", m)
	}
}
