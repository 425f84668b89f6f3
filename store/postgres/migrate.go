package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// The schema is versioned: migrations is the ordered list of its steps, and
// schema_migrations records the version of each step applied. Open applies
// the steps a schema lacks, each in a transaction of its own with its version
// row, so that a failed step leaves the schema at the version before it.
// Every step's transaction first takes an advisory lock of the schema: nodes
// that start together apply each step once, the others waiting for the lock
// and then finding the step done. A schema whose version is newer than the
// last step known here was migrated by a newer usaged, whose tables this one
// may misread: Open refuses it.

// migration is one step of the schema. Versions start at 1 and increase;
// a version may be skipped, to be filled by a step written at the same time
// (on another line of work) and merged later: Open applies every step whose
// version the schema lacks, in order, so that the late step still runs on
// schemas that have the ones after it. Steps must therefore not depend on
// a step of a version they skip. A released step is never changed: a change
// of the schema is a new step.
type migration struct {
	version int
	sql     string
}

var migrations = []migration{{1, `
CREATE TABLE organizations (
	id     text COLLATE "C" PRIMARY KEY,
	record jsonb NOT NULL
);
CREATE TABLE clients (
	id              text COLLATE "C" PRIMARY KEY,
	organization_id text COLLATE "C" NOT NULL,
	record          jsonb NOT NULL
);
CREATE INDEX clients_organization ON clients (organization_id, id);

CREATE TABLE partners    (guid bytea PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE resellers   (guid bytea PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE collections (guid bytea PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE services    (guid bytea PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE api_keys    (digest bytea PRIMARY KEY, record jsonb NOT NULL);

CREATE TABLE executions (
	id                    text COLLATE "C" PRIMARY KEY,
	organization_id       text NOT NULL,
	operation             text NOT NULL,
	client_id             text NOT NULL,
	name                  text NOT NULL,
	query_organization_id text NOT NULL,
	query_start           timestamptz,
	query_end             timestamptz,
	granularity           integer NOT NULL,
	group_by              integer[],
	metrics               integer[],
	filter_client_ids     text[],
	filter_client_names   text[],
	filter_user_ids       text[],
	filter_template_uris  text[],
	filter_http_methods   text[],
	filter_platforms      text[],
	max_rows              bigint NOT NULL,
	sort_fields           text[],
	sort_desc             boolean[],
	row_limit             bigint NOT NULL,
	status                integer NOT NULL,
	error_kind            integer,
	error_field           text,
	error_message         text,
	row_count             bigint NOT NULL,
	result_bytes          bigint NOT NULL,
	truncated             boolean NOT NULL,
	created               timestamptz,
	finished              timestamptz,
	expires               timestamptz
);
CREATE TABLE execution_rows (
	execution_id    text COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
	ordinal         integer NOT NULL,
	date            timestamptz,
	client_id       text NOT NULL,
	client_name     text NOT NULL,
	organization_id text NOT NULL,
	user_id         text NOT NULL,
	template_uri    text NOT NULL,
	http_method     text NOT NULL,
	platform        text NOT NULL,
	requests        bigint NOT NULL,
	status200       bigint NOT NULL,
	status300       bigint NOT NULL,
	status400       bigint NOT NULL,
	status500       bigint NOT NULL,
	status429       bigint NOT NULL,
	PRIMARY KEY (execution_id, ordinal)
);
`}, {2,
	// Result rows become chunks of rowchunk's encoding, one bytea per
	// rowchunk.Size rows rather than a row of sixteen columns per result
	// row. The rows already stored cannot be re-encoded in SQL, and results
	// are temporary (they expire, and a client whose result is gone submits
	// its query again), so the executions they belong to are deleted with
	// them. Executions without rows stay: queued and running ones run on,
	// failed and empty ones read as before.
	`
CREATE TABLE execution_chunks (
	execution_id text COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
	chunk        integer NOT NULL,
	rows         bytea NOT NULL,
	PRIMARY KEY (execution_id, chunk)
);
DELETE FROM executions e WHERE EXISTS (SELECT FROM execution_rows r WHERE r.execution_id = e.id);
DROP TABLE execution_rows;
`}, {3,
	// Chunks are compressed with lz4 rather than the default pglz, which
	// took two thirds of the time of storing an execution's rows (10 of
	// 15 ms for 18,200 rows). A server without lz4 (built without it, or
	// older than PostgreSQL 14) keeps pglz: the step only makes writes
	// faster.
	`
DO $$
BEGIN
	EXECUTE 'ALTER TABLE execution_chunks ALTER COLUMN rows SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
	NULL;
END
$$;
`}, {4,
	// Usage limits, each by its id within its organization.
	`
CREATE TABLE limits (
	organization_id text COLLATE "C" NOT NULL,
	id              text COLLATE "C" NOT NULL,
	record          jsonb NOT NULL,
	PRIMARY KEY (organization_id, id)
);
`}, {5,
	// Webhook endpoints, and the log of deliveries to each, ordered by the
	// attempt's time in Unix nanoseconds and its id.
	`
CREATE TABLE webhooks (
	id              text COLLATE "C" PRIMARY KEY,
	organization_id text COLLATE "C" NOT NULL,
	record          jsonb NOT NULL
);
CREATE INDEX webhooks_organization ON webhooks (organization_id, id);
CREATE TABLE webhook_deliveries (
	endpoint_id     text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	at              bigint NOT NULL,
	id              text COLLATE "C" NOT NULL,
	notification_id text COLLATE "C" NOT NULL,
	record          jsonb NOT NULL,
	PRIMARY KEY (endpoint_id, at, id)
);
CREATE INDEX webhook_deliveries_notification ON webhook_deliveries (endpoint_id, notification_id, at);
`}, {6,
	// The outbox of notifications, for the cluster, whose nodes all write
	// and deliver them: a notification by its id, its time in Unix
	// nanoseconds, the node leasing it for delivery until when, and when it
	// was delivered (kept a while, see outbox.go).
	`
CREATE TABLE outbox (
	id              text COLLATE "C" PRIMARY KEY,
	organization_id text COLLATE "C" NOT NULL,
	type            text NOT NULL,
	at              bigint NOT NULL,
	payload         bytea NOT NULL,
	leased_by       text,
	leased_until    timestamptz,
	done_at         timestamptz
);
CREATE INDEX outbox_pending ON outbox (at, id) WHERE done_at IS NULL;
CREATE INDEX outbox_done ON outbox (done_at) WHERE done_at IS NOT NULL;
`}}

// migrationLock is the first key of the schema's advisory lock, the second
// being a hash of the schema's name, so that schemas migrate independently.
const migrationLock int32 = 0x75736764 // "usgd"

// migrate applies the steps of ms that the schema lacks, one transaction
// each.
func (s *Store) migrate(ctx context.Context, ms []migration) error {
	for {
		done, err := s.migrateStep(ctx, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the first step of ms the schema lacks, under the
// schema's lock, and reports whether the schema was already up to date.
func (s *Store) migrateStep(ctx context.Context, ms []migration) (upToDate bool, err error) {
	latest := ms[len(ms)-1].version
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrationLock, s.schema); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
				return err
			}
		}
		// Created only when missing, rather than IF NOT EXISTS, which needs
		// the right to create even when the table is there.
		var tracked bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&tracked); err != nil {
			return err
		}
		if !tracked {
			if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)`); err != nil {
				return err
			}
		}
		applied := map[int]bool{}
		current := 0
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v], current = true, max(current, v)
		}
		if rows.Close(); rows.Err() != nil {
			return rows.Err()
		}
		if current > latest {
			return fmt.Errorf("postgres store: schema %q is at version %d, newer than version %d, the latest this usaged knows: "+
				"it was migrated by a newer usaged; run that one, or give this one another schema", s.schema, current, latest)
		}
		i := slices.IndexFunc(ms, func(m migration) bool { return !applied[m.version] })
		if i < 0 {
			upToDate = true
			return nil
		}
		m := ms[i]
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("postgres store: schema %q: migration to version %d: %w", s.schema, m.version, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, m.version)
		return err
	})
	return upToDate, err
}
