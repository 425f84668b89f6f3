package genesyssdk

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// usagedModule is the module path of the repository this module sits in,
// two directories up.
const usagedModule = "github.com/usaged/usaged"

// server is a running `usaged serve` process.
type server struct {
	base       string // http://127.0.0.1:PORT
	adminToken string
}

// startUsaged builds usaged from the repository root and starts it on a free
// port of 127.0.0.1 with a fresh data directory. The process is killed when
// the test ends; if the test failed, the end of its log is shown.
func startUsaged(t *testing.T) *server {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module "+usagedModule+"\n") {
		t.Fatalf("%s is not the root of %s (go.mod: %v)", root, usagedModule, err)
	}
	bin := filepath.Join(t.TempDir(), "usaged")
	build := exec.Command("go", "build", "-o", bin, "./cmd/usaged")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/usaged: %v\n%s", err, out)
	}

	s := &server{adminToken: randomHex(24)}
	logPath := filepath.Join(t.TempDir(), "usaged.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve",
		"--addr", "127.0.0.1:0",
		"--data", filepath.Join(t.TempDir(), "data"),
		"--admin-token", s.adminToken,
		"--log-format", "json")
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			t.Logf("end of the usaged log:\n%s", tail(logPath, 40))
		}
	})

	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if _, addr, ok := strings.Cut(sc.Text(), "listening on "); ok && !found {
				found = true
				addrs <- strings.TrimSpace(addr)
			}
		}
		close(addrs)
	}()
	select {
	case addr, ok := <-addrs:
		if !ok {
			t.Fatalf("usaged serve exited before listening; its log:\n%s", tail(logPath, 40))
		}
		s.base = addr
	case <-time.After(60 * time.Second):
		t.Fatalf("usaged serve did not report its address within a minute; its log:\n%s", tail(logPath, 40))
	}
	return s
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// call sends a JSON request with a bearer token and decodes a JSON answer
// into out (unless out is nil). An answer other than wantStatus fails the test.
func (s *server) call(t *testing.T, token, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, res.StatusCode, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// createOrganization creates an organization with the admin token and
// returns its id.
func (s *server) createOrganization(t *testing.T, name string) string {
	t.Helper()
	var org struct {
		ID string `json:"id"`
	}
	s.call(t, s.adminToken, "POST", "/api/v2/admin/organizations", map[string]string{"name": name}, http.StatusCreated, &org)
	if org.ID == "" {
		t.Fatalf("organization %q was created without an id", name)
	}
	return org.ID
}

// oauthClient is a registered OAuth client and its secret.
type oauthClient struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// createClient registers an OAuth client of org holding perms.
func (s *server) createClient(t *testing.T, org, name string, perms ...string) oauthClient {
	t.Helper()
	var c oauthClient
	s.call(t, s.adminToken, "POST", "/api/v2/admin/organizations/"+org+"/clients",
		map[string]any{"name": name, "permissions": perms}, http.StatusCreated, &c)
	if c.ID == "" || c.Secret == "" || c.Name != name {
		t.Fatalf("client %q was created as %+v: want its id, name and secret", name, c)
	}
	return c
}

// ingestResult is the answer to POST /api/v2/usage/events.
type ingestResult struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Rejected   int               `json:"rejected"`
	Errors     []json.RawMessage `json:"errors"`
}

// postEvents sends one batch of events with token.
func (s *server) postEvents(t *testing.T, token string, events []wireEvent) ingestResult {
	t.Helper()
	var res ingestResult
	s.call(t, token, "POST", "/api/v2/usage/events", events, http.StatusOK, &res)
	return res
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomUUID returns a random version 4 UUID.
func randomUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
