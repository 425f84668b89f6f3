package clickhouse

import "github.com/prometheus/client_golang/prometheus"

// A Store is a prometheus.Collector of its write protocol's counters, so
// that an operator sees on /metrics what the logs tell one event at a time:
// batches aborted for outliving their lease, recoveries of other nodes'
// batches, zombies stopped by their window to publish.
var _ prometheus.Collector = (*Store)(nil)

// statsDescs are the counters, in the order of statsValues.
var statsDescs = []*prometheus.Desc{
	prometheus.NewDesc("usaged_cluster_batches_committed_total", "Ingest batches this node committed.", nil, nil),
	prometheus.NewDesc("usaged_cluster_batches_failed_total", "Ingest batches of this node that failed before committing: aborted by another node, or by this one.", nil, nil),
	prometheus.NewDesc("usaged_cluster_batches_aborted_total", "Batches this node aborted: undecided past their deadline, or younger ones holding ids it waited for.", nil, nil),
	prometheus.NewDesc("usaged_cluster_batches_recovered_total", "Committed batches of other (dead or slow) nodes that this node finished.", nil, nil),
	prometheus.NewDesc("usaged_cluster_batches_past_window_total", "Batches this node stopped publishing because their window to publish had passed (a paused node, or ClickHouse too slow); a recovery finishes them.", nil, nil),
	prometheus.NewDesc("usaged_cluster_ids_contended_total", "Event ids this node found claimed by another batch still undecided.", nil, nil),
	prometheus.NewDesc("usaged_cluster_waits_total", "Waits of this node for another batch's decision before its deadline.", nil, nil),
}

func statsValues(st Stats) []int64 {
	return []int64{st.Committed, st.Failed, st.Aborted, st.Recovered, st.PastWindow, st.Contended, st.Waits}
}

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statsDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	for i, v := range statsValues(s.Stats()) {
		ch <- prometheus.MustNewConstMetric(statsDescs[i], prometheus.CounterValue, float64(v))
	}
}
