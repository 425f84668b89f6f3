package genesys

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/usage"
)

// executionLimit answers a query.LimitError, an organization's limit on its
// executions, as 429 too.many.requests.retry.after, like a rate limit: the
// client is told which limit and when to retry. Other errors pass through.
func executionLimit(err error) error {
	var le *query.LimitError
	if !errors.As(err, &le) {
		return err
	}
	return &apiError{
		err:    err,
		code:   codeTooManyRequests,
		status: http.StatusTooManyRequests,
		params: map[string]string{
			"limit":      le.Limit,
			"maxValue":   strconv.FormatInt(le.Max, 10),
			"retryAfter": retryAfterSeconds(le.After),
		},
	}
}

// setRetryAfter sets the Retry-After header of an answer to err, if err
// says when to retry.
func setRetryAfter(h http.Header, err error) {
	if d := usage.RetryAfterOf(err); d > 0 {
		h.Set("Retry-After", retryAfterSeconds(d))
	}
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}
