package bench

import (
	"fmt"
	"io"

	"github.com/usaged/usaged/internal/termout"
)

// rssLine is the server's resident memory as a report shows it.
func rssLine(now, most uint64) string {
	if most == 0 {
		return "unavailable (no process_resident_memory_bytes in /metrics)"
	}
	return fmt.Sprintf("%.1f MiB at the end, %.1f MiB at most", float64(now)/(1<<20), float64(most)/(1<<20))
}

// WriteText writes the report for a person, as usaged bench ingest prints it.
func (r IngestReport) WriteText(w io.Writer) {
	gz := "off"
	if r.Gzip {
		gz = "on"
	}
	fmt.Fprintf(w, `bench ingest  %s  %.1fs, batches of %s, %d workers, gzip %s
  events      %s sent: %s accepted, %s duplicates, %s rejected; %d of %d batches failed
  throughput  %s events/s (%.1f batches/s)
  batch       p50 %.1fms  p99 %.1fms  max %.1fms
  server RSS  %s
`, r.Server, r.Seconds, termout.Group(int64(r.Batch)), r.Concurrency, gz,
		termout.Group(r.Events), termout.Group(r.Accepted), termout.Group(r.Duplicates), termout.Group(r.Rejected), r.FailedBatches, r.Batches,
		termout.Group(int64(r.EventsPerSecond)), float64(r.Batches-r.FailedBatches)/max(r.Seconds, 1e-3),
		r.BatchP50Ms, r.BatchP99Ms, r.BatchMaxMs, rssLine(r.ServerRSSBytes, r.ServerMaxRSSBytes))
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
	if c := r.ClickHouse; c != nil {
		order := "after usaged"
		if r.Rounds > 1 {
			order = fmt.Sprintf("alternating with usaged in %d rounds", r.Rounds)
		}
		fmt.Fprintf(w, `ClickHouse    %s  %s, %.1fs %s, the same bodies and workers
  insert      INSERT INTO %s FORMAT JSONEachRow, ENGINE = %s (no deduplication, no fsync)
  events      %s sent in %d acknowledged batches (%d failed); %s rows in the table at the end
  throughput  %s events/s (%.1f batches/s)
  batch       p50 %.1fms  p99 %.1fms  max %.1fms
  server CPU  %.1fs in query threads (system.events OSCPUVirtualTimeMicroseconds; merges not counted)
`, c.Server, c.Version, c.Seconds, order, c.Table, c.Engine,
			termout.Group(c.Events), c.Batches-c.FailedBatches, c.FailedBatches, termout.Group(int64(c.Rows)),
			termout.Group(int64(c.EventsPerSecond)), float64(c.Batches-c.FailedBatches)/max(c.Seconds, 1e-3),
			c.BatchP50Ms, c.BatchP99Ms, c.BatchMaxMs, c.QueryCPUSeconds)
		if c.FirstError != "" {
			fmt.Fprintf(w, "  first error %s\n", c.FirstError)
		}
		fmt.Fprintf(w, "usaged ÷ ClickHouse  %.2f× the events/s\n", c.Ratio)
	}
}

// WriteText writes the report for a person, as usaged bench query prints it.
func (r QueryReport) WriteText(w io.Writer) {
	gran := r.Granularity
	if gran == "" {
		gran = "no granularity"
	}
	fmt.Fprintf(w, `bench query  %s  %.1fs, concurrency %d, organization %s
  query       %s, %s, by %s: %s rows
  executions  %s complete, %d failed
  throughput  %.2f executions/s
  received    p50 %.1fms  p99 %.1fms  max %.1fms  (POST to Complete document received)
  parsed      p50 %.1fms  p99 %.1fms  max %.1fms  (and parsed by the client)
  client CPU  %.1fs (%.0f%% of one core)
  server RSS  %s
`, r.Server, r.Seconds, r.Concurrency, r.Organization,
		r.Interval, gran, r.GroupBy, termout.Group(int64(r.Rows)),
		termout.Group(int64(r.Executions)), r.Failures,
		r.ExecutionsPerSecond,
		r.ReceivedP50Ms, r.ReceivedP99Ms, r.ReceivedMaxMs,
		r.DecodedP50Ms, r.DecodedP99Ms, r.DecodedMaxMs,
		r.ClientCPUSeconds, 100*r.ClientCPUSeconds/max(r.Seconds, 1e-3), rssLine(r.ServerRSSBytes, r.ServerMaxRSSBytes))
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
}
