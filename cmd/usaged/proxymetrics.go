package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/spool"
)

// proxyMetrics serves the proxy's counters in the Prometheus text format.
// They are read from the meter, spool and shipper at each scrape, so that
// the request path does no more than it did without them.
func proxyMetrics(m *meter.Meter, sp *spool.Spool, sh *spool.Shipper) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, v func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, v))
	}
	gauge := func(name, help string, v func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v))
	}
	counter("usaged_proxy_requests_recorded_total", "Requests recorded as usage events, the anonymous client's included.",
		func() float64 { return float64(m.Stats().Recorded) })
	counter("usaged_proxy_requests_anonymous_total", "Requests no client could be identified for (no credentials, or refused ones), recorded under --anonymous-client.",
		func() float64 { return float64(m.Stats().Anonymous) })
	counter("usaged_proxy_requests_unidentified_total", "Requests no client could be identified for (no credentials, or refused ones), not recorded: there is no --anonymous-client.",
		func() float64 { return float64(m.Stats().Unidentified) })
	counter("usaged_proxy_requests_overflow_total", "Requests whose attribution failed while --max-pending or --max-pending-bytes was reached: recorded at once as unidentified.",
		func() float64 { return float64(m.Stats().Overflow) })
	counter("usaged_proxy_attribution_errors_total", "Attribution attempts that failed (--server unreachable, or lookups deferred); the requests are retried.",
		func() float64 { return float64(m.Stats().AttribErrors) })
	gauge("usaged_proxy_requests_waiting", "Requests waiting for attribution.",
		func() float64 { return float64(m.Stats().Retrying) })
	gauge("usaged_proxy_requests_waiting_durable", "Requests waiting for attribution that are on disk in the spool, safe from a crash of the proxy.",
		func() float64 { return float64(sp.Stats().WaitingDurable) })
	gauge("usaged_proxy_spool_pending_events", "Events in the spool not yet delivered to --server.",
		func() float64 { return float64(sp.Stats().PendingEvents) })
	counter("usaged_proxy_spool_dropped_events_total", "Events the spool dropped (full, writer behind, too large).",
		func() float64 { return float64(sp.Stats().Dropped) })
	counter("usaged_proxy_shipped_events_total", "Events --server acknowledged.",
		func() float64 { return float64(sp.Stats().Shipped) })
	counter("usaged_proxy_ship_retries_total", "Shipments to --server that failed and were retried.",
		func() float64 { return float64(sh.Stats().Retries) })
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
