package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/usage"
)

// OpenWithHook opens a Store whose batches call hook after each step of
// the protocol: hook may block (a paused node) and returns true to stop the
// batch there, as if its node had died.
func OpenWithHook(ctx context.Context, cfg Config, hook func(step string) (stop bool)) (*Store, error) {
	return open(ctx, cfg, hook)
}

// LimitsHooks are a test's view into the counting of batches into the
// limits: Clock maps a batch's commit time to the time it counts at, the
// same whoever counts it; Count is called before each run of the count
// script, and what it returns after, with the script's answer ("ok",
// "done", "stale", "gate" or "error").
type LimitsHooks struct {
	Clock func(commit time.Time) time.Time
	Count func(batch string, at time.Time, events []*usage.Event) (after func(result string))
}

// EvaluateLimitsWithHooks is EvaluateLimits with hooks.
func (s *Store) EvaluateLimitsWithHooks(ctx context.Context, cfg LimitsConfig, h LimitsHooks) (*Limits, error) {
	return s.evaluateLimits(ctx, cfg, limitsHooks{clock: h.Clock, count: h.Count})
}

// WriteUnprotected writes events as one batch of the protocol writes them
// (the journal, the count blocks and the published rows, each insert with
// the store's quorum) but with no claim and no commit record: ClickHouse's
// own insert of usaged's tables, the baseline the ingest benchmark
// compares the protocol with.
func (s *Store) WriteUnprotected(ctx context.Context, batch string, events []usage.Event) error {
	c := &call{kind: 'e', events: events}
	items := make([]*item, len(events))
	for i := range events {
		items[i] = &item{call: c, i: i}
		items[i].hour = events[i].Time.Unix() / 3600 * 3600
	}
	j := eventRows(batch, items)
	if err := s.writeJournal(ctx, j); err != nil {
		return err
	}
	if err := s.writeCounts(ctx, j, 0); err != nil {
		return err
	}
	return s.writePublished(ctx, j)
}

// Rewind makes every replica's schema look as it was before migration
// version: the versions from it on are forgotten and the tables named
// dropped, so that the next Open applies them again.
func (s *Store) Rewind(ctx context.Context, version int, drop ...string) error {
	for _, r := range s.replicas {
		for _, table := range drop {
			if err := r.Exec(ctx, "DROP TABLE IF EXISTS "+s.cfg.Database+"."+table); err != nil {
				return err
			}
		}
		stmts := []string{"DROP TABLE " + s.cfg.Database + ".schema_migrations", s.expand(migrations[0].statements[0])}
		for v := 1; v < version; v++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, applied_at) SELECT %d, now()", s.cfg.Database, v))
		}
		for _, stmt := range stmts {
			if err := r.Exec(ctx, stmt); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClaimOf returns the claim of event id in org, found in the generations
// a day's window reads, and its value.
func (s *Store) ClaimOf(ctx context.Context, org, id string) (c claim, value string, err error) {
	c = s.idClaim('e', org, id)
	now := time.Now()
	c.from = now.Add(-24 * time.Hour).Unix()
	lo, hi, _, err := s.gens(c.from, now)
	if err != nil {
		return c, "", err
	}
	for c.gen = lo; c.gen <= hi; c.gen++ {
		value, err = s.claims.HGet(ctx, c.key(c.gen), c.field).Result()
		if err != redis.Nil {
			return c, value, err
		}
	}
	return c, "", redis.Nil
}

// ClaimRandom claims n random ids of org for a batch of its own, as at
// now with a window of a day, and returns the generation length.
func (s *Store) ClaimRandom(ctx context.Context, org string, n int, now time.Time) (time.Duration, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = rand.Text()
	}
	_, g, err := s.ClaimIDs(ctx, org, ids, now, now.Add(-24*time.Hour))
	return g, err
}

// ClaimIDs claims the ids of org for a batch of its own, as at now with
// dedupe from from, and returns per id the value it had ("" where it had
// none), and the generation length.
func (s *Store) ClaimIDs(ctx context.Context, org string, ids []string, now, from time.Time) ([]string, time.Duration, error) {
	cs := make([]claim, len(ids))
	hour := now.Truncate(time.Hour)
	for i, id := range ids {
		cs[i] = s.idClaim('e', org, id)
		cs[i].hour, cs[i].from, cs[i].expiry = hour.Unix(), from.Unix(), claimExpiry(hour, from, now)
	}
	batch := make([]byte, 16)
	rand.Read(batch)
	prefix := "p|" + hex.EncodeToString(batch) + "|" + strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10) + "|"
	vals, err := s.writeClaims(ctx, prefix, cs, now)
	if err != nil {
		return nil, 0, err
	}
	return vals, time.Duration(s.genLen) * time.Millisecond, nil
}

// Seed returns the cluster's seed of the claims' hashes.
func (s *Store) Seed() uint64 { return s.seed }

// Key returns the key of the hash c's value is in.
func (c claim) Key() string { return c.key(c.gen) }

// Field returns c's field in its hash.
func (c claim) Field() string { return c.field }

// TakeOver runs the take-over of claim c, seen with value old (pending for
// owner), for a batch of its own, and reports whether it took the key.
func (s *Store) TakeOver(ctx context.Context, owner string, c claim, old string) (bool, error) {
	c.hour, c.expiry = time.Now().Unix()/3600*3600, time.Now().Add(time.Hour).UnixMilli()
	took, _, err := s.take(ctx, "taker", time.Now().Add(time.Minute).UnixMilli(), owner, []claim{c}, []string{old})
	if err != nil {
		return false, err
	}
	return took[0], nil
}

// Marked reports whether batch has settled: its mark is in the claim store.
func (s *Store) Marked(ctx context.Context, batch string) (bool, error) {
	n, err := s.claims.Exists(ctx, s.markKey(batch)).Result()
	return n == 1, err
}

// BatchesInFlight is how many batches a node writes at once.
const BatchesInFlight = batchesInFlight
