package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// Shipper defaults and limits.
const (
	DefaultBatchSize  = 5000                   // ShipperConfig.BatchSize when 0
	MaxBatchSize      = 100_000                // a batch must stay well under usaged's body limit
	DefaultMinBackoff = 200 * time.Millisecond // ShipperConfig.MinBackoff when 0
	DefaultMaxBackoff = 30 * time.Second       // ShipperConfig.MaxBackoff when 0
	// DefaultTimeout bounds one POST of the default client: a batch is
	// small, and a hung connection must not stall shipping for long.
	DefaultTimeout = 60 * time.Second
	// maxRetryAfter caps a server's Retry-After, so that a misconfigured
	// proxy in between cannot park the shipper for hours.
	maxRetryAfter = 10 * time.Minute
)

// ShipperConfig configures NewShipper.
type ShipperConfig struct {
	Spool *Spool // required
	// Server is usaged's base URL, e.g. https://usaged.example.com.
	Server string // required
	// Token is a bearer token: an admin token (every event then names its
	// organization) or a client token with usage:event:add.
	Token                  string // required
	BatchSize              int    // events per POST; default DefaultBatchSize
	MinBackoff, MaxBackoff time.Duration
	Client                 *http.Client // default: one with DefaultTimeout
	Logger                 *slog.Logger // default slog.Default()
}

// Validate reports every problem with the configuration.
func (c ShipperConfig) Validate() error {
	var errs []error
	if c.Spool == nil {
		errs = append(errs, errors.New("spool: Shipper needs a Spool"))
	}
	if c.Server == "" {
		errs = append(errs, errors.New("spool: Server is required: usaged's base URL, e.g. http://127.0.0.1:8080"))
	} else if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("spool: Server %q must be an absolute http or https URL such as http://127.0.0.1:8080", c.Server))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("spool: Token is required: an admin token or a client token with usage:event:add"))
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("spool: BatchSize must be from 1 to %d (or 0 for %d), got %d", MaxBatchSize, DefaultBatchSize, c.BatchSize))
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("spool: backoffs must not be negative, got MinBackoff %s, MaxBackoff %s", c.MinBackoff, c.MaxBackoff))
	} else if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("spool: MinBackoff %s must not be over MaxBackoff %s", c.MinBackoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// Shipper sends a Spool's events to usaged. Its Stats are safe to read
// while it runs.
type Shipper struct {
	cfg ShipperConfig
	log *slog.Logger

	mu    sync.Mutex
	stats ShipperStats

	api   *client.Client
	enc   *client.Encoder
	retry client.Retry // the backoff between failures
}

// ShipperStats are a Shipper's counters.
type ShipperStats struct {
	Batches     uint64    // batches usaged answered 200
	Accepted    uint64    // events usaged counted
	Duplicates  uint64    // events usaged already had (resent after a lost answer or a restart)
	Rejected    uint64    // events usaged refused as invalid; they are acknowledged and gone
	Retries     uint64    // attempts that failed and were retried
	LastError   string    // the last failure, empty if none yet
	LastErrorAt time.Time // when LastError happened
}

// NewShipper returns a Shipper; Run starts it.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	api, err := client.New(client.Config{Server: cfg.Server, Token: cfg.Token, HTTPClient: cfg.Client, UserAgent: "usaged-shipper"})
	if err != nil {
		return nil, err
	}
	return &Shipper{cfg: cfg, log: cfg.Logger, api: api, enc: client.NewEncoder(),
		retry: client.Retry{MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff}}, nil
}

// Stats returns the counters so far.
func (sh *Shipper) Stats() ShipperStats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.stats
}

// Run ships until ctx ends, then returns nil; it returns ErrClosed if the
// spool is closed under it. Run one Shipper per Spool.
//
// A batch is acknowledged in the spool only after usaged answered 200, which
// it does only once every accepted event is durable; a batch whose answer is
// lost is sent again and usaged counts its events once. Every failure is
// retried — a configuration error too, slowly — so events wait in the spool
// rather than being lost; only events usaged rejects as invalid are dropped,
// since sending them again cannot change the answer.
func (sh *Shipper) Run(ctx context.Context) error {
	var (
		evs     []usage.Event // the batch from the spool, not yet acknowledged
		limit   = sh.cfg.BatchSize
		body    []byte // evs[:sent] encoded
		sent    int
		attempt int // failures in a row
	)
	for {
		if len(evs) == 0 {
			var err error
			evs, err = sh.cfg.Spool.Next(ctx, limit)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, ErrClosed) {
					return err
				}
				sh.failed(err)
				sh.log.Error("shipper: reading the spool failed", "err", err)
				if !client.Sleep(ctx, sh.cfg.MaxBackoff) {
					return nil
				}
				continue
			}
			body = nil
		}
		if body == nil {
			sent = min(len(evs), limit)
			body = sh.enc.Events(evs[:sent])
		}
		res, status, retryAfter, err := sh.post(ctx, body)
		if ctx.Err() != nil {
			return nil // the batch stays unacknowledged: the next start sends it
		}
		var wait time.Duration
		switch {
		case err != nil:
			sh.failed(err)
			wait = sh.retry.Backoff(attempt)
			sh.log.Warn("shipper: sending events failed; retrying", "err", err, "events", sent, "retryIn", wait)
		case status == http.StatusOK:
			sh.delivered(res, sent)
			if err := sh.cfg.Spool.Ack(sent); errors.Is(err, ErrClosed) {
				return err
			} else if err != nil {
				sh.log.Error("shipper: acknowledging a delivered batch", "err", err)
			}
			evs, body, attempt = evs[sent:], nil, 0
			continue
		case status == http.StatusTooManyRequests:
			sh.failed(fmt.Errorf("usaged answered %d", status))
			wait = retryAfter
			if wait <= 0 {
				wait = sh.retry.Backoff(attempt)
			}
			sh.log.Warn("shipper: usaged is rate limiting; waiting", "retryIn", wait)
		case status >= 500:
			sh.failed(fmt.Errorf("usaged answered %d", status))
			wait = sh.retry.Backoff(attempt)
			sh.log.Warn("shipper: usaged is unavailable; retrying", "status", status, "retryIn", wait)
		case status == http.StatusRequestEntityTooLarge && sent > 1:
			// The server's body limit is below this batch: halve batches
			// until they fit. Sending a part first is fine, since Ack takes
			// the batch a part at a time.
			sh.failed(fmt.Errorf("usaged answered %d to %d events (%d bytes gzipped)", status, sent, len(body)))
			limit = max(1, sent/2)
			body = nil
			sh.log.Warn("shipper: usaged refused a batch as too large; sending smaller batches", "events", sent, "batchSize", limit)
			sh.retried()
			continue
		default:
			// 400, 401, 403, 404, 413 for one event, 415: a configuration
			// error (token, permission, server URL) or a bug that only a
			// person can fix. Keep the events and try again slowly.
			wait = sh.cfg.MaxBackoff
			sh.failed(fmt.Errorf("usaged answered %d: %s", status, errBody(res)))
			sh.log.Error("shipper: usaged refuses the events; check the server URL and the token (an admin token, or a client token with usage:event:add). Events stay spooled and are retried",
				"status", status, "answer", errBody(res), "retryIn", wait)
		}
		sh.retried()
		attempt++
		if !client.Sleep(ctx, wait) {
			return nil
		}
	}
}

// answer is what usaged answered: its result if it parsed, else the start of
// the body for the log.
type answer struct {
	result *ingest.Result
	raw    []byte
}

// errBody is the answer's body, for the log.
func errBody(a answer) string {
	return strings.TrimSpace(string(a.raw))
}

// post sends one encoded batch. A status usaged answered is returned with
// a nil error, whatever it is; the error is for batches usaged may not
// have seen, or whose answer was lost.
func (sh *Shipper) post(ctx context.Context, body []byte) (answer, int, time.Duration, error) {
	res, err := sh.api.PostEvents(ctx, body, true)
	var ce *client.Error
	switch {
	case err == nil:
		return answer{result: &res}, http.StatusOK, 0, nil
	case errors.Is(err, client.ErrUnexpectedAnswer):
		sh.log.Warn("shipper: usaged's answer is not a result; the batch counts as delivered", "err", err)
		return answer{}, http.StatusOK, 0, nil
	case errors.As(err, &ce):
		return answer{raw: ce.Body}, ce.Status, min(ce.RetryAfter, maxRetryAfter), nil
	}
	// usaged may have recorded the batch, but without its answer this
	// cannot know: send it again, usaged counts it once.
	return answer{}, 0, 0, err
}

// delivered counts a batch usaged answered 200 and logs what it rejected.
func (sh *Shipper) delivered(a answer, n int) {
	sh.mu.Lock()
	sh.stats.Batches++
	if r := a.result; r != nil {
		sh.stats.Accepted += uint64(r.Accepted)
		sh.stats.Duplicates += uint64(r.Duplicates)
		sh.stats.Rejected += uint64(r.Rejected)
	} else {
		sh.stats.Accepted += uint64(n) // unknown: usaged has them all, one way or another
	}
	sh.mu.Unlock()
	r := a.result
	if r == nil || r.Rejected == 0 {
		return
	}
	// One line per code, with an example, rather than one per event.
	type group struct {
		n       int
		example ingest.EventError
	}
	codes := map[string]*group{}
	for _, e := range r.Errors {
		g := codes[e.Code]
		if g == nil {
			g = &group{example: e}
			codes[e.Code] = g
		}
		g.n++
	}
	for code, g := range codes {
		sh.log.Warn("shipper: usaged rejected events; they are dropped, since sending them again cannot change that",
			"code", code, "count", g.n, "exampleId", g.example.ID, "example", g.example.Message)
	}
}

// failed records err as the last error.
func (sh *Shipper) failed(err error) {
	sh.mu.Lock()
	sh.stats.LastError = err.Error()
	sh.stats.LastErrorAt = time.Now()
	sh.mu.Unlock()
}

// retried counts a retry.
func (sh *Shipper) retried() {
	sh.mu.Lock()
	sh.stats.Retries++
	sh.mu.Unlock()
}
