package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// IngestConfig configures Ingest, usaged bench ingest: Concurrency
// workers post pre-encoded batches of Batch demo events for Duration.
type IngestConfig struct {
	Orgs        []demo.Org // the organizations the events are for; at least one
	Duration    time.Duration
	Batch       int
	Concurrency int
	Clients     int // per organization
	Users       int // per organization
	Templates   int
	Seed        int64
	Variety     int  // distinct pre-encoded batches cycled through
	Gzip        bool // gzip each body
	Rounds      int  // with ClickHouse, alternations of the targets; 0 is 1

	// ClickHouse, if set, is the HTTP URL of a ClickHouse server (with
	// user and password in it if needed) that gets the same bodies too,
	// into a table made for the run in ClickHouseDatabase ("default"
	// when empty).
	ClickHouse         string
	ClickHouseDatabase string
	// Warn, if set, is told of a failure to drop that table.
	Warn func(error)
}

// IngestReport is what Ingest measured.
type IngestReport struct {
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
	Rounds            int     `json:"rounds"`

	ClickHouse *ClickHouseReport `json:"clickhouse,omitempty"`
}

// ingestTemplate is a pre-encoded batch whose event ids end in a counter
// rewritten in place before each send.
type ingestTemplate struct {
	body    []byte
	offsets []int // where each event's 16 counter digits start
}

// OrgName names the first organization of an ingest benchmark; the next
// ones are "Bench Org 2", "Bench Org 3", ….
const OrgName = "Bench Org"

// Orgs finds or creates n benchmark organizations by name, telling created,
// if set, of each it creates.
func Orgs(ctx context.Context, api *client.Client, n int, created func(wire.Organization)) ([]demo.Org, error) {
	var orgs []demo.Org
	for i := range n {
		name := OrgName
		if i > 0 {
			name = fmt.Sprintf("%s %d", OrgName, i+1)
		}
		o, made, err := api.OrganizationNamed(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("finding or creating organization %q (needs the admin token; or pass --org): %w", name, err)
		}
		if made && created != nil {
			created(o)
		}
		orgs = append(orgs, demo.Org{ID: o.ID})
	}
	return orgs, nil
}

// Ingest measures a server's ingest throughput and latency: it gives every
// event a fresh id so that all are accepted, and samples the server's
// resident memory from its /metrics every second. A failure that will not
// get better (a refused token, a bad request) stops it with that error.
//
// With cfg.ClickHouse it measures ClickHouse's own insert of the same
// bodies too (see ClickHouseReport): in each of cfg.Rounds rounds, usaged
// for its share of cfg.Duration and then ClickHouse for as long.
func Ingest(ctx context.Context, api *client.Client, cfg IngestConfig) (IngestReport, error) {
	tmpls, err := ingestTemplates(cfg)
	if err != nil {
		return IngestReport{}, err
	}
	rep := IngestReport{Server: api.Base(), Batch: cfg.Batch, Concurrency: cfg.Concurrency, Gzip: cfg.Gzip, Rounds: max(cfg.Rounds, 1)}
	var ch *clickHouse
	if cfg.ClickHouse == "" {
		rep.Rounds = 1
	} else {
		if ch, err = newClickHouse(cfg.ClickHouse, cfg.ClickHouseDatabase, cfg.Concurrency); err != nil {
			return rep, err
		}
		if err := ch.create(ctx); err != nil {
			return rep, err
		}
		defer func() {
			if err := ch.drop(context.WithoutCancel(ctx)); err != nil && cfg.Warn != nil {
				cfg.Warn(fmt.Errorf("dropping the ClickHouse table %s: %w", ch.qualified(), err))
			}
		}()
	}
	postUsaged := func(ctx context.Context, body []byte, _ int) (ingest.Result, error) {
		return api.PostEvents(ctx, body, cfg.Gzip)
	}
	var rss rssWatch
	stopRSS := rss.start(api.Base() + "/metrics")
	var us, cs load
	var usSeq, chSeq atomic.Uint64
	var chCPU time.Duration
	round := cfg.Duration / time.Duration(rep.Rounds)
	for range rep.Rounds {
		if err := us.run(ctx, tmpls, cfg, round, &usSeq, postUsaged, func(err error) bool { return !client.Retryable(err) }); err != nil {
			stopRSS()
			return rep, fmt.Errorf("bench ingest stopped: %w", err)
		}
		if ch == nil {
			continue
		}
		cpu0, cpuErr := ch.cpu(ctx)
		if err := cs.run(ctx, tmpls, cfg, round, &chSeq, ch.post(cfg.Gzip), permanentClickHouse); err != nil {
			stopRSS()
			return rep, fmt.Errorf("bench ingest stopped on ClickHouse: %w", err)
		}
		if cpu1, err := ch.cpu(ctx); err == nil && cpuErr == nil {
			chCPU += cpu1 - cpu0
		}
	}
	stopRSS()
	rep.Seconds = us.seconds
	rep.Batches, rep.FailedBatches, rep.FirstError = us.batches, us.failed, us.firstError
	rep.Events, rep.Accepted, rep.Duplicates, rep.Rejected = us.events, us.accepted, us.duplicates, us.rejected
	rep.EventsPerSecond = float64(rep.Accepted) / max(rep.Seconds, 1e-3)
	rep.BatchP50Ms, rep.BatchP99Ms, rep.BatchMaxMs = percentilesMs(us.latencies)
	rep.ServerRSSBytes, rep.ServerMaxRSSBytes = rss.last.Load(), rss.max.Load()
	if ch != nil {
		c := &ClickHouseReport{Server: ch.String(), Table: ch.qualified(), Engine: clickHouseEngine,
			Seconds: cs.seconds, Batches: cs.batches, FailedBatches: cs.failed, Events: cs.accepted,
			QueryCPUSeconds: chCPU.Seconds(), FirstError: cs.firstError}
		c.EventsPerSecond = float64(c.Events) / max(c.Seconds, 1e-3)
		c.BatchP50Ms, c.BatchP99Ms, c.BatchMaxMs = percentilesMs(cs.latencies)
		c.Ratio = ratio(rep.EventsPerSecond, c.EventsPerSecond)
		var err error
		if c.Version, err = ch.query(ctx, "SELECT version()"); err != nil {
			return rep, err
		}
		if c.Rows, err = ch.count(ctx); err != nil {
			return rep, err
		}
		rep.ClickHouse = c
	}
	return rep, nil
}

// A poster sends one body of n events.
type poster func(ctx context.Context, body []byte, n int) (ingest.Result, error)

// load is what the workers of one or more runs measured.
type load struct {
	seconds                                float64
	batches, failed                        int
	events, accepted, duplicates, rejected int64
	latencies                              []time.Duration
	firstError                             string
}

// run adds to l a run of cfg.Concurrency workers that post batches for d.
// Batch k of a run is template k mod len(tmpls) with event ids
// k*cfg.Batch, k*cfg.Batch+1, …, k counting on from seq: the k-th body
// sent is the same, byte for byte, whatever the target, so that two targets
// given sequences of their own get the same bodies in the same order. An
// error for which permanent is true stops the run, and is returned.
func (l *load) run(ctx context.Context, tmpls []ingestTemplate, cfg IngestConfig, d time.Duration,
	seq *atomic.Uint64, post poster, permanent func(error) bool) error {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	begin := time.Now()
	deadline := begin.Add(d)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for range cfg.Concurrency {
		wg.Go(func() {
			var buf []byte
			enc := client.NewEncoder()
			var r load
			for time.Now().Before(deadline) && runCtx.Err() == nil {
				k := seq.Add(1) - 1
				t := &tmpls[k%uint64(len(tmpls))]
				buf = append(buf[:0], t.body...)
				n := len(t.offsets)
				for i, off := range t.offsets {
					putHex16(buf[off:off+16], k*uint64(cfg.Batch)+uint64(i))
				}
				body := buf
				if cfg.Gzip {
					body = enc.Gzip(buf)
				}
				t0 := time.Now()
				res, err := post(runCtx, body, n)
				lat := time.Since(t0)
				r.batches++
				if err != nil {
					r.failed++
					if r.firstError == "" && runCtx.Err() == nil {
						r.firstError = err.Error()
					}
					if permanent(err) {
						cancel(err)
					}
					continue
				}
				r.latencies = append(r.latencies, lat)
				r.events += int64(n)
				r.accepted += int64(res.Accepted)
				r.duplicates += int64(res.Duplicates)
				r.rejected += int64(res.Rejected)
			}
			mu.Lock()
			l.add(r)
			mu.Unlock()
		})
	}
	wg.Wait()
	l.seconds += time.Since(begin).Seconds()
	if err := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (l *load) add(r load) {
	l.latencies = append(l.latencies, r.latencies...)
	l.batches += r.batches
	l.failed += r.failed
	l.events += r.events
	l.accepted += r.accepted
	l.duplicates += r.duplicates
	l.rejected += r.rejected
	if l.firstError == "" {
		l.firstError = r.firstError
	}
}

// ingestTemplates encodes the batches the workers cycle through. Each event's
// id is a prefix unique to this run and 16 hex digits of counter; the
// generator is thus run once up front and never becomes the bottleneck.
func ingestTemplates(f IngestConfig) ([]ingestTemplate, error) {
	end := time.Now().UTC().Truncate(time.Hour)
	need := f.Variety * f.Batch
	g, err := demo.New(demo.Config{
		Seed: f.Seed, Organizations: f.Orgs, ClientsPerOrg: f.Clients, UsersPerOrg: f.Users, Templates: f.Templates,
		Start: end.Add(-24 * time.Hour), End: end,
		EventsPerDay: min(demo.MaxEventsPerDay, need/len(f.Orgs)+need/len(f.Orgs)/5+1),
	})
	if err != nil {
		return nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	prefix := "bench-" + hex.EncodeToString(rnd[:]) + "-"
	placeholder := prefix + strings.Repeat("0", 16)
	if len(placeholder) > usage.MaxEventIDLen {
		return nil, errors.New("bench event ids would be too long") // a programming error
	}
	head := len(`{"id":"`) + len(prefix)
	tmpls := make([]ingestTemplate, f.Variety)
	buf := make([]usage.Event, f.Batch)
	for i := range tmpls {
		for filled := 0; filled < f.Batch; {
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

// percentilesMs sorts ds and returns its median, 99th percentile and
// maximum in milliseconds.
func percentilesMs(ds []time.Duration) (p50, p99, maxMs float64) {
	slices.Sort(ds)
	return ms(Percentile(ds, 0.50)), ms(Percentile(ds, 0.99)), ms(Percentile(ds, 1))
}

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
	return ParseRSS(bufio.NewScanner(resp.Body))
}

// ParseRSS reads process_resident_memory_bytes from a Prometheus text
// exposition.
func ParseRSS(sc *bufio.Scanner) (uint64, bool) {
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

// QueryConfig configures Query, usaged bench query: Concurrency loops run
// the organization usage query Req for Duration.
type QueryConfig struct {
	Org         string // the organization queried; required
	Req         wire.UsageQueryRequest
	Concurrency int
	Duration    time.Duration
	Timeout     time.Duration // limit on one execution
	// Started, if set, is told the rows of the first execution, which is
	// not timed, before the timed ones start.
	Started func(rows int)
	// Warn, if set, is told of a failure to clean up after the run.
	Warn func(error)
}

// ViewerName names the client Query creates for each run.
const ViewerName = "Bench Query Viewer"

// QueryReport is what Query measured. Latencies run from the start of the
// POST to the end of the Complete document (Received) and to the end of its
// decoding by the client (Decoded).
type QueryReport struct {
	Server              string  `json:"server"`
	Organization        string  `json:"organization"`
	Interval            string  `json:"interval"`
	Granularity         string  `json:"granularity"`
	GroupBy             string  `json:"groupBy"`
	Seconds             float64 `json:"seconds"`
	Concurrency         int     `json:"concurrency"`
	Executions          int     `json:"executions"` // complete with the expected rows
	Failures            int     `json:"failures"`
	Rows                int     `json:"rows"` // of every complete execution
	ExecutionsPerSecond float64 `json:"executionsPerSecond"`
	ReceivedP50Ms       float64 `json:"receivedP50Ms"`
	ReceivedP99Ms       float64 `json:"receivedP99Ms"`
	ReceivedMaxMs       float64 `json:"receivedMaxMs"`
	DecodedP50Ms        float64 `json:"decodedP50Ms"`
	DecodedP99Ms        float64 `json:"decodedP99Ms"`
	DecodedMaxMs        float64 `json:"decodedMaxMs"`
	ClientCPUSeconds    float64 `json:"clientCpuSeconds"`
	ServerRSSBytes      uint64  `json:"serverRssBytes"`
	ServerMaxRSSBytes   uint64  `json:"serverMaxRssBytes"`
	FirstError          string  `json:"firstError,omitempty"`
}

// Query measures a server's organization query latency and rate. With
// the admin client admin it creates a client ViewerName with
// usage:organization:view in cfg.Org for the run, queries with that
// client's token, and deletes the client at the end. Every execution must
// return as many rows as the first; one that does not, fails, or is
// refused counts as a failure (after a refusal the loop pauses 100 ms).
func Query(ctx context.Context, admin *client.Client, cfg QueryConfig) (QueryReport, error) {
	viewer, err := admin.CreateClient(ctx, cfg.Org, wire.CreateClientRequest{Name: ViewerName,
		Description: "made by usaged bench query for one run", Permissions: []string{usage.PermOrganizationView}})
	if err != nil {
		return QueryReport{}, fmt.Errorf("creating a viewer client in organization %s (needs the admin token): %w", cfg.Org, err)
	}
	defer func() {
		if err := admin.DeleteClient(context.WithoutCancel(ctx), cfg.Org, viewer.ID); err != nil && cfg.Warn != nil {
			cfg.Warn(fmt.Errorf("deleting the viewer client %s: %w", viewer.ID, err))
		}
	}()
	tok, err := admin.AccessToken(ctx, viewer.ID, viewer.Secret)
	if err != nil {
		return QueryReport{}, err
	}
	poll := client.Poll{Interval: 5 * time.Millisecond, Timeout: cfg.Timeout}

	// A first execution, not timed, checks the query and counts its rows.
	first := timedClient(admin, tok.AccessToken)
	res, err := first.api.Query(ctx, client.OrganizationQueryPath, cfg.Req, poll)
	if err != nil {
		return QueryReport{}, fmt.Errorf("the first query: %w", err)
	}
	rep := QueryReport{Server: admin.Base(), Organization: cfg.Org, Interval: deref(cfg.Req.Interval), Granularity: deref(cfg.Req.Granularity),
		GroupBy: strings.Join(cfg.Req.GroupBy, ","), Concurrency: cfg.Concurrency, Rows: res.Rows}
	if cfg.Started != nil {
		cfg.Started(rep.Rows)
	}

	var rss rssWatch
	stopRSS := rss.start(admin.Base() + "/metrics")
	cpu0 := CPUTime()
	var (
		mu                 sync.Mutex
		received, decoded  []time.Duration
		wg                 sync.WaitGroup
		begin              = time.Now()
		deadline           = begin.Add(cfg.Duration)
		runCtx, cancelRuns = context.WithCancelCause(ctx)
	)
	defer cancelRuns(nil)
	for range cfg.Concurrency {
		wg.Go(func() {
			tc := timedClient(admin, tok.AccessToken)
			var recv, dec []time.Duration
			var n, failed int
			var firstErr string
			fail := func(err error) {
				failed++
				if firstErr == "" && runCtx.Err() == nil {
					firstErr = err.Error()
				}
			}
			for time.Now().Before(deadline) && runCtx.Err() == nil {
				t0 := time.Now()
				res, err := tc.api.Query(runCtx, client.OrganizationQueryPath, cfg.Req, poll)
				done := time.Now()
				switch {
				case err != nil:
					fail(err)
					if !client.Retryable(err) {
						cancelRuns(err) // a refused token or a bad request will not get better
					}
					// Give an overloaded or rate-limiting server a moment.
					select {
					case <-runCtx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				case res.Rows != rep.Rows:
					fail(fmt.Errorf("an execution returned %d rows, the first %d", res.Rows, rep.Rows))
				default:
					n++
					recv = append(recv, tc.lastBody.Sub(t0))
					dec = append(dec, done.Sub(t0))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			received, decoded = append(received, recv...), append(decoded, dec...)
			rep.Executions += n
			rep.Failures += failed
			if rep.FirstError == "" {
				rep.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	rep.ClientCPUSeconds = (CPUTime() - cpu0).Seconds()
	stopRSS()
	if err := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		return rep, fmt.Errorf("bench query stopped: %w", err)
	}
	rep.Seconds = elapsed.Seconds()
	rep.ExecutionsPerSecond = float64(rep.Executions) / max(rep.Seconds, 1e-3)
	rep.ReceivedP50Ms, rep.ReceivedP99Ms, rep.ReceivedMaxMs = percentilesMs(received)
	rep.DecodedP50Ms, rep.DecodedP99Ms, rep.DecodedMaxMs = percentilesMs(decoded)
	rep.ServerRSSBytes, rep.ServerMaxRSSBytes = rss.last.Load(), rss.max.Load()
	return rep, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// timedAPI is an API client with a token of its own that notes when it
// last finished reading an answer: after Query returns, that is
// when the final results document had arrived, before the client decoded
// it. One goroutine uses it at a time.
type timedAPI struct {
	api      *client.Client
	lastBody time.Time
}

func timedClient(base *client.Client, token string) *timedAPI {
	t := &timedAPI{}
	hc := base.HTTPClient()
	tr := hc.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	t.api = base.WithToken(token).WithHTTPClient(&http.Client{Transport: bodyTimer{base: tr, done: &t.lastBody}, Timeout: hc.Timeout})
	return t
}

// bodyTimer is a RoundTripper that sets *done when an answer's body has
// been read to its end.
type bodyTimer struct {
	base http.RoundTripper
	done *time.Time
}

func (b bodyTimer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err == nil {
		resp.Body = &timedBody{ReadCloser: resp.Body, done: b.done}
	}
	return resp, err
}

type timedBody struct {
	io.ReadCloser
	done *time.Time
}

func (t *timedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		*t.done = time.Now()
	}
	return n, err
}
