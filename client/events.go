package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// EventsPath is usaged's ingest route.
const EventsPath = "/api/v2/usage/events"

// PostEvents sends one NDJSON body of events (POST /api/v2/usage/events),
// gzip-compressed when gzipped is set, once. A failure the server answered
// is an *Error; a 200 whose body is not a result is an error wrapping
// ErrUnexpectedAnswer (the events were taken all the same).
func (c *Client) PostEvents(ctx context.Context, body []byte, gzipped bool) (ingest.Result, error) {
	return c.postNDJSON(ctx, EventsPath, body, gzipped)
}

// PostActivity sends one NDJSON body of a service's activity events (POST
// /api/services/{guid}/events), gzip-compressed when gzipped is set, once.
func (c *Client) PostActivity(ctx context.Context, service usage.GUID, body []byte, gzipped bool) (ingest.Result, error) {
	return c.postNDJSON(ctx, "/api/services/"+service.String()+"/events", body, gzipped)
}

func (c *Client) postNDJSON(ctx context.Context, path string, body []byte, gzipped bool) (ingest.Result, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+path, bytes.NewReader(body))
	if err != nil {
		return ingest.Result{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	var res ingest.Result
	err = c.send(req, &res)
	return res, err
}

// Retry is the retry policy of event batches, the one usaged's metering
// shipper follows: a failure the server may get over (Retryable) is tried
// again after the answer's Retry-After, or else after a "full jitter"
// backoff, a uniform draw below a cap that doubles from MinBackoff up to
// MaxBackoff, so that many senders coming back after an outage do not
// retry in step; a batch the server refuses as too large (413) is sent in
// halves.
type Retry struct {
	MinBackoff time.Duration // default 200 ms
	MaxBackoff time.Duration // default 30 s
	// Attempts bounds the tries of one batch, the first one included;
	// 0 tries until the context ends.
	Attempts int
}

// Brief is the policy of a command a person waits for: four tries in a
// few seconds, for a server that is overloaded or restarting.
var Brief = Retry{MinBackoff: 500 * time.Millisecond, MaxBackoff: 4 * time.Second, Attempts: 4}

// Defaults of Retry.
const (
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// Backoff is the wait after attempt failures in a row (0 for the first).
func (r Retry) Backoff(attempt int) time.Duration {
	lo, hi := r.MinBackoff, r.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = max(DefaultMaxBackoff, lo)
	}
	ceil := hi
	if attempt < 30 {
		ceil = min(ceil, lo<<attempt)
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil) + 1
}

// Do calls post until it succeeds, fails in a way that is not Retryable,
// the attempts are used up or ctx ends, waiting between tries as r says.
// Retrying a batch of events is safe: event ids make posting idempotent.
func (r Retry) Do(ctx context.Context, post func() (ingest.Result, error)) (ingest.Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := post()
		if err == nil || !Retryable(err) || ctx.Err() != nil || (r.Attempts > 0 && attempt+1 >= r.Attempts) {
			return res, err
		}
		wait := usage.RetryAfterOf(err)
		if wait <= 0 {
			wait = r.Backoff(attempt)
		}
		if !Sleep(ctx, wait) {
			return res, err
		}
	}
}

// Sleep waits d unless ctx ends first; it reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// SendEvents sends evs as one gzip NDJSON batch, as the metering shipper
// does, following r: retried when the server may get over the failure,
// and sent in halves when it refuses the batch as too large.
func (c *Client) SendEvents(ctx context.Context, evs []usage.Event, r Retry) (ingest.Result, error) {
	enc := encoders.Get().(*Encoder)
	defer encoders.Put(enc)
	return sendHalving(ctx, evs, r, enc.Events, func(body []byte) (ingest.Result, error) { return c.PostEvents(ctx, body, true) })
}

// SendActivity sends the activity events of service as SendEvents sends
// events.
func (c *Client) SendActivity(ctx context.Context, service usage.GUID, evs []usage.Activity, r Retry) (ingest.Result, error) {
	enc := encoders.Get().(*Encoder)
	defer encoders.Put(enc)
	return sendHalving(ctx, evs, r, enc.Activity, func(body []byte) (ingest.Result, error) { return c.PostActivity(ctx, service, body, true) })
}

// encoders are reused across batches: a gzip writer is costly to make.
var encoders = sync.Pool{New: func() any { return NewEncoder() }}

// sendHalving sends items encoded, splitting them in halves for as long
// as the server answers 413.
func sendHalving[T any](ctx context.Context, items []T, r Retry, encode func([]T) []byte, post func([]byte) (ingest.Result, error)) (ingest.Result, error) {
	body := encode(items)
	res, err := r.Do(ctx, func() (ingest.Result, error) { return post(body) })
	if StatusOf(err) != http.StatusRequestEntityTooLarge || len(items) < 2 {
		return res, err
	}
	half := len(items) / 2
	a, err := sendHalving(ctx, items[:half], r, encode, post)
	if err != nil {
		return a, err
	}
	b, err := sendHalving(ctx, items[half:], r, encode, post)
	a.Accepted += b.Accepted
	a.Duplicates += b.Duplicates
	a.Rejected += b.Rejected
	a.Errors = append(a.Errors, b.Errors...)
	return a, err
}

// Encoder encodes batches as gzip NDJSON, reusing its buffers: what it
// returns is valid until its next call. It is not safe for concurrent use.
type Encoder struct {
	buf  bytes.Buffer
	zw   *gzip.Writer
	line []byte
}

// NewEncoder returns an Encoder that compresses for speed: the CPU of a
// sender is usually for something else.
func NewEncoder() *Encoder {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return &Encoder{zw: zw}
}

// Events returns evs as gzip NDJSON.
func (e *Encoder) Events(evs []usage.Event) []byte {
	e.start()
	for i := range evs {
		e.line = ingest.AppendNDJSON(e.line[:0], &evs[i])
		e.zw.Write(e.line)
	}
	return e.end()
}

// Activity returns evs as gzip NDJSON.
func (e *Encoder) Activity(evs []usage.Activity) []byte {
	e.start()
	for i := range evs {
		e.line = ingest.AppendActivityNDJSON(e.line[:0], &evs[i])
		e.zw.Write(e.line)
	}
	return e.end()
}

// Gzip returns body compressed.
func (e *Encoder) Gzip(body []byte) []byte {
	e.start()
	e.zw.Write(body)
	return e.end()
}

func (e *Encoder) start() {
	e.buf.Reset()
	e.zw.Reset(&e.buf)
}

func (e *Encoder) end() []byte {
	e.zw.Close()
	return e.buf.Bytes()
}
