package clickhouse

import "github.com/prometheus/client_golang/prometheus"

// A Store is a prometheus.Collector of its write protocol's counters, so
// that an operator sees on /metrics what the logs tell one event at a time:
// batches aborted for outliving their lease, recoveries of other nodes'
// batches, zombies stopped by their window to publish; and of how long each
// step of a batch takes, which says which server a slow ingest waits for.
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

// newStepSeconds returns the histogram of the protocol's steps, by step:
// claim (Redis), journal (a quorum insert), commit (the keeper), limits
// (the limits' counters in Redis), publish (the count blocks' quorum
// inserts) and settle (the mark, and deleting the record).
func newStepSeconds() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "usaged_cluster_batch_step_seconds",
		Help: "Time one step of an ingest batch took on this node: claim, journal, commit, limits, publish or settle.",
		// A step takes from a keeper round trip (a millisecond) to a
		// quorum insert of 100,000 events (seconds).
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"step"})
}

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statsDescs {
		ch <- d
	}
	s.steps.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	for i, v := range statsValues(s.Stats()) {
		ch <- prometheus.MustNewConstMetric(statsDescs[i], prometheus.CounterValue, float64(v))
	}
	s.steps.Collect(ch)
}
