// Package client is a typed Go client of usaged's HTTP API: the admin
// API (organizations, OAuth clients), tokens, event ingest with the
// shipper's retry policy and the listing of accepted events, the usage
// queries, and the service-usage registry, activity and reports.
//
// The Genesys-side bodies come from package genesys/wire, which the server
// writes with, so that they exist once. Failures the server answers are
// *Error values, which unwrap to a *usage.Error: usage.KindOf and
// usage.RetryAfterOf read them as they read the server's own errors.
//
// The package imports no part of the server beyond those wire types and
// ingest's result and encoders, so that a metering proxy may use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usaged/usaged/meter/retryafter"
	"github.com/usaged/usaged/usage"
)

const (
	// maxAnswer bounds an answer read: a large query's results are tens
	// of megabytes.
	maxAnswer = 64 << 20
	// maxRetryAfter caps a server's Retry-After, so that a misconfigured
	// proxy in between cannot park a caller for days.
	maxRetryAfter = time.Hour
)

// Config configures New.
type Config struct {
	// Server is usaged's base URL, such as http://127.0.0.1:8080; required.
	Server string
	// Token is the bearer token of every request: the admin token, a
	// client's access token or a service-usage API key. Empty sends none.
	Token string
	// HTTPClient sends the requests; default one with a one-minute
	// timeout.
	HTTPClient *http.Client
	// UserAgent is the User-Agent header; default "usaged-client".
	UserAgent string
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("client: Server %q is not an http or https URL such as http://127.0.0.1:8080", c.Server)
	}
	return nil
}

// Client calls one usaged server. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
	agent string
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimRight(cfg.Server, "/"), token: cfg.Token, hc: cfg.HTTPClient, agent: cfg.UserAgent}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: time.Minute}
	}
	if c.agent == "" {
		c.agent = "usaged-client"
	}
	return c, nil
}

// Base returns the server's base URL, without a trailing slash.
func (c *Client) Base() string { return c.base }

// HTTPClient returns the HTTP client that sends the requests.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// WithToken returns a Client that sends token instead, sharing c's
// connections.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.token = token
	return &d
}

// WithHTTPClient returns a Client that sends its requests with hc.
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	d := *c
	d.hc = hc
	return &d
}

// Error is a failure the server answered: a status of 400 or more, in the
// Genesys error shape, the OAuth one of /oauth/token or the ServiceStack
// one of the service-usage API. Code and Message hold the code and
// message whatever the shape. It unwraps to a *usage.Error of the kind
// the status stands for, with RetryAfter from the Retry-After header.
type Error struct {
	Status     int
	Code       string
	Message    string
	ContextID  string       // the Genesys shape's correlation id
	Fields     []FieldError // the ServiceStack shape's field errors
	RetryAfter time.Duration
	// Body is the answer's body, at most 2 KiB of it.
	Body []byte

	domain *usage.Error
}

// FieldError is one field's problem in a ServiceStack error.
type FieldError struct {
	ErrorCode string `json:"errorCode"`
	FieldName string `json:"fieldName"`
	Message   string `json:"message"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
	// A validation failure lists every field; the message names the
	// first only.
	for _, f := range e.Fields {
		if f.Message != e.Message {
			s += fmt.Sprintf("; %s: %s", f.FieldName, f.Message)
		}
	}
	if e.ContextID != "" {
		s += " (contextId " + e.ContextID + ")"
	}
	return s
}

// Unwrap returns the *usage.Error the status stands for.
func (e *Error) Unwrap() error { return e.domain }

// KindOfStatus is the usage error kind an HTTP status stands for: the
// inverse of the servers' kind→status tables.
func KindOfStatus(status int) usage.Kind {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		return usage.KindInvalid
	case http.StatusUnauthorized:
		return usage.KindUnauthorized
	case http.StatusForbidden:
		return usage.KindForbidden
	case http.StatusNotFound, http.StatusGone:
		return usage.KindNotFound
	case http.StatusConflict:
		return usage.KindConflict
	case http.StatusRequestEntityTooLarge:
		return usage.KindTooLarge
	case http.StatusUnsupportedMediaType, http.StatusNotAcceptable, http.StatusNotImplemented:
		return usage.KindUnsupported
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return usage.KindUnavailable
	}
	return usage.KindInternal
}

// errorShapes is every error shape the server answers, decoded at once.
type errorShapes struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	ContextID string `json:"contextId"`
	// The OAuth error shape.
	OAuthError       string `json:"error"`
	OAuthDescription string `json:"error_description"`
	// The ServiceStack error shape.
	ResponseStatus *struct {
		ErrorCode string       `json:"errorCode"`
		Message   string       `json:"message"`
		Errors    []FieldError `json:"errors"`
	} `json:"responseStatus"`
}

// newError reads the error the server answered with status and body.
func newError(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, Body: body[:min(len(body), 2048)]}
	var s errorShapes
	if json.Unmarshal(body, &s) != nil {
		s = errorShapes{}
	} else {
		e.Code, e.Message, e.ContextID = s.Code, s.Message, s.ContextID
		if rs := s.ResponseStatus; rs != nil {
			e.Code, e.Message, e.Fields = rs.ErrorCode, rs.Message, rs.Errors
		}
		if e.Code == "" {
			e.Code = s.OAuthError
		}
		if e.Message == "" {
			e.Message = s.OAuthDescription
		}
	}
	if e.Message == "" && s.OAuthError == "" {
		// Not one of the shapes: the body is the message.
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
	}
	if h != nil {
		e.RetryAfter = retryafter.Parse(h.Get("Retry-After"), time.Now(), maxRetryAfter)
	}
	e.domain = &usage.Error{Kind: KindOfStatus(status), Message: e.Message, RetryAfter: e.RetryAfter}
	return e
}

// StatusOf returns the status of the *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Retryable reports whether a failed request may succeed if sent again:
// the server was overloaded, restarting or failing (429, 5xx), or it was
// not reached at all. A refusal of the request itself (4xx) is not, nor is
// a canceled context.
func Retryable(err error) bool {
	if s := StatusOf(err); s != 0 {
		return s == http.StatusTooManyRequests || s >= 500
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// ErrUnexpectedAnswer is wrapped by the error of a request the server
// answered with success, but with a body that is not the JSON expected.
var ErrUnexpectedAnswer = errors.New("the answer is not the JSON expected")

// do sends a request with a JSON body (unless in is nil) and decodes a
// JSON answer into out (unless out is nil; a *[]byte receives the body as
// it is).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// prepare sets req's token, unless it has an Authorization already, its
// Accept and its User-Agent.
func (c *Client) prepare(req *http.Request, accept string) {
	if c.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.agent)
}

// send sends req with the token, unless it has an Authorization already,
// and decodes the answer as do does. A status of 400 or more is an *Error.
func (c *Client) send(req *http.Request, out any) error {
	c.prepare(req, "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("reading the answer to %s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 400 {
		return newError(resp.StatusCode, resp.Header, b)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer to %s %s: %w: %v", req.Method, req.URL.Path, ErrUnexpectedAnswer, err)
	}
	return nil
}

// pathf builds a path from format, escaping each argument as a segment.
func pathf(format string, segments ...string) string {
	args := make([]any, len(segments))
	for i, s := range segments {
		args[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, args...)
}
