// Package httpmw is the middleware every HTTP face of usaged runs behind:
// the Genesys API, the service-usage reports, the dashboard, /healthz and
// /metrics. For each request it gives a correlation id (the
// ININ-Correlation-Id header, and CorrelationID for the face's error
// bodies), counts and times it by route pattern, writes an access log line,
// applies the rate limit of the route's class and turns a panic into an
// answer in the face's own error shape, one that never hides a failed store.
//
// A Stack is shared by the faces of one server; each face describes itself
// with a Face (its budgets, how a request is keyed for them, how it writes
// an error) and wraps each of its routes with Stack.Wrap, which also records
// the route's pattern for Routes.
package httpmw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/usage"
)

// HeaderCorrelationID carries a request's correlation id on every answer.
// The name is that of the Genesys conventions; every face uses it.
const HeaderCorrelationID = "ININ-Correlation-Id"

// Class is the rate limit class of a route: which of its face's budgets it
// counts against.
type Class int

const (
	ClassNone   Class = iota // not rate limited
	ClassAPI                 // the general budget of a face's API
	ClassIngest              // event ingest, a budget of its own
	ClassToken               // a login endpoint, per remote address
)

// Default budgets, in requests per minute per key.
const (
	DefaultAPILimit = 300
	// DefaultIngestLimit is the budget of event ingest, which a busy
	// platform calls many times a second with one credential.
	DefaultIngestLimit = 60_000
	// DefaultTokenLimit is the budget of a login endpoint per remote
	// address: a token lasts a day by default, so a client needs few.
	DefaultTokenLimit = 300
)

// Route is one route of a face as the stack sees it.
type Route struct {
	// Pattern is the route's pattern, "METHOD /path" as http.ServeMux takes
	// it, or a name for a catch-all ("unmatched"); requests are counted,
	// timed and logged under it.
	Pattern string
	// Name is the face's name of the operation, if it has one (the
	// ServiceStack operation of the service-usage face).
	Name  string
	Class Class
	// Unlisted leaves the route out of Routes: a catch-all that answers
	// 404 or 405 in the face's shape is no route of the API.
	Unlisted bool
}

type routeKey struct{}

// RouteOf returns the route the stack is serving a request for.
func RouteOf(ctx context.Context) Route {
	rt, _ := ctx.Value(routeKey{}).(Route)
	return rt
}

type correlationKey struct{}

// CorrelationID returns the id the stack gave a request, which its answer
// carries in HeaderCorrelationID.
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// Limits are the per-minute limits of a face's classes, as
// ratelimit.Config.Limit takes them: 0 means the class's default, negative
// unlimited.
type Limits struct {
	API, Ingest, Token int
}

// Validate reports every problem with the limits.
func (l Limits) Validate() error {
	var errs []error
	for _, c := range []struct {
		name string
		v    int
	}{{"API", l.API}, {"Ingest", l.Ingest}, {"Token", l.Token}} {
		if c.v > ratelimit.MaxLimit {
			errs = append(errs, fmt.Errorf("%s limit must be at most %d, got %d", c.name, ratelimit.MaxLimit, c.v))
		}
	}
	return errors.Join(errs...)
}

// Budgets are a face's budgets by class; a nil one is unlimited.
type Budgets struct {
	API, Ingest, Token *ratelimit.Budget
}

// For returns the budget of class c, nil when it is unlimited.
func (b Budgets) For(c Class) *ratelimit.Budget {
	switch c {
	case ClassAPI:
		return b.API
	case ClassIngest:
		return b.Ingest
	case ClassToken:
		return b.Token
	}
	return nil
}

// BudgetsConfig configures NewBudgets.
type BudgetsConfig struct {
	Limits Limits
	Now    func() time.Time // the clock of the windows; default time.Now
	// Headers, when set, adds the face's rate limit headers to every answer
	// counted.
	Headers func(h http.Header, d auth.Decision)
	// Refuse answers a request over its budget in the face's error shape
	// (RouteOf tells its class); Retry-After is already set. Required.
	Refuse func(w http.ResponseWriter, r *http.Request, d auth.Decision)
}

// NewBudgets returns a face's budgets.
func NewBudgets(cfg BudgetsConfig) (Budgets, error) {
	var b Budgets
	var err error
	budget := func(limit, def int) *ratelimit.Budget {
		if err != nil {
			return nil
		}
		var x *ratelimit.Budget
		x, err = ratelimit.New(ratelimit.Config{Limit: limit, Default: def, Now: cfg.Now, Headers: cfg.Headers, Refuse: cfg.Refuse})
		return x
	}
	b.API = budget(cfg.Limits.API, DefaultAPILimit)
	b.Ingest = budget(cfg.Limits.Ingest, DefaultIngestLimit)
	b.Token = budget(cfg.Limits.Token, DefaultTokenLimit)
	return b, err
}

// Face is how one face answers through the stack.
type Face struct {
	Budgets Budgets
	// Key returns what r, on a rate-limited route, counts against, and r
	// with what the face learnt finding it (an authenticated caller) for
	// its handler. Nil: the remote address.
	Key func(r *http.Request) (*http.Request, ratelimit.Key)
	// Error writes err in the face's error shape. The stack answers a
	// panic through it: with the store's error when the store has failed
	// (usage.KindUnavailable), else with an internal error. Nil: plain
	// text.
	Error func(w http.ResponseWriter, r *http.Request, err error)
	// Header is set on every answer of the face before its handler runs.
	Header http.Header
}

// Config configures a Stack.
type Config struct {
	Logger *slog.Logger // default slog.Default()
	// Registerer receives the request metrics; nil: counted, not exported.
	Registerer prometheus.Registerer
	// Failed reports the store's failed state (nil while it works): a
	// panic while it has failed is answered as the failure, 503, not as a
	// bug. Nil: no store to ask.
	Failed func() error
}

// Stack is the middleware of one server's faces. It is safe for concurrent
// use.
type Stack struct {
	log      *slog.Logger
	failed   func() error
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu     sync.Mutex
	routes []string
}

// New returns a Stack for cfg, its metrics registered on cfg.Registerer.
func New(cfg Config) (*Stack, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Stack{
		log:    cfg.Logger,
		failed: cfg.Failed,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usaged_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "usaged_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("httpmw: registering metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Routes returns the patterns of the routes wrapped so far, in the order
// they were first wrapped, without the unlisted ones.
func (s *Stack) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// Wrap returns h behind the stack, for route rt of face f, and records rt's
// pattern unless it is unlisted.
func (s *Stack) Wrap(f *Face, rt Route, h http.Handler) http.Handler {
	if !rt.Unlisted {
		s.mu.Lock()
		if !slices.Contains(s.routes, rt.Pattern) {
			s.routes = append(s.routes, rt.Pattern)
		}
		s.mu.Unlock()
	}
	budget := f.Budgets.For(rt.Class)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := uuid.NewString()
		w.Header().Set(HeaderCorrelationID, id)
		for k, v := range f.Header {
			w.Header()[k] = slices.Clone(v) // the handler may add to it
		}
		ctx := context.WithValue(context.WithValue(r.Context(), correlationKey{}, id), routeKey{}, rt)
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.recovered(f, rec, r, v)
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			d := time.Since(start)
			s.requests.WithLabelValues(rt.Pattern, strconv.Itoa(rec.status)).Inc()
			s.duration.WithLabelValues(rt.Pattern).Observe(d.Seconds())
			s.log.Debug("request", "contextId", id, "method", r.Method, "path", r.URL.Path, "route", rt.Pattern,
				"status", rec.status, "bytes", rec.bytes, "duration", d, "remote", r.RemoteAddr)
		}()
		if budget != nil {
			key := ratelimit.AddressKey(r)
			if f.Key != nil {
				r, key = f.Key(r)
			}
			if !budget.Allow(rec, r, key) {
				return
			}
		}
		h.ServeHTTP(rec, r)
	})
}

// recovered answers a panic v, if nothing was written yet. While the store
// has failed the answer is its failure (503 with Retry-After), whatever
// panicked: a handler that tripped over the failed store is no bug of its
// own, and a client told 500 would not retry.
func (s *Stack) recovered(f *Face, w *recorder, r *http.Request, v any) {
	err, _ := v.(error)
	msg := "panic serving request"
	if s.failed != nil {
		if failed := s.failed(); failed != nil {
			err, msg = failed, "panic serving request while the store has failed"
		}
	}
	if usage.KindOf(err) != usage.KindUnavailable {
		// A bug: usage.KindInternal, whose text is for the log only. A
		// failure a client may retry after, such as the store's, is
		// answered as that.
		err = fmt.Errorf("panic: %v", v)
	}
	s.log.Error(msg, "contextId", CorrelationID(r.Context()), "route", RouteOf(r.Context()).Pattern, "panic", v, "stack", string(debug.Stack()))
	if w.status != 0 {
		return // the answer has begun; the client sees it cut off
	}
	if f.Error != nil {
		f.Error(w, r, err)
		return
	}
	status := http.StatusInternalServerError
	if usage.KindOf(err) == usage.KindUnavailable {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, http.StatusText(status), status)
}

// recorder remembers the status and the bytes written, for the metrics and
// the access log and for knowing whether a panic can still be answered.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
