// Package retryafter reads the Retry-After header of an HTTP answer, as the
// metering proxy's clients of usaged (the shipper, the token lookups) obey
// it.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse returns the wait that Retry-After value v asks for at now: delay
// seconds or an HTTP date, capped at most, so that a misconfigured server
// cannot stall its client for long. An empty, negative, past or unreadable
// value is 0.
func Parse(v string, now time.Time, most time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(most/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), most)
}
