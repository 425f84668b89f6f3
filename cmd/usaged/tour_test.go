package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourBuildLine is the tour's first command. The test puts the usaged it
// built where that line would, and skips only that line: building again
// inside the tour would cost a minute of CPU for nothing.
const tourBuildLine = "go build -o usaged ./cmd/usaged"

// tourBlocks returns the sh blocks of the README's five-minute tour.
func tourBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## A five-minute tour\n")
	if start < 0 {
		t.Fatal(`README.md has no "## A five-minute tour" section`)
	}
	section := readme[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 5 {
		t.Fatalf("the tour has %d sh blocks:\n%s", len(blocks), section)
	}
	return blocks
}

// The README's tour, run verbatim as a reader would right after the first
// command of a fresh clone: its sh blocks in order in one bash, from a
// directory holding the usaged binary and a running server's data
// directory, against the tour's own server (on a free port through
// TOUR_ADDR, which the tour reads). Every command must succeed (set -e),
// and the answers must be the ones the README shows.
func TestReadmeTour(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the tour needs %s: %v", tool, err)
		}
	}
	blocks := tourBlocks(t)
	if !strings.HasPrefix(blocks[0], tourBuildLine+"\n") {
		t.Fatalf("the tour's first block does not start with %q:\n%s", tourBuildLine, blocks[0])
	}
	blocks[0] = strings.TrimPrefix(blocks[0], tourBuildLine+"\n")

	bin, err := buildUsaged()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "usaged")); err != nil {
		t.Fatal(err)
	}
	// Right after the first command: a server holds ./usaged-data, the
	// default data directory, as serve --demo would, and 8080 is the
	// demo's. The tour must use neither.
	startServe(t, filepath.Join(dir, "usaged-data"), "first-command-admin-token")
	for i, b := range blocks {
		if strings.Contains(b, ":8080") {
			t.Errorf("tour block %d uses the demo's port 8080:\n%s", i+1, b)
		}
	}
	var script strings.Builder
	script.WriteString("set -e -o pipefail\n")
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo '::block %d::'\n%s\n", i+1, b)
	}
	script.WriteString("echo '::done::'\n")

	// A free port: listen on port 0 and release it for the tour's server.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	// The server the tour starts with & is in bash's process group: killing
	// the group stops it too if the tour fails before its own kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USAGED_") && !strings.HasPrefix(kv, "TOUR_ADDR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TOUR_ADDR="+addr)
	// A file rather than a pipe: a server the tour left running keeps its
	// output open, and Run must not wait for it.
	outPath := filepath.Join(t.TempDir(), "tour.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the tour left running
	}
	out.Close()
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if runErr != nil || !strings.HasSuffix(got, "::done::\n") {
		last := regexp.MustCompile(`::block (\d+)::`).FindAllStringSubmatch(got, -1)
		failed := "none"
		if len(last) > 0 {
			failed = last[len(last)-1][1]
		}
		t.Fatalf("the tour failed in block %s (%v):\n%s", failed, runErr, got)
	}

	outputs := regexp.MustCompile(`::block \d+::\n`).Split(strings.TrimSuffix(got, "::done::\n"), -1)[1:]
	for _, want := range []struct {
		block int
		re    string
	}{
		{1, `(?m)^ok$`}, // the server answered before the next command
		{1, `listening on http://` + regexp.QuoteMeta(addr)}, // on the address the tour gave
		{2, `"secret":"[^"]+"`},
		{4, `\{"accepted":2,"duplicates":1,"rejected":1,"errors":\[\{"index":3,"id":"req-3","code":"invalid_field","message":"time \\"yesterday\\" is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z"\}\],"errorsOmitted":0\}`},
		{5, `(?m)^\{"results":\[\{"clientId":"crm",.*"queryStatus":"Complete"\}$`},
		{5, `(?m)^TOTAL +2 `}, // usaged query's table
	} {
		if !regexp.MustCompile(want.re).MatchString(outputs[want.block-1]) {
			t.Errorf("block %d printed no match of %s:\n%s", want.block, want.re, outputs[want.block-1])
		}
	}
	// The API's answer counts the two distinct events.
	if n := totalRequests(t, firstLine(t, outputs[4], `{"results"`)); n != 2 {
		t.Errorf("the query answered %d requests, want 2:\n%s", n, outputs[4])
	}
	if _, err := os.Stat(filepath.Join(dir, "tour-data")); !os.IsNotExist(err) {
		t.Errorf("the tour left its data directory: %v", err)
	}
}

// firstLine returns the first line of s that starts with prefix.
func firstLine(t *testing.T, s, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starts with %s:\n%s", prefix, s)
	return ""
}
