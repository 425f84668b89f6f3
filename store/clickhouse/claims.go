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
// by usaged migrate, whose keys have no batch. Every change of a value is a
// Lua script, so that a claim or a take-over sees the key and its batch's
// mark and writes the key atomically.

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

// claimScript claims KEYS for the batch ARGV[1] with the deadline ARGV[2];
// ARGV[3] is the prefix of the marks, ARGV holds then, per key, the hour of
// its event, the hour dedupe starts from, and when the claim expires (Unix
// ms). Per key it returns 0 (NEW: the key is now pending for the batch), 1
// (DUP: committed within the window) or the value of a claim pending for
// another batch (CONTENDED). A key committed or pending with an hour before
// the window is forgotten: it is taken, keeping the later of its hours. A
// new key, the common case, costs one SET … NX GET.
var claimScript = redis.NewScript(`
local out = {}
local mine = 'p|' .. ARGV[1] .. '|' .. ARGV[2] .. '|'
for i, k in ipairs(KEYS) do
	local j = 4 + (i - 1) * 3
	local h, from = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
	local v = redis.call('SET', k, mine .. h, 'NX', 'GET', 'PXAT', ARGV[j + 2])
	if not v then
		out[i] = 0
	else
		local old = tonumber(string.match(v, '(%d+)$'))
		if old < from then
			if old > h then h = old end
			redis.call('SET', k, mine .. h, 'PXAT', ARGV[j + 2])
			out[i] = 0
		elseif string.sub(v, 1, 2) == 'c|' or redis.call('EXISTS', ARGV[3] .. string.match(v, '^p|([^|]+)|')) == 1 then
			out[i] = 1
		else
			out[i] = v
		end
	end
end
return out
`)

// takeScript takes over KEYS pending for an aborted batch, whose mark is
// ARGV[2]: per key, ARGV holds the exact value seen, the hour of our event
// and the claim's expiry; ARGV[1] is the new value's prefix
// (p|batch|deadline|). It returns 1 per key taken and 0 per key whose value
// changed since, or all 0 when the batch has a mark after all: a batch
// whose record was deleted once it settled may be recorded aborted by a
// node that read its claims before.
var takeScript = redis.NewScript(`
local out = {}
local settled = redis.call('EXISTS', ARGV[2]) == 1
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

// claimResult is what claimScript answered for a key: new or dup, or the
// value of the other batch's pending claim.
type claimResult struct {
	dup     bool
	pending string
}

// claimAll runs claimScript over cs for the batch, in chunks, pipelined.
func (s *Store) claimAll(ctx context.Context, batch string, deadline int64, cs []claim) ([]claimResult, error) {
	pipe := s.claims.Pipeline()
	var cmds []*redis.Cmd
	for lo := 0; lo < len(cs); lo += claimChunk {
		part := cs[lo:min(lo+claimChunk, len(cs))]
		keys := make([]string, len(part))
		args := make([]any, 0, 3+3*len(part))
		args = append(args, batch, deadline, s.markPrefix())
		for i, c := range part {
			keys[i] = c.key
			args = append(args, c.hour, c.from, c.expiry)
		}
		cmds = append(cmds, claimScript.Eval(ctx, pipe, keys, args...))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable(err, "claims: claim")
	}
	out := make([]claimResult, 0, len(cs))
	for _, cmd := range cmds {
		vals, err := cmd.Slice()
		if err != nil {
			return nil, unavailable(err, "claims: claim")
		}
		for _, v := range vals {
			switch v := v.(type) {
			case int64:
				out = append(out, claimResult{dup: v == 1})
			case string:
				out = append(out, claimResult{pending: v})
			default:
				return nil, fmt.Errorf("claims: claim answered %T", v)
			}
		}
	}
	return out, nil
}

// take runs takeScript: it takes over the claims cs whose values are
// olds, all pending for owner, and reports per claim whether it did.
func (s *Store) take(ctx context.Context, batch string, deadline int64, owner string, cs []claim, olds []string) ([]bool, error) {
	prefix := "p|" + batch + "|" + strconv.FormatInt(deadline, 10) + "|"
	out := make([]bool, 0, len(cs))
	for lo := 0; lo < len(cs); lo += claimChunk {
		hi := min(lo+claimChunk, len(cs))
		keys := make([]string, 0, hi-lo)
		args := []any{prefix, s.markKey(owner)}
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
