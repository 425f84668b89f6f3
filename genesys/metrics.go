package genesys

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/ingest"
)

// Metrics are the Prometheus metrics of the HTTP face and of the ingest and
// query work it drives. The ingest pipeline is built before the Server, so
// wiring builds Metrics first and hands ObserveIngest to ingest.Config.Observe
// and the Metrics to Config:
//
//	m, err := genesys.NewMetrics(reg)
//	p, err := ingest.New(ingest.Config{..., Observe: m.ObserveIngest})
//	s, err := genesys.New(genesys.Config{..., Ingest: p, Metrics: m})
//
// All methods are safe for concurrent use.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	ingestEvents   *prometheus.CounterVec
	ingestCommit   prometheus.Histogram
	query          prometheus.Histogram
	accepted       prometheus.Counter
	duplicates     prometheus.Counter
	rejectedEvents prometheus.Counter
}

// NewMetrics returns the metrics, registered on reg unless reg is nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usaged_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "usaged_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		ingestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usaged_ingest_events_total",
			Help: "Events offered for ingest, by outcome.",
		}, []string{"outcome"}),
		ingestCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usaged_ingest_commit_seconds",
			Help: "Time the store took to commit one ingested batch durably.",
			// Group commit makes most commits one fsync: sub-millisecond to tens of milliseconds.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		query: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "usaged_query_seconds",
			Help:    "Time the store took to answer one usage query.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	// Resolve the outcome series once: ObserveIngest is on the hot path.
	m.accepted = m.ingestEvents.WithLabelValues("accepted")
	m.duplicates = m.ingestEvents.WithLabelValues("duplicate")
	m.rejectedEvents = m.ingestEvents.WithLabelValues("rejected")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.ingestEvents, m.ingestCommit, m.query} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// ObserveIngest counts the outcomes of one ingest call and the time its
// commit took. Its signature is that of ingest.Config.Observe.
func (m *Metrics) ObserveIngest(r ingest.Result, commit time.Duration) {
	m.accepted.Add(float64(r.Accepted))
	m.duplicates.Add(float64(r.Duplicates))
	m.rejectedEvents.Add(float64(r.Rejected))
	if commit > 0 { // zero: nothing was appended, so nothing was committed
		m.ingestCommit.Observe(commit.Seconds())
	}
}

func (m *Metrics) observeRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveQuery records the duration of one store query; its signature is that
// of query.Config.Observe.
func (m *Metrics) ObserveQuery(d time.Duration) { m.query.Observe(d.Seconds()) }
