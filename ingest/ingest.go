// Package ingest turns request bodies into recorded usage events: it decodes
// JSON arrays, {"events":[…]} objects and NDJSON (plain or gzip), validates
// each event, enforces the caller's organization, and appends the valid ones to
// the store, which deduplicates and commits them durably. Outcomes are per
// event: one bad event never fails its batch. DecodeActivity and
// IngestActivity do the same for the activity events of services.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Per-event error codes, as reported to clients.
const (
	CodeMissingField          = "missing_field"
	CodeInvalidField          = "invalid_field"
	CodeOutsideWindow         = "outside_window"
	CodeInFuture              = "in_future"
	CodeForbiddenOrganization = "forbidden_organization"
	CodeMalformed             = "malformed_event" // an NDJSON line or array element that is not a JSON object
	CodeUnknownField          = "unknown_field"   // a property no field of the event has, such as "userID" for userId
)

// DefaultDedupeWindow is how far back in event time duplicates are detected;
// older events are rejected as outside the window.
const DefaultDedupeWindow = 35 * 24 * time.Hour

// MaxFuture is how far ahead of the server clock an event time may be.
const MaxFuture = 5 * time.Minute

// EventError is why one event of a batch was rejected.
type EventError struct {
	Index   int    `json:"index"`
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Result is the outcome of one ingest call. The counts are exact; Errors
// holds the first rejected events by position, at most Limits.MaxErrors of
// them, so that an answer stays small whatever the body held.
type Result struct {
	Accepted   int          `json:"accepted"`
	Duplicates int          `json:"duplicates"`
	Rejected   int          `json:"rejected"`
	Errors     []EventError `json:"errors"`
	// ErrorsOmitted is how many rejected events have no entry in Errors:
	// Rejected - len(Errors).
	ErrorsOmitted int `json:"errorsOmitted"`
}

// Scope is whose events a caller may send. An empty OrganizationID means any
// organization (the admin token): then every event must name its organization.
type Scope struct {
	OrganizationID string
}

// Config configures a Pipeline.
type Config struct {
	Store        store.EventAppender
	DedupeWindow time.Duration // default DefaultDedupeWindow
	// Services records the activity events of services (IngestActivity).
	// Nil leaves activity unsupported: IngestActivity then fails.
	Services ActivityStore
	// KnownOrganization reports whether an organization exists; events for
	// others are rejected. Nil accepts any organization id.
	KnownOrganization func(id string) bool
	Now               func() time.Time // default time.Now
	Logger            *slog.Logger     // default slog.Default()
	// Registerer receives the pipeline's metrics: the outcomes of the API
	// request events offered to Ingest (usaged_ingest_events_total) and the
	// time the store took to commit them (usaged_ingest_commit_seconds).
	// Nil: measured, not exported.
	Registerer prometheus.Registerer
	// Limits bound what one body may cost; see Pipeline.Limits. Zero
	// fields take their defaults.
	Limits Limits
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("ingest: Store is required"))
	}
	if c.DedupeWindow < 0 {
		errs = append(errs, errors.New("ingest: DedupeWindow must not be negative"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Pipeline validates and appends decoded batches. It is safe for concurrent
// use; concurrent calls share fsyncs through the store's group commit.
type Pipeline struct {
	cfg     Config
	metrics metrics
}

// metrics are a Pipeline's Prometheus metrics.
type metrics struct {
	events                         *prometheus.CounterVec
	accepted, duplicates, rejected prometheus.Counter // the series of events, resolved once: Ingest is the hot path
	commit                         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usaged_ingest_events_total",
			Help: "Events offered for ingest, by outcome.",
		}, []string{"outcome"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usaged_ingest_commit_seconds",
			Help: "Time the store took to commit one ingested batch durably.",
			// Group commit makes most commits one fsync: sub-millisecond to tens of milliseconds.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	m.accepted = m.events.WithLabelValues("accepted")
	m.duplicates = m.events.WithLabelValues("duplicate")
	m.rejected = m.events.WithLabelValues("rejected")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.events, m.commit} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("ingest: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

// observe counts the outcomes of one Ingest call and the time its commit
// took; zero when nothing was appended, so nothing was committed.
func (m *metrics) observe(r Result, commit time.Duration) {
	m.accepted.Add(float64(r.Accepted))
	m.duplicates.Add(float64(r.Duplicates))
	m.rejected.Add(float64(r.Rejected))
	if commit > 0 {
		m.commit.Observe(commit.Seconds())
	}
}

// New returns a Pipeline for cfg.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DedupeWindow == 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Limits = cfg.Limits.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Pipeline{cfg: cfg, metrics: m}, nil
}

// DedupeWindow returns the configured window.
func (p *Pipeline) DedupeWindow() time.Duration { return p.cfg.DedupeWindow }

// Limits returns the limits bodies for this pipeline are to be decoded with
// (Decode, DecodeActivity), with every default filled in.
func (p *Pipeline) Limits() Limits { return p.cfg.Limits }

// Ingest validates events for scope, appends the valid ones and reports
// per-event outcomes: the Index of each error is the event's position in
// events. A non-nil error means nothing of the batch may be assumed recorded
// (the store failed) and the caller must not acknowledge it. A face that
// decoded events from a body reports Batch.Merge of the result, which
// speaks of positions in the body.
func (p *Pipeline) Ingest(ctx context.Context, events []usage.Event, scope Scope) (Result, error) {
	now := p.cfg.Now()
	from := now.Add(-p.cfg.DedupeWindow)
	bad := errorList{max: p.cfg.Limits.MaxErrors}
	valid := make([]usage.Event, 0, len(events))
	for i := range events {
		ev := &events[i]
		if e, ok := p.check(ev, scope, now, from); !ok {
			e.Index = i
			bad.add(e)
			continue
		}
		valid = append(valid, *ev)
	}
	res := result(nil, 0, &bad)
	if len(valid) > 0 {
		start := time.Now()
		outs, err := p.cfg.Store.Append(ctx, valid, from)
		if err != nil {
			return Result{}, err
		}
		for _, o := range outs {
			if o == usage.Duplicate {
				res.Duplicates++
			} else {
				res.Accepted++
			}
		}
		p.metrics.observe(res, time.Since(start))
	} else {
		p.metrics.observe(res, 0)
	}
	return res, nil
}
