package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/usaged/usaged/internal/clustertest"
)

// TestBenchIngestClickHouse runs bench ingest --clickhouse against a
// server of its own and the test cluster's ClickHouse: both sides are
// measured, ClickHouse holds a row per event it acknowledged, and the
// table is gone at the end.
func TestBenchIngestClickHouse(t *testing.T) {
	t.Parallel()
	chURL := clustertest.ClickHouseHTTP(t)
	const token = "bench-clickhouse-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token)
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}
	rep := mustJSON[benchReport](t, runCLI(t, env, "bench", "ingest", "--duration", "600ms", "--rounds", "2", "--batch", "200",
		"--concurrency", "2", "--variety", "2", "--gzip", "--clickhouse", chURL, "--format", "json"))
	ch := rep.ClickHouse
	if rep.Accepted == 0 || rep.FailedBatches != 0 || ch == nil || ch.Events == 0 || ch.FailedBatches != 0 ||
		ch.Rows != uint64(ch.Events) || ch.BatchP50Ms <= 0 || ch.Version == "" || ch.Ratio <= 0 || rep.Rounds != 2 {
		t.Fatalf("bench ingest --clickhouse: %+v, ClickHouse %+v", rep, ch)
	}
	resp, err := http.Post(chURL+"/", "text/plain", strings.NewReader("EXISTS TABLE "+ch.Table))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != "0" {
		t.Errorf("EXISTS TABLE %s answered %q after the run", ch.Table, b)
	}
}
