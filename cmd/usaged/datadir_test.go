package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
	"github.com/usaged/usaged/internal/ownertest"
	"github.com/usaged/usaged/server"
)

// ingestAcked creates an organization and sends batches of events one after
// another, each acknowledged before the next; it returns the organization and
// how many events were acknowledged.
func ingestAcked(t *testing.T, srv *serverProc, token string, batches, perBatch int, now time.Time) (string, int) {
	t.Helper()
	code, body, err := post(srv.base, token, "/api/v2/admin/organizations", "application/json", []byte(`{"name":"wal"}`))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create organization: %d %s %v", code, body, err)
	}
	var org struct{ ID string }
	json.Unmarshal(body, &org)
	for b := range batches {
		var buf bytes.Buffer
		for i := range perBatch {
			seq := b*perBatch + i
			fmt.Fprintf(&buf, `{"id":"wal-%d","time":%q,"organizationId":%q,"clientId":"c%d","clientName":"Client","templateUri":"api/v2/items/{id}","httpMethod":"GET","status":200}`+"\n",
				seq, now.Add(-time.Duration(seq%3000)*time.Second).Format(time.RFC3339), org.ID, seq%5)
		}
		code, body, err := post(srv.base, token, "/api/v2/usage/events", "application/x-ndjson", buf.Bytes())
		if err != nil || code != http.StatusOK {
			t.Fatalf("ingest: %d %s %v", code, body, err)
		}
	}
	return org.ID, batches * perBatch
}

// countEvents is what usaged counts for org from two hours before now to an
// hour after: every event the tests send is within the hour before now.
func countEvents(t *testing.T, base, token, org string, now time.Time) int64 {
	t.Helper()
	q := fmt.Sprintf(`{"organizationId":%q,"interval":"%s/%s"}`, org,
		now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	code, body, err := post(base, token, "/api/v2/usage/aggregate", "application/json", []byte(q))
	if err != nil || code != 200 {
		t.Fatalf("aggregate: %d %s %v", code, body, err)
	}
	var res struct{ Results []struct{ Requests int64 } }
	json.Unmarshal(body, &res)
	var n int64
	for _, r := range res.Results {
		n += r.Requests
	}
	return n
}

// serveFails runs usaged serve, which must exit non-zero before listening,
// and returns what it wrote.
func serveFails(t *testing.T, args ...string) string {
	t.Helper()
	out, listened, err := apptest.Run(t, 2*time.Minute, args...)
	if listened {
		t.Fatalf("usaged serve %v started:\n%s", args, out)
	}
	if err == nil {
		t.Fatalf("usaged serve %v did not fail: %v\n%s", args, err, out)
	}
	return out
}

// newestWAL returns the store's newest write-ahead log.
func newestWAL(t *testing.T, data string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(data, server.StoreDir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log in the store")
	}
	return logs[len(logs)-1] // names are zero-padded numbers
}

func kill(t *testing.T, srv *serverProc) {
	t.Helper()
	srv.app.Kill()
}

// A write-ahead log damaged in its middle stops the start, naming the file
// and the offset, until the operator accepts the loss; a torn tail, as a
// crash leaves, is recovered silently with every acknowledged event.
func TestServeWALDamage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a real server")
	}
	const token = "wal-test-admin-token"
	now := time.Now().UTC()

	t.Run("torn tail", func(t *testing.T) {
		data := t.TempDir()
		srv := startServe(t, data, token)
		org, acked := ingestAcked(t, srv, token, 20, 300, now)
		kill(t, srv)
		wal := newestWAL(t, data)
		f, err := os.OpenFile(wal, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(bytes.Repeat([]byte("half-written record "), 500))
		f.Close()
		srv = startServe(t, data, token)
		if got := countEvents(t, srv.base, token, org, now); got != int64(acked) {
			t.Fatalf("after a torn tail usaged counts %d events; %d were acknowledged", got, acked)
		}
	})

	t.Run("flipped byte", func(t *testing.T) {
		data := t.TempDir()
		srv := startServe(t, data, token)
		org, acked := ingestAcked(t, srv, token, 20, 300, now)
		kill(t, srv)
		wal := newestWAL(t, data)
		b, err := os.ReadFile(wal)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 64<<10 {
			t.Fatalf("the newest log %s has only %d bytes", wal, len(b))
		}
		b[len(b)/2] ^= 0x10
		if err := os.WriteFile(wal, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out := serveFails(t, "--data", data, "--admin-token", token)
		if !strings.Contains(out, wal) || !strings.Contains(out, "damaged at offset ") || !strings.Contains(out, "--accept-wal-loss") {
			t.Fatalf("the refusal names neither the log, the offset nor the flag:\n%s", out)
		}
		srv = startServe(t, data, token, "--accept-wal-loss")
		if got := countEvents(t, srv.base, token, org, now); got >= int64(acked) || got == 0 {
			t.Fatalf("with the loss accepted usaged counts %d events of %d acknowledged: want those before the damage", got, acked)
		}
	})
}

func TestServeRefusesDataDirWithoutStore(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a real server")
	}
	const token = "datadir-test-admin-token"
	data := t.TempDir()
	srv := startServe(t, data, token)
	kill(t, srv)
	if err := os.RemoveAll(filepath.Join(data, server.StoreDir)); err != nil {
		t.Fatal(err)
	}
	out := serveFails(t, "--data", data, "--admin-token", token)
	if !strings.Contains(out, server.SigningKeyFile) || !strings.Contains(out, "store is missing") {
		t.Fatalf("the refusal does not say the store is missing:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, server.StoreDir)); err == nil {
		t.Fatal("an empty store was created")
	}
}

func TestServeDataModes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a real server")
	}
	data := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, data, "modes-test-admin-token")
	ingestAcked(t, srv, "modes-test-admin-token", 2, 100, time.Now().UTC())
	ownertest.Check(t, data, 5)
}
