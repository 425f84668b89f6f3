package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-zookeeper/zk"
)

// migrate brings every replica's schema up to the last migration. It holds
// the keeper's schema lock (an ephemeral node: released when this node's
// session ends, also by a crash) while it works, so that nodes starting
// together apply each migration once per replica. A node opens its store
// only once every replica is up to date, so while the lock is held no node
// of this version writes; nodes of an older version must be stopped before
// one of a newer version starts (docs/scale-out.md, "Upgrades").
func (s *Store) migrate(ctx context.Context) error {
	if err := s.ensurePath(s.root + "/batches"); err != nil {
		return unavailable(err, "keeper %v", s.cfg.Keeper)
	}
	unlock, err := s.lock(ctx, s.root+"/schema-lock")
	if err != nil {
		return err
	}
	defer unlock()
	latest := migrations[len(migrations)-1].version
	applied := make([]int, len(s.replicas))
	for i, r := range s.replicas {
		addr := s.cfg.Replicas[i]
		if err := r.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.cfg.Database); err != nil {
			return unavailable(err, "clickhouse replica %s: create database %s", addr, s.cfg.Database)
		}
		if applied[i], err = s.appliedVersion(ctx, r); err != nil {
			return unavailable(err, "clickhouse replica %s: schema version", addr)
		}
		if applied[i] > latest {
			return fmt.Errorf("clickhouse replica %s: database %s has schema version %d, newer than %d, the last this usaged knows: run a newer usaged",
				addr, s.cfg.Database, applied[i], latest)
		}
	}
	for _, m := range migrations {
		var pending []int
		for i := range s.replicas {
			if applied[i] < m.version {
				pending = append(pending, i)
			}
		}
		if len(pending) > 0 {
			s.cfg.logger().Info("applying a schema migration to the ClickHouse replicas", "version", m.version, "replicas", len(pending))
		}
		for _, i := range pending {
			for _, stmt := range m.statements {
				if err := s.replicas[i].Exec(ctx, s.expand(stmt)); err != nil {
					return unavailable(err, "clickhouse replica %s: migration %d", s.cfg.Replicas[i], m.version)
				}
			}
		}
		// A replica added to a shard whose others have the step receives
		// the backfilled rows by replication: the backfill runs only when
		// no replica has the step.
		if m.backfill != nil && len(pending) == len(s.replicas) {
			if err := m.backfill(ctx, s); err != nil {
				return fmt.Errorf("clickhouse: migration %d: %w", m.version, err)
			}
		}
		for _, i := range pending {
			if err := s.replicas[i].Exec(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, applied_at) SELECT %d, now()",
				s.cfg.Database, m.version)); err != nil {
				return unavailable(err, "clickhouse replica %s: record migration %d", s.cfg.Replicas[i], m.version)
			}
		}
	}
	return nil
}

// backfillClientHours fills client_hour_counts from event_counts, for the
// batches whose counts are in place. It first drops what an earlier attempt
// left, so that it can run again, and inserts without block deduplication,
// which would otherwise take the rows of a second attempt for those of the
// first. Batches with a record in the keeper are left out: their owner or
// a recovery publishes them, client_hour_counts included.
func backfillClientHours(ctx context.Context, s *Store) error {
	children, _, err := s.keeper.Children(s.root + "/batches")
	if err != nil {
		return unavailable(err, "keeper %v: list %s/batches", s.cfg.Keeper, s.root)
	}
	pending := []any{""}
	for _, c := range children {
		if !strings.HasSuffix(c, ".lock") {
			pending = append(pending, c)
		}
	}
	r, db := s.replicas[0], s.cfg.Database
	partitions := map[string]bool{}
	for i, rep := range s.replicas {
		rows, err := rep.Query(ctx, "SELECT DISTINCT partition_id FROM system.parts WHERE database = ? AND table = 'client_hour_counts'", db)
		if err != nil {
			return unavailable(err, "clickhouse replica %s: partitions of client_hour_counts", s.cfg.Replicas[i])
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return err
			}
			partitions[p] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for p := range partitions {
		if err := r.Exec(ctx, "ALTER TABLE "+db+".client_hour_counts DROP PARTITION ID ?", p); err != nil {
			return unavailable(err, "clickhouse replica %s: drop partition %s of client_hour_counts", s.cfg.Replicas[0], p)
		}
	}
	settings := ch.Settings{"insert_deduplicate": 0}
	if s.cfg.Quorum > 1 {
		settings["insert_quorum"], settings["insert_quorum_timeout"] = s.cfg.Quorum, 600_000
	}
	err = r.Exec(ch.Context(ctx, ch.WithSettings(settings)),
		"INSERT INTO "+db+".client_hour_counts (org_id, hour, client_id, batch_id, "+countColumns+")"+
			" SELECT org_id, hour, client_id, batch_id, sum(requests), sum(status_2xx), sum(status_3xx), sum(status_4xx), sum(status_5xx), sum(status_429)"+
			" FROM "+db+".event_counts WHERE batch_id NOT IN ? GROUP BY org_id, hour, client_id, batch_id",
		ch.GroupSet{Value: pending})
	if err != nil {
		return unavailable(err, "clickhouse replica %s: fill client_hour_counts", s.cfg.Replicas[0])
	}
	return nil
}

// appliedVersion returns the last migration applied on a replica, 0 when
// none is.
func (s *Store) appliedVersion(ctx context.Context, r driver.Conn) (int, error) {
	var exists uint8
	if err := r.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = ? AND name = 'schema_migrations'",
		s.cfg.Database).Scan(&exists); err != nil {
		return 0, err
	}
	if exists == 0 {
		return 0, nil
	}
	var v uint32
	if err := r.QueryRow(ctx, "SELECT max(version) FROM "+s.cfg.Database+".schema_migrations").Scan(&v); err != nil {
		return 0, err
	}
	return int(v), nil
}

func (s *Store) expand(stmt string) string {
	return strings.NewReplacer(
		"{db}", s.cfg.Database,
		"{table_path}", "/clickhouse/tables/{shard}/"+s.cfg.Database+"/",
	).Replace(stmt)
}

// ensurePath creates path and its parents in the keeper, as persistent
// nodes, where they are missing.
func (s *Store) ensurePath(path string) error {
	p := ""
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		p += "/" + part
		if _, err := s.keeper.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// lock takes the lock at path, an ephemeral node, waiting while another
// session holds it.
func (s *Store) lock(ctx context.Context, path string) (unlock func(), err error) {
	for {
		_, err := s.keeper.Create(path, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		if err == nil {
			return func() { _ = s.keeper.Delete(path, -1) }, nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return nil, unavailable(err, "keeper %v: lock %s", s.cfg.Keeper, path)
		}
		exists, _, gone, err := s.keeper.ExistsW(path)
		if err != nil {
			return nil, unavailable(err, "keeper %v: lock %s", s.cfg.Keeper, path)
		}
		if !exists {
			continue
		}
		select {
		case <-gone:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// AppliedMigrations returns, per replica address, the versions recorded as
// applied, in order, with repeats: for checking that each ran once.
func (s *Store) AppliedMigrations(ctx context.Context) (map[string][]int, error) {
	out := map[string][]int{}
	for i, r := range s.replicas {
		rows, err := r.Query(ctx, "SELECT version FROM "+s.cfg.Database+".schema_migrations ORDER BY version")
		if err != nil {
			return nil, unavailable(err, "clickhouse replica %s", s.cfg.Replicas[i])
		}
		for rows.Next() {
			var v uint32
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			out[s.cfg.Replicas[i]] = append(out[s.cfg.Replicas[i]], int(v))
		}
		rows.Close()
	}
	return out, nil
}

// Drop deletes the database of cfg on every replica, its replication nodes
// and usaged's nodes in the keeper, and its claims: for tests.
func Drop(ctx context.Context, cfg Config) error {
	s, err := connect(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	var errs []error
	for _, r := range s.replicas {
		errs = append(errs, r.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database))
	}
	errs = append(errs, s.deleteTree(s.root), s.deleteTree("/clickhouse/tables/1/"+cfg.Database))
	iter := s.claims.Scan(ctx, 0, s.claimPrefix()+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			errs, keys = append(errs, s.claims.Del(ctx, keys...).Err()), nil
		}
	}
	if len(keys) > 0 {
		errs = append(errs, s.claims.Del(ctx, keys...).Err())
	}
	return errors.Join(append(errs, iter.Err())...)
}

// deleteTree deletes path and everything under it in the keeper.
func (s *Store) deleteTree(path string) error {
	children, _, err := s.keeper.Children(path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := s.deleteTree(path + "/" + c); err != nil {
			return err
		}
	}
	if err := s.keeper.Delete(path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}
