package clickhouse

import "context"

// The schema, as versioned migrations. Each replica keeps the versions it
// has applied in its own schema_migrations table; Open applies the missing
// ones to every replica, one node at a time (a lock in the keeper), so that
// several nodes starting at once apply each migration once per replica and
// wait for it. Every statement is idempotent (IF NOT EXISTS), so a node that
// dies halfway leaves nothing the next one cannot finish.
//
// The DDL runs on ClickHouse 18.16 and on current releases: no TTL
// clauses, codecs, skipping indexes or DateTime64; times are DateTime
// (seconds) with the sub-second part in a column of its own where it
// matters. Tables are Replicated*MergeTree on the replication path of the
// shard macro, and are written directly (never through a Distributed
// table, which would re-batch inserts and defeat block deduplication).
//
// replicated_deduplication_window is raised from 100 blocks to 100,000 on
// the tables that are written in deterministic blocks: it bounds how late a
// retried or recovered insert is still recognised (see docs/scale-out.md).

// migration is one step of the schema. Statements are templates: {db} is
// the database, {table_path} the replication path prefix of a table
// ("/clickhouse/tables/{shard}/DB/"). backfill, if set, fills the step's
// new tables from the existing ones, once for the whole shard, after the
// statements ran on every replica and before the step is recorded on any:
// it must be idempotent, for a node that dies halfway leaves it to the
// next, and it may assume that nothing else writes (see migrate).
type migration struct {
	version    int
	statements []string
	backfill   func(ctx context.Context, s *Store) error
}

var migrations = []migration{
	{version: 1, statements: []string{
		`CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
			version UInt32,
			applied_at DateTime
		) ENGINE = MergeTree ORDER BY version`,

		// events is the journal: every accepted event as it was received,
		// written before its batch commits. Rows of a batch that never
		// committed stay here but are never read: readers join on
		// published. pos is the event's place in its batch, the order in
		// which the batch's calls accepted them (for the latest client
		// name), which the journal's own order does not keep.
		`CREATE TABLE IF NOT EXISTS {db}.events (
			batch_id String,
			org_id String,
			hour DateTime,
			client_id String,
			event_id String,
			time DateTime,
			nanos UInt32,
			client_name String,
			user_id String,
			template String,
			method String,
			status UInt16,
			platform String,
			duration_ms Int64,
			request_bytes Int64,
			response_bytes Int64,
			pos UInt32
		) ENGINE = ReplicatedMergeTree('{table_path}events', '{replica}')
		PARTITION BY toYYYYMM(hour)
		ORDER BY (org_id, hour, client_id, event_id)
		SETTINGS replicated_deduplication_window = 100000`,

		// event_counts holds the counts of every group (organization, UTC
		// hour, client, user, template, method, platform), one block per
		// batch and month, summed by the engine in the background and by
		// every query. batch_id is not summed: it keeps two batches whose
		// counts happen to be equal from being deduplicated as one block.
		`CREATE TABLE IF NOT EXISTS {db}.event_counts (
			org_id String,
			hour DateTime,
			client_id String,
			user_id String,
			template String,
			method String,
			platform String,
			batch_id String,
			requests UInt64,
			status_2xx UInt64,
			status_3xx UInt64,
			status_4xx UInt64,
			status_5xx UInt64,
			status_429 UInt64
		) ENGINE = ReplicatedSummingMergeTree('{table_path}event_counts', '{replica}',
			(requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429))
		PARTITION BY toYYYYMM(hour)
		ORDER BY (org_id, hour, client_id, user_id, template, method, platform)
		SETTINGS replicated_deduplication_window = 100000`,

		// client_day_counts is a rollup of event_counts by organization,
		// UTC day and client, written in the same step: the queries that
		// group and filter by client alone, at a day or coarser, read it
		// (90 days of an organization are a few hundred rows per client).
		`CREATE TABLE IF NOT EXISTS {db}.client_day_counts (
			org_id String,
			day Date,
			client_id String,
			batch_id String,
			requests UInt64,
			status_2xx UInt64,
			status_3xx UInt64,
			status_4xx UInt64,
			status_5xx UInt64,
			status_429 UInt64
		) ENGINE = ReplicatedSummingMergeTree('{table_path}client_day_counts', '{replica}',
			(requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429))
		PARTITION BY toYYYYMM(day)
		ORDER BY (org_id, day, client_id)
		SETTINGS replicated_deduplication_window = 100000`,

		// client_names keeps the latest name of each client: seq orders
		// accepted events across the cluster (the commit's zxid in the
		// keeper, then the event's place in its batch).
		`CREATE TABLE IF NOT EXISTS {db}.client_names (
			org_id String,
			client_id String,
			client_name String,
			seq UInt64,
			batch_id String
		) ENGINE = ReplicatedReplacingMergeTree('{table_path}client_names', '{replica}', seq)
		ORDER BY (org_id, client_id)
		SETTINGS replicated_deduplication_window = 100000`,

		// activity is the journal of services' activity; the reports fold
		// it (the counting rules are usage.Activity.Tally's) over the rows
		// of published batches. body is the event, encoded by this package.
		`CREATE TABLE IF NOT EXISTS {db}.activity (
			batch_id String,
			service String,
			time DateTime,
			nanos UInt32,
			activity_id String,
			body String
		) ENGINE = ReplicatedMergeTree('{table_path}activity', '{replica}')
		PARTITION BY toYYYYMM(time)
		ORDER BY (service, time, nanos, activity_id)
		SETTINGS replicated_deduplication_window = 100000`,

		// published names the batches whose counts are in place, by scope
		// ("e:" and an organization, "a:" and a service) and UTC hour:
		// the journals are read through it, so a batch that never
		// committed is never seen.
		`CREATE TABLE IF NOT EXISTS {db}.published (
			scope String,
			hour DateTime,
			batch_id String
		) ENGINE = ReplicatedMergeTree('{table_path}published', '{replica}')
		PARTITION BY toYYYYMM(hour)
		ORDER BY (scope, hour, batch_id)
		SETTINGS replicated_deduplication_window = 100000`,
	}},
	{version: 2, statements: []string{
		// client_hour_counts is the rollup of event_counts by organization,
		// UTC hour and client, written in the same step as the daily one:
		// the queries of client_day_counts' shape read the partial days at
		// the edges of their interval from it (90 days ending now start and
		// end mid-day), and the hourly ones read it all.
		`CREATE TABLE IF NOT EXISTS {db}.client_hour_counts (
			org_id String,
			hour DateTime,
			client_id String,
			batch_id String,
			requests UInt64,
			status_2xx UInt64,
			status_3xx UInt64,
			status_4xx UInt64,
			status_5xx UInt64,
			status_429 UInt64
		) ENGINE = ReplicatedSummingMergeTree('{table_path}client_hour_counts', '{replica}',
			(requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429))
		PARTITION BY toYYYYMM(hour)
		ORDER BY (org_id, hour, client_id)
		SETTINGS replicated_deduplication_window = 100000`,
	}, backfill: backfillClientHours},
	{version: 3, statements: []string{
		// imported_activity is the activity of services as an embedded
		// store kept it, moved by an import (Importer): not the events,
		// but per service the counters of every UTC day (kind 1), the
		// tallies of every user's day (kind 2, user_guid set), the gauge
		// reports (kind 3) and the user events (kind 4, user_guid set),
		// the last two with their time and id. body is the record, encoded
		// by this package. The reports start their fold from it and then
		// fold the journal. Only an import writes it, once, in
		// deterministic blocks, each a batch read through published.
		`CREATE TABLE IF NOT EXISTS {db}.imported_activity (
			batch_id String,
			service String,
			kind UInt8,
			user_guid String,
			time DateTime,
			nanos UInt32,
			activity_id String,
			body String
		) ENGINE = ReplicatedMergeTree('{table_path}imported_activity', '{replica}')
		ORDER BY (service, kind, user_guid, time, nanos, activity_id)
		SETTINGS replicated_deduplication_window = 100000`,
	}},
}
