// Package meter meters an HTTP API without changes to its code: a reverse
// proxy (NewProxy) and a net/http middleware (Meter.Middleware) record one
// usage event per request — attributed to organization, OAuth client and
// user, and to the route template of its path — and hand it to a Sink,
// normally the durable spool of meter/spool, whose shipper sends batches to
// usaged.
//
// Subpackages: meter/route maps raw paths to templates, meter/attrib tells
// who made a request, meter/spool keeps events on disk until usaged has
// them, meter/accesslog reads requests out of access logs.
package meter

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/route"
	"github.com/usaged/usaged/meter/spool"
	"github.com/usaged/usaged/usage"
)

// Sink takes recorded events. Add must not block the request for long nor
// fail it: a full or broken sink drops the event and counts the loss.
type Sink interface {
	Add(ev usage.Event)
}

// TemplateSource names the route template of a request. It is asked after
// the handler has served the request, so that routers which record the
// route they matched on the request (net/http's ServeMux in
// Request.Pattern, chi's RouteContext, gorilla/mux's CurrentRoute) can
// answer. It must never return a raw path: that would make the number of
// templates unbounded.
type TemplateSource interface {
	Template(r *http.Request) string
}

// TemplateFunc adapts a function to TemplateSource, e.g. for chi:
//
//	meter.TemplateFunc(func(r *http.Request) string {
//		return chi.RouteContext(r.Context()).RoutePattern()
//	})
type TemplateFunc func(r *http.Request) string

// Template implements TemplateSource.
func (f TemplateFunc) Template(r *http.Request) string { return f(r) }

// Paths matches the request's URL path against a route table (loaded from
// an OpenAPI document or a list of templates).
func Paths(m *route.Matcher) TemplateSource {
	return TemplateFunc(func(r *http.Request) string { return m.Match(r.URL.Path) })
}

// ServeMuxPatterns names a request by the net/http ServeMux pattern that
// served it ("GET /api/v2/users/{userId}" → "api/v2/users/{userId}"). A
// request the mux did not route (a 404 of the mux itself) goes to fallback.
func ServeMuxPatterns(fallback TemplateSource) TemplateSource {
	return TemplateFunc(func(r *http.Request) string {
		p := r.Pattern
		if p == "" {
			return fallback.Template(r)
		}
		if i := strings.IndexAny(p, " \t"); i >= 0 { // drop the method
			p = strings.TrimLeft(p[i:], " \t")
		}
		if i := strings.IndexByte(p, '/'); i > 0 { // drop the host
			p = p[i:]
		}
		p = strings.TrimPrefix(p, "/")
		if p == "" {
			return "/"
		}
		return p
	})
}

// Config configures a Meter.
type Config struct {
	Templates  TemplateSource    // required
	Attributor attrib.Attributor // required
	Sink       Sink              // required
	// Anonymous is the client id under which requests nobody could be
	// identified for are recorded (in AnonymousOrganization); empty: they
	// are not recorded at all.
	Anonymous             string
	AnonymousOrganization string
	Platform              string // recorded with every event, e.g. "proxy"
	// RetryFor is how long a request whose attribution failed (its source
	// was unreachable, or deferred the lookup) is retried, every
	// RetryEvery, before it counts as unidentified; default 1 h and 2 s,
	// oldest first. Up to MaxRetrying requests wait, in memory, holding up
	// to MaxRetryingBytes of headers and URLs; default 100,000 and 64 MiB.
	// A request whose attribution fails while either bound is reached is
	// not kept: it is recorded at once as unidentified (under Anonymous,
	// if set) and counted in Stats.Overflow. Requests already waiting keep
	// their place, and requests of a client already known are attributed
	// without waiting, so a flood of unknown tokens never costs them.
	RetryFor         time.Duration
	RetryEvery       time.Duration
	MaxRetrying      int
	MaxRetryingBytes int64
	// Journal, if set, keeps the requests waiting for a retry durable
	// (normally the spool, which keeps them on disk): they are then
	// neither lost when the process stops or crashes nor recorded as
	// unidentified at Close, but handed back by Journal.Waiting at the next
	// New and attributed then. A request is kept in it from its first
	// failed attempt, with the headers named in KeepHeaders, which must be
	// every header the Attributor reads; default Authorization.
	Journal     Journal
	KeepHeaders []string
	// Gate, if set, is asked before each request is served whether it may
	// be: the enforcement of usage limits (meter/enforce). The request is
	// then attributed before it is served (the Attributor's cache makes
	// that cheap after a client's first request), and the template asked
	// for before the handler runs (a route table answers then; a
	// ServeMux pattern is not known yet and falls back). A request whose
	// client cannot be told is served.
	Gate   Gate
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
}

// Gate decides, before a request is served, whether it may be.
type Gate interface {
	// Admit is asked before a request of id is served, with its template;
	// a non-nil Refusal is answered instead of serving it, and recorded
	// as any answer is.
	Admit(r *http.Request, id attrib.Identity, template string) *Refusal
	// Served is told what a request Admit was asked about came to,
	// served or refused.
	Served(id attrib.Identity, template, method string, res Response)
}

// Refusal is what a Gate answers instead of serving a request.
type Refusal struct {
	Status int
	Header http.Header
	Body   []byte
}

// gateAttributeTimeout bounds the attribution of a request before it is
// served: past it the request is served, unattributed for the Gate.
const gateAttributeTimeout = 2 * time.Second

// Journal keeps requests waiting for attribution across restarts;
// *spool.Spool implements it.
type Journal interface {
	// Keep records a waiting request's event and headers; false when it
	// cannot (the request then waits in memory only).
	Keep(ev usage.Event, h http.Header) (key uint64, ok bool)
	// Done records that the request kept under key waits no more; its
	// event, if any, was handed to the Sink first.
	Done(key uint64)
	// Waiting returns the requests an earlier process left waiting.
	Waiting() []spool.Waiting
}

// Defaults of Config.
const (
	DefaultRetryFor         = time.Hour
	DefaultRetryEvery       = 2 * time.Second
	DefaultMaxRetrying      = 100_000
	DefaultMaxRetryingBytes = 64 << 20
)

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Templates == nil {
		errs = append(errs, errors.New("meter: Templates is required"))
	}
	if c.Attributor == nil {
		errs = append(errs, errors.New("meter: Attributor is required"))
	}
	if c.Sink == nil {
		errs = append(errs, errors.New("meter: Sink is required"))
	}
	if c.RetryFor < 0 || c.RetryEvery < 0 {
		errs = append(errs, fmt.Errorf("meter: RetryFor and RetryEvery must not be negative, got %s and %s", c.RetryFor, c.RetryEvery))
	}
	if c.MaxRetrying < 0 || c.MaxRetryingBytes < 0 {
		errs = append(errs, fmt.Errorf("meter: MaxRetrying and MaxRetryingBytes must not be negative, got %d and %d", c.MaxRetrying, c.MaxRetryingBytes))
	}
	if c.Anonymous != "" && c.AnonymousOrganization == "" {
		errs = append(errs, errors.New("meter: Anonymous needs AnonymousOrganization: an event always belongs to an organization"))
	}
	return errors.Join(errs...)
}

// Meter records requests. It is safe for concurrent use.
type Meter struct {
	cfg     Config
	prefix  string // random per process: with seq, ids never repeat across restarts
	seq     atomic.Uint64
	work    chan pending
	stats   struct{ recorded, anonymous, unidentified, attribErrors, overflow, journaled atomic.Uint64 }
	once    sync.Once
	wg      sync.WaitGroup // the attribution workers
	retryWG sync.WaitGroup // the retry loop
	life    sync.RWMutex   // held for reading by Record, for writing by Close
	closed  bool

	retryMu       sync.Mutex
	retrying      []pending
	retryingBytes int64
	batchLen      int   // requests of the batch being retried, which count as waiting
	batchBytes    int64 // and their bytes
	stopRetry     chan struct{}

	lastGiveUpLog atomic.Int64 // unix nanoseconds of the last warning about a request given up on
	giveUps       atomic.Uint64

	// unattributed counts the requests without an identity since the last
	// warning about them, which lastUnattributedLog (unix nanoseconds of
	// Config.Now) spaces.
	unattributed        atomic.Uint64
	lastUnattributedLog atomic.Int64
}

// pending is a served request waiting for attribution.
type pending struct {
	req       *http.Request
	ev        usage.Event
	size      int64  // an estimate of the memory it holds, once waiting
	key       uint64 // its key in the Journal, if journaled
	journaled bool   // whether the Journal holds it
}

// pendingOverhead estimates a waiting request's memory besides its
// headers and URL: the event, the request and the slice entry.
const pendingOverhead = 512

// estimateSize estimates the memory p holds while it waits for a retry:
// mostly its headers, which its client chose, up to the server's header
// limit (1 MiB by default).
func (p pending) estimateSize() int64 {
	n := int64(pendingOverhead + len(p.req.URL.Path) + len(p.req.URL.RawQuery) + len(p.req.Host) + len(p.ev.TemplateURI))
	for k, vs := range p.req.Header {
		n += int64(len(k)) + 16
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// New returns a Meter and starts its attribution workers; Close stops them.
func New(cfg Config) (*Meter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.RetryEvery == 0 {
		cfg.RetryEvery = DefaultRetryEvery
	}
	if cfg.MaxRetrying == 0 {
		cfg.MaxRetrying = DefaultMaxRetrying
	}
	if cfg.MaxRetryingBytes == 0 {
		cfg.MaxRetryingBytes = DefaultMaxRetryingBytes
	}
	if cfg.KeepHeaders == nil {
		cfg.KeepHeaders = []string{"Authorization"}
	}
	var b [8]byte
	rand.Read(b[:])
	m := &Meter{cfg: cfg, prefix: hex.EncodeToString(b[:]) + "-", work: make(chan pending, 4096)}
	// Attribution may ask a server (on a token cache miss), so it runs off
	// the request's goroutine: a response is never held up by it.
	for range 2 * runtime.GOMAXPROCS(0) {
		m.wg.Go(func() {
			for p := range m.work {
				m.finish(p, false)
			}
		})
	}
	if cfg.Journal != nil {
		// What an earlier process left waiting is retried first, within
		// the same bounds; what does not fit counts as unidentified.
		for _, w := range cfg.Journal.Waiting() {
			p := pending{req: &http.Request{Method: w.Event.HTTPMethod, URL: &url.URL{}, Header: w.Header}, ev: w.Event, key: w.Key, journaled: true}
			if !m.retry(p) {
				m.stats.overflow.Add(1)
				m.record(p, attrib.Identity{}, false, fmt.Errorf("left waiting by an earlier process; not kept for a retry: limits of %d requests, %d bytes reached", cfg.MaxRetrying, cfg.MaxRetryingBytes))
			}
		}
	}
	m.stopRetry = make(chan struct{})
	m.retryWG.Go(m.retryLoop)
	return m, nil
}

// keep puts p in the Journal, if there is one and p is not there yet.
func (m *Meter) keep(p *pending) {
	if m.cfg.Journal == nil || p.journaled {
		return
	}
	h := make(http.Header, len(m.cfg.KeepHeaders))
	for _, name := range m.cfg.KeepHeaders {
		if vs := p.req.Header.Values(name); len(vs) > 0 {
			h[http.CanonicalHeaderKey(name)] = vs
		}
	}
	p.key, p.journaled = m.cfg.Journal.Keep(p.ev, h)
}

// retry keeps p, a request first failing attribution, for another
// attempt; false when MaxRetrying or MaxRetryingBytes is reached.
func (m *Meter) retry(p pending) bool {
	p.size = p.estimateSize()
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	if m.batchLen+len(m.retrying) >= m.cfg.MaxRetrying || m.batchBytes+m.retryingBytes+p.size > m.cfg.MaxRetryingBytes {
		return false
	}
	m.keep(&p)
	m.retrying = append(m.retrying, p)
	m.retryingBytes += p.size
	return true
}

// retryLoop attributes the waiting requests again every RetryEvery, oldest
// first, and a last time when the Meter closes.
func (m *Meter) retryLoop() {
	t := time.NewTicker(m.cfg.RetryEvery)
	defer t.Stop()
	for {
		stopping := false
		select {
		case <-t.C:
		case <-m.stopRetry:
			stopping = true
		}
		m.retryMu.Lock()
		batch, bytes := m.retrying, m.retryingBytes
		m.retrying, m.retryingBytes = nil, 0
		m.batchLen, m.batchBytes = len(batch), bytes
		m.retryMu.Unlock()
		// The batch keeps its place in the bounds while it is retried, and
		// what fails again goes back before the requests that came since.
		var again []pending
		var againBytes int64
		for i, p := range batch {
			if m.attempt(p, stopping) {
				again = append(again, p)
				againBytes += p.size
			}
			batch[i] = pending{}
		}
		m.retryMu.Lock()
		m.retrying = append(again, m.retrying...)
		m.retryingBytes += againBytes
		m.batchLen, m.batchBytes = 0, 0
		m.retryMu.Unlock()
		if stopping {
			return
		}
	}
}

// Close finishes the requests waiting for attribution (those waiting for a
// retry get one last attempt; with a Journal, those still failing stay in
// it for the next start) and stops the workers. Requests recorded
// after Close are attributed on their own goroutine, without retries.
func (m *Meter) Close() error {
	m.once.Do(func() {
		m.life.Lock()
		m.closed = true
		close(m.work)
		m.life.Unlock()
		// A worker may still put a failed request up for retry: stop the
		// retry loop, and with it the last attempt, only after them.
		m.wg.Wait()
		close(m.stopRetry)
	})
	m.retryWG.Wait()
	return nil
}

// Stats are a Meter's counters.
type Stats struct {
	Recorded     uint64 // events handed to the sink
	Anonymous    uint64 // of those, recorded under the anonymous client
	Unidentified uint64 // requests not recorded: no identity and no anonymous client
	AttribErrors uint64 // attribution attempts that failed (retried; a request still unidentified after RetryFor counts in Unidentified)
	// Overflow counts the requests whose attribution failed while
	// MaxRetrying or MaxRetryingBytes was reached: they were not kept for a
	// retry, and count in Anonymous or Unidentified.
	Overflow uint64
	// LeftWaiting counts the requests Close left in the Journal, still
	// failing attribution, for the next start.
	LeftWaiting uint64
	// Retrying and RetryingBytes are the requests waiting for another
	// attempt now, and the memory they hold (estimated).
	Retrying      int
	RetryingBytes int64
}

// Stats returns the counters so far.
func (m *Meter) Stats() Stats {
	m.retryMu.Lock()
	n, b := m.batchLen+len(m.retrying), m.batchBytes+m.retryingBytes
	m.retryMu.Unlock()
	return Stats{m.stats.recorded.Load(), m.stats.anonymous.Load(), m.stats.unidentified.Load(), m.stats.attribErrors.Load(),
		m.stats.overflow.Load(), m.stats.journaled.Load(), n, b}
}

// nextID returns an id unique to this request: it is assigned before the
// event is spooled and never changes, so retries of the shipment count once.
func (m *Meter) nextID() string {
	return m.prefix + strconv.FormatUint(m.seq.Add(1), 36)
}

// Record records a served request: rec is what the response carried. It
// never fails; attribution happens in the background.
func (m *Meter) Record(r *http.Request, rec Response) {
	ev := usage.Event{
		ID:            m.nextID(),
		Time:          rec.Start.UTC(),
		TemplateURI:   m.cfg.Templates.Template(r),
		HTTPMethod:    r.Method,
		Status:        rec.Status,
		Platform:      m.cfg.Platform,
		DurationMs:    rec.Duration.Milliseconds(),
		RequestBytes:  rec.RequestBytes,
		ResponseBytes: rec.ResponseBytes,
	}
	ev.ClampMeasures()
	// Keep only what attribution reads: the request's headers and URL
	// outlive the handler, its body and context do not.
	p := pending{req: &http.Request{Method: r.Method, URL: r.URL, Header: r.Header, Host: r.Host, RemoteAddr: r.RemoteAddr}, ev: ev}
	m.life.RLock()
	defer m.life.RUnlock()
	if m.closed {
		m.finish(p, true)
		return
	}
	select {
	case m.work <- p:
	default:
		// The workers are behind: attribute here rather than lose the
		// event. Only an overloaded meter slows its requests.
		m.finish(p, false)
	}
}

// finish attributes p, a request not yet waiting for a retry, and hands
// its event to the sink, or keeps it for a retry; last forbids one.
func (m *Meter) finish(p pending, last bool) {
	id, ok, err := m.attribute(p)
	if err != nil && !ok && !last && m.cfg.Now().Sub(p.ev.Time) < m.cfg.RetryFor {
		if m.retry(p) {
			return
		}
		m.stats.overflow.Add(1)
		err = fmt.Errorf("%w; not kept for a retry: %d requests already wait (limits %d requests, %d bytes)", err, m.Stats().Retrying, m.cfg.MaxRetrying, m.cfg.MaxRetryingBytes)
	}
	m.record(p, id, ok, err)
}

// attempt attributes p, a request waiting for a retry, again, and hands
// its event to the sink; true when it is to wait for another retry (last
// forbids one).
func (m *Meter) attempt(p pending, last bool) bool {
	id, ok, err := m.attribute(p)
	if err != nil && !ok && m.cfg.Now().Sub(p.ev.Time) < m.cfg.RetryFor {
		if !last {
			return true
		}
		if p.journaled {
			m.stats.journaled.Add(1)
			return false // the next start attributes it
		}
	}
	m.record(p, id, ok, err)
	return false
}

// attribute asks the attributor who made p.
func (m *Meter) attribute(p pending) (attrib.Identity, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, ok, err := m.cfg.Attributor.Attribute(ctx, p.req.WithContext(ctx))
	if err != nil && !ok {
		m.stats.attribErrors.Add(1)
	}
	return id, ok, err
}

// giveUpLogEvery spaces the warnings about requests given up on: a flood
// of them must not become a flood of log lines.
const giveUpLogEvery = 10 * time.Second

// record hands p's event to the sink, attributed to id if ok; err is why
// attribution failed for good, if it did.
func (m *Meter) record(p pending, id attrib.Identity, ok bool, err error) {
	if err != nil && !ok {
		// usaged or the identity provider could not be asked in time.
		n := m.giveUps.Add(1)
		now := time.Now().UnixNano()
		if last := m.lastGiveUpLog.Load(); now-last >= int64(giveUpLogEvery) && m.lastGiveUpLog.CompareAndSwap(last, now) {
			m.cfg.Logger.Warn("attributing a request failed; it counts as unidentified", "err", err, "given_up_so_far", n)
		}
	}
	ev := p.ev
	identified := ok && id.OrganizationID != "" && id.ClientID != ""
	if !identified {
		// Before the stats: whoever sees the request counted in them sees
		// it noted here too.
		m.noteUnattributed()
	}
	switch {
	case identified:
		ev.OrganizationID, ev.ClientID, ev.ClientName, ev.UserID = id.OrganizationID, id.ClientID, id.ClientName, id.UserID
	case m.cfg.Anonymous != "":
		ev.OrganizationID, ev.ClientID, ev.ClientName = m.cfg.AnonymousOrganization, m.cfg.Anonymous, m.cfg.Anonymous
		m.stats.anonymous.Add(1)
	default:
		m.stats.unidentified.Add(1)
	}
	if identified || m.cfg.Anonymous != "" {
		m.stats.recorded.Add(1)
		m.cfg.Sink.Add(ev)
	}
	if p.journaled {
		m.cfg.Journal.Done(p.key) // after the Sink has the event
	}
}

// unattributedLogEvery spaces the warnings about requests nobody could be
// identified for: they may be most requests, and must not flood the log.
const unattributedLogEvery = 10 * time.Second

// noteUnattributed counts a request without an identity — no credentials,
// credentials refused, or attribution given up on — and says so in the log
// at most every unattributedLogEvery, with the count since the last time.
func (m *Meter) noteUnattributed() {
	m.unattributed.Add(1)
	now := m.cfg.Now().UnixNano()
	last := m.lastUnattributedLog.Load()
	if now-last < int64(unattributedLogEvery) || !m.lastUnattributedLog.CompareAndSwap(last, now) {
		return
	}
	n := m.unattributed.Swap(0)
	if m.cfg.Anonymous != "" {
		m.cfg.Logger.Info("requests without credentials that identify a client (none, or refused) were recorded under the anonymous client",
			"count", n, "client", m.cfg.Anonymous, "organization", m.cfg.AnonymousOrganization)
		return
	}
	m.cfg.Logger.Warn("requests without credentials that identify a client (none, or refused) were not recorded; name an anonymous client to record them",
		"count", n)
}

// Response is what a served request came to.
type Response struct {
	Start         time.Time
	Duration      time.Duration
	Status        int
	RequestBytes  int64
	ResponseBytes int64
}

// Middleware wraps next so that every request it serves is recorded.
// Streaming, flushing and connection hijacking (websockets) pass through:
// the wrapped ResponseWriter unwraps for http.ResponseController.
func (m *Meter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := m.cfg.Now()
		rw := &recorder{ResponseWriter: w}
		var refusal *Refusal
		var template string // as the Gate was asked about it
		id, gated := m.admit(r)
		if gated {
			template = m.cfg.Templates.Template(r)
			refusal = m.cfg.Gate.Admit(r, id, template)
		}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		defer func() {
			// Record even when the handler panics (as a 500 if nothing was
			// written), then let the panic go on to the server.
			v := recover()
			status := rw.status
			if status == 0 {
				status = http.StatusOK
				if v != nil {
					status = http.StatusInternalServerError
				}
			}
			if rw.hijacked && rw.status == 0 {
				status = http.StatusSwitchingProtocols
			}
			res := Response{Start: start, Duration: m.cfg.Now().Sub(start), Status: status, ResponseBytes: rw.bytes}
			if body != nil {
				res.RequestBytes = body.n
			}
			m.Record(r, res)
			if gated {
				m.cfg.Gate.Served(id, template, r.Method, res)
			}
			if v != nil {
				panic(v)
			}
		}()
		if refusal != nil {
			for k, vs := range refusal.Header {
				rw.Header()[k] = vs
			}
			rw.WriteHeader(refusal.Status)
			rw.Write(refusal.Body)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// admit attributes r for the Gate, if there is one: false when there is
// none or r's client cannot be told.
func (m *Meter) admit(r *http.Request) (attrib.Identity, bool) {
	if m.cfg.Gate == nil {
		return attrib.Identity{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), gateAttributeTimeout)
	defer cancel()
	id, ok, _ := m.cfg.Attributor.Attribute(ctx, r.WithContext(ctx))
	return id, ok && id.OrganizationID != "" && id.ClientID != ""
}

// recorder notes the status and the bytes of a response.
type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *recorder) WriteHeader(code int) {
	// 1xx responses are informational; the final status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps io.Copy's sendfile path for file responses.
func (w *recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

// Flush passes flushes through for streaming responses (server-sent events).
func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over (websockets, and the reverse proxy's
// protocol upgrades); the request is then recorded as 101 unless a status
// was written first.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach what the recorder does not
// wrap, such as deadlines.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
