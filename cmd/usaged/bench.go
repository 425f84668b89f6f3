package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

type benchIngestFlags struct {
	remote      *remoteFlags
	duration    time.Duration
	batch       int
	concurrency int
	org         string
	orgs        int
	clients     int
	users       int
	templates   int
	seed        int64
	variety     int
	gzip        bool
	format      oneOf
}

func (c *cli) benchIngestCommand() *command {
	cmd := c.newCommand("bench ingest", "measure a server's ingest throughput and latency",
		`Pre-encodes --variety distinct NDJSON batches of demo traffic from the last day,
then posts them from --concurrency workers over keep-alive connections for
--duration, giving every event a fresh id so that all are accepted. Reports
events/s, batch latency percentiles and the server's resident memory, read from
its /metrics every second. Run it against a server you may load: it writes real
events into the organizations it uses (by default "Bench Org", created if
missing).`)
	f := &benchIngestFlags{format: oneOf{value: "text", allowed: []string{"text", "json"}}}
	f.remote = addRemoteFlags(cmd.fs, "admin token, or a client token with usage:event:add together with --org")
	fs := cmd.fs
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "how long to send batches")
	fs.IntVar(&f.batch, "batch", 5000, "events per request")
	fs.IntVar(&f.concurrency, "concurrency", 4, "requests in flight")
	fs.StringVar(&f.org, "org", "", "organization id to send events for; default: find or create \"Bench Org\" (and \"Bench Org N\" for --orgs)")
	fs.IntVar(&f.orgs, "orgs", 1, "organizations to spread events over when --org is not given")
	fs.IntVar(&f.clients, "clients", 8, "clients per organization in the generated events")
	fs.IntVar(&f.users, "users", 200, "users per organization in the generated events")
	fs.IntVar(&f.templates, "templates", 150, fmt.Sprintf("route templates in the generated events, at most %d", demo.TemplateCount))
	fs.Int64Var(&f.seed, "seed", 1, "seed of the generated events")
	fs.IntVar(&f.variety, "variety", 8, "distinct pre-encoded batches cycled through")
	fs.BoolVar(&f.gzip, "gzip", false, "gzip each request body (costs client CPU, which competes with the server on one machine)")
	fs.Var(&f.format, "format", "report `format`: text or json")
	cmd.run = func(ctx context.Context) error { return c.benchIngest(ctx, f) }
	return cmd
}

// benchTemplate is a pre-encoded batch whose event ids end in a counter
// rewritten in place before each send.
type benchTemplate struct {
	body    []byte
	offsets []int // where each event's 16 counter digits start
}

// benchReport is what bench ingest measured.
type benchReport struct {
	Server            string  `json:"server"`
	Seconds           float64 `json:"seconds"`
	Batch             int     `json:"batch"`
	Concurrency       int     `json:"concurrency"`
	Gzip              bool    `json:"gzip"`
	Batches           int     `json:"batches"`
	FailedBatches     int     `json:"failedBatches"`
	Events            int64   `json:"events"`
	Accepted          int64   `json:"accepted"`
	Duplicates        int64   `json:"duplicates"`
	Rejected          int64   `json:"rejected"`
	EventsPerSecond   float64 `json:"eventsPerSecond"`
	BatchP50Ms        float64 `json:"batchP50Ms"`
	BatchP99Ms        float64 `json:"batchP99Ms"`
	BatchMaxMs        float64 `json:"batchMaxMs"`
	ServerRSSBytes    uint64  `json:"serverRssBytes"`
	ServerMaxRSSBytes uint64  `json:"serverMaxRssBytes"`
	FirstError        string  `json:"firstError,omitempty"`
}

func (c *cli) benchIngest(ctx context.Context, f *benchIngestFlags) error {
	for _, v := range []struct {
		name     string
		val, max int
	}{{"batch", f.batch, 1_000_000}, {"concurrency", f.concurrency, 1024}, {"orgs", f.orgs, 1000}, {"clients", f.clients, demo.MaxClients},
		{"templates", f.templates, demo.TemplateCount}, {"variety", f.variety, 1000}} {
		if v.val < 1 || v.val > v.max {
			return usageError{err: fmt.Errorf("--%s must be from 1 to %d, got %d", v.name, v.max, v.val)}
		}
	}
	if f.duration <= 0 {
		return usageError{err: errors.New("--duration must be positive")}
	}
	api, err := f.remote.client(true, f.concurrency)
	if err != nil {
		return err
	}
	info := c.stdout
	if f.format.value == "json" {
		info = c.stderr
	}
	var orgs []demo.Org
	if f.org != "" {
		orgs = []demo.Org{{ID: f.org}}
	} else {
		for i := range f.orgs {
			name := "Bench Org"
			if i > 0 {
				name = fmt.Sprintf("Bench Org %d", i+1)
			}
			o, created, err := api.orgNamed(ctx, name)
			if err != nil {
				return fmt.Errorf("finding or creating organization %q (needs the admin token; or pass --org): %w", name, err)
			}
			if created {
				fmt.Fprintf(info, "created organization %q (%s)\n", name, o.ID)
			}
			orgs = append(orgs, demo.Org{ID: o.ID})
		}
	}
	tmpls, err := benchTemplates(f, orgs)
	if err != nil {
		return err
	}
	fmt.Fprintf(info, "sending batches of %s events from %d workers for %s…\n", group(int64(f.batch)), f.concurrency, f.duration)

	rep := benchReport{Server: api.base, Batch: f.batch, Concurrency: f.concurrency, Gzip: f.gzip}
	var rss rssWatch
	stopRSS := rss.start(api.base + "/metrics")
	var (
		mu        sync.Mutex
		latencies []time.Duration
		counter   atomic.Uint64
		next      atomic.Uint64
		wg        sync.WaitGroup
	)
	begin := time.Now()
	deadline := begin.Add(f.duration)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for range f.concurrency {
		wg.Go(func() {
			var buf []byte
			var zbuf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
			var mine []time.Duration
			var r benchReport
			for time.Now().Before(deadline) && runCtx.Err() == nil {
				t := &tmpls[(next.Add(1)-1)%uint64(len(tmpls))]
				buf = append(buf[:0], t.body...)
				n := uint64(len(t.offsets))
				base := counter.Add(n) - n
				for i, off := range t.offsets {
					putHex16(buf[off:off+16], base+uint64(i))
				}
				body := buf
				if f.gzip {
					zbuf.Reset()
					zw.Reset(&zbuf)
					zw.Write(buf)
					zw.Close()
					body = zbuf.Bytes()
				}
				t0 := time.Now()
				res, err := api.postEvents(runCtx, body, f.gzip)
				lat := time.Since(t0)
				r.Batches++
				if err != nil {
					r.FailedBatches++
					if r.FirstError == "" && runCtx.Err() == nil {
						r.FirstError = err.Error()
					}
					if !retryable(err) {
						cancel(err) // a refused token or a bad request will not get better
					}
					continue
				}
				mine = append(mine, lat)
				r.Events += int64(n)
				r.Accepted += int64(res.Accepted)
				r.Duplicates += int64(res.Duplicates)
				r.Rejected += int64(res.Rejected)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			rep.Batches += r.Batches
			rep.FailedBatches += r.FailedBatches
			rep.Events += r.Events
			rep.Accepted += r.Accepted
			rep.Duplicates += r.Duplicates
			rep.Rejected += r.Rejected
			if rep.FirstError == "" {
				rep.FirstError = r.FirstError
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	stopRSS()
	if err := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("bench ingest stopped: %w", err)
	}
	rep.Seconds = elapsed.Seconds()
	rep.EventsPerSecond = float64(rep.Accepted) / max(rep.Seconds, 1e-3)
	slices.Sort(latencies)
	rep.BatchP50Ms = ms(bench.Percentile(latencies, 0.50))
	rep.BatchP99Ms = ms(bench.Percentile(latencies, 0.99))
	rep.BatchMaxMs = ms(bench.Percentile(latencies, 1))
	rep.ServerRSSBytes, rep.ServerMaxRSSBytes = rss.last.Load(), rss.max.Load()
	if f.format.value == "json" {
		return writeJSON(c.stdout, rep)
	}
	gz := "off"
	if rep.Gzip {
		gz = "on"
	}
	rssLine := "unavailable (no process_resident_memory_bytes in /metrics)"
	if rep.ServerMaxRSSBytes > 0 {
		rssLine = fmt.Sprintf("%.1f MiB at the end, %.1f MiB at most", float64(rep.ServerRSSBytes)/(1<<20), float64(rep.ServerMaxRSSBytes)/(1<<20))
	}
	fmt.Fprintf(c.stdout, `bench ingest  %s  %.1fs, batches of %s, %d workers, gzip %s
  events      %s sent: %s accepted, %s duplicates, %s rejected; %d of %d batches failed
  throughput  %s events/s (%.1f batches/s)
  batch       p50 %.1fms  p99 %.1fms  max %.1fms
  server RSS  %s
`, rep.Server, rep.Seconds, group(int64(rep.Batch)), rep.Concurrency, gz,
		group(rep.Events), group(rep.Accepted), group(rep.Duplicates), group(rep.Rejected), rep.FailedBatches, rep.Batches,
		group(int64(rep.EventsPerSecond)), float64(rep.Batches-rep.FailedBatches)/max(rep.Seconds, 1e-3),
		rep.BatchP50Ms, rep.BatchP99Ms, rep.BatchMaxMs, rssLine)
	if rep.FirstError != "" {
		fmt.Fprintf(c.stdout, "  first error %s\n", rep.FirstError)
	}
	return nil
}

// benchTemplates encodes the batches the workers cycle through. Each event's
// id is a prefix unique to this run and 16 hex digits of counter; the
// generator is thus run once up front and never becomes the bottleneck.
func benchTemplates(f *benchIngestFlags, orgs []demo.Org) ([]benchTemplate, error) {
	end := time.Now().UTC().Truncate(time.Hour)
	need := f.variety * f.batch
	g, err := demo.New(demo.Config{
		Seed: f.seed, Organizations: orgs, ClientsPerOrg: f.clients, UsersPerOrg: f.users, Templates: f.templates,
		Start: end.Add(-24 * time.Hour), End: end,
		EventsPerDay: min(demo.MaxEventsPerDay, need/len(orgs)+need/len(orgs)/5+1),
	})
	if err != nil {
		return nil, err
	}
	prefix := "bench-" + hex.EncodeToString(randomBytes(6)) + "-"
	placeholder := prefix + strings.Repeat("0", 16)
	if len(placeholder) > usage.MaxEventIDLen {
		return nil, errors.New("bench event ids would be too long") // a programming error
	}
	head := len(`{"id":"`) + len(prefix)
	tmpls := make([]benchTemplate, f.variety)
	buf := make([]usage.Event, f.batch)
	for i := range tmpls {
		for filled := 0; filled < f.batch; {
			n := g.Next(buf[filled:])
			if n == 0 {
				g.Reset()
				continue
			}
			filled += n
		}
		t := &tmpls[i]
		for j := range buf {
			buf[j].ID = placeholder
			t.offsets = append(t.offsets, len(t.body)+head)
			t.body = ingest.AppendNDJSON(t.body, &buf[j])
		}
	}
	return tmpls, nil
}

func putHex16(dst []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

const hexDigits = "0123456789abcdef"

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rssWatch samples a server's resident memory from its Prometheus metrics.
type rssWatch struct {
	last, max atomic.Uint64
}

// start samples url every second until the returned function is called,
// which takes one last sample.
func (w *rssWatch) start(url string) (stop func()) {
	hc := &http.Client{Timeout: 5 * time.Second}
	sample := func() {
		if v, ok := scrapeRSS(hc, url); ok {
			w.last.Store(v)
			if v > w.max.Load() {
				w.max.Store(v)
			}
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		sample()
	}
}

// scrapeRSS reads process_resident_memory_bytes from a Prometheus text
// exposition.
func scrapeRSS(hc *http.Client, url string) (uint64, bool) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	return parseRSS(bufio.NewScanner(resp.Body))
}

func parseRSS(sc *bufio.Scanner) (uint64, bool) {
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return 0, false
		}
		return uint64(v), true
	}
	return 0, false
}

func (c *cli) benchStoreCommand() *command {
	cmd := c.newCommand("bench store", "load a local store in-process and time the organization query",
		`Fills a fresh store through the ingest pipeline (no HTTP) with --events events over
--days days, then times a 90-day daily query by client for one organization.
The store is made in --dir, or in a temporary directory removed afterwards.

The generated organizations (ids bench-org-00, bench-org-01, …, named "Bench
Store Org 00", …) are registered in the store, so that a server can serve it:
make the store in the "store" directory of a data directory, e.g. --dir
DATA/store, then run usaged serve --data DATA; the admin API lists the
organizations and creates clients in them, e.g. for usaged bench query.`)
	cfg := bench.StoreConfig{}
	format := oneOf{value: "text", allowed: []string{"text", "json"}}
	var seed int64
	fs := cmd.fs
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the store; must not hold one already (default: a temporary directory)")
	fs.IntVar(&cfg.Events, "events", 1_000_000, "events to load")
	fs.IntVar(&cfg.Orgs, "orgs", 10, "organizations")
	fs.IntVar(&cfg.Clients, "clients", 50, "clients per organization")
	fs.IntVar(&cfg.Users, "users", 1000, "users per organization")
	fs.IntVar(&cfg.Templates, "templates", 300, "route templates")
	fs.IntVar(&cfg.Days, "days", 90, "days the events span, ending now")
	fs.IntVar(&cfg.Batch, "batch", 5000, "events per ingest call")
	fs.IntVar(&cfg.Workers, "workers", 4, "concurrent ingest calls")
	fs.IntVar(&cfg.Queries, "queries", 20, "times the query is run")
	fs.Int64Var(&seed, "seed", 1, "seed of the generated events")
	fs.Var(&format, "format", "report `format`: text or json")
	cmd.run = func(ctx context.Context) error {
		cfg.Seed = uint64(seed)
		cfg.Progress = c.stdout
		if format.value == "json" {
			cfg.Progress = c.stderr
		}
		if cfg.Dir == "" {
			dir, err := os.MkdirTemp("", "usaged-bench-store-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg.Dir = dir
		}
		rep, err := bench.Store(ctx, cfg)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, rep)
		}
		_, err = fmt.Fprintln(c.stdout, rep)
		return err
	}
	return cmd
}
