package clickhouse

import (
	"context"
	"fmt"

	"github.com/usaged/usaged/usage"
)

// OpenWithHook opens a Store whose batches call hook after each step of
// the protocol: hook may block (a paused node) and returns true to stop the
// batch there, as if its node had died.
func OpenWithHook(ctx context.Context, cfg Config, hook func(step string) (stop bool)) (*Store, error) {
	return open(ctx, cfg, hook)
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
