// Package bench holds usaged's load generators and measurements that are too
// large for go test -bench: filling a store with a hundred million events and
// timing queries on it. The usaged binary exposes them as `usaged bench`.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

// StoreConfig describes a store load: Events spread uniformly over Days ending
// now, across Orgs organizations each with Clients clients, Users users and
// Templates route templates.
type StoreConfig struct {
	Dir                             string
	Events                          int
	Orgs, Clients, Users, Templates int
	Days                            int
	Batch, Workers, Queries         int
	Seed                            uint64
	Progress                        io.Writer // periodic progress lines; nil for none
}

// Validate reports every problem with the configuration.
func (c StoreConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("bench: Dir is required"))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"events", c.Events}, {"orgs", c.Orgs}, {"clients", c.Clients}, {"users", c.Users}, {"templates", c.Templates},
		{"days", c.Days}, {"batch", c.Batch}, {"workers", c.Workers}, {"queries", c.Queries}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("bench: %s must be positive, got %d", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// StoreReport is what a store load measured.
type StoreReport struct {
	Events        int           `json:"events"`
	Accepted      int           `json:"accepted"`
	Load          time.Duration `json:"loadNanos"`
	EventsPerSec  float64       `json:"eventsPerSecond"`
	MaxRSS        uint64        `json:"maxRssBytes"`
	DiskBytes     uint64        `json:"diskBytes"`
	BytesPerEvent float64       `json:"bytesPerEvent"`
	QueryRows     int           `json:"queryRows"`
	QueryRequests int64         `json:"queryRequests"` // requests summed over the query's rows
	QueryP50      time.Duration `json:"queryP50Nanos"`
	QueryP99      time.Duration `json:"queryP99Nanos"`
}

func (r StoreReport) String() string {
	return fmt.Sprintf(`events loaded      %d (%d accepted)
load time          %s (%.0f events/s)
max RSS            %.0f MiB
disk               %.0f MiB (%.1f bytes/event, after compaction)
query              org, 90 days, Day, by OAuthClientId: %d rows, p50 %s, p99 %s`,
		r.Events, r.Accepted, r.Load.Round(time.Millisecond), r.EventsPerSec, float64(r.MaxRSS)/(1<<20),
		float64(r.DiskBytes)/(1<<20), r.BytesPerEvent, r.QueryRows, r.QueryP50.Round(10*time.Microsecond), r.QueryP99.Round(10*time.Microsecond))
}

// Store loads a Pebble store in cfg.Dir through the in-process ingest
// pipeline (validation, dedupe, durable commits) and then times the
// organization query the engine is specified against. The generated
// organizations are registered in the store's registry (see Gen.Orgs), so
// that a server opening the store knows them.
func Store(ctx context.Context, cfg StoreConfig) (StoreReport, error) {
	if err := cfg.Validate(); err != nil {
		return StoreReport{}, err
	}
	db, err := pebble.Open(pebble.Config{Dir: cfg.Dir})
	if err != nil {
		return StoreReport{}, err
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	window := time.Duration(cfg.Days+2) * 24 * time.Hour
	p, err := ingest.New(ingest.Config{Store: db, DedupeWindow: window})
	if err != nil {
		return StoreReport{}, err
	}
	var rep StoreReport
	stopRSS := watchRSS(&rep.MaxRSS)
	now := time.Now().UTC().Truncate(time.Hour)
	start := now.Add(-time.Duration(cfg.Days) * 24 * time.Hour)
	g := NewGen(cfg, start)
	created := time.Now().UTC().Truncate(time.Second)
	for _, o := range g.Orgs() {
		o.CreatedAt = created
		if err := db.PutOrganization(ctx, o); err != nil {
			return rep, err
		}
	}

	var next, accepted atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Workers)
	begin := time.Now()
	done := make(chan struct{})
	go progress(cfg.Progress, &next, cfg.Events, begin, done)
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			buf := make([]usage.Event, cfg.Batch)
			for ctx.Err() == nil {
				first := int(next.Add(int64(cfg.Batch))) - cfg.Batch
				if first >= cfg.Events {
					return
				}
				n := min(cfg.Batch, cfg.Events-first)
				events := buf[:n]
				for i := range events {
					g.Event(r, first+i, &events[i])
				}
				res, err := p.Ingest(ctx, events, ingest.Scope{})
				if err != nil {
					errc <- err
					return
				}
				if res.Rejected > 0 {
					errc <- fmt.Errorf("bench: %d events rejected, first: %+v", res.Rejected, res.Errors[0])
					return
				}
				accepted.Add(int64(res.Accepted))
			}
		}()
	}
	wg.Wait()
	close(done)
	close(errc)
	if err := <-errc; err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Load = time.Since(begin)
	rep.Events, rep.Accepted = cfg.Events, int(accepted.Load())
	rep.EventsPerSec = float64(rep.Events) / rep.Load.Seconds()

	if err := db.Flush(); err != nil {
		return rep, err
	}
	if err := db.Compact(); err != nil {
		return rep, err
	}

	q, err := usage.Query{OrganizationID: g.orgs[0], Interval: usage.Interval{Start: start, End: now},
		Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimClientID}}.Normalize()
	if err != nil {
		return rep, err
	}
	times := make([]time.Duration, cfg.Queries)
	for i := range times {
		t0 := time.Now()
		rows, err := db.Query(ctx, q)
		if err != nil {
			return rep, err
		}
		times[i] = time.Since(t0)
		rep.QueryRows, rep.QueryRequests = len(rows), 0
		for _, r := range rows {
			rep.QueryRequests += r.Requests
		}
	}
	slices.Sort(times)
	rep.QueryP50, rep.QueryP99 = Percentile(times, 0.50), Percentile(times, 0.99)
	stopRSS()

	// The size is the directory's once the store is closed: Pebble deletes
	// the tables a compaction replaced in the background, at a paced rate,
	// and its own figure counts them until then, several percent at times.
	closed = true
	if err := db.Close(); err != nil {
		return rep, err
	}
	if rep.DiskBytes, err = dirBytes(cfg.Dir); err != nil {
		return rep, err
	}
	rep.BytesPerEvent = float64(rep.DiskBytes) / float64(rep.Events)
	return rep, nil
}

// dirBytes returns the sizes of the files under dir added up.
func dirBytes(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err == nil {
			n += uint64(fi.Size())
		}
		return err
	})
	return n, err
}

// Percentile returns the q-quantile (0 ≤ q ≤ 1) of sorted durations, the
// nearest-rank value; 0 for none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

// Gen makes events with a StoreConfig's cardinalities from fixed string
// tables, so that generating costs little next to ingesting. Its methods are
// safe for concurrent use.
type Gen struct {
	cfg                   StoreConfig
	start                 time.Time
	span                  int64
	orgs                  []string
	clients, names, users [][]string // per organization
	templates             []string
	methods               []string
}

// NewGen returns a generator of cfg.Events events spread evenly from start
// over cfg.Days days.
func NewGen(cfg StoreConfig, start time.Time) *Gen {
	g := &Gen{cfg: cfg, start: start, span: int64(cfg.Days) * 24 * 3600, methods: []string{"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"}}
	for o := range cfg.Orgs {
		org := fmt.Sprintf("bench-org-%02d", o)
		g.orgs = append(g.orgs, org)
		var cs, ns, us []string
		for c := range cfg.Clients {
			cs = append(cs, fmt.Sprintf("%s-client-%04d", org, c))
			ns = append(ns, fmt.Sprintf("Integration %d", c))
		}
		for u := range cfg.Users {
			us = append(us, fmt.Sprintf("%08x-%04x-4000-8000-%012x", o, u, u*7919))
		}
		g.clients, g.names, g.users = append(g.clients, cs), append(g.names, ns), append(g.users, us)
	}
	for t := range cfg.Templates {
		g.templates = append(g.templates, "api/v2/resource"+strconv.Itoa(t/10)+"/{id}/sub"+strconv.Itoa(t%10))
	}
	return g
}

// Orgs returns the organizations the events belong to, with the ids the
// events carry (bench-org-00, bench-org-01, …) and readable names (Bench
// Store Org 00, …), and no creation time.
func (g *Gen) Orgs() []usage.Organization {
	out := make([]usage.Organization, len(g.orgs))
	for i, id := range g.orgs {
		out[i] = usage.Organization{ID: id, Name: fmt.Sprintf("Bench Store Org %02d", i)}
	}
	return out
}

// Event fills ev with event number seq, drawing its client, user, template,
// method, status and measurements from r: a duration log-normal around a
// median of 80 ms (σ 1, so a p99 near 800 ms), none for 2 % of events; a
// request body log-normal around 1.5 kB for POST, PUT and PATCH only; a
// response log-normal around 4 kB (σ 1.2).
func (g *Gen) Event(r *rand.Rand, seq int, ev *usage.Event) {
	o := seq % g.cfg.Orgs
	c := r.IntN(g.cfg.Clients)
	status := 200
	switch x := r.IntN(100); {
	case x < 5:
		status = 404
	case x < 7:
		status = 429
	case x < 8:
		status = 503
	case x < 10:
		status = 304
	}
	*ev = usage.Event{
		ID:             "b" + strconv.Itoa(seq),
		Time:           g.start.Add(time.Duration(int64(seq)*g.span/int64(g.cfg.Events)) * time.Second),
		OrganizationID: g.orgs[o],
		ClientID:       g.clients[o][c],
		ClientName:     g.names[o][c],
		UserID:         g.users[o][r.IntN(g.cfg.Users)],
		TemplateURI:    g.templates[r.IntN(g.cfg.Templates)],
		HTTPMethod:     g.methods[r.IntN(len(g.methods))],
		Status:         status,
	}
	if r.IntN(50) != 0 {
		ev.DurationMs = max(1, int64(math.Exp(math.Log(80)+r.NormFloat64())))
	}
	switch ev.HTTPMethod {
	case "POST", "PUT", "PATCH":
		ev.RequestBytes = int64(math.Exp(math.Log(1500) + 0.8*r.NormFloat64()))
	}
	ev.ResponseBytes = int64(math.Exp(math.Log(4000) + 1.2*r.NormFloat64()))
}

func progress(w io.Writer, next *atomic.Int64, total int, begin time.Time, done <-chan struct{}) {
	if w == nil {
		return
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			n := min(int(next.Load()), total)
			rate := float64(n) / time.Since(begin).Seconds()
			fmt.Fprintf(w, "loaded %d/%d events, %.0f events/s, RSS %.0f MiB\n", n, total, rate, float64(rss())/(1<<20))
		}
	}
}

// watchRSS samples the process's resident set every 200 ms into *max until
// the returned function is called.
func watchRSS(max *uint64) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rss(); r > *max {
				*max = r
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// rss reads VmRSS from /proc/self/status; it returns 0 where that is missing.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
