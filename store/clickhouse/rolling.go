package clickhouse

// Limits of rolling windows on the cluster (docs/limits.md, "Rolling
// windows"): the last N minutes cannot be read back from counts kept by the
// hour, so the claim store keeps, per limit rule (limiteval.RuleHash) and
// client, the sums of the minutes that batches counted, and the marks of
// the thresholds met. The rule at batch granularity: a batch counts at
// the minute m of its commit time, as calendar limits do; its events whose
// minute is after m−N count in their minute, those ahead of the clock
// included, older ones nowhere. Each rolling counter the batch reaches is,
// in the count script and under the batch's mark, advanced to m (the
// minutes up to m−N leave it), armed again if its marks are of another
// minute (a threshold met that the value no longer meets), added to, and
// compared: a threshold not met that the value after meets is crossed,
// named by the window of m. A limit version's thresholds are evaluated
// from its seeding on: the seeding notifies what the window meets then and
// writes the marks; before it, and for a version neither seeded nor being
// seeded, a batch adds to the minutes and evaluates nothing.
//
// The keys, under claimPrefix + "l:", where <rule> is
// organization:id:rule hash:
//
//	rc:<rule>            the clients with a counter (one, "", unless the limit is on each client)
//	rh:<rule>:<client>   the counter: fields <minute>n, <minute>r, <minute>e, the totals n, r, e, and the marks v, met, at
//	rz:<rule>:<client>   the counter's minutes, scored by minute
//
// each expiring the window's length and an hour after it was last counted.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/limiteval"
	"github.com/usaged/usaged/usage"
)

// exactCounts bounds the counts the count script compares exactly: Lua's
// numbers are doubles. A threshold whose least count is beyond it is never
// met (a window does not hold 2⁵³ events).
const exactCounts = 1 << 53

// rollingKey returns the key of kind ('c', 'h' or 'z', see above) of the
// rule of l, a limit of a rolling window, and of client for 'h' and 'z'.
func (s *Store) rollingKey(kind byte, l *usage.Limit, client string) string {
	rule := l.OrganizationID + ":" + l.ID + ":" + strconv.FormatUint(limiteval.RuleHash(l), 16)
	if kind == 'c' {
		return s.limitKey("rc", rule)
	}
	return s.limitKey("r"+string(kind), rule, client)
}

// rollingTTL is how long a rolling counter is kept once untouched.
func rollingTTL(l *usage.Limit) time.Duration {
	return time.Duration(l.Window.Minutes)*time.Minute + counterKeep
}

// rollingArgs appends to args the count script's arguments of c, counted
// at at: their number, then the limit version's seeded mark, seeding lock
// and gated set, the counter, its minutes, the clients' set, the client,
// the keys' time to live (ms), the version, the minute of at, the window's
// length, 'e' for an error rate or 'c', the number of thresholds and each
// one (see countScript), and per minute added the minute and the three
// additions.
func (s *Store) rollingArgs(args []any, c *limiteval.RollingCount, at time.Time) []any {
	l := c.Limit
	tag := limitTag(l)
	kind := "c"
	if l.Metric == usage.LimitErrorRate {
		kind = "e"
	}
	f := []any{s.limitKey("s", tag), s.limitKey("g", tag), s.limitKey("w", tag),
		s.rollingKey('h', l, c.ClientID), s.rollingKey('z', l, c.ClientID), s.rollingKey('c', l, ""), c.ClientID,
		rollingTTL(l).Milliseconds(), strconv.FormatInt(l.Version, 10), strconv.FormatInt(usage.UnixMinute(at), 10),
		l.Window.Minutes, kind, len(l.Thresholds)}
	for _, p := range l.Thresholds {
		f = append(f, rollingThreshold(l, p))
	}
	for _, m := range c.Minutes {
		f = append(f, strconv.FormatInt(m.Minute, 10), m.Sum.N, m.Sum.Requests, m.Sum.Errors)
	}
	args = append(args, len(f))
	return append(args, f...)
}

// rollingThreshold is threshold p of l as the count script compares it.
func rollingThreshold(l *usage.Limit, p int) string {
	if l.Metric == usage.LimitErrorRate {
		return strconv.FormatFloat(l.Value*float64(p), 'g', -1, 64)
	}
	if d := limiteval.LeastCount(l, p); d <= exactCounts {
		return strconv.FormatInt(d, 10)
	}
	return "1e300"
}

// rollingResult is what the count script found of a rolling counter.
type rollingResult struct {
	crossed string // '1' for each threshold crossed, in order
	after   limiteval.Sum
}

// rollingCrossed returns the crossings of v, the result of l's counter of
// client counted at at.
func rollingCrossed(l *usage.Limit, client string, at time.Time, v rollingResult) []limiteval.Crossing {
	loc, err := l.Window.Location()
	if err != nil { // the limit was validated when it was stored
		loc = time.UTC
	}
	var found []limiteval.Crossing
	for i, p := range l.Thresholds {
		if i < len(v.crossed) && v.crossed[i] == '1' {
			found = append(found, limiteval.Crossing{Limit: *l, Window: l.Window.RollingIn(at, loc), ClientID: client,
				Threshold: p, Value: v.after.Metric(l.Metric)})
		}
	}
	return found
}

// rollingWindowScript returns the window of every client of a rolling
// limit's rule at a minute: ARGV the clients' set, the prefix of the
// counters' keys and of their minutes' keys, the minute and the window's
// length. It returns per client with a counter the client and the sums of
// the minutes after minute−length, n, r and e; a client whose counter has
// expired is taken out of the set. It changes no counter: the next batch
// that counts one advances it.
var rollingWindowScript = redis.NewScript(`
local out = {}
local oldest = tonumber(ARGV[4]) - tonumber(ARGV[5])
for _, c in ipairs(redis.call('SMEMBERS', ARGV[1])) do
	local h, z = ARGV[2] .. c, ARGV[3] .. c
	if redis.call('EXISTS', h) == 1 then
		local cur = redis.call('HMGET', h, 'n', 'r', 'e')
		local v = {tonumber(cur[1]) or 0, tonumber(cur[2]) or 0, tonumber(cur[3]) or 0}
		for _, k in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', oldest)) do
			local m = redis.call('HMGET', h, k .. 'n', k .. 'r', k .. 'e')
			for j = 1, 3 do v[j] = v[j] - (tonumber(m[j]) or 0) end
		end
		out[#out + 1] = c
		for j = 1, 3 do out[#out + 1] = string.format('%.0f', v[j]) end
	else
		redis.call('SREM', ARGV[1], c)
	end
end
return out
`)

// rollingWindow returns the window of l, a limit of a rolling window, at
// minute m, per client with a counter, ordered by client. It costs a
// look at each client's counter and at each of its minutes that has left
// the window since it was last counted.
func (s *Store) rollingWindow(ctx context.Context, l *usage.Limit, m int64) ([]limiteval.ClientSum, error) {
	h, z := s.rollingKey('h', l, ""), s.rollingKey('z', l, "")
	res, err := rollingWindowScript.Run(ctx, s.claims, nil, s.rollingKey('c', l, ""), h, z, m, l.Window.Minutes).StringSlice()
	if err != nil {
		return nil, unavailable(err, "claims: rolling window of limit %s", l.ID)
	}
	if len(res)%4 != 0 {
		return nil, fmt.Errorf("clickhouse store: malformed rolling window %q", res)
	}
	out := make([]limiteval.ClientSum, 0, len(res)/4)
	for i := 0; i < len(res); i += 4 {
		var v [3]int64
		if err := parseInts(v[:], res[i+1:i+4]); err != nil {
			return nil, fmt.Errorf("clickhouse store: malformed rolling window %q", res[i:i+4])
		}
		out = append(out, limiteval.ClientSum{ClientID: res[i], Sum: limiteval.Sum{N: v[0], Requests: v[1], Errors: v[2]}})
	}
	slices.SortFunc(out, func(a, b limiteval.ClientSum) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

// seedRollingEndScript writes the marks of a seeded rolling limit version,
// if this node still holds its lock: ARGV the lock, this node, the seeded
// mark, the gated set, the set of seedings, the limit version's tag, the
// version, the minute of the seeding, the counters' time to live (ms), then
// per counter its key and its thresholds met. It returns "ok", or "lost"
// when the lock expired.
var seedRollingEndScript = redis.NewScript(`
if redis.call('GET', ARGV[1]) ~= ARGV[2] then return 'lost' end
for i = 10, #ARGV, 2 do
	redis.call('HSET', ARGV[i], 'v', ARGV[7], 'met', ARGV[i + 1], 'at', ARGV[8])
	redis.call('PEXPIRE', ARGV[i], ARGV[9])
end
redis.call('SET', ARGV[3], '1')
redis.call('DEL', ARGV[1], ARGV[4])
redis.call('SREM', ARGV[5], ARGV[6])
return 'ok'
`)

// seedRolling seeds l, a limit version of a rolling window whose seeding
// lock this node holds: the batches that add to it wait at the gate, so
// its window changes only as minutes leave it. It notifies every
// threshold the window meets now, named by the window of the version's
// Updated time, so that a seeding done again after a crash names them
// alike, and then writes the marks, of this version and this minute, of
// the counters that meet a threshold, and the seeded mark.
func (e *Limits) seedRolling(ctx context.Context, l usage.Limit, lock, gated string) error {
	s := e.s
	loc, err := l.Window.Location()
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	m := usage.UnixMinute(now)
	sums, err := s.rollingWindow(ctx, &l, m)
	if err != nil {
		return err
	}
	tag := limitTag(&l)
	args := []any{lock, e.node, s.limitKey("s", tag), gated, s.limitKey("seeding"), tag,
		strconv.FormatInt(l.Version, 10), strconv.FormatInt(m, 10), rollingTTL(&l).Milliseconds()}
	var found []limiteval.Crossing
	for _, c := range sums {
		met := make([]byte, len(l.Thresholds))
		for i, p := range l.Thresholds {
			met[i] = '0'
			if limiteval.Meets(&l, c.Sum, p) {
				met[i] = '1'
				found = append(found, limiteval.Crossing{Limit: l, Window: l.Window.RollingIn(l.Updated, loc), ClientID: c.ClientID,
					Threshold: p, Value: c.Sum.Metric(l.Metric)})
			}
		}
		// A counter whose marks are of another version has none met: the
		// count script starts it empty.
		if slices.Contains(met, '1') {
			args = append(args, s.rollingKey('h', &l, c.ClientID), string(met))
		}
	}
	// The notifications before the marks: a seeding that dies in between
	// is done again and writes the same ids.
	if len(found) > 0 {
		if err := e.cfg.Outbox.AppendNotifications(ctx, limiteval.Notifications(found, e.cfg.Now())); err != nil {
			return err
		}
	}
	res, err := seedRollingEndScript.Run(ctx, s.claims, nil, args...).Text()
	if err != nil {
		return unavailable(err, "claims: seed limit %s", l.ID)
	}
	if res != "ok" {
		return fmt.Errorf("clickhouse store: seeding limit %s outlived its lock (%v); the next poll seeds it", l.ID, s.seedLockTTL())
	}
	return nil
}

// RollingStatus implements genesys.RollingWatch: the status of l, a limit
// of a rolling window, now, from the counters of its rule in the claim
// store (per client, ordered by client, for a limit on each client; a
// client with no request left in the window is not listed). It reads the
// clients' set and each client's counter, never scanning keys. A rule no
// batch has counted yet has a value of zero.
func (e *Limits) RollingStatus(ctx context.Context, l *usage.Limit) (usage.LimitStatus, error) {
	loc, err := l.Window.Location()
	if err != nil {
		return usage.LimitStatus{}, err
	}
	now := e.cfg.Now()
	sums, err := e.s.rollingWindow(ctx, l, usage.UnixMinute(now))
	if err != nil {
		return usage.LimitStatus{}, err
	}
	return limiteval.StatusOf(l, l.Window.RollingIn(now, loc), sums), nil
}
