package query

import (
	"time"

	"github.com/usaged/usaged/usage"
)

// Default limits per organization; see Config.
const (
	// DefaultMaxPendingPerOrg keeps one organization well under
	// DefaultQueueLimit, so that a few cannot fill the queue for all.
	DefaultMaxPendingPerOrg = 50
	// DefaultMaxExecutionsPerOrg allows an execution every 9 seconds, day
	// and night, with the default TTL of a day.
	DefaultMaxExecutionsPerOrg = 10_000
	// DefaultMaxResultBytesPerOrg holds a few of the largest answers (a
	// million rows) or thousands of ordinary ones.
	DefaultMaxResultBytesPerOrg = 256 << 20
)

// pendingRetryAfter is the Retry-After of an organization with too many
// executions queued or running: when one finishes is not known, and
// most finish in well under a second.
const pendingRetryAfter = 5 * time.Second

// LimitError refuses a new execution of an organization that has reached one
// of its limits (see Config). It unwraps to a *usage.Error of kind
// usage.KindUnavailable, naming the limit, whose RetryAfter is After: the
// caller may retry then.
type LimitError struct {
	Limit string // the limit reached: "pending executions", "stored executions" or "stored result bytes"
	Max   int64  // its value
	After time.Duration
	err   *usage.Error
}

func (e *LimitError) Error() string { return e.err.Error() }
func (e *LimitError) Unwrap() error { return e.err }

// ResultBytes is the size the limit on stored result bytes counts for rows:
// the bytes of their strings plus 8 for each number (the date and the six
// counts). It does not depend on the backend's encoding, which is smaller.
func ResultBytes(rows []usage.Row) int64 {
	var n int64
	for i := range rows {
		r := &rows[i]
		n += 7*8 + int64(len(r.ClientID)+len(r.ClientName)+len(r.OrganizationID)+len(r.UserID)+
			len(r.TemplateURI)+len(r.HTTPMethod)+len(r.Platform))
	}
	return n
}

// storedExec is what the limits need of a stored execution.
type storedExec struct {
	expires time.Time
	bytes   int64
}

// orgUsage is what one organization holds against its limits. The Service
// guards it with its mutex.
type orgUsage struct {
	pending int                   // executions queued or running (in Service.active)
	stored  map[string]storedExec // by id: executions stored and not known to be expired
	bytes   int64                 // the sum of stored[*].bytes
}

// usageOf returns org's usage, creating it.
func (s *Service) usageOf(org string) *orgUsage {
	u := s.orgs[org]
	if u == nil {
		u = &orgUsage{stored: make(map[string]storedExec)}
		s.orgs[org] = u
	}
	return u
}

// store counts execution id as stored until expires, with bytes of rows.
func (u *orgUsage) store(id string, expires time.Time, bytes int64) {
	u.bytes += bytes - u.stored[id].bytes
	u.stored[id] = storedExec{expires: expires, bytes: bytes}
}

// forget stops counting execution id of org as stored. Forgetting an
// execution that is not counted does nothing.
func (s *Service) forget(org, id string) {
	u := s.orgs[org]
	if u == nil {
		return
	}
	u.bytes -= u.stored[id].bytes
	delete(u.stored, id)
	if u.pending == 0 && len(u.stored) == 0 {
		delete(s.orgs, org)
	}
}

// prune forgets the executions that have expired at now: readers already
// refuse them, and the sweep deletes them.
func (u *orgUsage) prune(now time.Time) {
	for id, e := range u.stored {
		if !e.expires.After(now) {
			u.bytes -= e.bytes
			delete(u.stored, id)
		}
	}
}

// untilExpiry is how long until the first of u's stored executions expires
// among those with result bytes, if withBytes; at least a second.
func (u *orgUsage) untilExpiry(now time.Time, withBytes bool) time.Duration {
	var first time.Time
	for _, e := range u.stored {
		if (!withBytes || e.bytes > 0) && (first.IsZero() || e.expires.Before(first)) {
			first = e.expires
		}
	}
	return max(first.Sub(now), time.Second)
}

// admit checks that org may start one more execution, and fails with a
// *LimitError naming the limit it has reached if not. The caller holds mu.
func (s *Service) admit(org string, now time.Time) error {
	u := s.orgs[org]
	if u == nil {
		return nil
	}
	c := &s.cfg
	if c.MaxPendingPerOrg > 0 && u.pending >= c.MaxPendingPerOrg {
		return limitError("pending executions", int64(c.MaxPendingPerOrg), pendingRetryAfter,
			"This organization has %d query executions queued or running, its limit: retry when one has finished, or cancel one.", c.MaxPendingPerOrg)
	}
	full := func() bool {
		return (c.MaxExecutionsPerOrg > 0 && len(u.stored) >= c.MaxExecutionsPerOrg) ||
			(c.MaxResultBytesPerOrg > 0 && u.bytes >= c.MaxResultBytesPerOrg)
	}
	if full() {
		u.prune(now)
	}
	if c.MaxExecutionsPerOrg > 0 && len(u.stored) >= c.MaxExecutionsPerOrg {
		after := u.untilExpiry(now, false)
		return limitError("stored executions", int64(c.MaxExecutionsPerOrg), after,
			"This organization keeps %d query executions, its limit; each is kept for %s after it starts. Retry in %d seconds, when the oldest expires.",
			c.MaxExecutionsPerOrg, c.TTL, seconds(after))
	}
	if c.MaxResultBytesPerOrg > 0 && u.bytes >= c.MaxResultBytesPerOrg {
		after := u.untilExpiry(now, true)
		return limitError("stored result bytes", c.MaxResultBytesPerOrg, after,
			"This organization's stored query results take %d bytes, its limit is %d; each is kept for %s after it starts. Retry in %d seconds, when the oldest expires.",
			u.bytes, c.MaxResultBytesPerOrg, c.TTL, seconds(after))
	}
	return nil
}

// reserveResult counts bytes of result for execution id of org, stored until
// expires, if they fit in org's limit, and returns the error the execution
// fails with if not. Reserving before the rows are stored keeps concurrent
// executions from overshooting the limit together. The caller holds mu.
func (s *Service) reserveResult(org, id string, expires time.Time, bytes int64, now time.Time) *usage.Error {
	u := s.usageOf(org)
	limit := s.cfg.MaxResultBytesPerOrg
	if limit <= 0 {
		u.store(id, expires, bytes)
		return nil
	}
	if bytes > limit {
		return usage.Errorf(usage.KindTooLarge, "",
			"The result of this query takes %d bytes, more than the limit of %d bytes of stored results per organization: narrow the interval, coarsen the granularity, group by fewer dimensions or filter.",
			bytes, limit)
	}
	if u.bytes-u.stored[id].bytes+bytes > limit {
		u.prune(now)
	}
	if u.bytes-u.stored[id].bytes+bytes <= limit {
		u.store(id, expires, bytes)
		return nil
	}
	return usage.Errorf(usage.KindUnavailable, "",
		"The result of this query takes %d bytes, and this organization's stored query results already take %d of its limit of %d bytes: retry in %d seconds, when the oldest expires.",
		bytes, u.bytes, limit, seconds(u.untilExpiry(now, true)))
}

func limitError(limit string, maxValue int64, after time.Duration, format string, args ...any) *LimitError {
	err := usage.Errorf(usage.KindUnavailable, "", format, args...)
	err.RetryAfter = after
	return &LimitError{Limit: limit, Max: maxValue, After: after, err: err}
}

// seconds rounds d up to whole seconds, as Retry-After counts.
func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
