// Package notify delivers notifications to organizations' webhook
// endpoints: it takes pending notifications from the outbox, sends each,
// signed (package webhook), to every enabled endpoint of its organization
// subscribed to its type, records every attempt in the endpoint's delivery
// log, retries failures with exponential backoff and full jitter, and marks
// a notification done once every endpoint has answered 2xx or been given
// up on.
//
// Nothing of the schedule is kept but the delivery log: after a restart the
// worker rebuilds each endpoint's state from the attempts recorded, and
// the jitter of an attempt is a hash of the notification, the endpoint and
// the attempt number, so that the schedule is the same as before.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
	"github.com/usaged/usaged/webhook"
)

// Backoff is the retry schedule of one notification to one endpoint. The
// wait before attempt n+1 is drawn from [0, min(Max, Initial·2^(n-1))]
// ("full jitter"); attempts stop once the next would come more than GiveUp
// after the first.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	GiveUp  time.Duration
}

// DefaultBackoff starts at 5 s, doubles up to 1 h and gives up after 24 h.
var DefaultBackoff = Backoff{Initial: 5 * time.Second, Max: time.Hour, GiveUp: 24 * time.Hour}

// Ceiling returns the longest wait after attempt n (from 1).
func (b Backoff) Ceiling(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Bounds of a response body.
const (
	MaxResponseRead = 64 << 10 // read, then the connection is dropped
)

// Config configures a Worker.
type Config struct {
	Outbox   store.Outbox   // the pending notifications; nil: only Send works
	Webhooks store.Webhooks // required
	// Client sends the requests; default NewClient(false), which refuses
	// private addresses.
	Client *http.Client
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
	// Concurrency bounds the requests in flight; default 8. An endpoint
	// has at most one request in flight, so that a slow one holds one
	// slot and the others go on.
	Concurrency int
	Backoff     Backoff // default DefaultBackoff
	// Jitter returns the fraction in [0, 1) of the ceiling to wait before
	// the attempt after attempt n; default a hash of the three, the same
	// after a restart.
	Jitter func(notification, endpoint string, n int) float64
	// Poll is how often Run looks at the outbox; default 1 s. Wake makes
	// it look at once, so that with an outbox that says when it has new
	// notifications (store.OutboxWatcher) Poll only bounds how late a
	// retry that falls due is attempted.
	Poll time.Duration
	// Batch is how many pending notifications one pass takes; default 1000.
	Batch int
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Webhooks == nil {
		errs = append(errs, errors.New("notify: Webhooks is required"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, errors.New("notify: Concurrency must not be negative"))
	}
	if b := c.Backoff; b != (Backoff{}) && (b.Initial <= 0 || b.Max < b.Initial || b.GiveUp <= 0) {
		errs = append(errs, fmt.Errorf("notify: Backoff %+v needs 0 < Initial <= Max and a positive GiveUp", b))
	}
	return errors.Join(errs...)
}

// Worker delivers notifications. Its methods are safe for concurrent use.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	sem  chan struct{}
	wg   sync.WaitGroup
	wake chan struct{} // Wake's, buffered: a wake during a pass makes one more

	mu       sync.Mutex
	state    map[target]*progress // of notifications still pending
	inFlight map[string]bool      // endpoint ids with a request under way
}

// target is one notification to one endpoint.
type target struct{ notification, endpoint string }

// progress is a target's schedule, rebuilt from its recorded attempts.
type progress struct {
	attempts    int       // scheduled attempts made (replays are not)
	first, last time.Time // of the scheduled attempts
	done        bool      // delivered, or given up
}

// New returns a Worker for cfg.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(false)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 8
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Jitter == nil {
		cfg.Jitter = hashJitter
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	return &Worker{
		cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.Concurrency), wake: make(chan struct{}, 1),
		state: map[target]*progress{}, inFlight: map[string]bool{},
	}, nil
}

// hashJitter is the default Jitter: FNV-1a of the three, as a fraction.
func hashJitter(notification, endpoint string, n int) float64 {
	h := fnv.New64a()
	h.Write([]byte(notification))
	h.Write([]byte{0})
	h.Write([]byte(endpoint))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// Run delivers until ctx ends, a pass every Poll and one at each Wake;
// then it waits for the requests in flight.
func (w *Worker) Run(ctx context.Context) {
	defer w.wg.Wait()
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		if err := w.Step(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("webhook deliveries: reading the outbox failed; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// Wake makes Run take its next pass now rather than at the next Poll: the
// outbox has new notifications. It never blocks; wakes that come while a
// pass runs make one pass more, not one each.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Wait waits for the requests Step started.
func (w *Worker) Wait() { w.wg.Wait() }

// Step makes one pass: it marks done the pending notifications whose
// endpoints are all delivered or given up, and starts the attempts that
// are due, as far as the concurrency allows, without waiting for them.
func (w *Worker) Step(ctx context.Context) error {
	if w.cfg.Outbox == nil {
		return nil
	}
	ns, err := w.cfg.Outbox.PendingNotifications(ctx, w.cfg.Batch)
	if err != nil {
		return err
	}
	now := w.cfg.Now()
	endpoints := map[string][]usage.WebhookEndpoint{}
	var done []string
	for i := range ns {
		n := &ns[i]
		eps, ok := endpoints[n.OrganizationID]
		if !ok {
			if eps, err = w.cfg.Webhooks.Webhooks(ctx, n.OrganizationID); err != nil {
				return err
			}
			endpoints[n.OrganizationID] = eps
		}
		complete := true
		for j := range eps {
			ep := &eps[j]
			if !ep.Subscribed(n.Type) || ep.CreatedAt.After(n.Time) {
				continue
			}
			p, err := w.progress(ctx, n.ID, ep.ID)
			if err != nil {
				return err
			}
			if w.finished(p, n, ep, now) {
				continue
			}
			complete = false
			if p.attempts > 0 && now.Before(w.due(p, n.ID, ep.ID)) {
				continue
			}
			w.start(ctx, *ep, *n)
		}
		if complete {
			done = append(done, n.ID)
		}
	}
	if len(done) == 0 {
		return nil
	}
	if err := w.cfg.Outbox.MarkNotificationsDone(ctx, done); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range done {
		for t := range w.state {
			if t.notification == id {
				delete(w.state, t)
			}
		}
	}
	return nil
}

// progress returns the schedule of a target, read from its recorded
// attempts the first time.
func (w *Worker) progress(ctx context.Context, notification, endpoint string) (progress, error) {
	t := target{notification, endpoint}
	w.mu.Lock()
	p, ok := w.state[t]
	w.mu.Unlock()
	if ok {
		w.mu.Lock()
		defer w.mu.Unlock()
		return *p, nil
	}
	ds, err := w.cfg.Webhooks.NotificationDeliveries(ctx, endpoint, notification)
	if err != nil {
		return progress{}, err
	}
	p = &progress{}
	for i := range ds {
		d := &ds[i]
		if d.Replay {
			continue
		}
		p.attempts++
		if p.first.IsZero() {
			p.first = d.Time
		}
		p.last = d.Time
		if d.Succeeded() {
			p.done = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if q, ok := w.state[t]; ok { // an attempt recorded meanwhile
		return *q, nil
	}
	w.state[t] = p
	return *p, nil
}

// due returns when the attempt after p's last is due.
func (w *Worker) due(p progress, notification, endpoint string) time.Time {
	ceiling := w.cfg.Backoff.Ceiling(p.attempts)
	wait := time.Duration(w.cfg.Jitter(notification, endpoint, p.attempts) * float64(ceiling))
	return p.last.Add(wait)
}

// finished reports whether a target needs no more attempts: delivered, or
// its next attempt would come past the give-up time, which it marks and
// logs once.
func (w *Worker) finished(p progress, n *usage.Notification, ep *usage.WebhookEndpoint, now time.Time) bool {
	if p.done {
		return true
	}
	if p.attempts == 0 || !w.due(p, n.ID, ep.ID).After(p.first.Add(w.cfg.Backoff.GiveUp)) {
		return false
	}
	w.mu.Lock()
	if q := w.state[target{n.ID, ep.ID}]; q != nil {
		q.done = true
	}
	w.mu.Unlock()
	w.log.Warn("webhook delivery given up", "organizationId", n.OrganizationID, "webhookId", ep.ID,
		"notificationId", n.ID, "attempts", p.attempts, "since", p.first)
	return true
}

// start sends n to ep on a goroutine of its own unless ep has a request in
// flight or every slot is taken; the next pass tries again.
func (w *Worker) start(ctx context.Context, ep usage.WebhookEndpoint, n usage.Notification) {
	w.mu.Lock()
	if w.inFlight[ep.ID] {
		w.mu.Unlock()
		return
	}
	select {
	case w.sem <- struct{}{}:
	default:
		w.mu.Unlock()
		return
	}
	w.inFlight[ep.ID] = true
	w.mu.Unlock()
	w.wg.Go(func() {
		defer func() {
			w.mu.Lock()
			delete(w.inFlight, ep.ID)
			w.mu.Unlock()
			<-w.sem
		}()
		if _, err := w.attempt(ctx, &ep, &n, false); err != nil && ctx.Err() == nil {
			w.log.Warn("webhook delivery: recording the attempt failed", "webhookId", ep.ID, "notificationId", n.ID, "err", err)
		}
	})
}

// Send sends n to ep once, now, outside the retry schedule (a replay or a
// test), records the attempt and returns it. The request's failure is in
// the delivery; the error is the store's.
func (w *Worker) Send(ctx context.Context, ep usage.WebhookEndpoint, n usage.Notification) (usage.Delivery, error) {
	return w.attempt(ctx, &ep, &n, true)
}

// attempt sends n to ep and records the delivery.
func (w *Worker) attempt(ctx context.Context, ep *usage.WebhookEndpoint, n *usage.Notification, replay bool) (usage.Delivery, error) {
	prior, err := w.cfg.Webhooks.NotificationDeliveries(ctx, ep.ID, n.ID)
	if err != nil {
		return usage.Delivery{}, err
	}
	d := usage.Delivery{
		ID: newID("dlv_"), OrganizationID: ep.OrganizationID, EndpointID: ep.ID, Notification: *n,
		Attempt: len(prior) + 1, Time: w.cfg.Now(), Replay: replay,
	}
	w.send(ctx, ep, n, &d)
	if err := w.cfg.Webhooks.AppendDelivery(ctx, d); err != nil {
		return d, err
	}
	if !replay {
		w.mu.Lock()
		if p := w.state[target{n.ID, ep.ID}]; p != nil {
			p.attempts++
			if p.first.IsZero() {
				p.first = d.Time
			}
			p.last = d.Time
			p.done = p.done || d.Succeeded()
		}
		w.mu.Unlock()
	}
	level := slog.LevelDebug
	if !d.Succeeded() {
		level = slog.LevelInfo
	}
	w.log.Log(ctx, level, "webhook delivery", "webhookId", ep.ID, "notificationId", n.ID, "attempt", d.Attempt,
		"status", d.StatusCode, "latency", d.Latency, "err", d.Error)
	return d, nil
}

// send makes the request and fills in d's outcome.
func (w *Worker) send(ctx context.Context, ep *usage.WebhookEndpoint, n *usage.Notification, d *usage.Delivery) {
	body, err := Body(n)
	if err != nil {
		d.Error = err.Error()
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		d.Error = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "usaged-webhooks")
	if err := webhook.SetHeaders(req.Header, ep.Secret, n.ID, w.cfg.Now(), body); err != nil {
		d.Error = err.Error()
		return
	}
	start := time.Now()
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		d.Latency = time.Since(start)
		d.Error = err.Error()
		return
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseRead))
	resp.Body.Close()
	d.Latency = time.Since(start)
	d.StatusCode = resp.StatusCode
	d.Response = snippet(b)
	if err != nil && d.Succeeded() {
		// A 2xx whose body broke off still answered: it counts.
		w.log.Debug("webhook delivery: reading the response failed", "webhookId", ep.ID, "err", err)
	}
}

// snippet returns the start of b, at most usage.MaxResponseSnippet bytes
// cut at a rune boundary, invalid UTF-8 replaced.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b[:min(len(b), usage.MaxResponseSnippet)]), "\uFFFD")
	for len(s) > usage.MaxResponseSnippet {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// envelope is the request body: the notification's type, time and
// organization around its payload.
type envelope struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Timestamp      string          `json:"timestamp"`
	OrganizationID string          `json:"organizationId"`
	Data           json.RawMessage `json:"data"`
}

// Body returns the request body of n, the same for every attempt:
// {"id","type","timestamp","organizationId","data"}, data the payload.
func Body(n *usage.Notification) ([]byte, error) {
	data := json.RawMessage(n.Payload)
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return json.Marshal(envelope{
		ID: n.ID, Type: n.Type, Timestamp: n.Time.UTC().Format(time.RFC3339Nano),
		OrganizationID: n.OrganizationID, Data: data,
	})
}

// newID returns prefix and 16 random bytes in hex.
func newID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewNotificationID returns a new notification id, "msg_" and 32 hex
// digits.
func NewNotificationID() string { return newID("msg_") }
