package main

import (
	"fmt"
	"net"
	"os"
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
