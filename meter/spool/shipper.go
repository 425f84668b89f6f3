package spool

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/meter/retryafter"
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

// eventsPath is usaged's ingest route.
const eventsPath = "/api/v2/usage/events"

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
	url string
	log *slog.Logger

	mu    sync.Mutex
	stats ShipperStats

	buf  bytes.Buffer
	zw   *gzip.Writer
	line []byte // one encoded event
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
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // the proxy's CPU is for requests
	return &Shipper{cfg: cfg, url: strings.TrimRight(cfg.Server, "/") + eventsPath, log: cfg.Logger, zw: zw}, nil
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
				if !sleep(ctx, sh.cfg.MaxBackoff) {
					return nil
				}
				continue
			}
			body = nil
		}
		if body == nil {
			sent = min(len(evs), limit)
			body = sh.encode(evs[:sent])
		}
		res, status, retryAfter, err := sh.post(ctx, body)
		if ctx.Err() != nil {
			return nil // the batch stays unacknowledged: the next start sends it
		}
		var wait time.Duration
		switch {
		case err != nil:
			sh.failed(err)
			wait = sh.backoff(attempt)
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
				wait = sh.backoff(attempt)
			}
			sh.log.Warn("shipper: usaged is rate limiting; waiting", "retryIn", wait)
		case status >= 500:
			sh.failed(fmt.Errorf("usaged answered %d", status))
			wait = sh.backoff(attempt)
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
		if !sleep(ctx, wait) {
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

// post sends one encoded batch.
func (sh *Shipper) post(ctx context.Context, body []byte) (answer, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sh.url, bytes.NewReader(body))
	if err != nil {
		return answer{}, 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+sh.cfg.Token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", "usaged-shipper")
	resp, err := sh.cfg.Client.Do(req)
	if err != nil {
		return answer{}, 0, 0, err
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode == http.StatusOK {
		// Per-event errors make the answer grow with the batch.
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			// usaged has recorded the batch, but without its answer this
			// cannot know: send it again, usaged counts it once.
			return answer{}, 0, 0, fmt.Errorf("reading usaged's answer: %w", err)
		}
		var r ingest.Result
		if err := json.Unmarshal(raw, &r); err != nil {
			sh.log.Warn("shipper: usaged's answer is not a result; the batch counts as delivered", "err", err)
		} else {
			a.result = &r
		}
		return a, resp.StatusCode, 0, nil
	}
	a.raw, _ = io.ReadAll(io.LimitReader(resp.Body, 2048))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	return a, resp.StatusCode, retryafter.Parse(resp.Header.Get("Retry-After"), time.Now(), maxRetryAfter), nil
}

// backoff is the wait after attempt failures in a row: "full jitter", a
// uniform draw below an exponentially growing cap, so that many proxies
// coming back after an outage do not retry in step.
func (sh *Shipper) backoff(attempt int) time.Duration {
	ceil := sh.cfg.MaxBackoff
	if attempt < 30 {
		ceil = min(ceil, sh.cfg.MinBackoff<<attempt)
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil) + 1
}

// sleep waits d unless ctx ends first; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// encode returns evs as gzip NDJSON. The returned bytes are valid until the
// next call.
func (sh *Shipper) encode(evs []usage.Event) []byte {
	sh.buf.Reset()
	sh.zw.Reset(&sh.buf)
	for i := range evs {
		sh.line = ingest.AppendNDJSON(sh.line[:0], &evs[i])
		sh.zw.Write(sh.line)
	}
	sh.zw.Close()
	return sh.buf.Bytes()
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
