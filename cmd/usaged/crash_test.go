package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildUsaged compiles the usaged binary once per test binary run.
var buildUsaged = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "usaged-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "usaged")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// serverProc is a running `usaged serve` process.
type serverProc struct {
	cmd  *exec.Cmd
	base string
}

func startServe(t testing.TB, data, token string, extra ...string) *serverProc {
	t.Helper()
	bin, err := buildUsaged()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--admin-token", token, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, addr, ok := strings.Cut(sc.Text(), "listening on "); ok {
				lines <- strings.TrimSpace(addr)
			}
		}
		close(lines)
	}()
	select {
	case base, ok := <-lines:
		if !ok {
			t.Fatal("usaged serve exited before listening")
		}
		go io.Copy(io.Discard, stdout)
		return &serverProc{cmd: cmd, base: base}
	case <-time.After(5 * time.Minute): // --demo seeds before it listens
		t.Fatal("usaged serve did not report its address")
	}
	return nil
}

func post(base, token, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

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

// TestCrashLosesNothing SIGKILLs a real usaged serve during concurrent ingest,
// restarts it, and checks that every acknowledged event is counted exactly
// once and that retried batches add nothing twice.
func TestCrashLosesNothing(t *testing.T) {
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
			seq := nextSeq
			nextSeq++
			id := fmt.Sprintf("crash-%d", seq)
			b.ids = append(b.ids, id)
			fmt.Fprintf(&buf, `{"id":%q,"time":%q,"organizationId":%q,"clientId":"c%d","clientName":"Client %d","templateUri":"api/v2/items/{id}","httpMethod":"GET","status":%d}`+"\n",
				id, now.Add(-time.Duration(seq%3600)*time.Second).Format(time.RFC3339), org.ID, seq%5, seq%5, statusOf(seq))
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
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()
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
