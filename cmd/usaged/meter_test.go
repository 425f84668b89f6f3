package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The metering paths (proxy, import) checked end to end against real
// usaged processes: what goes through them must show up in usaged's
// aggregates with the right templates and counts, however usaged and the
// proxy are stopped and killed on the way.

// freeAddr returns a 127.0.0.1 address with a port free right now, so that a
// server can be restarted on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// meterOpenAPI is the upstream API's route table, as an OpenAPI 3 document
// whose server URL carries the /api/v2 prefix.
const meterOpenAPI = `{
  "openapi": "3.0.1",
  "servers": [{"url": "https://api.example.com/api/v2"}],
  "paths": {
    "/users": {"get": {}},
    "/users/me": {"get": {}},
    "/users/{userId}": {"get": {}, "delete": {}},
    "/users/{userId}/presences/{sourceId}": {"get": {}, "patch": {}},
    "/conversations": {"post": {}},
    "/notifications/stream": {"get": {}},
    "/echo": {"get": {}}
  }
}`

// upstream is the metered API: a few routes, a server-sent event stream and
// a protocol upgrade that echoes what it is sent.
func upstream(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/users", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `[]`) })
	mux.HandleFunc("GET /api/v2/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	mux.HandleFunc("DELETE /api/v2/users/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /api/v2/users/{id}/presences/{src}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"presence":"Available"}`) })
	mux.HandleFunc("POST /api/v2/conversations", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("GET /api/v2/notifications/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
		}
	})
	mux.HandleFunc("GET /api/v2/echo", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString(line)
		brw.Flush()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// proxyProc is a running `usaged proxy`.
type proxyProc struct{ cmd *exec.Cmd }

func startProxy(t *testing.T, args ...string) *proxyProc {
	t.Helper()
	bin, err := buildUsaged()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"proxy", "--log-format", "json"}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan bool)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "proxying ") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			close(ready)
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("usaged proxy exited before serving")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("usaged proxy did not start")
	}
	return &proxyProc{cmd: cmd}
}

// traffic sends requests through the proxy and counts, by hand, what usaged
// should end up with per template.
type traffic struct {
	base, token string
	want        map[string]int64 // template → requests
}

func (tr *traffic) do(t *testing.T, method, path, template string, wantStatus int) {
	t.Helper()
	req, _ := http.NewRequest(method, tr.base+path, strings.NewReader(`{"to":"someone"}`))
	req.Header.Set("Authorization", "Bearer "+tr.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s through the proxy: %v", method, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s through the proxy: %d, want %d (recording must never change the answer)", method, path, resp.StatusCode, wantStatus)
	}
	tr.want[template]++
}

// round sends one of every kind of request, n times.
func (tr *traffic) round(t *testing.T, n int) {
	for i := range n {
		tr.do(t, "GET", "/api/v2/users", "api/v2/users", 200)
		tr.do(t, "GET", fmt.Sprintf("/api/v2/users/u%d", i), "api/v2/users/{userId}", 200)
		tr.do(t, "GET", "/api/v2/users/missing", "api/v2/users/{userId}", 404)
		tr.do(t, "DELETE", fmt.Sprintf("/api/v2/users/u%d", i), "api/v2/users/{userId}", 204)
		tr.do(t, "GET", fmt.Sprintf("/api/v2/users/u%d/presences/purecloud", i), "api/v2/users/{userId}/presences/{sourceId}", 200)
		tr.do(t, "POST", "/api/v2/conversations", "api/v2/conversations", 429)
		tr.do(t, "GET", fmt.Sprintf("/api/v2/nothing/here/%d", i), "unmatched", 404)
	}
}

// stream reads a server-sent event stream through the proxy.
func (tr *traffic) stream(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest("GET", tr.base+"/api/v2/notifications/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tr.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || strings.Count(string(b), "data: ") != 3 {
		t.Fatalf("event stream through the proxy: %q %q", resp.Header.Get("Content-Type"), b)
	}
	tr.want["api/v2/notifications/stream"]++
}

// upgrade speaks an upgraded protocol through the proxy.
func (tr *traffic) upgrade(t *testing.T) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(tr.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v2/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", tr.token)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through the proxy: %v %v", resp, err)
	}
	fmt.Fprint(conn, "ping\n")
	if line, _ := br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("upgraded connection echoed %q", line)
	}
	tr.want["api/v2/echo"]++
}

// usagedCounts asks usaged's aggregate API for the requests per template.
func usagedCounts(t *testing.T, base, token, orgID string) map[string]int64 {
	t.Helper()
	now := time.Now().UTC()
	q := fmt.Sprintf(`{"organizationId":%q,"interval":"%s/%s","groupBy":["TemplateUri"]}`, orgID,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	status, body, err := post(base, token, "/api/v2/usage/aggregate", "application/json", []byte(q))
	if err != nil || status != 200 {
		t.Fatalf("aggregate: %d %s %v", status, body, err)
	}
	var res struct {
		Results []struct {
			TemplateURI string `json:"templateUri"`
			Requests    int64  `json:"requests"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range res.Results {
		got[r.TemplateURI] += r.Requests
	}
	return got
}

// waitForCounts polls usaged until it holds exactly want, failing on a
// count above it (something counted twice) or after a minute.
func waitForCounts(t *testing.T, base, token, orgID string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := usagedCounts(t, base, token, orgID)
		if maps.Equal(got, want) {
			return
		}
		for k, n := range got {
			if n > want[k] {
				t.Fatalf("usaged counts %d requests for %s, more than the %d sent: counted twice\ngot  %v\nwant %v", n, k, want[k], got, want)
			}
		}
		if time.Now().After(deadline) {
			keys := slices.Sorted(maps.Keys(want))
			t.Fatalf("usaged never reached the counts sent (templates %v)\ngot  %v\nwant %v", keys, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mustOrgClient creates an organization and a client with a token.
func mustOrgClient(t *testing.T, base, admin string) (orgID, token string) {
	t.Helper()
	status, body, err := post(base, admin, "/api/v2/admin/organizations", "application/json", []byte(`{"name":"Metered"}`))
	if err != nil || status != 201 {
		t.Fatalf("create organization: %d %s %v", status, body, err)
	}
	var org struct{ ID string }
	json.Unmarshal(body, &org)
	status, body, err = post(base, admin, "/api/v2/admin/organizations/"+org.ID+"/clients", "application/json",
		[]byte(`{"name":"Mobile app","permissions":["usage:organization:view"]}`))
	if err != nil || status != 201 {
		t.Fatalf("create client: %d %s %v", status, body, err)
	}
	var cl struct{ ID, Secret string }
	json.Unmarshal(body, &cl)
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(cl.ID, cl.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	return org.ID, tok.AccessToken
}

func TestProxyMetersThroughOutagesAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts usaged and proxy processes")
	}
	const admin = "proxy-test-admin-token-0123456789"
	data, spoolDir := t.TempDir(), t.TempDir()
	templates := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(templates, []byte(meterOpenAPI), 0o644); err != nil {
		t.Fatal(err)
	}
	usagedAddr, proxyAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	srv := startServe(t, data, admin, "--addr", usagedAddr)
	orgID, token := mustOrgClient(t, srv.base, admin)
	up := upstream(t)
	proxyArgs := []string{"--listen", proxyAddr, "--upstream", up.URL, "--templates", templates,
		"--server", srv.base, "--token", admin, "--spool", spoolDir, "--metrics-addr", metricsAddr}
	px := startProxy(t, proxyArgs...)
	tr := &traffic{base: "http://" + proxyAddr, token: token, want: map[string]int64{}}

	// Usaged up: events arrive within moments.
	tr.round(t, 20)
	tr.stream(t)
	tr.upgrade(t)
	waitForCounts(t, srv.base, admin, orgID, tr.want)

	// Usaged stopped: requests still pass, events wait in the spool.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()
	tr.round(t, 15)

	// The proxy is killed while usaged is still down; what it spooled (it
	// fsyncs every 100 ms) must survive.
	time.Sleep(500 * time.Millisecond)
	px.cmd.Process.Signal(syscall.SIGKILL)
	px.cmd.Wait()

	// Both come back; the restarted proxy ships what the killed one spooled,
	// and new traffic too, each event once.
	srv = startServe(t, data, admin, "--addr", usagedAddr)
	px = startProxy(t, proxyArgs...)
	tr.round(t, 5)
	waitForCounts(t, srv.base, admin, orgID, tr.want)

	// Requests whose token the proxy has never seen, while usaged is down,
	// wait for attribution; stopping the proxy, gently or not, must neither
	// lose them nor file them under anyone else. Each run uses a client of
	// its own organization, so that a request misfiled or lost shows as a
	// count short there.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		org, tok := mustOrgClient(t, srv.base, admin)
		srv.cmd.Process.Signal(syscall.SIGTERM)
		srv.cmd.Wait()
		fresh := &traffic{base: "http://" + proxyAddr, token: tok, want: map[string]int64{}}
		fresh.round(t, 3)
		if sig == syscall.SIGKILL {
			// A crash loses what was not yet fsynced (the documented last
			// ~100 ms): wait until the proxy says every request is on disk.
			waitForMetric(t, metricsAddr, "usaged_proxy_requests_waiting_durable", 21)
		}
		px.cmd.Process.Signal(sig)
		px.cmd.Wait()
		srv = startServe(t, data, admin, "--addr", usagedAddr)
		px = startProxy(t, proxyArgs...)
		waitForCounts(t, srv.base, admin, org, fresh.want)
	}
	waitForCounts(t, srv.base, admin, orgID, tr.want)

	// Requests without a token or with one usaged refuses pass through,
	// are not recorded (there is no --anonymous-client) and are counted.
	before := metric(t, metricsAddr, "usaged_proxy_requests_unidentified_total")
	for _, auth := range []string{"", "Bearer not-a-token-usaged-issued", "Basic dXNlcjpwYXNz"} {
		req, _ := http.NewRequest("GET", "http://"+proxyAddr+"/api/v2/users", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("unattributable request through the proxy: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	waitForMetric(t, metricsAddr, "usaged_proxy_requests_unidentified_total", before+3)
	waitForCounts(t, srv.base, admin, orgID, tr.want)
}

// metric reads one unlabelled sample from the proxy's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("the proxy's /metrics has no %s", name)
	return 0
}

// waitForMetric polls the proxy's /metrics until name reads want, failing
// after a minute.
func waitForMetric(t *testing.T, addr, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := metric(t, addr, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy's %s is %g, want %g", name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestImportTwiceCountsOnce(t *testing.T) {
	t.Parallel()
	const admin = "import-test-admin-token-0123456789"
	s := mustServe(t, "--data", t.TempDir(), "--admin-token", admin)
	orgID, _ := mustOrgClient(t, s.base, admin)
	dir := t.TempDir()
	templates := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(templates, []byte(meterOpenAPI), 0o644); err != nil {
		t.Fatal(err)
	}
	// 60 requests over the last hour, counted by hand, and two bad lines.
	var b strings.Builder
	want := map[string]int64{}
	now := time.Now().UTC().Add(-time.Hour)
	for i := range 60 {
		path, template := fmt.Sprintf("/api/v2/users/u%d", i), "api/v2/users/{userId}"
		switch i % 3 {
		case 1:
			path, template = fmt.Sprintf("/api/v2/users/u%d/presences/purecloud?x=1", i), "api/v2/users/{userId}/presences/{sourceId}"
		case 2:
			path, template = "/api/v2/no/such/route", "unmatched"
		}
		fmt.Fprintf(&b, "203.0.113.7 - - [%s] \"GET %s HTTP/1.1\" 200 %d \"-\" \"curl/8\"\n", now.Add(time.Duration(i)*time.Second).Format("02/Jan/2006:15:04:05 -0700"), path, 100+i)
		want[template]++
		if i == 10 || i == 40 {
			b.WriteString("garbage that is not a log line\n")
		}
	}
	logFile := filepath.Join(dir, "access.log")
	if err := os.WriteFile(logFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"USAGED_SERVER": s.base, "USAGED_TOKEN": admin}
	args := []string{"import", "--format", "combined", "--templates", templates, "--org", orgID, "--client", "web-logs", logFile}
	_, err := tryCLI(t, env, args...)
	if err == nil || !strings.Contains(err.Error(), "access.log:12: no [time]") || !strings.Contains(err.Error(), "access.log:43:") {
		t.Fatalf("import with two bad lines: %v, want both reported with their line numbers and a failure", err)
	}
	waitForCounts(t, s.base, admin, orgID, want)
	out := runCLI(t, env, append(args[:1:1], append([]string{"--keep-going"}, args[1:]...)...)...)
	if !strings.Contains(out, "62 lines in 1 file: 60 sent (0 accepted, 60 duplicates") {
		t.Fatalf("second import: %s", out)
	}
	if got := usagedCounts(t, s.base, admin, orgID); !maps.Equal(got, want) {
		t.Fatalf("after importing twice\ngot  %v\nwant %v", got, want)
	}
}

// TestImportYAMLTemplates checks that the importer reads a YAML OpenAPI
// document as it reads the same one in JSON, as most API specs are YAML.
func TestImportYAMLTemplates(t *testing.T) {
	t.Parallel()
	const admin = "import-yaml-admin-token-0123456789"
	s := mustServe(t, "--data", t.TempDir(), "--admin-token", admin)
	orgID, _ := mustOrgClient(t, s.base, admin)
	dir := t.TempDir()
	templates := filepath.Join(dir, "openapi.yaml")
	const spec = `openapi: 3.0.1
servers:
  - url: https://api.example.com/api/v2
paths:
  /users/me:
    get: {}
  /users/{userId}:
    get: {}
    delete: {}
  /users/{userId}/presences/{sourceId}:
    get: {}
`
	if err := os.WriteFile(templates, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	now := time.Now().UTC().Add(-time.Hour)
	for i, path := range []string{"/api/v2/users/u1", "/api/v2/users/me", "/api/v2/users/u2/presences/p", "/api/v2/users/u3", "/other"} {
		fmt.Fprintf(&b, "203.0.113.7 - - [%s] \"GET %s HTTP/1.1\" 200 10 \"-\" \"curl/8\"\n", now.Add(time.Duration(i)*time.Second).Format("02/Jan/2006:15:04:05 -0700"), path)
	}
	logFile := filepath.Join(dir, "access.log")
	if err := os.WriteFile(logFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"USAGED_SERVER": s.base, "USAGED_TOKEN": admin}
	runCLI(t, env, "import", "--format", "combined", "--templates", templates, "--org", orgID, "--client", "web-logs", logFile)
	waitForCounts(t, s.base, admin, orgID, map[string]int64{
		"api/v2/users/{userId}": 2, "api/v2/users/me": 1, "api/v2/users/{userId}/presences/{sourceId}": 1, "unmatched": 1,
	})
}
