package browsertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildUsaged compiles the usaged binary of this repository once per test
// binary run.
var buildUsaged = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "usaged-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "usaged")
	build := exec.Command("go", "build", "-o", bin, "./cmd/usaged")
	build.Dir = filepath.Join("..", "..") // the usaged module, whose go.mod builds it
	out, err := build.CombinedOutput()
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

// startServe starts `usaged serve` on 127.0.0.1 with data and the admin
// token, and extra flags; it is killed when the test ends.
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

// post sends body to base+path with the bearer token and returns the
// status and body of the answer.
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

// ingestResult is the answer to POST /api/v2/usage/events.
type ingestResult struct {
	Accepted, Duplicates, Rejected int
}
