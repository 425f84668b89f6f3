package pebble

import (
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// A DB is a prometheus.Collector of its LSM's health: what an operator needs
// to see why sustained ingest slows while short runs do not. Level 0 fills
// when compactions fall behind flushes and the dedupe runs; every sublevel is
// one more table a read goes through, and at 32 Pebble stops writes. The
// bytes written by each path, over the bytes that entered the write-ahead
// log, are the write amplification.
var _ prometheus.Collector = (*DB)(nil)

var (
	l0SublevelsDesc = prometheus.NewDesc("usaged_store_l0_sublevels",
		"Sublevels of the store's LSM level 0: the tables a read goes through there; writes stop at 32.", nil, nil)
	l0TablesDesc = prometheus.NewDesc("usaged_store_l0_tables",
		"Tables in the store's LSM level 0.", nil, nil)
	debtDesc = prometheus.NewDesc("usaged_store_compaction_debt_bytes",
		"Bytes the store's compactions estimate they must still rewrite for the LSM to settle.", nil, nil)
	compactingDesc = prometheus.NewDesc("usaged_store_compactions_running",
		"Compactions of the store running now.", nil, nil)
	writtenDesc = prometheus.NewDesc("usaged_store_written_bytes_total",
		"Bytes the store wrote, by path: wal (every commit), flush (memtables to tables), compaction (tables rewritten), ingest (dedupe runs).",
		[]string{"path"}, nil)
	stallsDesc = prometheus.NewDesc("usaged_store_write_stalls_total",
		"Times the store stopped writes until compactions or flushes caught up.", nil, nil)
	stalledDesc = prometheus.NewDesc("usaged_store_write_stall_seconds_total",
		"Seconds the store's writes were stopped, the stall in progress included.", nil, nil)
)

// stalls counts Pebble's write stalls, from its event listener.
type stalls struct {
	count   atomic.Int64
	nanos   atomic.Int64 // of the stalls that ended
	started atomic.Int64 // Unix nanoseconds of the stall in progress; 0 for none
}

func (s *stalls) listen(l *pebbledb.EventListener) {
	l.WriteStallBegin = func(pebbledb.WriteStallBeginInfo) {
		s.count.Add(1)
		s.started.Store(time.Now().UnixNano())
	}
	l.WriteStallEnd = func() {
		if t := s.started.Swap(0); t != 0 {
			s.nanos.Add(time.Now().UnixNano() - t)
		}
	}
}

func (s *stalls) seconds() float64 {
	n := s.nanos.Load()
	if t := s.started.Load(); t != 0 {
		n += time.Now().UnixNano() - t
	}
	return time.Duration(n).Seconds()
}

// Describe implements prometheus.Collector.
func (d *DB) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{l0SublevelsDesc, l0TablesDesc, debtDesc, compactingDesc, writtenDesc, stallsDesc, stalledDesc} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector. A closed store reports nothing
// of its LSM, and neither does a failed one: Pebble's metrics take a lock
// that a failed engine may hold forever.
func (d *DB) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(stallsDesc, prometheus.CounterValue, float64(d.stalls.count.Load()))
	ch <- prometheus.MustNewConstMetric(stalledDesc, prometheus.CounterValue, d.stalls.seconds())
	if d.health.err() != nil {
		return
	}
	var m *pebbledb.Metrics
	if d.live(func() error { m = d.db.Metrics(); return nil }) != nil {
		return
	}
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	gauge(l0SublevelsDesc, float64(m.Levels[0].Sublevels))
	gauge(l0TablesDesc, float64(m.Levels[0].TablesCount))
	gauge(debtDesc, float64(m.Compact.EstimatedDebt))
	gauge(compactingDesc, float64(m.Compact.NumInProgress))
	var flushed, compacted, ingested uint64
	for i := range m.Levels {
		flushed += m.Levels[i].TableBytesFlushed
		compacted += m.Levels[i].TableBytesCompacted
		ingested += m.Levels[i].TableBytesIngested
	}
	for _, w := range []struct {
		path string
		n    uint64
	}{{"wal", m.WAL.BytesWritten}, {"flush", flushed}, {"compaction", compacted}, {"ingest", ingested}} {
		ch <- prometheus.MustNewConstMetric(writtenDesc, prometheus.CounterValue, float64(w.n), w.path)
	}
}
