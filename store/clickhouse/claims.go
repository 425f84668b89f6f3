package clickhouse

// The claims of idempotency keys, in Redis. A key's value is
//
//	p|<batch>|<deadline ms>|<hour unix s>   claimed by the batch
//	c|<hour unix s>                         committed: the key was recorded with an event of that hour
//
// and it expires a while after its event's hour leaves the widest dedupe
// window in use (claimExpiry). A claimed key is committed when its batch's
// mark exists (markKey: set once per batch when it settles, expiring after
// the last of its keys), else pending: the batch owns the key until it
// commits or is aborted. Settling a batch is thus one write, not one per
// key: it halves the claim store's work per event. "c|" values are written
// by usaged migrate, whose keys have no batch. A claim is one SET … NX GET
// per key, pipelined: the key is the batch's if it had no value, and the
// value it had decides otherwise. Every other change of a value is a Lua
// script that compares it with the value seen first, so that nothing
// overwrites a value it did not see.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"
)

// claimChunk is the number of keys one script call handles.
const claimChunk = 1000

// takeScript takes over KEYS from the values seen: per key, ARGV holds the
// exact value seen, the hour of our event and the claim's expiry; ARGV[1] is
// the new value's prefix (p|batch|deadline|). It returns 1 per key taken and
// 0 per key whose value changed since. ARGV[2], unless empty, is the mark of
// the batch the keys were pending for, which aborted: if the mark exists
// after all, nothing is taken (a batch whose record was deleted once it
// settled may be recorded aborted by a node that read its claims before).
var takeScript = redis.NewScript(`
local out = {}
local settled = ARGV[2] ~= '' and redis.call('EXISTS', ARGV[2]) == 1
for i, k in ipairs(KEYS) do
	local j = 3 + (i - 1) * 3
	if not settled and redis.call('GET', k) == ARGV[j] then
		redis.call('SET', k, ARGV[1] .. ARGV[j + 1], 'PXAT', ARGV[j + 2])
		out[i] = 1
	else
		out[i] = 0
	end
end
return out
`)

// releaseScript deletes KEYS where they are still pending for the batch
// whose prefix is ARGV[1]: the keys of an aborted batch.
var releaseScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
	local v = redis.call('GET', k)
	if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', k) end
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

// claimKey returns the claim of event id in scope: kind 'e' with an
// organization, 'a' with a service GUID. The hash is the one the embedded
// backend keys its dedupe records with, so that they can be migrated into
// claims.
func (s *Store) claimKey(kind byte, scope, id string) string {
	x := xxh3.HashString128Seed(id, s.seed)
	var h [12]byte
	binary.BigEndian.PutUint64(h[0:8], x.Hi)
	binary.BigEndian.PutUint32(h[8:12], uint32(x.Lo))
	return s.hashClaimKey(kind, scope, h)
}

// hashClaimKey is the key of the claim of an event id of kind ('e' or 'a')
// in scope whose id hashes to h: the hash the embedded store keeps, so that
// its records become claims.
func (s *Store) hashClaimKey(kind byte, scope string, h [12]byte) string {
	return s.claimPrefix() + string(kind) + ":" + scope + ":" + hex.EncodeToString(h[:])
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

// claim is one key offered by a batch.
type claim struct {
	key        string
	hour, from int64 // Unix s: the event's hour, the hour dedupe starts from
	expiry     int64 // Unix ms
}

// claimResult is what a claim found for a key: new or dup, or the
// value of the other batch's pending claim.
type claimResult struct {
	dup     bool
	pending string
}

// claimAll claims cs for the batch: one SET … NX GET per key, in one
// MULTI … EXEC. A plain pipeline is read by Redis 16 KiB at a time, and
// with appendfsync always each read's writes cost an fsync before their
// answers: ~90 claims per fsync. In a transaction Redis only queues the
// commands as it reads them and runs them all at EXEC, so that a batch's
// claims share one fsync (4.4× fewer µs per claim measured, 44.6 → 10.2).
// Then, for the keys that had a value, the marks of the batches they were
// claimed by and the take-over of those from before the window. Per key the
// result is new, dup (committed within the window: "c|", or claimed by a
// batch with a mark) or pending for another batch (contended). A key
// committed or claimed with an hour before the window is forgotten: it is
// taken from the value seen, keeping the later of its hours, or claimed
// again if that value changed meanwhile.
func (s *Store) claimAll(ctx context.Context, batch string, deadline int64, cs []claim) ([]claimResult, error) {
	out := make([]claimResult, len(cs))
	mine := "p|" + batch + "|" + strconv.FormatInt(deadline, 10) + "|"
	pipe := s.claims.TxPipeline()
	cmds := make([]*redis.Cmd, len(cs))
	for i, c := range cs {
		cmds[i] = pipe.Do(ctx, "SET", c.key, mine+strconv.FormatInt(c.hour, 10), "NX", "GET", "PXAT", c.expiry)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err, "claims: claim")
	}
	var (
		old    []int
		olds   []string
		owners = map[string][]int{} // batches that claimed keys within the window → the keys
	)
	for i, cmd := range cmds {
		v, err := cmd.Text()
		if errors.Is(err, redis.Nil) {
			continue // new: the key is the batch's
		}
		if err != nil {
			return nil, unavailable(err, "claims: claim")
		}
		hour, ok := claimHour(v)
		switch {
		case !ok:
			return nil, fmt.Errorf("claims: malformed claim %q of key %s", v, cs[i].key)
		case hour < cs[i].from:
			cs[i].hour = max(cs[i].hour, hour)
			old, olds = append(old, i), append(olds, v)
		case strings.HasPrefix(v, "c|"):
			out[i].dup = true
		default:
			owner, _, ok := pendingValue(v)
			if !ok {
				return nil, fmt.Errorf("claims: malformed claim %q of key %s", v, cs[i].key)
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
	took, err := s.take(ctx, batch, deadline, "", taking, olds)
	if err != nil {
		return nil, err
	}
	var again []claim
	var at []int
	for j, i := range old {
		if !took[j] {
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
				out[i] = claimResult{dup: true}
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
// before the window, and reports per claim whether it did.
func (s *Store) take(ctx context.Context, batch string, deadline int64, owner string, cs []claim, olds []string) ([]bool, error) {
	prefix := "p|" + batch + "|" + strconv.FormatInt(deadline, 10) + "|"
	out := make([]bool, 0, len(cs))
	for lo := 0; lo < len(cs); lo += claimChunk {
		hi := min(lo+claimChunk, len(cs))
		keys := make([]string, 0, hi-lo)
		mark := ""
		if owner != "" {
			mark = s.markKey(owner)
		}
		args := []any{prefix, mark}
		for i := lo; i < hi; i++ {
			keys = append(keys, cs[i].key)
			args = append(args, olds[i], cs[i].hour, cs[i].expiry)
		}
		vals, err := takeScript.Run(ctx, s.claims, keys, args...).Int64Slice()
		if err != nil {
			return nil, unavailable(err, "claims: take over")
		}
		for _, v := range vals {
			out = append(out, v == 1)
		}
	}
	return out, nil
}

// release deletes the claims among keys still pending for batch, which
// aborted, in chunks, pipelined.
func (s *Store) release(ctx context.Context, batch string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	prefix := "p|" + batch + "|"
	pipe := s.claims.Pipeline()
	for lo := 0; lo < len(keys); lo += claimChunk {
		releaseScript.Eval(ctx, pipe, keys[lo:min(lo+claimChunk, len(keys))], prefix)
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
