package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valyala/fastjson"

	"github.com/usaged/usaged/genesys/wire"
)

// Paths that start the Genesys usage query.
const (
	// OrganizationQueryPath starts an organization usage query.
	OrganizationQueryPath = "/api/v2/usage/query"
)

// ClientQueryPath is the path that starts a usage query of OAuth client id.
func ClientQueryPath(id string) string {
	return pathf("/api/v2/oauth/clients/%s/usage/query", id)
}

// Poll says how an execution is waited for: the first pause between polls
// of its results, which doubles up to 2 s, and the limit on the whole wait.
type Poll struct {
	Interval time.Duration // default 100 ms
	Timeout  time.Duration // default 5 minutes
}

// Execution is a complete execution's results document, as the server
// sent it, with its number of rows.
type Execution struct {
	ID   string
	Raw  []byte // a wire.QueryResult
	Rows int
}

// Results decodes the rows of the document.
func (e Execution) Results() (wire.QueryResult, error) {
	var r wire.QueryResult
	err := json.Unmarshal(e.Raw, &r)
	return r, err
}

// resultParsers are reused: a fresh parser allocates its value tree anew,
// which costs several times the parse of a large results document.
var resultParsers fastjson.ParserPool

// Query starts a usage query with a POST of req to path
// (OrganizationQueryPath or ClientQueryPath) and polls its results URI
// until it is no longer Running. It returns the final results document; a
// Failed execution is an error wrapping the server's reason, an *Error. It
// reads only the status and the number of rows, so that a caller that
// needs no rows pays for none.
func (c *Client) Query(ctx context.Context, path string, req wire.UsageQueryRequest, p Poll) (Execution, error) {
	poll, timeout := p.Interval, p.Timeout
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var exec wire.ExecutionResult
	if err := c.do(ctx, "POST", path, req, &exec); err != nil {
		return Execution{}, err
	}
	if exec.ResultsURI == "" {
		return Execution{}, fmt.Errorf("the server started execution %q without a resultsUri", exec.ExecutionID)
	}
	pr := resultParsers.Get()
	defer resultParsers.Put(pr)
	for {
		var raw []byte
		if err := c.do(ctx, "GET", exec.ResultsURI, nil, &raw); err != nil {
			return Execution{}, err
		}
		v, err := pr.ParseBytes(raw)
		if err != nil {
			return Execution{}, fmt.Errorf("the results of execution %s are not JSON: %w", exec.ExecutionID, err)
		}
		switch status := string(v.GetStringBytes("queryStatus")); status {
		case wire.QueryRunning:
		case wire.QueryComplete:
			return Execution{ID: exec.ExecutionID, Raw: raw, Rows: len(v.GetArray("results"))}, nil
		default:
			if eb := v.Get("errorBody"); eb != nil {
				var body wire.ErrorBody
				if json.Unmarshal(eb.MarshalTo(nil), &body) == nil {
					return Execution{}, fmt.Errorf("execution %s %s: %w", exec.ExecutionID, status, errorOfBody(&body))
				}
			}
			return Execution{}, fmt.Errorf("execution %s ended with status %q", exec.ExecutionID, status)
		}
		select {
		case <-ctx.Done():
			return Execution{}, fmt.Errorf("execution %s did not complete within %s", exec.ExecutionID, timeout)
		case <-time.After(poll):
		}
		poll = min(2*poll, 2*time.Second)
	}
}

// errorOfBody is the *Error a Genesys error body reports.
func errorOfBody(b *wire.ErrorBody) *Error {
	raw, _ := json.Marshal(b)
	return newError(b.Status, nil, raw)
}

// Aggregate runs usaged's synchronous aggregate query (POST
// /api/v2/usage/aggregate).
func (c *Client) Aggregate(ctx context.Context, req wire.AggregateRequest) (wire.AggregateResponse, error) {
	var out wire.AggregateResponse
	err := c.do(ctx, "POST", "/api/v2/usage/aggregate", req, &out)
	return out, err
}
