package clickhouse

// Usage limits evaluated as batches commit, on every node (docs/limits.md,
// "The cluster: counters beside the claims"). A node sees only its own
// batches, so a window's value lives in the claim store, beside the claims:
// per limit version, window and client, a counter that every batch adds to
// exactly once, in one script that checks and sets the batch's limits mark,
// adds, and returns each counter before and after. The thresholds between
// the two are the batch's crossings, written to the outbox (shared by the
// nodes, store/postgres) by their ids before the batch publishes. A batch
// counts after its commit point and before step 4, by its owner or by the
// recovery that finishes it, from its journal rows and its commit time:
// whoever counts it computes the same additions, and the mark keeps the
// result, so that a count run again (a recovery after its owner counted
// and died) finds the same crossings and adds nothing.
//
// A limit version's counters start from the exact counts (the query path)
// when it is seeded, by one node: it takes the limit's seeding lock and
// changes the epoch, which makes every node that counts a batch reload the
// limits before it does; a batch that adds to the limit then waits at the
// gate until the seeding ends, and is named in the limit's gated set. The
// seeder waits until every batch committed before the lock has either
// published (its record is gone once it settles) or waits at the gate,
// reads the counts, which then hold exactly the batches that will not add,
// and writes the counters and the seeded mark. A batch counted by no node
// for a limit neither seeded nor seeding adds nothing to it: the seeding
// waits for it and reads it in the counts.
//
// The claim store's keys, under claimPrefix + "l:":
//
//	epoch                       random, changed by every seeding and removal; gone: the counters were lost
//	s:<limit>                   the limit version is seeded: its counters are live
//	g:<limit>                   the limit version is being seeded, by the node it names (expires)
//	w:<limit>                   the batches waiting at the gate of the seeding
//	seeding                     the limit versions being seeded
//	c:<limit>:<window start>    the counters of a window, hash fields <client>|n, |r, |e
//	m:<batch>                   the batch has counted: the counters it touched before and after
//	rc:, rh:, rz:               the counters of rolling windows, per limit rule and client (rolling.go)
//
// where <limit> is organization:id:version. The counters expire an hour
// after their window ends, a mark an hour after the batch last counted (a
// batch settles in seconds; one whose publishing fails is counted again,
// finding its mark, at every recovery, a sweep a second).
//
// If the claim store loses its keys (a restart without persistence), the
// epoch is gone: the next count finds it so, a node creates a new one, and
// every limit is seeded again from the exact counts before its counters
// are used again.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/limiteval"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// LimitsConfig configures the evaluation of usage limits on a Store.
type LimitsConfig struct {
	// Outbox receives the crossings as limit.threshold notifications: the
	// one every node shares (store/postgres).
	Outbox store.Outbox
	// Limits returns every organization's limits, from the metadata every
	// node shares.
	Limits func(ctx context.Context) ([]usage.Limit, error)
	// Poll is how often a node reloads the limits and seeds those that
	// are not; default 500 ms. A limit changed on another node is counted
	// here from the seeding on, whatever Poll is.
	Poll time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Validate reports every problem of c.
func (c LimitsConfig) Validate() error {
	var errs []error
	if c.Outbox == nil {
		errs = append(errs, errors.New("clickhouse store: limits: an Outbox is required"))
	}
	if c.Limits == nil {
		errs = append(errs, errors.New("clickhouse store: limits: a Limits source is required"))
	}
	if c.Poll < 0 {
		errs = append(errs, fmt.Errorf("clickhouse store: limits: Poll must not be negative: got %v", c.Poll))
	}
	return errors.Join(errs...)
}

// Limits evaluates usage limits as the batches of a Store commit; Store's
// EvaluateLimits starts it. Its methods are safe for concurrent use.
type Limits struct {
	s     *Store
	cfg   LimitsConfig
	node  string // names the seeding locks this node takes
	cur   atomic.Pointer[limitSet]
	hooks limitsHooks

	reloading sync.Mutex // one reload at a time
	seeding   sync.Mutex // one seeding at a time on this node
}

// limitSet is the limits a node counts, as of an epoch.
type limitSet struct {
	epoch string
	match *limiteval.Matcher
}

// Timings of the seeding and of the gate.
const (
	gateWait    = 10 * time.Millisecond // between a gated batch's tries
	markTTL     = time.Hour
	counterKeep = time.Hour // past a window's end
)

// seedLockTTL bounds a seeding: past it, the lock expires, the gated
// batches go on and the seeding, when it ends, finds its lock gone and
// writes nothing.
func (s *Store) seedLockTTL() time.Duration { return 3*s.cfg.Lease + 10*time.Second }

// EvaluateLimits starts evaluating the limits cfg.Limits returns, on this
// node, until Close: it loads them, seeds those not seeded, and then does
// so every cfg.Poll. Every node of a cluster must evaluate limits: a node
// that does not adds nothing to the counters.
func (s *Store) EvaluateLimits(ctx context.Context, cfg LimitsConfig) (*Limits, error) {
	return s.evaluateLimits(ctx, cfg, limitsHooks{})
}

// limitsHooks are the tests' view into the counting of batches.
type limitsHooks struct {
	// clock maps a batch's commit time to the time it counts at: a test
	// moves the minutes of rolling windows with it. It must give the same
	// time for the same commit time, whoever counts the batch.
	clock func(commit time.Time) time.Time
	// count is called before each run of the count script of a batch
	// counted at at, and what it returns after, with the script's answer
	// ("ok", "done", "stale" or "gate").
	count func(batch string, at time.Time, events []*usage.Event) (after func(result string))
}

func (s *Store) evaluateLimits(ctx context.Context, cfg LimitsConfig, hooks limitsHooks) (*Limits, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Poll == 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Limits{s: s, cfg: cfg, node: randomHex(8), hooks: hooks}
	if err := e.reload(ctx); err != nil {
		return nil, err
	}
	if !s.limits.CompareAndSwap(nil, e) {
		return nil, errors.New("clickhouse store: limits are evaluated already")
	}
	s.wg.Add(1)
	go e.poll()
	return e, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Store) limitKey(parts ...string) string {
	return s.claimPrefix() + "l:" + strings.Join(parts, ":")
}

func limitTag(l *usage.Limit) string {
	return l.OrganizationID + ":" + l.ID + ":" + strconv.FormatInt(l.Version, 10)
}

func (s *Store) epochKey() string { return s.limitKey("epoch") }

// reload reads the epoch, creating one if the claim store has none, and
// then the limits: a set loaded after the epoch holds every limit stored
// before the epoch was changed for it.
func (e *Limits) reload(ctx context.Context) error {
	e.reloading.Lock()
	defer e.reloading.Unlock()
	epoch, err := e.s.claims.Get(ctx, e.s.epochKey()).Result()
	if errors.Is(err, redis.Nil) {
		if e.cur.Load() != nil {
			e.s.cfg.logger().Warn("the claim store lost the limits' counters (restarted without persistence, or failed over): every limit is seeded again from the exact counts")
		}
		fresh := randomHex(8)
		if err = e.s.claims.SetNX(ctx, e.s.epochKey(), fresh, 0).Err(); err == nil {
			epoch, err = e.s.claims.Get(ctx, e.s.epochKey()).Result()
		}
	}
	if err != nil {
		return unavailable(err, "claims: limits epoch")
	}
	limits, err := e.cfg.Limits(ctx)
	if err != nil {
		return err
	}
	// The cluster keeps no response bytes in its counts, and refuses such
	// limits when they are created: one stored otherwise is not evaluated.
	limits = slices.DeleteFunc(limits, func(l usage.Limit) bool { return l.Metric == usage.LimitResponseBytes })
	e.cur.Store(&limitSet{epoch: epoch, match: limiteval.NewMatcher(limits)})
	return nil
}

// poll reloads the limits and seeds those not seeded, every cfg.Poll.
func (e *Limits) poll() {
	defer e.s.wg.Done()
	t := time.NewTicker(e.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-e.s.life.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(e.s.life, e.s.seedLockTTL())
		if err := e.reload(ctx); err != nil {
			e.s.cfg.logger().Warn("reloading the limits failed; the next poll tries again", "err", err)
		} else if err := e.seedAll(ctx); err != nil && ctx.Err() == nil {
			e.s.cfg.logger().Warn("seeding limits failed; the next poll tries again", "err", err)
		}
		cancel()
	}
}

// seedAll seeds every limit of the current set that is not seeded.
func (e *Limits) seedAll(ctx context.Context) error {
	limits := e.cur.Load().match.Limits()
	if len(limits) == 0 {
		return nil
	}
	keys := make([]string, len(limits))
	for i := range limits {
		keys[i] = e.s.limitKey("s", limitTag(&limits[i]))
	}
	seeded, err := e.s.claims.MGet(ctx, keys...).Result()
	if err != nil {
		return unavailable(err, "claims: seeded limits")
	}
	var errs []error
	for i, v := range seeded {
		if v == nil {
			errs = append(errs, e.seed(ctx, limits[i]))
		}
	}
	return errors.Join(errs...)
}

// Changed starts evaluating l, created or changed and stored, at once on
// this node and on the others as they count their next batch: it seeds it,
// notifying the thresholds its current window already meets. A seeding
// that fails is left to the next poll.
func (e *Limits) Changed(ctx context.Context, l usage.Limit) error {
	if err := e.reload(ctx); err != nil {
		return err
	}
	if err := e.seed(ctx, l); err != nil {
		e.s.cfg.logger().Warn("seeding a changed limit failed; the next poll seeds it", "limit", l.ID, "err", err)
	}
	return nil
}

// Removed stops evaluating the limit id of organization org, already
// deleted: the epoch changes, so that every node reloads its limits before
// it counts its next batch.
func (e *Limits) Removed(org, id string) {
	ctx, cancel := context.WithTimeout(e.s.life, 5*time.Second)
	defer cancel()
	if err := e.s.claims.Set(ctx, e.s.epochKey(), randomHex(8), 0).Err(); err != nil {
		e.s.cfg.logger().Warn("a removed limit is counted until the next change of the limits' epoch", "limit", id, "err", err)
	}
	_ = e.reload(ctx)
}

// seedStartScript takes the seeding lock of a limit version unless it is
// seeded: ARGV the seeded mark, the lock, the gated set, the epoch, this
// node, the lock's time to live (ms), a new epoch, the set of seedings and
// the limit version. It returns "seeded",
// "busy" (another node seeds it) or "ok".
var seedStartScript = redis.NewScript(`
if redis.call('EXISTS', ARGV[1]) == 1 then return 'seeded' end
if not redis.call('SET', ARGV[2], ARGV[5], 'NX', 'PX', ARGV[6]) then return 'busy' end
redis.call('DEL', ARGV[3])
redis.call('SET', ARGV[4], ARGV[7])
redis.call('SADD', ARGV[8], ARGV[9])
return 'ok'
`)

// seedEndScript writes a seeded limit version's counters, if this node
// still holds its lock: ARGV the lock, this node, the seeded mark, the
// gated set, the set of seedings, the limit version, then per counter its key, its expiry (Unix ms), the client
// and the three values. It returns "ok", or "lost" when the lock expired.
var seedEndScript = redis.NewScript(`
if redis.call('GET', ARGV[1]) ~= ARGV[2] then return 'lost' end
for i = 7, #ARGV, 6 do
	local k, c = ARGV[i], ARGV[i + 2]
	redis.call('HSET', k, c .. '|n', ARGV[i + 3], c .. '|r', ARGV[i + 4], c .. '|e', ARGV[i + 5])
	redis.call('PEXPIREAT', k, ARGV[i + 1])
end
redis.call('SET', ARGV[3], '1')
redis.call('DEL', ARGV[1], ARGV[4])
redis.call('SREM', ARGV[5], ARGV[6])
return 'ok'
`)

// seed seeds l (see the package's limits doc above), unless it is seeded
// or another node seeds it.
func (e *Limits) seed(ctx context.Context, l usage.Limit) error {
	e.seeding.Lock()
	defer e.seeding.Unlock()
	s := e.s
	tag := limitTag(&l)
	lock, gated := s.limitKey("g", tag), s.limitKey("w", tag)
	res, err := seedStartScript.Run(ctx, s.claims, nil, s.limitKey("s", tag), lock, gated, s.epochKey(),
		e.node, s.seedLockTTL().Milliseconds(), randomHex(8), s.limitKey("seeding"), tag).Text()
	if err != nil {
		return unavailable(err, "claims: seed limit %s", l.ID)
	}
	if res != "ok" {
		return nil
	}
	release := func() {
		_ = s.claims.Eval(context.Background(), `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0`,
			[]string{lock}, e.node).Err()
	}
	if l.Window.Type == usage.WindowRolling {
		if err := e.seedRolling(ctx, l, lock, gated); err != nil {
			release()
			return err
		}
		return nil
	}
	if err := e.waitCommitted(ctx); err != nil {
		release()
		return err
	}
	counts, err := limiteval.Load(l, e.cfg.Now(), func(q usage.Query) ([]usage.Row, error) { return s.Query(ctx, q) })
	if err != nil {
		release()
		return err
	}
	var found []limiteval.Crossing
	args := []any{lock, e.node, s.limitKey("s", tag), gated, s.limitKey("seeding"), tag}
	for _, c := range counts {
		found = append(found, limiteval.Crossed(&l, c.Window, c.ClientID, limiteval.Sum{}, c.Sum)...)
		args = append(args, s.counterKey(&c), c.Window.End.Add(counterKeep).UnixMilli(), c.ClientID, c.Sum.N, c.Sum.Requests, c.Sum.Errors)
	}
	// The notifications before the seeded mark: a seeding that dies in
	// between is done again and writes the same ids.
	if len(found) > 0 {
		if err := e.cfg.Outbox.AppendNotifications(ctx, limiteval.Notifications(found, e.cfg.Now())); err != nil {
			release()
			return err
		}
	}
	res, err = seedEndScript.Run(ctx, s.claims, nil, args...).Text()
	if err != nil {
		release()
		return unavailable(err, "claims: seed limit %s", l.ID)
	}
	if res != "ok" {
		return fmt.Errorf("clickhouse store: seeding limit %s outlived its lock (%v); the next poll seeds it", l.ID, s.seedLockTTL())
	}
	return nil
}

// gatedScript returns, per batch of ARGV from the third on, 1 if it waits
// at the gate of a seeding under way, else 0: ARGV[1] is the set of
// seedings, ARGV[2] the prefix of the limits' keys. A seeding whose lock
// has expired (its node died) is taken out of the set.
var gatedScript = redis.NewScript(`
local live = {}
for _, tag in ipairs(redis.call('SMEMBERS', ARGV[1])) do
	if redis.call('EXISTS', ARGV[2] .. 'g:' .. tag) == 1 then
		live[#live + 1] = ARGV[2] .. 'w:' .. tag
	else
		redis.call('SREM', ARGV[1], tag)
	end
end
local out = {}
for i = 3, #ARGV do
	out[i - 2] = 0
	for _, w in ipairs(live) do
		if redis.call('SISMEMBER', w, ARGV[i]) == 1 then out[i - 2] = 1 break end
	end
end
return out
`)

// waitCommitted waits until every batch committed now has published (its
// record is gone) or waits at the gate of a seeding under way, this one's
// or another's: a gated batch has not counted, so it has not published,
// and when it counts it counts this seeding's limit if it adds to it.
// Waiting for those gated by another seeding would deadlock two seedings
// that each gate a batch the other waits for.
func (e *Limits) waitCommitted(ctx context.Context) error {
	s := e.s
	children, _, err := s.keeper.Children(s.root + "/batches")
	if err != nil {
		return unavailable(err, "keeper %v: batches", s.cfg.Keeper)
	}
	var pending []string
	for _, id := range children {
		if strings.HasSuffix(id, ".lock") {
			continue
		}
		r, ok, err := s.readRecord(id)
		if err != nil {
			return err
		}
		if ok && r.committed {
			pending = append(pending, id)
		}
	}
	for len(pending) > 0 {
		var live []string
		for _, id := range pending {
			_, ok, err := s.readRecord(id)
			if err != nil {
				return err
			}
			if ok {
				live = append(live, id)
			}
		}
		pending = live
		if len(pending) == 0 {
			break
		}
		args := []any{s.limitKey("seeding"), s.limitKey("")}
		for _, id := range pending {
			args = append(args, id)
		}
		gated, err := gatedScript.Run(ctx, s.claims, nil, args...).Int64Slice()
		if err != nil {
			return unavailable(err, "claims: gated batches")
		}
		var still []string
		for i, id := range pending {
			if gated[i] == 0 {
				still = append(still, id)
			}
		}
		if pending = still; len(pending) == 0 {
			break
		}
		select {
		case <-time.After(gateWait):
		case <-ctx.Done():
			return unavailable(ctx.Err(), "seeding: waiting for %d committed batches", len(pending))
		}
	}
	return nil
}

// countScript counts a batch: ARGV the epoch key, the node's epoch, the
// batch's limits mark, its expiry (Unix ms), the batch id, the number of
// the calendar counters' arguments, then per calendar counter the limit
// version's seeded mark, its seeding lock, its gated set, the counters'
// key, their expiry (Unix ms), the client and the three additions, and
// then the rolling counters (rollingArgs), each its number of arguments
// first. It returns {"done", result} for a batch counted before (its mark
// extended), {"stale"} when the node's epoch is not the current one,
// {"gate"} when a limit the batch adds to is being seeded, and otherwise
// adds to the counters of seeded limits, and to the minutes of every
// rolling counter, sets the mark and returns {"ok", result}. The result
// holds, per calendar counter added to, its key, the client, and the three
// values before and after; per rolling counter, its key, the client, the
// limit version, the thresholds crossed ('1' for each, in order) and the
// three values after: fields separated by 0x1f, counters by 0x1e.
//
// A rolling counter (docs/limits.md, "Rolling windows") is a hash of the
// minutes' sums (fields <minute>n, r, e), their totals (n, r, e) and the
// marks (v the version, met a '0' or '1' per threshold, at the minute of
// the batch that last counted), with a sorted set of its minutes, so that
// the minutes leaving the window are found without a scan. The thresholds
// arrive as the least count that meets each (limiteval.LeastCount), compared
// in whole numbers, or for an error rate as value·p, compared as
// errors·100 ≥ value·p·requests in doubles.
var countScript = redis.NewScript(`
local m = redis.call('GET', ARGV[3])
if m then
	redis.call('PEXPIREAT', ARGV[3], ARGV[4])
	return {'done', m}
end
if redis.call('GET', ARGV[1]) ~= ARGV[2] then return {'stale', ''} end
local calEnd = 6 + tonumber(ARGV[6])
local gate = false
local function gated(seeded, lock, set)
	if redis.call('EXISTS', seeded) == 0 and redis.call('EXISTS', lock) == 1 then
		redis.call('SADD', set, ARGV[5])
		redis.call('PEXPIRE', set, 3600000)
		gate = true
	end
end
for i = 7, calEnd, 9 do gated(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
local i = calEnd + 1
while i <= #ARGV do
	gated(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
	i = i + 1 + tonumber(ARGV[i])
end
if gate then return {'gate', ''} end
local out = {}
for i = 7, calEnd, 9 do
	if redis.call('EXISTS', ARGV[i]) == 1 then
		local k, c = ARGV[i + 3], ARGV[i + 5]
		local rec = {k, c}
		for j, f in ipairs({'|n', '|r', '|e'}) do
			local d = tonumber(ARGV[i + 5 + j])
			local a = redis.call('HINCRBY', k, c .. f, d)
			rec[2 + j] = string.format('%.0f', a - d)
			rec[5 + j] = string.format('%.0f', a)
		end
		redis.call('PEXPIREAT', k, ARGV[i + 4])
		out[#out + 1] = table.concat(rec, '\31')
	end
end
i = calEnd + 1
while i <= #ARGV do
	local last, a = i + tonumber(ARGV[i]), i + 1
	local seeded = redis.call('EXISTS', ARGV[a]) == 1
	local h, z, set, client, ttl = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
	local version, minute, span, errorRate = ARGV[a + 8], ARGV[a + 9], tonumber(ARGV[a + 10]), ARGV[a + 11] == 'e'
	local nt = tonumber(ARGV[a + 12])
	local th = {}
	for t = 1, nt do th[t] = tonumber(ARGV[a + 12 + t]) end
	local function meets(n, r, e, t)
		if errorRate then return r > 0 and e * 100 >= th[t] * r end
		return n >= th[t]
	end
	-- The minutes that left the window at the batch's minute.
	local oldest = tonumber(minute) - span
	for _, k in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', oldest)) do
		local v = redis.call('HMGET', h, k .. 'n', k .. 'r', k .. 'e')
		for j, f in ipairs({'n', 'r', 'e'}) do
			local d = tonumber(v[j]) or 0
			if d ~= 0 then redis.call('HINCRBY', h, f, -d) end
		end
		redis.call('HDEL', h, k .. 'n', k .. 'r', k .. 'e')
	end
	redis.call('ZREMRANGEBYSCORE', z, '-inf', oldest)
	local cur = redis.call('HMGET', h, 'n', 'r', 'e', 'v', 'met', 'at')
	local n, r, e = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0, tonumber(cur[3]) or 0
	local met = {}
	if seeded then
		local keep = cur[4] == version and cur[5] and #cur[5] == nt
		for t = 1, nt do met[t] = keep and string.sub(cur[5], t, t) == '1' end
		if cur[6] ~= minute then
			-- The first count of a minute: a threshold the value has
			-- fallen below since is armed again.
			for t = 1, nt do
				if met[t] and not meets(n, r, e, t) then met[t] = false end
			end
		end
	end
	for j = a + 13 + nt, last, 4 do
		local k = ARGV[j]
		n = redis.call('HINCRBY', h, 'n', ARGV[j + 1])
		r = redis.call('HINCRBY', h, 'r', ARGV[j + 2])
		e = redis.call('HINCRBY', h, 'e', ARGV[j + 3])
		redis.call('HINCRBY', h, k .. 'n', ARGV[j + 1])
		redis.call('HINCRBY', h, k .. 'r', ARGV[j + 2])
		redis.call('HINCRBY', h, k .. 'e', ARGV[j + 3])
		redis.call('ZADD', z, k, k)
	end
	local crossed, marks = {}, {}
	if seeded then
		for t = 1, nt do
			crossed[t] = '0'
			if not met[t] and meets(n, r, e, t) then
				met[t] = true
				crossed[t] = '1'
			end
			marks[t] = met[t] and '1' or '0'
		end
		redis.call('HSET', h, 'v', version, 'met', table.concat(marks), 'at', minute)
	end
	redis.call('PEXPIRE', h, ttl)
	redis.call('PEXPIRE', z, ttl)
	redis.call('SADD', set, client)
	redis.call('PEXPIRE', set, ttl)
	out[#out + 1] = table.concat({h, client, version, table.concat(crossed),
		string.format('%.0f', n), string.format('%.0f', r), string.format('%.0f', e)}, '\31')
	i = last + 1
end
local res = table.concat(out, '\30')
redis.call('SET', ARGV[3], res, 'PXAT', ARGV[4])
return {'ok', res}
`)

// errGateTimeout fails a count that waited at a seeding's gate too long:
// the batch stays committed and a recovery counts it.
var errGateTimeout = errors.New("a limit this batch adds to is being seeded")

// countLimits counts the committed batch of journal j, whose record is r,
// into the limits' counters and writes the crossings it causes to the
// outbox: the step between commit and publish, by the owner or a recovery.
// It does nothing for a store that does not evaluate limits, or a batch of
// activity.
func (s *Store) countLimits(ctx context.Context, j *journal, r record) error {
	e := s.limits.Load()
	if e == nil || j.events == nil {
		return nil
	}
	events := j.usageEvents()
	at := time.UnixMilli(r.ctime) // the same for the owner and every recovery
	if e.hooks.clock != nil {
		at = e.hooks.clock(at)
	}
	waitUntil := time.Now().Add(2 * s.cfg.Lease)
	for {
		set := e.cur.Load()
		adds := set.match.Adds(at, events)
		rolling := set.match.RollingAdds(at, events)
		args := []any{s.epochKey(), set.epoch, s.limitKey("m", j.batch), time.Now().Add(markTTL).UnixMilli(), j.batch, 9 * len(adds)}
		for _, c := range adds {
			tag := limitTag(c.Limit)
			args = append(args, s.limitKey("s", tag), s.limitKey("g", tag), s.limitKey("w", tag),
				s.counterKey(&c), c.Window.End.Add(counterKeep).UnixMilli(),
				c.ClientID, c.Sum.N, c.Sum.Requests, c.Sum.Errors)
		}
		for i := range rolling {
			args = s.rollingArgs(args, &rolling[i], at)
		}
		var after func(string)
		if e.hooks.count != nil {
			after = e.hooks.count(j.batch, at, events)
		}
		res, err := countScript.Run(ctx, s.claims, nil, args...).StringSlice()
		if after != nil {
			if err != nil {
				after("error")
			} else {
				after(res[0])
			}
		}
		if err != nil {
			return unavailable(err, "claims: count batch %s into the limits", j.batch)
		}
		switch res[0] {
		case "stale":
			if err := e.reload(ctx); err != nil {
				return err
			}
			continue
		case "gate":
			if time.Now().After(waitUntil) {
				return unavailable(errGateTimeout, "batch %s", j.batch)
			}
			select {
			case <-time.After(gateWait):
			case <-ctx.Done():
				return unavailable(ctx.Err(), "batch %s waiting for a seeding", j.batch)
			}
			continue
		}
		found, err := s.crossings(adds, rolling, at, res[1])
		if err != nil || len(found) == 0 {
			return err
		}
		return e.cfg.Outbox.AppendNotifications(ctx, limiteval.Notifications(found, e.cfg.Now()))
	}
}

// crossings returns the crossings of a count's result, for the counters of
// adds and rolling, counted at at. A result counted before by a node whose
// set of limits differed may hold counters these have not: their
// crossings were written with the result.
func (s *Store) crossings(adds []limiteval.Count, rolling []limiteval.RollingCount, at time.Time, result string) ([]limiteval.Crossing, error) {
	if result == "" {
		return nil, nil
	}
	type counter struct{ key, client string }
	counted := map[counter][2]limiteval.Sum{} // before, after
	type rollingCounter struct {
		key, client, version string
	}
	rolled := map[rollingCounter]rollingResult{}
	for _, rec := range strings.Split(result, "\x1e") {
		f := strings.Split(rec, "\x1f")
		if len(f) == 7 {
			var v [3]int64
			if err := parseInts(v[:], f[4:]); err != nil {
				return nil, fmt.Errorf("clickhouse store: malformed limits count %q", rec)
			}
			rolled[rollingCounter{f[0], f[1], f[2]}] = rollingResult{crossed: f[3], after: limiteval.Sum{N: v[0], Requests: v[1], Errors: v[2]}}
			continue
		}
		var v [6]int64
		if len(f) != 8 || parseInts(v[:], f[2:]) != nil {
			return nil, fmt.Errorf("clickhouse store: malformed limits count %q", rec)
		}
		counted[counter{f[0], f[1]}] = [2]limiteval.Sum{{N: v[0], Requests: v[1], Errors: v[2]}, {N: v[3], Requests: v[4], Errors: v[5]}}
	}
	var found []limiteval.Crossing
	for _, c := range adds {
		if v, ok := counted[counter{s.counterKey(&c), c.ClientID}]; ok {
			found = append(found, limiteval.Crossed(c.Limit, c.Window, c.ClientID, v[0], v[1])...)
		}
	}
	for i := range rolling {
		c := &rolling[i]
		if v, ok := rolled[rollingCounter{s.rollingKey('h', c.Limit, c.ClientID), c.ClientID, strconv.FormatInt(c.Limit.Version, 10)}]; ok {
			found = append(found, rollingCrossed(c.Limit, c.ClientID, at, v)...)
		}
	}
	return found, nil
}

func parseInts(dst []int64, src []string) error {
	for i := range dst {
		n, err := strconv.ParseInt(src[i], 10, 64)
		if err != nil {
			return err
		}
		dst[i] = n
	}
	return nil
}

// counterKey is the key of the counters of c's limit version and window.
func (s *Store) counterKey(c *limiteval.Count) string {
	return s.limitKey("c", limitTag(c.Limit), strconv.FormatInt(c.Window.Start.Unix(), 10))
}

// usageEvents returns the journal's events, as Append accepted them.
func (j *journal) usageEvents() []*usage.Event {
	out := make([]*usage.Event, len(j.events))
	for i := range j.events {
		r := &j.events[i]
		out[i] = &usage.Event{
			ID: r.id, Time: time.Unix(r.time, int64(r.nanos)).UTC(), OrganizationID: r.org, ClientID: r.client,
			ClientName: r.clientName, UserID: r.user, TemplateURI: r.template, HTTPMethod: r.method,
			Status: int(r.status), Platform: r.platform, DurationMs: r.duration, RequestBytes: r.reqBytes, ResponseBytes: r.resp,
		}
	}
	return out
}
