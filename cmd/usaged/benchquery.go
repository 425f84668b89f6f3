package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/usage"
)

type benchQueryFlags struct {
	remote      *remoteFlags
	org         string
	interval    string
	granularity string
	groupBy     listValue
	concurrency int
	duration    time.Duration
	format      oneOf
}

// benchQueryViewer names the client bench query creates for each run.
const benchQueryViewer = "Bench Query Viewer"

func (c *cli) benchQueryCommand() *command {
	cmd := c.newCommand("bench query", "measure a server's organization query latency and rate over HTTP",
		`Runs --concurrency loops for --duration, each starting an organization usage
query (POST /api/v2/usage/query) and polling its results URI, at once and then
every 5 ms doubling, until it is no longer Running, as usaged query does.
Reports executions/s and the POST-to-Complete latency: up to the moment the
Complete document has been received, and up to when the client has parsed
it (its status and row count). Every execution must return as many rows as the first; one that does
not, fails, or is refused counts as a failure (after a refusal such as 429 the
loop pauses 100 ms). All loops share one client: a server that limits requests
per client must allow them, e.g. usaged serve --rate-limit.

It needs the admin token: it creates a client "`+benchQueryViewer+`" with
usage:organization:view in --org for the run, queries with that client's
token, and deletes the client at the end. Without --org it queries the first
organization the server lists. To time a large store, build it with
usaged bench store --dir DATA/store and serve DATA (see bench store -h).`)
	f := &benchQueryFlags{format: oneOf{value: "text", allowed: []string{"text", "json"}}}
	f.remote = addRemoteFlags(cmd.fs, "admin token")
	fs := cmd.fs
	fs.StringVar(&f.org, "org", "", "organization `id` to query; default: the first organization the server lists")
	fs.StringVar(&f.interval, "interval", "", "ISO-8601 interval to query; default: the 90 days ending at the next whole hour")
	fs.StringVar(&f.granularity, "granularity", "Day", "time buckets: Hour, Day, Week or Month; empty for none")
	fs.Var(&f.groupBy, "group-by", "comma-separated `dimensions` to group by (default OAuthClientId)")
	fs.IntVar(&f.concurrency, "concurrency", 1, "query loops running at once")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "how long to start executions")
	fs.Var(&f.format, "format", "report `format`: text or json")
	cmd.run = func(ctx context.Context) error { return c.benchQuery(ctx, f) }
	return cmd
}

// benchQueryReport is what bench query measured. Latencies run from the
// start of the POST to the end of the Complete document (Received) and to
// the end of its decoding by the client (Decoded).
type benchQueryReport struct {
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

func (c *cli) benchQuery(ctx context.Context, f *benchQueryFlags) error {
	if f.concurrency < 1 || f.concurrency > 1024 {
		return usageError{err: fmt.Errorf("--concurrency must be from 1 to 1024, got %d", f.concurrency)}
	}
	if f.duration <= 0 || f.duration > 12*time.Hour {
		return usageError{err: errors.New("--duration must be positive and at most 12h")}
	}
	admin, err := f.remote.client(true, f.concurrency)
	if err != nil {
		return err
	}
	info := c.stdout
	if f.format.value == "json" {
		info = c.stderr
	}
	if f.interval == "" {
		end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
		f.interval = end.Add(-90*24*time.Hour).Format(time.RFC3339) + "/" + end.Format(time.RFC3339)
	}
	groupBy := []string(f.groupBy)
	if len(groupBy) == 0 {
		groupBy = []string{usage.DimClientID.String()}
	}
	req := usageQueryRequest{Interval: f.interval, Granularity: f.granularity, GroupBy: groupBy}

	if f.org == "" {
		orgs, err := admin.listOrgs(ctx)
		if err != nil {
			return fmt.Errorf("listing organizations (needs the admin token): %w", err)
		}
		if len(orgs) == 0 {
			return errors.New("the server has no organization to query")
		}
		f.org = orgs[0].ID
		fmt.Fprintf(info, "querying organization %q (%s)\n", orgs[0].Name, f.org)
	}
	viewer, err := admin.createClient(ctx, f.org, createClientRequest{Name: benchQueryViewer,
		Description: "made by usaged bench query for one run", Permissions: []string{usage.PermOrganizationView}})
	if err != nil {
		return fmt.Errorf("creating a viewer client in organization %s (needs the admin token): %w", f.org, err)
	}
	defer func() {
		if err := admin.deleteClient(context.WithoutCancel(ctx), f.org, viewer.ID); err != nil {
			fmt.Fprintf(c.stderr, "usaged: deleting the viewer client %s: %v\n", viewer.ID, err)
		}
	}()
	token, err := admin.accessToken(ctx, viewer.ID, viewer.Secret)
	if err != nil {
		return err
	}

	// A first execution, not timed, checks the query and counts its rows.
	first := timedClient(admin, token)
	res, err := pollExecution(ctx, first.api, "/api/v2/usage/query", req, 5*time.Millisecond, f.remote.timeout)
	if err != nil {
		return fmt.Errorf("the first query: %w", err)
	}
	rep := benchQueryReport{Server: admin.base, Organization: f.org, Interval: f.interval, Granularity: f.granularity,
		GroupBy: strings.Join(groupBy, ","), Concurrency: f.concurrency, Rows: res.rows}
	fmt.Fprintf(info, "%s rows per execution; running %d at once for %s…\n", group(int64(rep.Rows)), f.concurrency, f.duration)

	var rss rssWatch
	stopRSS := rss.start(admin.base + "/metrics")
	cpu0 := bench.CPUTime()
	var (
		mu                 sync.Mutex
		received, decoded  []time.Duration
		wg                 sync.WaitGroup
		begin              = time.Now()
		deadline           = begin.Add(f.duration)
		runCtx, cancelRuns = context.WithCancelCause(ctx)
	)
	defer cancelRuns(nil)
	for range f.concurrency {
		wg.Go(func() {
			tc := timedClient(admin, token)
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
				res, err := pollExecution(runCtx, tc.api, "/api/v2/usage/query", req, 5*time.Millisecond, f.remote.timeout)
				done := time.Now()
				switch {
				case err != nil:
					fail(err)
					if !retryable(err) {
						cancelRuns(err) // a refused token or a bad request will not get better
					}
					// Give an overloaded or rate-limiting server a moment.
					select {
					case <-runCtx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				case res.rows != rep.Rows:
					fail(fmt.Errorf("an execution returned %d rows, the first %d", res.rows, rep.Rows))
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
	rep.ClientCPUSeconds = (bench.CPUTime() - cpu0).Seconds()
	stopRSS()
	if err := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("bench query stopped: %w", err)
	}
	rep.Seconds = elapsed.Seconds()
	rep.ExecutionsPerSecond = float64(rep.Executions) / max(rep.Seconds, 1e-3)
	slices.Sort(received)
	slices.Sort(decoded)
	rep.ReceivedP50Ms = ms(bench.Percentile(received, 0.50))
	rep.ReceivedP99Ms = ms(bench.Percentile(received, 0.99))
	rep.ReceivedMaxMs = ms(bench.Percentile(received, 1))
	rep.DecodedP50Ms = ms(bench.Percentile(decoded, 0.50))
	rep.DecodedP99Ms = ms(bench.Percentile(decoded, 0.99))
	rep.DecodedMaxMs = ms(bench.Percentile(decoded, 1))
	rep.ServerRSSBytes, rep.ServerMaxRSSBytes = rss.last.Load(), rss.max.Load()
	if f.format.value == "json" {
		return writeJSON(c.stdout, rep)
	}
	rssLine := "unavailable (no process_resident_memory_bytes in /metrics)"
	if rep.ServerMaxRSSBytes > 0 {
		rssLine = fmt.Sprintf("%.1f MiB at the end, %.1f MiB at most", float64(rep.ServerRSSBytes)/(1<<20), float64(rep.ServerMaxRSSBytes)/(1<<20))
	}
	gran := rep.Granularity
	if gran == "" {
		gran = "no granularity"
	}
	fmt.Fprintf(c.stdout, `bench query  %s  %.1fs, concurrency %d, organization %s
  query       %s, %s, by %s: %s rows
  executions  %s complete, %d failed
  throughput  %.2f executions/s
  received    p50 %.1fms  p99 %.1fms  max %.1fms  (POST to Complete document received)
  parsed      p50 %.1fms  p99 %.1fms  max %.1fms  (and parsed by the client)
  client CPU  %.1fs (%.0f%% of one core)
  server RSS  %s
`, rep.Server, rep.Seconds, rep.Concurrency, rep.Organization,
		rep.Interval, gran, rep.GroupBy, group(int64(rep.Rows)),
		group(int64(rep.Executions)), rep.Failures,
		rep.ExecutionsPerSecond,
		rep.ReceivedP50Ms, rep.ReceivedP99Ms, rep.ReceivedMaxMs,
		rep.DecodedP50Ms, rep.DecodedP99Ms, rep.DecodedMaxMs,
		rep.ClientCPUSeconds, 100*rep.ClientCPUSeconds/max(rep.Seconds, 1e-3), rssLine)
	if rep.FirstError != "" {
		fmt.Fprintf(c.stdout, "  first error %s\n", rep.FirstError)
	}
	return nil
}

// timedAPI is an API client with a token of its own that notes when it
// last finished reading an answer: after pollExecution returns, that is
// when the final results document had arrived, before the client decoded
// it. One goroutine uses it at a time.
type timedAPI struct {
	api      *apiClient
	lastBody time.Time
}

func timedClient(base *apiClient, token string) *timedAPI {
	t := &timedAPI{}
	api := *base
	api.token = token
	api.hc = &http.Client{Transport: bodyTimer{base: base.hc.Transport, done: &t.lastBody}, Timeout: base.hc.Timeout}
	t.api = &api
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
