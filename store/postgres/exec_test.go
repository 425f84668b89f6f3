package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/usaged/usaged/store/rowchunk"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// Chunks missing, cut short, of another version or short and not the last
// are an error naming the store, the execution and the chunk, never a panic
// nor rows that are wrong; pages before the damaged chunk still read.
func TestCorruptChunks(t *testing.T) {
	dbURL, schema := testSchema(t)
	s := mustOpen(t, dbURL, schema)
	c := t.Context()
	rows := storetest.MakeRows(2500)
	f := func(damage, sql string) {
		t.Helper()
		if err := s.FinishExecution(c, usage.Execution{ID: "x", RowCount: len(rows)}, rows); err != nil {
			t.Fatal(err)
		}
		if _, err := s.exec(c, sql); err != nil {
			t.Fatal(err)
		}
		if page, err := s.ExecutionRows(c, "x", 0, rowchunk.Size); err != nil || len(page) != rowchunk.Size {
			t.Fatalf("%s: ExecutionRows of chunk 0: %d rows, %v", damage, len(page), err)
		}
		_, err := s.ExecutionRows(c, "x", 0, len(rows))
		if !errors.Is(err, rowchunk.ErrCorrupt) || !strings.Contains(err.Error(), "postgres store: execution x: chunk 1") {
			t.Fatalf("%s: ExecutionRows: %v, want rowchunk.ErrCorrupt naming the store, execution x and chunk 1", damage, err)
		}
	}
	f("chunk 1 missing", `DELETE FROM execution_chunks WHERE chunk = 1`)
	f("chunk 1 not a chunk", `UPDATE execution_chunks SET rows = '\x0105'::bytea WHERE chunk = 1`)
	f("chunk 1 cut short", `UPDATE execution_chunks SET rows = substring(rows for 100) WHERE chunk = 1`)
	f("chunk 1 of version 2", `UPDATE execution_chunks SET rows = '\x02'::bytea || substring(rows from 2) WHERE chunk = 1`)
	f("chunk 1 short", `UPDATE execution_chunks SET rows = (SELECT rows FROM execution_chunks WHERE chunk = 2) WHERE chunk = 1`)
}

// Chunks are compressed with lz4 where the server has it (migration 3), not
// with pglz, which made storing a large result several times slower.
func TestChunksAreCompressedWithLZ4(t *testing.T) {
	dbURL, schema := testSchema(t)
	s := mustOpen(t, dbURL, schema)
	c := t.Context()
	var hasLZ4 bool
	if err := s.pool.QueryRow(c, `SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'`).Scan(&hasLZ4); err != nil {
		t.Fatal(err)
	}
	if !hasLZ4 {
		t.Skip("this PostgreSQL has no lz4: chunks keep pglz")
	}
	rows := storetest.MakeRows(2500)
	if err := s.FinishExecution(c, usage.Execution{ID: "x", RowCount: len(rows)}, rows); err != nil {
		t.Fatal(err)
	}
	var methods []string
	if err := s.pool.QueryRow(c, `SELECT array_agg(DISTINCT coalesce(pg_column_compression(rows), 'none')) FROM execution_chunks`).Scan(&methods); err != nil {
		t.Fatal(err)
	}
	if len(methods) != 1 || methods[0] != "lz4" {
		t.Fatalf("chunks compressed with %v, want lz4", methods)
	}
}
