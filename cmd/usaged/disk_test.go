package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
)

// mountTmpfs mounts a tmpfs of size bytes for the test and returns its path.
// Mounting needs root: elsewhere the test is skipped, unless
// USAGED_REQUIRE_TMPFS=1 (set by CI), which makes that a failure.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs (needs root): %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("USAGED_REQUIRE_TMPFS") == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED, the full-disk behaviour is NOT tested: " + msg + "; run as root, or set USAGED_REQUIRE_TMPFS=1 to make this a failure")
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// loggedServer is a usaged serve process whose log is kept.
type loggedServer struct {
	base   string
	exited <-chan struct{}
	app    *apptest.Server
}

func startLogged(t *testing.T, data, token string, extra ...string) *loggedServer {
	t.Helper()
	s := apptest.Start(t, apptest.Options{
		Args: append([]string{"--data", data, "--admin-token", token, "--log-format", "json"}, extra...),
	})
	return &loggedServer{base: s.URL, exited: s.Exited(), app: s}
}

// err is how the process exited, once exited is closed.
func (s *loggedServer) err() error { return s.app.Err() }

func (s *loggedServer) logText() string { return s.app.Stderr() }

// do sends a request and returns its status, Retry-After header and body;
// status 0 when the server did not answer.
func do(method, u, token, contentType string, body []byte) (int, string, []byte) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// diskFixture is an organization with a client allowed to query it.
type diskFixture struct {
	org, clientToken string
}

func newDiskFixture(t *testing.T, base, admin string) diskFixture {
	t.Helper()
	code, _, body := do("POST", base+"/api/v2/admin/organizations", admin, "application/json", []byte(`{"name":"disk"}`))
	if code != http.StatusCreated {
		t.Fatalf("create organization: %d %s", code, body)
	}
	var org struct{ ID string }
	json.Unmarshal(body, &org)
	code, _, body = do("POST", base+"/api/v2/admin/organizations/"+org.ID+"/clients", admin, "application/json",
		[]byte(`{"name":"viewer","permissions":["usage:organization:view"],"accessTokenValiditySeconds":86400}`))
	if code != http.StatusCreated {
		t.Fatalf("create client: %d %s", code, body)
	}
	var c struct{ ID, Secret string }
	json.Unmarshal(body, &c)
	return diskFixture{org: org.ID, clientToken: clientToken(t, base, c.ID, c.Secret)}
}

func clientToken(t *testing.T, base, id, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	code, _, body := do("POST", base+"/oauth/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if code != http.StatusOK {
		t.Fatalf("token: %d %s", code, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tok)
	return tok.AccessToken
}

// postQuery submits an asynchronous organization query.
func postQuery(base, token string) (int, string, []byte) {
	now := time.Now().UTC()
	q := fmt.Sprintf(`{"interval":"%s/%s","granularity":"Day"}`, now.Add(-48*time.Hour).Format(time.DateOnly), now.Add(48*time.Hour).Format(time.DateOnly))
	return do("POST", base+"/api/v2/usage/query", token, "application/json", []byte(q))
}

// fill writes a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // before the unmount, registered earlier
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := bytes.Repeat([]byte{0xAB}, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return f
}

// countStatus tallies statuses of one kind of request.
type countStatus struct {
	mu sync.Mutex
	n  map[string]map[int]int
}

func (c *countStatus) add(what string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]map[int]int{}
	}
	if c.n[what] == nil {
		c.n[what] = map[int]int{}
	}
	c.n[what][code]++
}

// TestDiskFull fills the filesystem of a real usaged's data directory while
// it ingests and takes other writes. The store must fail cleanly: writes
// answer 503 (never 500 or a hang), /healthz and /metrics say so, and the
// process exits non-zero within its shutdown timeout, without flooding its
// log. After space is freed, a restart counts every acknowledged event
// exactly once.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs under a real server")
	}
	const token = "disk-test-admin-token"
	const shutdownTimeout = 6 * time.Second
	mnt := mountTmpfs(t, 96<<20)
	data := filepath.Join(mnt, "data")
	// No reserve: the disk is filled by another writer, faster than any
	// reserve could be kept, which is the case the failed state is for.
	srv := startLogged(t, data, token, "--disk-reserve", "0", "--shutdown-timeout", shutdownTimeout.String(), "--ingest-rate-limit", "-1", "--rate-limit", "-1")
	fx := newDiskFixture(t, srv.base, token)

	var (
		mu      sync.Mutex
		nextSeq int
		sent    []crashBatch
		acked   []crashBatch
		codes   countStatus
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		now     = time.Now().UTC()
	)
	makeBatch := func() crashBatch {
		mu.Lock()
		defer mu.Unlock()
		var b crashBatch
		var buf bytes.Buffer
		for range 200 {
			b.ids = append(b.ids, writeItemEvent(&buf, "disk", nextSeq, now, fx.org, fmt.Sprintf("u%d", nextSeq)))
			nextSeq++
		}
		b.body = buf.Bytes()
		sent = append(sent, b)
		return b
	}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := makeBatch()
				code, _, _ := do("POST", srv.base+"/api/v2/usage/events", token, "application/x-ndjson", b.body)
				codes.add("ingest", code)
				if code == http.StatusOK {
					mu.Lock()
					acked = append(acked, b)
					mu.Unlock()
				}
				if code == 0 {
					return
				}
			}
		})
	}
	// Other writes: organizations, clients, query executions.
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code, _, _ := do("POST", srv.base+"/api/v2/admin/organizations", token, "application/json", []byte(fmt.Sprintf(`{"name":"org %d"}`, i)))
			codes.add("organization", code)
			code, _, _ = do("POST", srv.base+"/api/v2/admin/organizations/"+fx.org+"/clients", token, "application/json", []byte(fmt.Sprintf(`{"name":"client %d","permissions":[]}`, i)))
			codes.add("client", code)
			code, _, _ = postQuery(srv.base, fx.clientToken)
			codes.add("query", code)
			if code == 0 {
				return
			}
		}
	})
	// Watch what /healthz and /metrics say.
	var healthBody, metricsLine string
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-srv.exited:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if code, _, body := do("GET", srv.base+"/healthz", "", "", nil); code == http.StatusServiceUnavailable && healthBody == "" {
				healthBody = string(body)
			}
			if _, _, body := do("GET", srv.base+"/metrics", "", "", nil); metricsLine == "" || strings.HasSuffix(metricsLine, " 0") {
				for _, l := range strings.Split(string(body), "\n") {
					if strings.HasPrefix(l, "usaged_store_failed ") {
						metricsLine = l
					}
				}
			}
		}
	})

	// Let ingest run a little, then fill the disk.
	for {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20 {
			break
		}
	}
	filler := fill(t, mnt)
	filled := time.Now()
	mu.Lock()
	t.Logf("disk filled after %d acknowledged batches", len(acked))
	mu.Unlock()

	select {
	case <-srv.exited:
	case <-time.After(3 * time.Minute):
		t.Fatalf("usaged did not exit within 3 minutes of the disk filling up; log tail:\n%s", tail(srv.logText(), 30))
	}
	took := time.Since(filled)
	close(stop)
	wg.Wait()
	watch.Wait()
	logText := srv.logText()
	t.Logf("exited %s after the disk filled: %v; statuses: %v; /healthz: %q", took.Round(time.Millisecond), srv.err(), codes.n, healthBody)

	var exitErr *exec.ExitError
	if !errors.As(srv.err(), &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("usaged exited with %v, want exit status 1; log tail:\n%s", srv.err(), tail(logText, 30))
	}
	for what, byCode := range codes.n {
		for code, n := range byCode {
			if code >= 500 && code != http.StatusServiceUnavailable {
				t.Errorf("%s: %d answers with status %d, want 503 for a write the full disk refused", what, n, code)
			}
		}
	}
	if codes.n["ingest"][http.StatusServiceUnavailable] == 0 {
		t.Errorf("no ingest request was refused with 503: %v", codes.n)
	}
	if !strings.Contains(healthBody, "store failed") {
		t.Errorf("/healthz never answered 503 with the store's failure, got %q", healthBody)
	}
	if metricsLine != "usaged_store_failed 1" {
		t.Errorf("/metrics said %q, want usaged_store_failed 1", metricsLine)
	}
	if !strings.Contains(logText, "the store failed") {
		t.Errorf("the log does not say the store failed:\n%s", tail(logText, 30))
	}
	// No flood: the store's lines are few, whatever the engine retried.
	storeLines := 0
	for _, l := range strings.Split(logText, "\n") {
		if strings.Contains(l, `"component":"store"`) {
			storeLines++
		}
	}
	lines := strings.Count(logText, "\n")
	t.Logf("log: %d lines, %d from the store", lines, storeLines)
	if storeLines > 50 {
		t.Errorf("the store logged %d lines: a flood; tail:\n%s", storeLines, tail(logText, 30))
	}

	// Free the space and restart on the same data.
	filler.Close()
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	srv = startLogged(t, data, token)
	ackedIDs, allIDs := map[string]bool{}, map[string]bool{}
	for _, b := range acked {
		for _, id := range b.ids {
			ackedIDs[id] = true
		}
	}
	for _, b := range sent {
		for _, id := range b.ids {
			allIDs[id] = true
		}
	}
	total := func() int64 { return countEvents(t, srv.base, token, fx.org, now) }
	if got := total(); got < int64(len(ackedIDs)) || got > int64(len(allIDs)) {
		t.Fatalf("after the restart usaged counts %d events: want at least the %d acknowledged, at most the %d sent", got, len(ackedIDs), len(allIDs))
	}
	for _, b := range acked {
		code, _, body := do("POST", srv.base+"/api/v2/usage/events", token, "application/x-ndjson", b.body)
		var r ingestResult
		json.Unmarshal(body, &r)
		if code != 200 || r.Accepted != 0 {
			t.Fatalf("resending an acknowledged batch: %d %s", code, body)
		}
	}
	for _, b := range sent {
		if code, _, body := do("POST", srv.base+"/api/v2/usage/events", token, "application/x-ndjson", b.body); code != 200 {
			t.Fatalf("retrying a batch: %d %s", code, body)
		}
	}
	if got, want := total(), int64(len(allIDs)); got != want {
		t.Fatalf("after retries usaged counts %d events; the clients sent %d distinct ones", got, want)
	}
	if code, _, body := do("POST", srv.base+"/api/v2/admin/organizations", token, "application/json", []byte(`{"name":"after"}`)); code != http.StatusCreated {
		t.Fatalf("create organization after the restart: %d %s", code, body)
	}
	t.Logf("%d batches sent, %d acknowledged; after the restart %d distinct events counted once", len(sent), len(acked), len(allIDs))
}

// TestDiskReserve checks that below the disk reserve the writes that add
// data are refused with 503 and Retry-After, reads still work, and writes
// resume once space is freed.
func TestDiskReserve(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs under a real server")
	}
	const token = "disk-test-admin-token"
	mnt := mountTmpfs(t, 96<<20)
	data := filepath.Join(mnt, "data")
	// The reserve is capped at 5% of the filesystem: 4.8 MiB here.
	srv := startLogged(t, data, token, "--disk-reserve", "256MiB", "--rate-limit", "-1")
	fx := newDiskFixture(t, srv.base, token)
	if code, _, body := postQuery(srv.base, fx.clientToken); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("query with space to spare: %d %s", code, body)
	}

	// Leave 2 MiB free: below the reserve, yet room for the store.
	filler := fill(t, mnt)
	if err := filler.Truncate(mustSize(t, filler) - 2<<20); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the store reads free space at most every second

	code, retry, body := postQuery(srv.base, fx.clientToken)
	if code != http.StatusServiceUnavailable || retry == "" || !strings.Contains(string(body), "reserve") {
		t.Errorf("new query below the reserve: %d Retry-After %q %s; want 503 with Retry-After naming the reserve", code, retry, body)
	}
	code, retry, body = do("POST", srv.base+"/api/v2/admin/organizations", token, "application/json", []byte(`{"name":"low"}`))
	if code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("registry change below the reserve: %d Retry-After %q %s", code, retry, body)
	}
	ev := fmt.Sprintf(`{"id":"r1","time":%q,"organizationId":%q,"clientId":"c","clientName":"C","templateUri":"api/v2/x","httpMethod":"GET","status":200}`, time.Now().UTC().Format(time.RFC3339), fx.org)
	code, retry, body = do("POST", srv.base+"/api/v2/usage/events", token, "application/x-ndjson", []byte(ev))
	if code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("ingest below the reserve: %d Retry-After %q %s", code, retry, body)
	}
	if code, _, body := do("GET", srv.base+"/healthz", "", "", nil); code != http.StatusOK {
		t.Errorf("/healthz below the reserve (a refusal, not a failure): %d %s", code, body)
	}

	// Space freed: writes resume.
	filler.Close()
	os.Remove(filler.Name())
	time.Sleep(1100 * time.Millisecond)
	if code, _, body := do("POST", srv.base+"/api/v2/usage/events", token, "application/x-ndjson", []byte(ev)); code != http.StatusOK {
		t.Errorf("ingest after space was freed: %d %s", code, body)
	}
	if code, _, body := postQuery(srv.base, fx.clientToken); code != http.StatusAccepted && code != http.StatusOK {
		t.Errorf("query after space was freed: %d %s", code, body)
	}
}

func mustSize(t *testing.T, f *os.File) int64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
