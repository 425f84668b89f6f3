package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
)

// buildUsaged returns the usaged binary, built once per test binary run.
func buildUsaged() (string, error) { return apptest.Binary() }

// serverProc is a running `usaged serve` process.
type serverProc struct {
	cmd  proc
	base string
	app  *apptest.Server
}

// proc is the process of a serverProc; its Wait waits for the exit that
// the harness observes, whoever calls it.
type proc struct {
	*exec.Cmd
	app *apptest.Server
}

func (p proc) Wait() error { return p.app.Err() }

// startServe starts usaged serve on data with the admin token and extra
// flags, its log in JSON.
func startServe(t testing.TB, data, token string, extra ...string) *serverProc {
	t.Helper()
	s := apptest.Start(t, apptest.Options{
		Args: append([]string{"--data", data, "--admin-token", token, "--log-format", "json"}, extra...),
		Wait: 5 * time.Minute, // --demo seeds before it listens
	})
	return &serverProc{cmd: proc{Cmd: s.Cmd, app: s}, base: s.URL, app: s}
}

// post sends body to base+path with the bearer token.
var post = apptest.Post

type ingestResult struct {
	Accepted, Duplicates, Rejected int
}

// crashBatch is one NDJSON body a writer sent, and whether usaged acked it.
type crashBatch struct {
	ids  []string
	body []byte
}

// statusOf gives events a fixed mix of statuses.
func statusOf(seq int) int {
	return []int{200, 200, 201, 304, 404, 429, 500, 200}[seq%8]
}

// writeItemEvent writes the NDJSON line of event seq of org to buf and
// returns its id, prefix-seq: one of five clients, a status of statusOf,
// a time within the hour before now, and user as its userId unless it is
// empty.
func writeItemEvent(buf *bytes.Buffer, prefix string, seq int, now time.Time, org, user string) string {
	id := fmt.Sprintf("%s-%d", prefix, seq)
	var userField string
	if user != "" {
		userField = fmt.Sprintf(`"userId":%q,`, user)
	}
	fmt.Fprintf(buf, `{"id":%q,"time":%q,"organizationId":%q,"clientId":"c%d","clientName":"Client %d",%s"templateUri":"api/v2/items/{id}","httpMethod":"GET","status":%d}`+"\n",
		id, now.Add(-time.Duration(seq%3600)*time.Second).Format(time.RFC3339), org, seq%5, seq%5, userField, statusOf(seq))
	return id
}

// TestCrashLosesNothing SIGKILLs a real usaged serve during concurrent ingest,
// restarts it, and checks that every acknowledged event is counted exactly
// once and that retried batches add nothing twice.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a real server")
	}
	const token = "crash-test-admin-token"
	data := t.TempDir()
	srv := startServe(t, data, token)
	code, body, err := post(srv.base, token, "/api/v2/admin/organizations", "application/json", []byte(`{"name":"crash"}`))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create organization: %d %s %v", code, body, err)
	}
	var org struct{ ID string }
	json.Unmarshal(body, &org)

	now := time.Now().UTC()
	var (
		mu      sync.Mutex
		sent    []crashBatch // every batch attempted, acked or not
		acked   []crashBatch
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		nextSeq int
	)
	makeBatch := func() crashBatch {
		mu.Lock()
		defer mu.Unlock()
		var b crashBatch
		var buf bytes.Buffer
		for range 400 {
			b.ids = append(b.ids, writeItemEvent(&buf, "crash", nextSeq, now, org.ID, ""))
			nextSeq++
		}
		// A third of batches repeat the previous batch's last events, as a
		// client retrying after a timeout would.
		if len(sent) > 0 && nextSeq%3 == 0 {
			prev := sent[len(sent)-1]
			lines := bytes.SplitAfter(prev.body, []byte("\n"))
			for i := len(lines) - 50; i < len(lines); i++ {
				if i >= 0 && len(lines[i]) > 0 {
					buf.Write(lines[i])
				}
			}
		}
		b.body = buf.Bytes()
		sent = append(sent, b)
		return b
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := makeBatch()
				code, body, err := post(srv.base, token, "/api/v2/usage/events", "application/x-ndjson", b.body)
				if err != nil {
					return // the server is gone: this batch is unacknowledged
				}
				if code != http.StatusOK {
					t.Errorf("ingest: %d %s", code, body)
					return
				}
				mu.Lock()
				acked = append(acked, b)
				mu.Unlock()
			}
		}()
	}
	// Let ingest run, then kill the server mid-flight.
	for {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 30 {
			break
		}
	}
	srv.app.Kill()
	close(stop)
	wg.Wait()

	srv = startServe(t, data, token)
	ackedIDs := map[string]bool{}
	for _, b := range acked {
		for _, id := range b.ids {
			ackedIDs[id] = true
		}
	}
	total := func() int64 { return countEvents(t, srv.base, token, org.ID, now) }
	if got := total(); got < int64(len(ackedIDs)) {
		t.Fatalf("after the crash usaged counts %d events, fewer than the %d it acknowledged", got, len(ackedIDs))
	}
	// Every acknowledged batch, sent again, is all duplicates.
	for _, b := range acked {
		code, body, err := post(srv.base, token, "/api/v2/usage/events", "application/x-ndjson", b.body)
		var r ingestResult
		json.Unmarshal(body, &r)
		if err != nil || code != 200 || r.Accepted != 0 || r.Rejected != 0 {
			t.Fatalf("resending an acknowledged batch: %d %s %v", code, body, err)
		}
	}
	// Retry every batch that was not acknowledged, as its client would.
	allIDs := map[string]bool{}
	for _, b := range sent {
		for _, id := range b.ids {
			allIDs[id] = true
		}
		if code, body, err := post(srv.base, token, "/api/v2/usage/events", "application/x-ndjson", b.body); err != nil || code != 200 {
			t.Fatalf("retry: %d %s %v", code, body, err)
		}
	}
	if got, want := total(), int64(len(allIDs)); got != want {
		t.Fatalf("after retries usaged counts %d events; the clients sent %d distinct ones", got, want)
	}
	t.Logf("%d batches sent, %d acknowledged before SIGKILL, %d distinct events counted once", len(sent), len(acked), len(allIDs))
}
