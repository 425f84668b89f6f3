package postgres

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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// The tests share one PostgreSQL server with other tests: each works in a
// schema of its own, dropped when it ends.

// testSchema returns the server's URL and the name of a schema no other test
// uses, which does not exist yet and is dropped at cleanup.
func testSchema(t *testing.T) (dbURL, schema string) {
	t.Helper()
	dbURL = clustertest.Postgres(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema = "usaged_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		admin(t, dbURL, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	return dbURL, schema
}

// admin runs sql on a connection of its own.
func admin(t *testing.T, dbURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dbURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// mustOpen opens the store of schema, closed at cleanup unless the test
// closes it.
func mustOpen(t *testing.T, dbURL, schema string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{URL: dbURL, Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMetadataConformance(t *testing.T) {
	var mu sync.Mutex
	schemas := map[store.Metadata]string{}
	storetest.RunMetadata(t, storetest.MetadataBackend{
		Open: func(t *testing.T) store.Metadata {
			dbURL, schema := testSchema(t)
			s := mustOpen(t, dbURL, schema)
			mu.Lock()
			defer mu.Unlock()
			schemas[s] = schema
			return s
		},
		Reopen: func(t *testing.T, s store.Metadata) store.Metadata {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			schema := schemas[s]
			again := mustOpen(t, clustertest.Postgres(t), schema)
			schemas[again] = schema
			return again
		},
	})
}

// versions returns the rows of schema_migrations, version → applied_at.
func versions(t *testing.T, s *Store) map[int]time.Time {
	t.Helper()
	got := map[int]time.Time{}
	err := s.query(t.Context(), func(rows pgx.Rows) error {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			return err
		}
		if _, dup := got[v]; dup {
			t.Errorf("schema_migrations holds version %d twice", v)
		}
		got[v] = at
		return nil
	}, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrationVersionsRunInOrder(t *testing.T) {
	for i, m := range migrations {
		if i == 0 && m.version != 1 || i > 0 && m.version <= migrations[i-1].version {
			t.Fatalf("migration %d has version %d: versions start at 1 and increase", i, m.version)
		}
	}
}

// TestMigrateConcurrently opens an empty schema from several nodes at once:
// all open it, and each migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	dbURL, schema := testSchema(t)
	const nodes = 8
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = Open(t.Context(), Config{URL: dbURL, Schema: schema, MaxConns: 2})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Open: %v", i, err)
		}
		defer stores[i].Close()
	}
	applied := versions(t, stores[0])
	if len(applied) != len(migrations) {
		t.Fatalf("schema_migrations holds %d versions, want %d: %v", len(applied), len(migrations), applied)
	}
	for _, m := range migrations {
		if _, ok := applied[m.version]; !ok {
			t.Fatalf("schema_migrations lacks version %d: %v", m.version, applied)
		}
	}
	// Every node sees the tables.
	for i, s := range stores {
		if _, err := s.Organizations(t.Context()); err != nil {
			t.Fatalf("node %d: Organizations: %v", i, err)
		}
	}

	// Opening an up-to-date schema changes nothing.
	mustOpen(t, dbURL, schema).Close()
	again := versions(t, stores[0])
	if len(again) != len(applied) {
		t.Fatalf("after another Open, schema_migrations holds %v, want %v", again, applied)
	}
	for v, at := range applied {
		if !again[v].Equal(at) {
			t.Fatalf("after another Open, version %d was applied at %v, before at %v", v, again[v], at)
		}
	}
}

// TestRefusesNewerSchema opens a schema that a newer usaged migrated.
func TestRefusesNewerSchema(t *testing.T) {
	dbURL, schema := testSchema(t)
	mustOpen(t, dbURL, schema).Close()
	latest := migrations[len(migrations)-1].version
	admin(t, dbURL, `INSERT INTO `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` (version, applied_at) VALUES ($1, now())`, latest+1)
	s, err := Open(t.Context(), Config{URL: dbURL, Schema: schema})
	if err == nil {
		s.Close()
		t.Fatal("Open of a schema newer than this usaged succeeded")
	}
	for _, want := range []string{schema, "version " + strconv.Itoa(latest+1), "version " + strconv.Itoa(latest) + ", the latest"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open of a newer schema: %v; want a message naming %q", err, want)
		}
	}
}

// TestSkippedVersionAppliesLate merges a step into a version the schema
// skipped: a schema migrated past it applies it on its next Open.
func TestSkippedVersionAppliesLate(t *testing.T) {
	dbURL, schema := testSchema(t)
	s := mustOpen(t, dbURL, schema)
	var merged []migration
	skipped := 0
	for i, m := range migrations {
		if i > 0 && m.version > migrations[i-1].version+1 && skipped == 0 {
			skipped = migrations[i-1].version + 1
			merged = append(merged, migration{skipped, `CREATE TABLE merged_late (id integer PRIMARY KEY)`})
		}
		merged = append(merged, m)
	}
	if skipped == 0 {
		t.Skip("no version is skipped")
	}
	if _, ok := versions(t, s)[skipped]; ok {
		t.Fatalf("version %d is applied before it exists", skipped)
	}
	if err := s.migrate(t.Context(), merged); err != nil {
		t.Fatal(err)
	}
	if _, ok := versions(t, s)[skipped]; !ok {
		t.Fatalf("version %d, merged late, was not applied", skipped)
	}
	if _, err := s.exec(t.Context(), `SELECT FROM merged_late`); err != nil {
		t.Fatalf("the late step's table: %v", err)
	}
}

// TestFailedMigrationKeepsTheVersionBefore applies steps one transaction
// each: a step that fails leaves the schema at the version before it, and a
// corrected step applies later.
func TestFailedMigrationKeepsTheVersionBefore(t *testing.T) {
	dbURL, schema := testSchema(t)
	s := mustOpen(t, dbURL, schema)
	latest := migrations[len(migrations)-1].version
	broken := append(slices.Clone(migrations),
		migration{latest + 1, `CREATE TABLE extra_one (id integer PRIMARY KEY)`},
		migration{latest + 2, `CREATE TABLE extra_two (id integer PRIMARY KEY); SELECT no_such_function()`})
	err := s.migrate(t.Context(), broken)
	if err == nil || !strings.Contains(err.Error(), "migration to version "+strconv.Itoa(latest+2)) {
		t.Fatalf("migrate with a broken step: %v, want an error naming version %d", err, latest+2)
	}
	if got := versions(t, s); len(got) != len(migrations)+1 {
		t.Fatalf("after a broken step, schema_migrations holds %v, want those of every step but the broken one", got)
	}
	if _, err := s.exec(t.Context(), `SELECT FROM extra_two`); err == nil {
		t.Fatal("the broken step's table exists: its transaction was not rolled back")
	}
	broken[len(broken)-1].sql = `CREATE TABLE extra_two (id integer PRIMARY KEY)`
	if err := s.migrate(t.Context(), broken); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, s); len(got) != len(migrations)+2 {
		t.Fatalf("after the corrected step, schema_migrations holds %v, want those of every step", got)
	}
}

func TestUpsertSQL(t *testing.T) {
	f := func(table, key string, columns []string, want string) {
		t.Helper()
		if got := upsertSQL(table, key, columns); got != want {
			t.Fatalf("upsertSQL(%s, %s, %v) =\n%s\nwant\n%s", table, key, columns, got, want)
		}
	}
	f("t", "id", []string{"id"}, `INSERT INTO t (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`)
	f("t", "id", []string{"id", "a", "b"}, `INSERT INTO t (id, a, b) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a, b = EXCLUDED.b`)
	f("t", "id", []string{"a", "id"}, `INSERT INTO t (a, id) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a`)
	if n := strings.Count(upsertExec, "$"); n != len(execColumns) {
		t.Fatalf("upsertExec has %d parameters for %d columns", n, len(execColumns))
	}
	e := storetest.SampleExecution("x")
	if n := len(execArgs(&e)); n != len(execColumns) {
		t.Fatalf("execArgs gives %d values for %d columns", n, len(execColumns))
	}
}

// TestMigrateToChunks migrates a schema at version 1, whose rows are
// execution_rows, to version 2: the finished execution whose rows it holds
// is gone and so is the table, a queued execution stays, and executions
// store and read their rows as chunks.
func TestMigrateToChunks(t *testing.T) {
	dbURL, schema := testSchema(t)
	c := t.Context()
	old, err := open(c, Config{URL: dbURL, Schema: schema, MaxConns: 2}, migrations[:1])
	if err != nil {
		t.Fatal(err)
	}
	queued := storetest.SampleExecution("queued")
	queued.Status, queued.Error, queued.RowCount = usage.ExecutionQueued, nil, 0
	done := storetest.SampleExecution("done")
	done.Status, done.Error, done.RowCount = usage.ExecutionComplete, nil, 2
	for _, e := range []usage.Execution{queued, done} {
		if err := old.PutExecution(c, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.exec(c, `INSERT INTO execution_rows (execution_id, ordinal, date,
		client_id, client_name, organization_id, user_id, template_uri, http_method, platform,
		requests, status200, status300, status400, status500, status429)
	VALUES ('done', 0, now(), 'c1', 'Alpha', 'org-x', '', 'api/v2/users', 'GET', '', 3, 3, 0, 0, 0, 0),
		('done', 1, NULL, 'c2', '', 'org-x', '', 'api/v2/users', 'POST', '', 1, 0, 0, 1, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := mustOpen(t, dbURL, schema)
	if got := versions(t, s); len(got) != len(migrations) {
		t.Fatalf("after Open, schema_migrations holds %v, want versions 1 to %d", got, len(migrations))
	}
	if _, err := s.Execution(c, "done"); !errors.Is(err, usage.ErrNotFound) {
		t.Fatalf("Execution(done) after the migration: %v, want not found", err)
	}
	if _, err := s.ExecutionRows(c, "done", 0, 10); !errors.Is(err, usage.ErrNotFound) {
		t.Fatalf("ExecutionRows(done) after the migration: %v, want not found", err)
	}
	if _, err := s.exec(c, `SELECT FROM execution_rows`); err == nil {
		t.Fatal("execution_rows still exists after the migration")
	}
	got, err := s.Execution(c, "queued")
	if err != nil {
		t.Fatalf("Execution(queued) after the migration: %v", err)
	}
	if d := storetest.SameExecution(got, queued); d != "" {
		t.Fatalf("Execution(queued) after the migration: %s", d)
	}

	rows := storetest.MakeRows(2500)
	for _, id := range []string{"queued", "new"} {
		e := storetest.SampleExecution(id)
		e.Status, e.Error, e.RowCount = usage.ExecutionComplete, nil, len(rows)
		if err := s.FinishExecution(c, e, rows); err != nil {
			t.Fatalf("FinishExecution(%s): %v", id, err)
		}
		page, err := s.ExecutionRows(c, id, 900, 1200)
		if err != nil || len(page) != 1200 {
			t.Fatalf("ExecutionRows(%s, 900, 1200): %d rows, %v", id, len(page), err)
		}
		for i := range page {
			if page[i] != rows[900+i] {
				t.Fatalf("ExecutionRows(%s, 900, 1200): row %d:\n got %+v\nwant %+v", id, i, page[i], rows[900+i])
			}
		}
	}
}

func TestWebhooksConformance(t *testing.T) {
	var mu sync.Mutex
	schemas := map[store.Webhooks]string{}
	storetest.RunWebhooks(t, storetest.WebhooksBackend{
		Open: func(t *testing.T) store.Webhooks {
			dbURL, schema := testSchema(t)
			s := mustOpen(t, dbURL, schema)
			mu.Lock()
			defer mu.Unlock()
			schemas[s] = schema
			return s
		},
		Reopen: func(t *testing.T, s store.Webhooks) store.Webhooks {
			if err := s.(*Store).Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			schema := schemas[s]
			again := mustOpen(t, clustertest.Postgres(t), schema)
			schemas[again] = schema
			return again
		},
	})
}

func TestOutboxConformance(t *testing.T) {
	var mu sync.Mutex
	schemas := map[store.Outbox]string{}
	storetest.RunOutbox(t, storetest.OutboxBackend{
		Open: func(t *testing.T) store.Outbox {
			dbURL, schema := testSchema(t)
			s := mustOpen(t, dbURL, schema)
			mu.Lock()
			defer mu.Unlock()
			schemas[s] = schema
			return s
		},
		Reopen: func(t *testing.T, s store.Outbox) store.Outbox {
			if err := s.(*Store).Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			schema := schemas[s]
			again := mustOpen(t, clustertest.Postgres(t), schema)
			schemas[again] = schema
			return again
		},
	})
}

// TestOutboxLeasesToOneNode checks that two nodes sharing the outbox never
// read the same pending notification while one holds it: each reads its
// own again, the other none of them, and a notification delivered stays
// done when it is appended again.
func TestOutboxLeasesToOneNode(t *testing.T) {
	dbURL, schema := testSchema(t)
	a, b := mustOpen(t, dbURL, schema), mustOpen(t, dbURL, schema)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ns []usage.Notification
	for i := range 10 {
		ns = append(ns, usage.Notification{ID: fmt.Sprintf("n%02d", i), OrganizationID: "org", Type: usage.NotificationLimitThreshold,
			Time: at.Add(time.Duration(i) * time.Second), Payload: []byte(`{}`)})
	}
	if err := a.AppendNotifications(ctx, ns); err != nil {
		t.Fatal(err)
	}
	ids := func(s *Store, limit int) []string {
		t.Helper()
		got, err := s.PendingNotifications(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range got {
			out = append(out, n.ID)
		}
		return out
	}
	gotA := ids(a, 4)
	if !slices.Equal(gotA, []string{"n00", "n01", "n02", "n03"}) {
		t.Fatalf("node a read %v, want n00–n03", gotA)
	}
	gotB := ids(b, 100)
	if !slices.Equal(gotB, []string{"n04", "n05", "n06", "n07", "n08", "n09"}) {
		t.Fatalf("node b read %v, want n04–n09: none of node a's", gotB)
	}
	if again := ids(a, 100); !slices.Equal(again, gotA) {
		t.Fatalf("node a read %v again, want its own %v", again, gotA)
	}
	// Concurrent reads by both nodes hand each notification to one.
	if err := a.MarkNotificationsDone(ctx, append(gotA, gotB...)); err != nil {
		t.Fatal(err)
	}
	var more []usage.Notification
	for i := range 200 {
		more = append(more, usage.Notification{ID: fmt.Sprintf("m%03d", i), OrganizationID: "org", Type: usage.NotificationLimitThreshold, Time: at, Payload: []byte(`{}`)})
	}
	if err := b.AppendNotifications(ctx, more); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var got [2][]string
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				read := ids(s, 10)
				got[i] = append(got[i], read...)
				if err := s.MarkNotificationsDone(ctx, read); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range got {
		for _, id := range slices.Compact(slices.Sorted(slices.Values(got[i]))) {
			seen[id]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s was read by %d nodes", id, n)
		}
	}
	if len(seen) != 200 {
		t.Errorf("%d of 200 notifications read", len(seen))
	}
	// Done stays done when the notification is found and appended again.
	if err := b.AppendNotifications(ctx, ns[:1]); err != nil {
		t.Fatal(err)
	}
	if got := ids(b, 1000); slices.Contains(got, "n00") {
		t.Fatal("a delivered notification appended again is pending again")
	}
}
