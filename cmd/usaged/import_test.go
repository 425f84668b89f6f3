package main

import (
	"compress/gzip"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// importLog builds access logs and tallies, independently of usaged, the
// requests per template that its lines hold.
type importLog struct {
	t0   time.Time // a second an hour ago: inside usaged's dedupe window
	want map[string]int64
}

func newImportLog() *importLog {
	return &importLog{t0: time.Now().UTC().Add(-time.Hour).Truncate(time.Second), want: map[string]int64{}}
}

// line is a combined log line of a GET of /api/v2/users/{user} at second
// sec after t0, as a health check writes the same line every time.
func (l *importLog) line(sec int, user string) string {
	l.want["api/v2/users/{userId}"]++
	return fmt.Sprintf("203.0.113.7 - - [%s] \"GET /api/v2/users/%s HTTP/1.1\" 200 17 \"-\" \"check/1\"\n",
		l.t0.Add(time.Duration(sec)*time.Second).Format("02/Jan/2006:15:04:05 -0700"), user)
}

func (l *importLog) lines(from, to int, user string) string {
	var b strings.Builder
	for sec := from; sec < to; sec++ {
		b.WriteString(l.line(sec, fmt.Sprintf("%s%d", user, sec)))
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string, flag int) {
	t.Helper()
	f, err := os.OpenFile(name, flag|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// gzipFile compresses name to to and removes name, as logrotate's compress
// does.
func gzipFile(t *testing.T, name, to string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

func importSetup(t *testing.T) (env map[string]string, base, admin, orgID, templates, dir string) {
	admin = "import-test-admin-token-0123456789"
	s := mustServe(t, "--data", t.TempDir(), "--admin-token", admin)
	orgID, _ = mustOrgClient(t, s.base, admin)
	dir = t.TempDir()
	templates = filepath.Join(dir, "openapi.json")
	writeFile(t, templates, meterOpenAPI, os.O_TRUNC)
	return map[string]string{"USAGED_SERVER": s.base, "USAGED_TOKEN": admin}, s.base, admin, orgID, templates, dir
}

// A log imported, rotated (renamed, then gzipped), appended to and imported
// again, every file each time, counts each request once — identical lines
// in one second too, also when a rotation falls inside that second.
func TestImportRotatedCountsOnce(t *testing.T) {
	t.Parallel()
	env, base, admin, orgID, templates, dir := importSetup(t)
	log := newImportLog()
	imp := func(files ...string) string {
		t.Helper()
		args := []string{"import", "--format", "combined", "--templates", templates, "--org", orgID, "--client", "web-logs"}
		for _, f := range files {
			args = append(args, filepath.Join(dir, f))
		}
		return runCLI(t, env, args...)
	}
	// Three identical health checks in second 5, and two more in second 9
	// of which the second is written after the first rotation.
	writeFile(t, filepath.Join(dir, "access.log"),
		log.lines(0, 5, "u")+log.line(5, "health")+log.line(5, "health")+log.line(5, "health")+log.lines(6, 9, "u")+log.line(9, "health"), os.O_TRUNC)
	imp("access.log")
	waitForCounts(t, base, admin, orgID, log.want)

	if err := os.Rename(filepath.Join(dir, "access.log"), filepath.Join(dir, "access.log.1")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "access.log"), log.line(9, "health")+log.lines(10, 20, "u"), os.O_TRUNC)
	if out := imp("access.log.1", "access.log"); !strings.Contains(out, "11 accepted, 12 duplicates") {
		t.Errorf("after the first rotation: %s", out)
	}
	waitForCounts(t, base, admin, orgID, log.want)

	writeFile(t, filepath.Join(dir, "access.log"), log.line(20, "health")+log.line(20, "health")+log.lines(21, 25, "u"), os.O_APPEND)
	gzipFile(t, filepath.Join(dir, "access.log.1"), filepath.Join(dir, "access.log.2.gz"))
	if err := os.Rename(filepath.Join(dir, "access.log"), filepath.Join(dir, "access.log.1")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "access.log"), log.line(25, "health")+log.lines(26, 30, "u"), os.O_TRUNC)
	imp("access.log.2.gz", "access.log.1", "access.log")
	waitForCounts(t, base, admin, orgID, log.want)

	// Once more, in another order: nothing new.
	if out := imp("access.log", "access.log.2.gz", "access.log.1"); !strings.Contains(out, "0 accepted, 34 duplicates") {
		t.Errorf("importing everything again: %s", out)
	}
	if got := usagedCounts(t, base, admin, orgID); !maps.Equal(got, log.want) {
		t.Fatalf("after importing everything again\ngot  %v\nwant %v", got, log.want)
	}
}

// The same lines from two hosts are two hosts' requests; identical lines of
// one host in one second are separate requests.
func TestImportSourcesAndIdenticalLines(t *testing.T) {
	t.Parallel()
	env, base, admin, orgID, templates, dir := importSetup(t)
	log := newImportLog()
	content := log.line(3, "health") + log.line(3, "health") + log.line(3, "health")
	for _, host := range []string{"web1", "web2"} {
		if err := os.Mkdir(filepath.Join(dir, host), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, host, "access.log"), content, os.O_TRUNC)
	}
	want := map[string]int64{"api/v2/users/{userId}": 3}
	for _, host := range []string{"web1", "web2"} {
		out := runCLI(t, env, "import", "--source", host, "--templates", templates, "--org", orgID, "--client", "web-logs",
			filepath.Join(dir, host, "access.log"))
		if !strings.Contains(out, "3 accepted, 0 duplicates") {
			t.Errorf("importing %s's log: %s", host, out)
		}
		waitForCounts(t, base, admin, orgID, want)
		want["api/v2/users/{userId}"] += 3
	}

	// Named twice, one file would count twice.
	name := filepath.Join(dir, "web1", "access.log")
	_, err := tryCLI(t, env, "import", "--source", "web1", "--templates", templates, "--org", orgID, "--client", "web-logs", name, filepath.Join(dir, "web1", ".", "access.log"))
	if err == nil || !strings.Contains(err.Error(), "are the same file: name each file once") {
		t.Errorf("a file named twice: %v", err)
	}
}
