package clickhouse

import (
	"context"
	"fmt"
	"time"

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

// ClaimOf returns the key of the claim of event id in org and its value.
func (s *Store) ClaimOf(ctx context.Context, org, id string) (key, value string, err error) {
	key = s.claimKey('e', org, id)
	value, err = s.claims.Get(ctx, key).Result()
	return key, value, err
}

// TakeOver runs the take-over of key, seen with value old (pending for
// owner), for a batch of its own, and reports whether it took the key.
func (s *Store) TakeOver(ctx context.Context, owner, key, old string) (bool, error) {
	took, err := s.take(ctx, "taker", time.Now().Add(time.Minute).UnixMilli(), owner,
		[]claim{{key: key, hour: time.Now().Unix() / 3600 * 3600, expiry: time.Now().Add(time.Hour).UnixMilli()}}, []string{old})
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
