package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
	"github.com/usaged/usaged/internal/syncbuf"
)

// startServeWith starts usaged serve like startServe, through wrap (a
// command that runs its arguments, e.g. to lower a limit first) and with
// its log written to stderr.
func startServeWith(t *testing.T, wrap []string, stderr io.Writer, data, token string, extra ...string) *serverProc {
	t.Helper()
	s := apptest.Start(t, apptest.Options{
		Wrap:   wrap,
		Stderr: stderr,
		Args:   append([]string{"--data", data, "--admin-token", token, "--log-format", "json"}, extra...),
	})
	return &serverProc{cmd: proc{Cmd: s.Cmd, app: s}, base: s.URL, app: s}
}

// mustIngestAndQuery creates an organization, records one event for it and
// checks that a query counts it, each request on a fresh connection within
// timeout: the server is serving normally.
func mustIngestAndQuery(t *testing.T, base, token string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	do := func(path, contentType, body string) []byte {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var org struct{ ID string }
	json.Unmarshal(do("/api/v2/admin/organizations", "application/json", fmt.Sprintf(`{"name":"org %d"}`, time.Now().UnixNano())), &org)
	now := time.Now().UTC()
	var res ingestResult
	json.Unmarshal(do("/api/v2/usage/events", "application/x-ndjson", fmt.Sprintf(
		`{"id":"e1","time":%q,"organizationId":%q,"clientId":"c","clientName":"C","templateUri":"a/b","httpMethod":"GET","status":200}`,
		now.Format(time.RFC3339), org.ID)), &res)
	if res.Accepted != 1 {
		t.Fatalf("a good event: %+v", res)
	}
	var agg struct{ Results []struct{ Requests int64 } }
	json.Unmarshal(do("/api/v2/usage/aggregate", "application/json", fmt.Sprintf(`{"organizationId":%q,"interval":"%s/%s"}`,
		org.ID, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))), &agg)
	if len(agg.Results) != 1 || agg.Results[0].Requests != 1 {
		t.Fatalf("query after ingest: %+v, want one event", agg)
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// ones returns a JSON array of n ones: [1,1,…,1].
func ones(n int) []byte {
	b := make([]byte, 0, 2*n+1)
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '1')
	}
	return append(b, ']')
}

// TestSmallBodyManyEvents sends the body of an amplification attack: 16 KB
// of gzip inflating to 16 MiB of [1,1,…], 8 million elements, within
// --max-body. Each would be a per-event error; the server must refuse the
// request at --max-events at once, not build millions of errors, and keep
// serving.
func TestSmallBodyManyEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real server")
	}
	const token = "limits-test-admin-token"
	srv := startServe(t, t.TempDir(), token)
	// A generous bound for a loaded machine: the answer takes milliseconds,
	// where building the errors took minutes and gigabytes.
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}
	send := func(what, contentType string, body []byte, gz bool) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.base+"/api/v2/usage/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", contentType)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		t.Logf("%s: %d bytes on the wire, answered %d in %s", what, len(body), resp.StatusCode, time.Since(start).Round(time.Millisecond))
		return resp.StatusCode, b
	}
	tooMany := func(what string, status int, body []byte) {
		t.Helper()
		var eb struct{ Code, Message string }
		json.Unmarshal(body, &eb)
		if status != http.StatusRequestEntityTooLarge || eb.Code != "request.entity.too.large" ||
			!strings.Contains(eb.Message, "100000") || !strings.Contains(eb.Message, "--max-events") {
			t.Fatalf("%s: %d %.300s; want 413 request.entity.too.large naming 100000 and --max-events", what, status, body)
		}
	}

	body := ones((16<<20 - 1) / 2) // 16 MiB less a byte
	gz := gzipBytes(body)
	if len(gz) > 20<<10 {
		t.Fatalf("the gzip body is %d bytes", len(gz))
	}
	status, answer := send("16 MiB of [1,1,…] in gzip", "application/json", gz, true)
	tooMany("16 MiB of [1,1,…]", status, answer)

	status, answer = send("150,000 malformed elements", "application/json", ones(150_000), false)
	tooMany("150,000 malformed elements", status, answer)
	status, answer = send("150,000 malformed NDJSON lines", "application/x-ndjson", bytes.Repeat([]byte("1\n"), 150_000), false)
	tooMany("150,000 malformed NDJSON lines", status, answer)

	mustIngestAndQuery(t, srv.base, token, 15*time.Second)
}

// TestErrorEntriesCappedOverHTTP checks the answer to many bad events: the
// first 1,000 listed, errorsOmitted counting the rest, the counts exact.
func TestErrorEntriesCappedOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real server")
	}
	const token = "limits-test-admin-token"
	srv := startServe(t, t.TempDir(), token)
	code, body, err := post(srv.base, token, "/api/v2/usage/events", "application/json", ones(5_000))
	if err != nil || code != http.StatusOK {
		t.Fatalf("5,000 bad events: %d %.300s %v", code, body, err)
	}
	var res struct {
		Accepted, Duplicates, Rejected int
		Errors                         []struct{ Index int }
		ErrorsOmitted                  *int `json:"errorsOmitted"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Rejected != 5_000 || len(res.Errors) != 1_000 || res.ErrorsOmitted == nil || *res.ErrorsOmitted != 4_000 {
		omitted := "absent"
		if res.ErrorsOmitted != nil {
			omitted = fmt.Sprint(*res.ErrorsOmitted)
		}
		t.Fatalf("5,000 bad events: accepted %d, rejected %d, %d errors listed, errorsOmitted %s; want 0, 5000, 1000, 4000",
			res.Accepted, res.Rejected, len(res.Errors), omitted)
	}
	for i, e := range res.Errors {
		if e.Index != i {
			t.Fatalf("error %d is of element %d", i, e.Index)
		}
	}
}

// TestConnectionFlood holds more idle keep-alive connections open than a
// server with 512 file descriptors can have, then checks that a new client
// is still served at once and that the server logs no flood of errors.
func TestConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real server")
	}
	const token = "limits-test-admin-token"
	var logs syncbuf.Buffer
	// ulimit -n sets the hard limit too, so the server cannot raise it.
	srv := startServeWith(t, []string{"sh", "-c", `ulimit -n 512 && exec "$0" "$@"`}, &logs, t.TempDir(), token)
	addr := strings.TrimPrefix(srv.base, "http://")

	const flood = 700
	var (
		mu     sync.Mutex
		conns  []net.Conn
		served atomic.Int64
		wg     sync.WaitGroup
		next   atomic.Int64
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 20 {
		wg.Go(func() {
			for next.Add(1) <= flood {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				// One request, then the connection stays open and idle.
				c.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: usaged\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						served.Add(1)
					}
				}
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d keep-alive connections were served", served.Load(), flood)

	start := time.Now()
	mustIngestAndQuery(t, srv.base, token, 10*time.Second)
	t.Logf("a new client's ingest and query took %s beside the idle connections", time.Since(start).Round(time.Millisecond))

	var bad []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, "too many open files") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 3 {
		t.Fatalf("%d warnings and errors logged, the first: %s", len(bad), strings.Join(bad[:3], "\n"))
	}
	if !strings.Contains(logs.String(), `"msg":"--max-connections lowered`) {
		t.Errorf("the server did not log that it lowered --max-connections to its file budget")
	}
}
