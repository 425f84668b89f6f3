// Package enforce enforces usage limits in the metering proxy and
// middleware: it is the meter.Gate that answers 429 to a client over an
// enforced limit, before the request is served.
//
// An Enforcer follows usaged's limits stream (GET
// /api/v2/usage/limits/stream, one long-lived connection): every enforced
// limit of its organizations, and the exact value of each limit's current
// window as commits change it, at most ten times a second. Between updates
// it counts the requests it admits and serves itself on top of the last
// value, so that a limit is reached here at the request that reaches it,
// not when usaged hears of it. A value is never lowered by an update:
// usaged's count includes this process's requests only once they are
// shipped, so the Enforcer keeps the greater of the two.
//
// What can pass beyond a limit is what other processes (other proxies,
// clients that bypass this one) send between the commit that reaches it and
// this Enforcer hearing of it: their request rate × (their ship interval +
// the commit + the stream's coalescing, 100 ms). docs/limits.md states and
// measures it.
//
// When usaged is unreachable the Enforcer keeps its last state and counts
// on locally (fail open); with Config.FailClosed it refuses with 503 the
// requests of identified clients while it has not heard from usaged for
// Config.Stale.
package enforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/usage"
)

// Config configures New.
type Config struct {
	// Server is usaged's base URL; required.
	Server string
	// Token is the admin token (every organization's limits) or a client's
	// token with usage:limit:view (its organization's); required.
	Token string
	// OrganizationID narrows the admin token to one organization.
	OrganizationID string
	// FailClosed refuses (503) the requests of identified clients while
	// the limits are not known: before the stream's first snapshot, and
	// when nothing was heard from usaged for Stale. Default: fail open,
	// serving them on the last state known.
	FailClosed bool
	// Stale is how long without a word from usaged (the stream sends a
	// heartbeat every 5 s) before the state counts as lost; default 15 s.
	Stale      time.Duration
	HTTPClient *http.Client     // default: one without a timeout (a stream)
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default slog.Default()
}

// DefaultStale is Config.Stale's default: three heartbeats.
const DefaultStale = 15 * time.Second

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("enforce: Server is required"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("enforce: Token is required: the limits stream needs the admin token or usage:limit:view"))
	}
	if c.Stale < 0 {
		errs = append(errs, fmt.Errorf("enforce: Stale must not be negative, got %s", c.Stale))
	}
	return errors.Join(errs...)
}

// Enforcer is a meter.Gate enforcing usaged's limits. It is safe for
// concurrent use; Run keeps its state current.
type Enforcer struct {
	cfg Config
	api *client.Client
	log *slog.Logger

	mu        sync.Mutex
	byOrg     map[string]map[string]*enforced // organization → limit id
	next      map[string]map[string]*enforced // the snapshot being received
	ready     bool                            // a snapshot was received
	lastHeard time.Time
	lastPrune time.Time

	refused, failedClosed, updates atomic.Uint64
	connected                      atomic.Bool
	readyOnce                      sync.Once
	readyCh                        chan struct{} // closed at the first snapshot
}

// enforced is an enforced limit and where its windows stand here.
type enforced struct {
	limit    usage.Limit
	loc      *time.Location      // the window's zone
	counters map[string]*counter // by client for ScopeEachClient, else ""
}

// counter is a window's value: the greater of usaged's last word and what
// this process counted on top of it. A rolling window's is worked out
// afresh by at from roll.
type counter struct {
	window usage.Interval
	value  float64
	roll   *rolling // a rolling window's minutes; nil for a calendar one
}

// add counts x, of a request of at, in c.
func (c *counter) add(x float64, at time.Time) {
	c.value += x
	if c.roll != nil {
		c.roll.add(x, at)
	}
}

var _ meter.Gate = (*Enforcer)(nil)

// New returns an Enforcer that knows no limit yet; Run follows the stream.
func New(cfg Config) (*Enforcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Stale == 0 {
		cfg.Stale = DefaultStale
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	api, err := client.New(client.Config{Server: cfg.Server, Token: cfg.Token, HTTPClient: cfg.HTTPClient, UserAgent: "usaged-enforce"})
	if err != nil {
		return nil, err
	}
	return &Enforcer{cfg: cfg, api: api, log: cfg.Logger, byOrg: map[string]map[string]*enforced{}, readyCh: make(chan struct{})}, nil
}

// Run follows the limits stream until ctx ends, connecting again after
// each end or failure (backing off from 500 ms to 30 s, with jitter).
func (e *Enforcer) Run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	var lastLog time.Time
	for ctx.Err() == nil {
		e.mu.Lock()
		e.next = map[string]map[string]*enforced{} // a snapshot comes first
		e.mu.Unlock()
		err := e.api.StreamLimits(ctx, e.cfg.OrganizationID, e.cfg.Stale, e.handle)
		e.connected.Store(false)
		e.mu.Lock()
		heard := e.ready
		e.next = nil
		e.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if heard {
			backoff = 500 * time.Millisecond
		}
		if k := usage.KindOf(err); k == usage.KindUnauthorized || k == usage.KindForbidden {
			// No limits will come with this token: nobody waits for them.
			e.readyOnce.Do(func() { close(e.readyCh) })
		}
		if now := time.Now(); now.Sub(lastLog) > time.Minute {
			lastLog = now
			level, hint := slog.LevelWarn, "keeps the last state and counts on locally"
			if e.cfg.FailClosed {
				hint = "refuses identified clients (503) once the state is older than the stale bound"
			}
			switch usage.KindOf(err) {
			case usage.KindUnauthorized, usage.KindForbidden:
				level, hint = slog.LevelError, "the token needs usage:limit:view (or be the admin token) to enforce limits"
			}
			e.log.Log(ctx, level, "the limits stream ended; connecting again", "err", err, "enforcement", hint)
		}
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sleep):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// handle applies one event of the stream.
func (e *Enforcer) handle(ev client.LimitEvent) error {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastHeard = now
	e.connected.Store(true)
	target := e.byOrg
	if e.next != nil {
		target = e.next
	}
	switch ev.Type {
	case "limit":
		l, err := limitOf(ev.Limit)
		if err != nil {
			return err
		}
		loc, err := l.Window.Location()
		if err != nil {
			return fmt.Errorf("the limits stream's limit %s: %w", l.ID, err)
		}
		org := target[l.OrganizationID]
		if org == nil {
			org = map[string]*enforced{}
			target[l.OrganizationID] = org
		}
		if old := org[l.ID]; old == nil || old.limit.Version != l.Version {
			// A new version may count other requests: it starts from
			// usaged's values, which follow at once.
			org[l.ID] = &enforced{limit: l, loc: loc, counters: map[string]*counter{}}
		}
	case "value":
		v := ev.Value
		l := target[v.OrganizationID][v.LimitID]
		if l == nil || l.limit.Version != v.Version {
			return nil
		}
		start, err1 := time.Parse(time.RFC3339, v.WindowStart)
		end, err2 := time.Parse(time.RFC3339, v.WindowEnd)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("the limits stream's value of %s: %w", v.LimitID, err)
		}
		l.observe(v.ClientID, usage.Interval{Start: start, End: end}, v.Value)
		e.updates.Add(1)
	case "removed":
		delete(target[ev.Removed.OrganizationID], ev.Removed.LimitID)
	case "ready":
		e.merge()
	case "heartbeat":
		if now.Sub(e.lastPrune) >= pruneEvery {
			e.prune(now)
		}
	}
	return nil
}

// pruneEvery is how often the counters of windows that ended are dropped:
// a limit on each client keeps one per client it saw.
const pruneEvery = time.Minute

// prune drops the counters of windows that ended before now.
func (e *Enforcer) prune(now time.Time) {
	e.lastPrune = now
	for _, ls := range e.byOrg {
		for _, l := range ls {
			for client, c := range l.counters {
				if c.roll != nil && c.roll.idle(now) || c.roll == nil && !now.Before(c.window.End) {
					delete(l.counters, client)
				}
			}
		}
	}
}

// merge makes the snapshot just received the state, keeping what this
// process counted on top of the old state where the window is the same.
func (e *Enforcer) merge() {
	if e.next == nil {
		return // a second ready: nothing was being received
	}
	for org, ls := range e.next {
		for id, l := range ls {
			old := e.byOrg[org][id]
			if old == nil || old.limit.Version != l.limit.Version {
				continue
			}
			for client, c := range old.counters {
				if c.roll != nil {
					l.keepOwn(client, c.roll)
					continue
				}
				l.observe(client, c.window, c.value)
			}
		}
	}
	// From here on, events apply to the state itself.
	e.byOrg, e.next, e.ready = e.next, nil, true
	e.readyOnce.Do(func() { close(e.readyCh) })
}

// WaitReady waits until the Enforcer has received the limits once, or ctx
// ends. A proxy waits for it before it serves: a request admitted before
// would count towards no limit here.
func (e *Enforcer) WaitReady(ctx context.Context) error {
	select {
	case <-e.readyCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// observe raises the value of client's window iv to v: a later window
// replaces an earlier one, an earlier one is ignored.
func (l *enforced) observe(client string, iv usage.Interval, v float64) {
	if l.limit.Window.Type == usage.WindowRolling {
		l.rolling(client).heard(iv, v)
		return
	}
	c := l.counters[client]
	switch {
	case c == nil || iv.Start.After(c.window.Start):
		l.counters[client] = &counter{window: iv, value: v}
	case iv.Start.Equal(c.window.Start):
		c.value = max(c.value, v)
	}
}

// at returns client's counter for the window holding now.
func (l *enforced) at(client string, now time.Time) *counter {
	if l.limit.Scope != usage.ScopeEachClient {
		client = ""
	}
	if l.limit.Window.Type == usage.WindowRolling {
		c := l.counters[client]
		if c == nil {
			c = &counter{roll: newRolling(l.limit.Window.Minutes)}
			l.counters[client] = c
		}
		c.window = l.limit.Window.RollingIn(now, l.loc)
		c.value = c.roll.value(now)
		return c
	}
	c := l.counters[client]
	if c != nil && now.Before(c.window.End) && !now.Before(c.window.Start) {
		return c
	}
	iv, err := l.limit.Window.CurrentIn(now, l.loc)
	if err != nil {
		return &counter{} // not a calendar window: never reached
	}
	if c == nil || iv.Start.After(c.window.Start) {
		c = &counter{window: iv}
		l.counters[client] = c
	}
	return c
}

// Admit implements meter.Gate: it refuses a request of a client over an
// enforced limit that counts it, with 429 and Retry-After at the end of
// the last of the windows in the way; and counts the request in every
// requests limit that counts it, refused or not, as usaged will.
func (e *Enforcer) Admit(r *http.Request, id attrib.Identity, template string) *meter.Refusal {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.FailClosed && (!e.ready || now.Sub(e.lastHeard) > e.cfg.Stale) {
		e.failedClosed.Add(1)
		return unavailable(e.ready, now.Sub(e.lastHeard))
	}
	var over *enforced
	var overAt *counter
	for _, l := range e.byOrg[id.OrganizationID] {
		if !l.limit.Applies(id.ClientID, id.UserID, template, r.Method) {
			continue
		}
		c := l.at(id.ClientID, now)
		if c.value >= l.limit.Value && (over == nil || c.window.End.After(overAt.window.End)) {
			over, overAt = l, c
		}
		if l.limit.Metric == usage.LimitRequests {
			c.add(1, now)
		}
	}
	if over == nil {
		return nil
	}
	e.refused.Add(1)
	return tooMany(&over.limit, overAt, now)
}

// Served implements meter.Gate: it counts what the request came to in
// the limits of other metrics than requests that count it.
func (e *Enforcer) Served(id attrib.Identity, template, method string, res meter.Response) {
	counts := usage.CountsFor(res.Status)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.byOrg[id.OrganizationID] {
		var add float64
		switch l.limit.Metric {
		case usage.LimitRequests, usage.LimitErrorRate:
			continue // counted at Admit; an error rate is never enforced
		case usage.LimitResponseBytes:
			add = float64(max(res.ResponseBytes, 0))
		default:
			add = float64(counts.Get(l.limit.Metric.QueryMetrics()[0]))
		}
		if add == 0 || !l.limit.Applies(id.ClientID, id.UserID, template, method) {
			continue
		}
		// The window of the request's start, as usaged counts it.
		l.at(id.ClientID, res.Start).add(add, res.Start)
	}
}

// refusalBody is the JSON body of a 429.
type refusalBody struct {
	Status    int     `json:"status"`
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	LimitID   string  `json:"limitId"`
	LimitName string  `json:"limitName"`
	Metric    string  `json:"metric"`
	Limit     float64 `json:"limit"`
	WindowEnd string  `json:"windowEnd"`
}

// tooMany is the 429 of a request over limit l, whose window c ends at the
// reset.
func tooMany(l *usage.Limit, c *counter, now time.Time) *meter.Refusal {
	reset := max(int64(math.Ceil(c.window.End.Sub(now).Seconds())), 1)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.FormatInt(reset, 10))
	// The rate limit fields of the IETF draft (RateLimit-Limit,
	// -Remaining, -Reset in seconds, and the policy with its window).
	h.Set("RateLimit-Limit", strconv.FormatFloat(l.Value, 'f', -1, 64))
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.FormatInt(reset, 10))
	h.Set("RateLimit-Policy", fmt.Sprintf("%s;w=%d", strconv.FormatFloat(l.Value, 'f', -1, 64), int64(c.window.End.Sub(c.window.Start).Seconds())))
	b, _ := json.Marshal(refusalBody{
		Status: http.StatusTooManyRequests, Code: "usage.limit.exceeded",
		Message: fmt.Sprintf("over the usage limit %q: %s of %s %s in its window; it resets at %s", l.Name,
			strconv.FormatFloat(c.value, 'f', -1, 64), strconv.FormatFloat(l.Value, 'f', -1, 64), l.Metric, c.window.End.Format(time.RFC3339)),
		LimitID: l.ID, LimitName: l.Name, Metric: l.Metric.String(), Limit: l.Value, WindowEnd: c.window.End.Format(time.RFC3339),
	})
	return &meter.Refusal{Status: http.StatusTooManyRequests, Header: h, Body: b}
}

// unavailable is the 503 of a request refused because the limits are not
// known (FailClosed).
func unavailable(ever bool, silent time.Duration) *meter.Refusal {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", "5")
	msg := "usage limits are not known yet: usaged has not been reached"
	if ever {
		msg = fmt.Sprintf("usage limits are not known: nothing heard from usaged for %s", silent.Round(time.Second))
	}
	b, _ := json.Marshal(map[string]any{"status": http.StatusServiceUnavailable, "code": "usage.limits.unknown", "message": msg})
	return &meter.Refusal{Status: http.StatusServiceUnavailable, Header: h, Body: b}
}

// Stats are an Enforcer's counters.
type Stats struct {
	Refused      uint64 // requests answered 429
	FailedClosed uint64 // requests answered 503 (FailClosed)
	Updates      uint64 // values heard from usaged
	Connected    bool   // whether the stream is open
	Limits       int    // enforced limits known
}

// Stats returns the counters so far.
func (e *Enforcer) Stats() Stats {
	e.mu.Lock()
	n := 0
	for _, ls := range e.byOrg {
		n += len(ls)
	}
	e.mu.Unlock()
	return Stats{Refused: e.refused.Load(), FailedClosed: e.failedClosed.Load(), Updates: e.updates.Load(), Connected: e.connected.Load(), Limits: n}
}

// limitOf reads a limit of the stream.
func limitOf(w *wire.LimitStreamLimit) (usage.Limit, error) {
	scope, err1 := usage.ParseLimitScope(w.Scope)
	metric, err2 := usage.ParseLimitMetric(w.Metric)
	window, err3 := usage.ParseWindowType(w.Window.Type)
	if err := errors.Join(err1, err2, err3); err != nil {
		return usage.Limit{}, fmt.Errorf("the limits stream's limit %s: %w", w.ID, err)
	}
	l := usage.Limit{
		ID: w.ID, OrganizationID: w.OrganizationID, Name: w.Name, Scope: scope, ClientID: w.ClientID,
		Filter: usage.LimitFilter{UserIDs: w.Filter.UserIDs, TemplateURIs: w.Filter.TemplateURIs, HTTPMethods: w.Filter.HTTPMethods},
		Metric: metric, Window: usage.Window{Type: window, TimeZone: w.Window.TimeZone, Minutes: w.Window.Minutes},
		Value: w.Value, Thresholds: w.Thresholds, Enforced: w.Enforced, Version: w.Version,
	}
	return l, nil
}
