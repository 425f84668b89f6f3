package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/usaged/usaged/genesys/wire"
)

// LimitStreamPath is where the limits stream is.
const LimitStreamPath = LimitsPath + "/stream"

// LimitEvent is one event of the limits stream: Type says which of its
// fields is set.
type LimitEvent struct {
	// Type is "limit" (an enforced limit, new or of a new version),
	// "value" (the value of one in its current window), "removed" (a
	// limit deleted or no longer enforced), "ready" (what the server had
	// when the stream began has all been sent) or "heartbeat".
	Type    string
	Limit   *wire.LimitStreamLimit
	Value   *wire.LimitStreamValue
	Removed *wire.LimitStreamRemoved
}

// maxStreamLine bounds one line of the stream: a limit with its filters
// is a few kilobytes at most.
const maxStreamLine = 1 << 20

// ErrStreamIdle is returned by StreamLimits when nothing, not even a
// heartbeat, arrived for the idle time it was given.
var ErrStreamIdle = errors.New("client: the limits stream went quiet")

// StreamLimits follows the limits stream of organizationID ("" for the
// token's own, or every organization for the admin token) and calls fn
// with each event, until ctx ends, the server ends the stream, fn fails,
// or nothing arrives for idle (ErrStreamIdle); it returns why. The server
// ends a stream after some minutes: the caller connects again.
func (c *Client) StreamLimits(ctx context.Context, organizationID string, idle time.Duration, fn func(LimitEvent) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	path := LimitStreamPath
	if organizationID != "" {
		path += "?organizationId=" + url.QueryEscape(organizationID)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	c.prepare(req, "text/event-stream")
	hc := *c.hc
	hc.Timeout = 0 // a stream has no end; idle bounds it instead
	quiet := time.AfterFunc(idle, func() { cancel(ErrStreamIdle) })
	defer quiet.Stop()
	resp, err := hc.Do(req)
	if err != nil {
		return streamErr(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		return newError(resp.StatusCode, resp.Header, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	var name string
	var data []byte
	for sc.Scan() {
		quiet.Reset(idle)
		line := sc.Bytes()
		switch {
		case len(line) == 0: // an event ends
			if name != "" {
				ev, err := decodeLimitEvent(name, data)
				if err != nil {
					return err
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			name, data = "", data[:0]
		case line[0] == ':':
			if err := fn(LimitEvent{Type: "heartbeat"}); err != nil {
				return err
			}
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
	if err := sc.Err(); err != nil {
		return streamErr(ctx, err)
	}
	return streamErr(ctx, io.EOF)
}

// streamErr returns why ctx ended, if it did, rather than what that did
// to the connection.
func streamErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

func decodeLimitEvent(name string, data []byte) (LimitEvent, error) {
	ev := LimitEvent{Type: name}
	var v any
	switch name {
	case "limit":
		ev.Limit = &wire.LimitStreamLimit{}
		v = ev.Limit
	case "value":
		ev.Value = &wire.LimitStreamValue{}
		v = ev.Value
	case "removed":
		ev.Removed = &wire.LimitStreamRemoved{}
		v = ev.Removed
	default:
		return ev, nil // ready, and events of later versions, which carry nothing needed
	}
	if err := json.Unmarshal(data, v); err != nil {
		return ev, fmt.Errorf("the limits stream's %s event: %w: %v", name, ErrUnexpectedAnswer, err)
	}
	return ev, nil
}
