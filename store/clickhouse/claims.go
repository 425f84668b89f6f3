package clickhouse

// The claims of idempotency keys, in Redis. A claim is a field of a hash:
//
//	<prefix><kind>:<scope>:g<generation>:<bucket>   field: the id's 12-byte hash
//
// and its value is
//
//	p|<batch>|<deadline ms>|<hour unix s>   claimed by the batch
//	c|<hour unix s>                         committed: the key was recorded with an event of that hour
//
// A claimed key is committed when its batch's mark exists (markKey: set
// once per batch when it settles, expiring after the last of its keys),
// else pending: the batch owns the key until it commits or is aborted.
// Settling a batch is thus one write, not one per key. "c|" values are
// written by usaged migrate, whose keys have no batch.
//
// Hashes, not a key per claim, because Redis's work per command, not per
// claim, was most of what a claim cost it: a batch's claims are one script
// call that reads each of its hashes once per generation and writes it once
// (claimScript). Redis spends ~2 µs of CPU per claim this way, against
// ~8 µs for a SET … NX GET PXAT per key, and half the memory
// (TestClaimShapesCost). A scope's claims of one generation are spread
// over claimBuckets hashes by their hash's first bits, so that no hash
// holds more than a fraction of a large organization's claims.
//
// Generations, because a field cannot expire on its own (Redis 7.0): a
// claim is written into the generation of the time it is made, and a hash
// expires whole once the last claim written into it is no longer needed
// (claimExpiry, the latest of its claims'). The cluster's generation length
// is fixed in the keeper by the first node that opens the store, as its
// dedupe window plus 2·claimSkew. An event within a window was claimed at most
// claimSkew (clock differences and MaxFuture, with room) before the window
// starts, so a claim is looked for in the generations from the window's
// start − claimSkew to now + claimSkew: two, for a node whose window is the
// first node's; more, and no less exact, for a node with a wider one. An id
// has at most one value across the generations: a claim is written only
// where the id has none (in one script call with the lookup), and taking a
// claim over moves it into the current generation. Every other change of a
// value is a Lua script that compares it with the value seen first, so that
// nothing overwrites a value it did not see.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"
)

// claimBuckets is the number of hashes per scope and generation; a
// claim's is its hash's first 6 bits.
const claimBuckets = 64

// claimSkew is how much earlier than the start of its window an event may
// have been claimed, by the claiming node's clock, and how much later than
// now another node's clock may run: a claim is looked for from the
// generation of the window's start − claimSkew to that of now + claimSkew.
const claimSkew = 2 * time.Hour

// claimCallSize is the most claims one script call takes: Redis runs
// nothing else during a call, so a larger batch is claimed in a few.
const claimCallSize = 8192

// claimScript claims fields of hashes where the id has no value in any
// generation read. KEYS are, per group of claims (a scope and a bucket),
// its hash in each generation read, oldest first. ARGV[1] is the new
// values' prefix, ARGV[2] the generations read per group, ARGV[3] the
// index among them of the one written; then per group its expiry (Unix
// ms), its number of claims n and n times a field and an hour. It returns,
// per claim that had a value, its number (from 1, in ARGV's order), the
// index of the generation the value was found in, and the value.
var claimScript = redis.NewScript(`
local prefix, ng, w = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out, a, k, c = {}, 4, 0, 0
while a <= #ARGV do
	local exp, n = ARGV[a], tonumber(ARGV[a + 1])
	local fields = {}
	for j = 1, n do fields[j] = ARGV[a + 2 * j] end
	local found, gen = {}, {}
	for g = 1, ng do
		for lo = 1, n, 1000 do
			local vals = redis.call('HMGET', KEYS[k + g], unpack(fields, lo, math.min(lo + 999, n)))
			for j = 1, #vals do
				if vals[j] then found[lo + j - 1], gen[lo + j - 1] = vals[j], g end
			end
		end
	end
	local set, wrote = {}, false
	for j = 1, n do
		if found[j] then
			out[#out + 1] = c + j
			out[#out + 1] = gen[j]
			out[#out + 1] = found[j]
		else
			set[#set + 1] = fields[j]
			set[#set + 1] = prefix .. ARGV[a + 2 * j + 1]
		end
		if #set >= 2000 or j == n and #set > 0 then
			redis.call('HSET', KEYS[k + w], unpack(set))
			set, wrote = {}, true
		end
	end
	if wrote and redis.call('PEXPIRETIME', KEYS[k + w]) < tonumber(exp) then
		redis.call('PEXPIREAT', KEYS[k + w], exp)
	end
	a, k, c = a + 2 + 2 * n, k + ng, c + n
end
return out
`)

// takeScript takes over claims from the values seen. KEYS are, per claim,
// the hash its value is in and the hash of the current generation, where
// it is moved. ARGV[1] is the new value's prefix (p|batch|deadline|);
// ARGV[2], unless empty, the mark of the batch the keys were pending for,
// which aborted: if the mark exists after all, nothing is taken (a batch
// whose record was deleted once it settled may be recorded aborted by a
// node that read its claims before). Then per claim its field, the exact
// value seen, the hour of our event and the claim's expiry. It returns 1
// per claim taken and 0 per claim whose value changed since.
var takeScript = redis.NewScript(`
local out = {}
local settled = ARGV[2] ~= '' and redis.call('EXISTS', ARGV[2]) == 1
for i = 1, #KEYS / 2 do
	local from, to, j = KEYS[2 * i - 1], KEYS[2 * i], 3 + (i - 1) * 4
	local f = ARGV[j]
	if not settled and redis.call('HGET', from, f) == ARGV[j + 1] then
		if from ~= to then redis.call('HDEL', from, f) end
		redis.call('HSET', to, f, ARGV[1] .. ARGV[j + 2])
		if redis.call('PEXPIRETIME', to) < tonumber(ARGV[j + 3]) then
			redis.call('PEXPIREAT', to, ARGV[j + 3])
		end
		out[i] = 1
	else
		out[i] = 0
	end
end
return out
`)

// releaseScript deletes the claims whose hashes are KEYS and fields
// ARGV[2…] where they are still pending for the batch whose prefix is
// ARGV[1]: the claims of an aborted batch.
var releaseScript = redis.NewScript(`
for i, k in ipairs(KEYS) do
	local v = redis.call('HGET', k, ARGV[i + 1])
	if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then redis.call('HDEL', k, ARGV[i + 1]) end
end
return 0
`)

// markPrefix is the prefix of the batches' marks; markKey the mark of
// batch.
func (s *Store) markPrefix() string          { return s.claimPrefix() + "b:" }
func (s *Store) markKey(batch string) string { return s.markPrefix() + batch }

// mark records batch as committed in the claim store, until expiry (Unix
// ms; 0 for good, when it is not known): from then on its claimed keys are
// committed.
func (s *Store) mark(ctx context.Context, batch string, expiry int64) error {
	args := []any{"SET", s.markKey(batch), "c"}
	if expiry > 0 {
		args = append(args, "PXAT", expiry)
	}
	if err := s.claims.Do(ctx, args...).Err(); err != nil {
		return unavailable(err, "claims: mark batch %s", batch)
	}
	return nil
}

// claim is one key offered by a batch: where its value is, and what it
// claims.
type claim struct {
	scope      string // the start of its hashes' keys: <prefix><kind>:<scope>:
	field      string // the id's 12-byte hash
	hour, from int64  // Unix s: the event's hour, the hour dedupe starts from
	expiry     int64  // Unix ms: until when it must be found
	gen        int64  // the generation its value is in, once claimed
}

// id is the claim's identity: one per event id and scope.
func (c *claim) id() string { return c.scope + c.field }

// key returns the key of the claim's hash in generation gen.
func (c *claim) key(gen int64) string {
	const digits = "0123456789abcdef"
	b := c.bucket()
	return c.scope + "g" + strconv.FormatInt(gen, 10) + ":" + string([]byte{digits[b>>4], digits[b&15]})
}

// bucket returns the claim's bucket: its hash's first bits.
func (c *claim) bucket() byte { return c.field[0] / (256 / claimBuckets) }

// idClaim returns the claim of event id in scope: kind 'e' with an
// organization, 'a' with a service GUID. The hash is the one the embedded
// backend keys its dedupe records with, so that they can be migrated into
// claims.
func (s *Store) idClaim(kind byte, scope, id string) claim {
	x := xxh3.HashString128Seed(id, s.seed)
	var h [12]byte
	binary.BigEndian.PutUint64(h[0:8], x.Hi)
	binary.BigEndian.PutUint32(h[8:12], uint32(x.Lo))
	return s.hashClaim(kind, scope, h)
}

// hashClaim returns the claim of an event id of kind ('e' or 'a') in scope
// whose id hashes to h: the hash the embedded store keeps, so that its
// records become claims.
func (s *Store) hashClaim(kind byte, scope string, h [12]byte) claim {
	return claim{scope: s.claimPrefix() + string(kind) + ":" + scope + ":", field: string(h[:])}
}

// claimExpiry returns when the claim of an event of hour expires (Unix
// ms): 2 hours after the hour leaves a window as wide as now − from, and at
// least an hour from now.
func claimExpiry(hour, from, now time.Time) int64 {
	at := hour.Add(now.Sub(from) + 2*time.Hour).UnixMilli()
	return max(at, now.Add(time.Hour).UnixMilli())
}

// loadSeed reads the cluster's hash seed from the keeper, creating it with
// a random value when it is missing.
func (s *Store) loadSeed() error {
	path := s.root + "/seed"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	_, err := s.keeper.Create(path, b, 0, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNodeExists) {
		b, _, err = s.keeper.Get(path)
	}
	if err != nil {
		return unavailable(err, "keeper %v: seed", s.cfg.Keeper)
	}
	if len(b) != 8 {
		return fmt.Errorf("keeper %v: %s holds %d bytes, want 8", s.cfg.Keeper, path, len(b))
	}
	s.seed = binary.BigEndian.Uint64(b)
	return nil
}

// loadGeneration reads the cluster's generation length of claims from the
// keeper into s.genLen, creating it as window (in whole hours: dedupe
// starts at an hour, so a batch's window is up to an hour longer than the
// node's) + 2·claimSkew if no node has yet. Open calls it once.
func (s *Store) loadGeneration(window time.Duration) error {
	path := s.root + "/claim-generation"
	b := binary.BigEndian.AppendUint64(nil, uint64((max(window.Truncate(time.Hour), time.Hour) + 2*claimSkew).Milliseconds()))
	_, err := s.keeper.Create(path, b, 0, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNodeExists) {
		b, _, err = s.keeper.Get(path)
	}
	if err != nil {
		return unavailable(err, "keeper %v: claim generation", s.cfg.Keeper)
	}
	if len(b) != 8 || int64(binary.BigEndian.Uint64(b)) <= 0 {
		return fmt.Errorf("keeper %v: %s holds %x, want a positive 8-byte length", s.cfg.Keeper, path, b)
	}
	s.genLen = int64(binary.BigEndian.Uint64(b))
	return nil
}

// maxClaimGens bounds the generations one lookup reads: a window 31 times
// wider than the first node's.
const maxClaimGens = 32

// gens returns the generations a claim with dedupe from (Unix s) is looked
// for in, lo to hi, and the one it is written into now.
func (s *Store) gens(from int64, now time.Time) (lo, hi, cur int64, err error) {
	if from <= 0 || from > now.Unix() {
		return 0, 0, 0, fmt.Errorf("claims: dedupe from %s, want a time after 1970 and before now", time.Unix(from, 0).UTC())
	}
	g := s.genLen
	lo = (time.Unix(from, 0).Add(-claimSkew).UnixMilli()) / g
	hi = now.Add(claimSkew).UnixMilli() / g
	if hi-lo+1 > maxClaimGens {
		return 0, 0, 0, fmt.Errorf("claims: a dedupe window from %s spans %d of the cluster's claim generations (%s each, set by its first node's window); at most %d",
			time.Unix(from, 0).UTC(), hi-lo+1, time.Duration(g)*time.Millisecond, maxClaimGens)
	}
	return lo, hi, now.UnixMilli() / g, nil
}

// writeClaims writes the claims cs with values prefix + their hour where
// their ids have no value in the generations read at now, and returns, per
// claim, the value it had ("" where it had none and has ours now). It sets
// each claim's generation to where its value is.
func (s *Store) writeClaims(ctx context.Context, prefix string, cs []claim, now time.Time) ([]string, error) {
	from := cs[0].from
	for i := range cs {
		from = min(from, cs[i].from)
	}
	lo, hi, cur, err := s.gens(from, now)
	if err != nil {
		return nil, err
	}
	ng := int(hi - lo + 1)
	type hash struct {
		scope  string
		bucket byte
	}
	groups := map[hash][]int{}
	for i := range cs {
		k := hash{cs[i].scope, cs[i].bucket()}
		groups[k] = append(groups[k], i)
	}
	order := slices.SortedFunc(maps.Keys(groups), func(a, b hash) int {
		return cmp.Or(strings.Compare(a.scope, b.scope), cmp.Compare(a.bucket, b.bucket))
	})
	out := make([]string, len(cs))
	var (
		keys  []string
		args  []any
		which []int // the claim of each number in the call
	)
	call := func() error {
		if len(which) == 0 {
			return nil
		}
		res, err := claimScript.Run(ctx, s.claims, keys, args...).Slice()
		if err != nil {
			return unavailable(err, "claims: claim")
		}
		for i := range which {
			cs[which[i]].gen = cur
		}
		for j := 0; j+2 < len(res); j += 3 {
			n, _ := res[j].(int64)
			g, _ := res[j+1].(int64)
			v, _ := res[j+2].(string)
			if n < 1 || int(n) > len(which) || g < 1 || int(g) > ng || v == "" {
				return fmt.Errorf("claims: the claim script answered %v", res[j:j+3])
			}
			i := which[n-1]
			out[i], cs[i].gen = v, lo+g-1
		}
		keys, args, which = nil, nil, nil
		return nil
	}
	for _, k := range order {
		idx := groups[k]
		if len(which) > 0 && len(which)+len(idx) > claimCallSize {
			if err := call(); err != nil {
				return nil, err
			}
		}
		if len(which) == 0 {
			args = []any{prefix, ng, int(cur - lo + 1)}
		}
		c0 := &cs[idx[0]]
		for g := lo; g <= hi; g++ {
			keys = append(keys, c0.key(g))
		}
		expiry := int64(0)
		for _, i := range idx {
			expiry = max(expiry, cs[i].expiry)
		}
		args = append(args, expiry, len(idx))
		for _, i := range idx {
			args = append(args, cs[i].field, cs[i].hour)
		}
		which = append(which, idx...)
	}
	if err := call(); err != nil {
		return nil, err
	}
	return out, nil
}

// claimResult is what a claim found for a key: new or dup, or the
// value of the other batch's pending claim. gen is where the value is.
type claimResult struct {
	dup     bool
	pending string
	gen     int64
}

// claimAll claims cs for the batch (writeClaims). Then, for the keys that
// had a value, the marks of the batches they were claimed by and the
// take-over of those from before the window. Per key the result is new,
// dup (committed within the window: "c|", or claimed by a batch with a
// mark) or pending for another batch (contended). A key committed or
// claimed with an hour before the window is forgotten: it is taken from
// the value seen, keeping the later of its hours, or claimed again if that
// value changed meanwhile.
func (s *Store) claimAll(ctx context.Context, batch string, deadline int64, cs []claim) ([]claimResult, error) {
	out := make([]claimResult, len(cs))
	mine := "p|" + batch + "|" + strconv.FormatInt(deadline, 10) + "|"
	vals, err := s.writeClaims(ctx, mine, cs, time.Now())
	if err != nil {
		return nil, err
	}
	var (
		old    []int
		olds   []string
		owners = map[string][]int{} // batches that claimed keys within the window → the keys
	)
	for i, v := range vals {
		out[i].gen = cs[i].gen
		if v == "" {
			continue // new: the key is the batch's
		}
		hour, ok := claimHour(v)
		switch {
		case !ok:
			return nil, fmt.Errorf("claims: malformed claim %q of key %s", v, cs[i].key(cs[i].gen))
		case hour < cs[i].from:
			cs[i].hour = max(cs[i].hour, hour)
			old, olds = append(old, i), append(olds, v)
		case strings.HasPrefix(v, "c|"):
			out[i].dup = true
		default:
			owner, _, ok := pendingValue(v)
			if !ok {
				return nil, fmt.Errorf("claims: malformed claim %q of key %s", v, cs[i].key(cs[i].gen))
			}
			owners[owner] = append(owners[owner], i)
			out[i].pending = v
		}
	}
	if err := s.markedDup(ctx, owners, out); err != nil {
		return nil, err
	}
	if len(old) == 0 {
		return out, nil
	}
	taking := make([]claim, len(old))
	for j, i := range old {
		taking[j] = cs[i]
	}
	took, gen, err := s.take(ctx, batch, deadline, "", taking, olds)
	if err != nil {
		return nil, err
	}
	var again []claim
	var at []int
	for j, i := range old {
		if took[j] {
			out[i].gen = gen
		} else {
			again, at = append(again, cs[i]), append(at, i)
		}
	}
	if len(again) == 0 {
		return out, nil
	}
	res, err := s.claimAll(ctx, batch, deadline, again)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = res[j]
	}
	return out, nil
}

// markedDup reads the marks of owners, the batches that claimed keys,
// and makes the results of the keys of those with a mark dup.
func (s *Store) markedDup(ctx context.Context, owners map[string][]int, out []claimResult) error {
	if len(owners) == 0 {
		return nil
	}
	pipe := s.claims.Pipeline()
	marks := map[string]*redis.IntCmd{}
	for owner := range owners {
		marks[owner] = pipe.Exists(ctx, s.markKey(owner))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return unavailable(err, "claims: read marks")
	}
	for owner, idx := range owners {
		if marks[owner].Val() == 1 {
			for _, i := range idx {
				out[i].dup, out[i].pending = true, ""
			}
		}
	}
	return nil
}

// claimHour returns the hour (Unix s) at the end of a claim's value.
func claimHour(v string) (int64, bool) {
	h, err := strconv.ParseInt(v[strings.LastIndexByte(v, '|')+1:], 10, 64)
	return h, err == nil
}

// take runs takeScript: it takes over the claims cs whose values are
// olds, all pending for owner (an aborted batch) or, with owner "", from
// before the window, moving them into the current generation, and reports
// per claim whether it did, and that generation.
func (s *Store) take(ctx context.Context, batch string, deadline int64, owner string, cs []claim, olds []string) ([]bool, int64, error) {
	_, _, cur, err := s.gens(cs[0].from, time.Now())
	if err != nil {
		return nil, 0, err
	}
	prefix := "p|" + batch + "|" + strconv.FormatInt(deadline, 10) + "|"
	mark := ""
	if owner != "" {
		mark = s.markKey(owner)
	}
	out := make([]bool, 0, len(cs))
	for lo := 0; lo < len(cs); lo += claimChunk {
		hi := min(lo+claimChunk, len(cs))
		keys := make([]string, 0, 2*(hi-lo))
		args := []any{prefix, mark}
		for i := lo; i < hi; i++ {
			c := &cs[i]
			keys = append(keys, c.key(c.gen), c.key(cur))
			args = append(args, c.field, olds[i], c.hour, c.expiry)
		}
		vals, err := takeScript.Run(ctx, s.claims, keys, args...).Int64Slice()
		if err != nil {
			return nil, 0, unavailable(err, "claims: take over")
		}
		for _, v := range vals {
			out = append(out, v == 1)
		}
	}
	return out, cur, nil
}

// claimChunk is the number of claims one call of the take-over or release
// scripts handles.
const claimChunk = 1000

// release deletes the claims cs still pending for batch, which aborted,
// in chunks, pipelined.
func (s *Store) release(ctx context.Context, batch string, cs []claim) error {
	if len(cs) == 0 {
		return nil
	}
	prefix := "p|" + batch + "|"
	pipe := s.claims.Pipeline()
	for lo := 0; lo < len(cs); lo += claimChunk {
		hi := min(lo+claimChunk, len(cs))
		keys := make([]string, 0, hi-lo)
		args := []any{prefix}
		for i := lo; i < hi; i++ {
			keys = append(keys, cs[i].key(cs[i].gen))
			args = append(args, cs[i].field)
		}
		releaseScript.Eval(ctx, pipe, keys, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return unavailable(err, "claims: release batch %s", batch)
	}
	return nil
}

// pendingValue splits a pending claim's value into its batch and deadline.
func pendingValue(v string) (batch string, deadline int64, ok bool) {
	parts := strings.Split(v, "|")
	if len(parts) != 4 || parts[0] != "p" {
		return "", 0, false
	}
	d, err := strconv.ParseInt(parts[2], 10, 64)
	return parts[1], d, err == nil
}

// convertClaims moves the claims of an earlier usaged, a string key each
// (<prefix><kind>:<scope>:<24 hex digits of the hash>), into the claim
// hashes, as if claimed now, each expiring no earlier than its key would
// have, and then deletes the keys. Open runs it before the node claims
// anything, and an upgrade stops every older node before the first newer
// one starts (README), so no claim is looked for while it is neither here
// nor there. An interrupted conversion is finished by the next Open: a
// claim is only written where its id has no value.
func (s *Store) convertClaims(ctx context.Context) error {
	converted := 0
	for _, kind := range []byte{'e', 'a'} {
		head := s.claimPrefix() + string(kind) + ":"
		var keys []string
		flush := func() error {
			n, err := s.convertKeys(ctx, kind, head, keys)
			converted, keys = converted+n, keys[:0]
			return err
		}
		iter := s.claims.ScanType(ctx, 0, head+"*", 1000, "string").Iterator()
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return unavailable(err, "claims: list the claims of an earlier version")
		}
		if err := flush(); err != nil {
			return err
		}
	}
	if converted > 0 {
		s.cfg.logger().Info("moved the claims of an earlier version into the claim hashes", "claims", converted)
	}
	return nil
}

// convertKeys converts keys, claims of kind whose keys begin with head
// (convertClaims), and returns how many it wrote.
func (s *Store) convertKeys(ctx context.Context, kind byte, head string, keys []string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	pipe := s.claims.Pipeline()
	vals := make([]*redis.StringCmd, len(keys))
	exps := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		vals[i], exps[i] = pipe.Get(ctx, k), pipe.Do(ctx, "PEXPIRETIME", k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, unavailable(err, "claims: read the claims of an earlier version")
	}
	now := time.Now()
	from := now.Add(-time.Duration(s.genLen)*time.Millisecond + 2*claimSkew).Unix()
	byPrefix := map[string][]claim{}
	for i, k := range keys {
		v, err := vals[i].Result()
		rest := strings.TrimPrefix(k, head)
		at := strings.LastIndexByte(rest, ':')
		var h [12]byte
		n, herr := hex.Decode(h[:], []byte(rest[at+1:]))
		hour, hok := claimHour(v)
		if err != nil || at < 0 || herr != nil || n != len(h) || len(rest)-at-1 != 2*len(h) || !hok {
			continue // gone meanwhile (converted by another node), or not a claim
		}
		c := s.hashClaim(kind, rest[:at], h)
		c.hour, c.from = hour, from
		if c.expiry, err = exps[i].Int64(); err != nil || c.expiry <= 0 {
			c.expiry = claimExpiry(time.Unix(hour, 0), time.Unix(from, 0), now)
		}
		prefix := v[:strings.LastIndexByte(v, '|')+1]
		byPrefix[prefix] = append(byPrefix[prefix], c)
	}
	written := 0
	for prefix, cs := range byPrefix {
		vals, err := s.writeClaims(ctx, prefix, cs, now)
		if err != nil {
			return written, err
		}
		for _, v := range vals {
			if v == "" {
				written++
			}
		}
	}
	if err := s.claims.Del(ctx, keys...).Err(); err != nil {
		return written, unavailable(err, "claims: delete the claims of an earlier version")
	}
	return written, nil
}
