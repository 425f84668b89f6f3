package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
	"github.com/usaged/usaged/server"
)

// A second server on a data directory in use names the directory and the
// process holding it, not the lock's errno.
func TestServeLockedDataDir(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts real servers")
	}
	const token = "locked-data-dir-admin-token"
	data := t.TempDir()
	first := startServe(t, data, token)
	out := serveFails(t, "--data", data, "--admin-token", token)
	want := fmt.Sprintf("another usaged holds %s (pid %d)", data, first.cmd.Process.Pid)
	if !strings.Contains(out, want) || strings.Contains(out, "temporarily unavailable") {
		t.Fatalf("second serve on %s printed:\n%s\nwant %q", data, out, want)
	}
}

// serveUntilListening starts usaged serve and returns its output once it
// listens (and is stopped), or once it has failed.
func serveUntilListening(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, listened, _ := apptest.Run(t, 2*time.Minute, append([]string{"--log-format", "json"}, args...)...)
	return out, listened
}

var tokenRE = regexp.MustCompile(`admin token \(generated now, shown only this once, kept in \S+\):\n\s+(\S+)\n`)

// The generated admin token is shown once, by the start that listens: a
// first start that fails on a port in use prints none, and the next start
// prints the token it keeps, once.
func TestServeShowsAdminTokenOnceListening(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts real servers")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := t.TempDir()
	out := serveFails(t, "--data", data, "--addr", busy.Addr().String())
	if !strings.Contains(out, "address already in use") || strings.Contains(out, "admin token") {
		t.Fatalf("serve on a port in use printed:\n%s\nwant the listen error and no admin token", out)
	}

	out, listened := serveUntilListening(t, "--data", data)
	m := tokenRE.FindStringSubmatch(out)
	if !listened || m == nil {
		t.Fatalf("the start after the failed one printed:\n%s\nwant the admin token", out)
	}
	kept, err := os.ReadFile(filepath.Join(data, server.AdminTokenFile))
	if err != nil || strings.TrimSpace(string(kept)) != m[1] {
		t.Fatalf("the data directory keeps %q (%v), the start printed %q", kept, err, m[1])
	}

	// Later starts use it, silently.
	srv := startServe(t, data, m[1])
	kill(t, srv)
	if out, _ := serveUntilListening(t, "--data", data); strings.Contains(out, "admin token") {
		t.Fatalf("a later start printed:\n%s", out)
	}
}

// --store chooses the backend: memory: serves ingest and queries with
// nothing of the store in the data directory, the default keeps it in
// <data>/store, and a location naming no backend is refused as a usage
// error naming the flag.
func TestServeStoreFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	const token = "store-flag-test-admin-token"
	t.Run("memory", func(t *testing.T) {
		data := t.TempDir()
		srv := startServe(t, data, token, "--store", "memory:")
		now := time.Now().UTC()
		org, acked := ingestAcked(t, srv, token, 2, 50, now)
		if got := countEvents(t, srv.base, token, org, now); got != int64(acked) {
			t.Fatalf("usaged on memory: counts %d events, want the %d acknowledged", got, acked)
		}
		if metrics := getBody(t, srv.base+"/metrics"); strings.Contains(metrics, "usaged_store_disk_bytes") {
			t.Errorf("/metrics of a store in memory reports disk use")
		}
		kill(t, srv)
		if _, err := os.Stat(filepath.Join(data, server.StoreDir)); err == nil {
			t.Errorf("a store in memory made %s in the data directory", server.StoreDir)
		}
		if _, err := os.Stat(filepath.Join(data, server.SigningKeyFile)); err != nil {
			t.Errorf("the signing key is not in the data directory: %v", err)
		}
	})
	t.Run("default", func(t *testing.T) {
		data := t.TempDir()
		srv := startServe(t, data, token)
		if metrics := getBody(t, srv.base+"/metrics"); !strings.Contains(metrics, "usaged_store_disk_bytes") {
			t.Errorf("/metrics of the default store lacks its disk use")
		}
		kill(t, srv)
		if fi, err := os.Stat(filepath.Join(data, server.StoreDir)); err != nil || !fi.IsDir() {
			t.Fatalf("the default store is not in %s: %v", filepath.Join(data, server.StoreDir), err)
		}
	})
	t.Run("bad", func(t *testing.T) {
		out, listened, err := apptest.Run(t, 2*time.Minute, "--data", t.TempDir(), "--store", "sqlite:x")
		var exit *exec.ExitError
		if listened || !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, "-store") ||
			!strings.Contains(out, `"sqlite:x" names no backend`) {
			t.Fatalf("serve --store sqlite:x: %v, printed:\n%s\nwant exit status 2 naming the flag", err, out)
		}
	})
}

// getBody returns the body of a GET of url answered 200.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
