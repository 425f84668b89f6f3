package accesslog_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/meter/accesslog"
)

type got struct {
	no   int
	line accesslog.Line
	err  string
}

func readAll(t *testing.T, file string, f accesslog.Format) []got {
	t.Helper()
	fh, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := accesslog.NewReader(fh, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []got
	for {
		l, no, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		var pe *accesslog.ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatal(err)
		}
		g := got{no: no, line: l}
		if pe != nil {
			if pe.Line != no {
				t.Errorf("ParseError.Line %d, Next said line %d", pe.Line, no)
			}
			g.err = pe.Reason
		}
		out = append(out, g)
	}
}

func TestCombined(t *testing.T) {
	for _, file := range []string{"combined.log", "combined.log.gz"} {
		lines := readAll(t, file, accesslog.Combined)
		if len(lines) != 7 {
			t.Fatalf("%s: %d lines read, want 7 (the blank one skipped): %+v", file, len(lines), lines)
		}
		at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
		want := []struct {
			no                int
			method, path      string
			status            int
			bytes, durationMs int64
			user              string
			time              time.Time
		}{
			{1, "GET", "/api/v2/users/8f1c2b3a", 200, 2326, 0, "", at("2026-11-10T12:55:36Z")},
			{2, "POST", "/api/v2/conversations", 201, 512, 42, "ann", at("2026-11-10T12:55:37Z")},
			{3, "DELETE", "/api/v2/users/8f1c2b3a", 204, 0, 0, "", at("2026-11-10T13:55:38Z")},
		}
		for i, w := range want {
			g := lines[i]
			if g.err != "" || g.no != w.no || g.line.Method != w.method || g.line.Path != w.path || g.line.Status != w.status ||
				g.line.Bytes != w.bytes || g.line.DurationMs != w.durationMs || g.line.RemoteUser != w.user || !g.line.Time.Equal(w.time) {
				t.Errorf("%s line %d: %+v, want %+v", file, w.no, g, w)
			}
		}
		if lines[3].no != 4 || !strings.Contains(lines[3].err, "no [time]") {
			t.Errorf("line 4: %+v", lines[3])
		}
		if lines[4].no != 5 || !strings.Contains(lines[4].err, `status "abc" is not a number`) {
			t.Errorf("line 5: %+v", lines[4])
		}
		if lines[5].no != 7 || lines[6].no != 8 || lines[5].line.Status != 429 || lines[5].err != "" {
			t.Errorf("common-format lines 7 and 8: %+v %+v", lines[5], lines[6])
		}
	}
}

func TestJSON(t *testing.T) {
	caddy := readAll(t, "caddy.json", accesslog.JSON)
	if len(caddy) != 2 || caddy[0].err != "" || caddy[1].err != "" {
		t.Fatalf("caddy: %+v", caddy)
	}
	c := caddy[0].line
	if c.Method != "GET" || c.Path != "/api/v2/users/me" || c.Status != 200 || c.Bytes != 311 || c.DurationMs != 13 ||
		c.RemoteUser != "u-1" || c.Fields["request.headers.X-Org-Id"] != "org-7" || !c.Time.Equal(time.Unix(1794314136, 5e8)) {
		t.Errorf("caddy line 1: %+v", c)
	}
	if c := caddy[1].line; c.Method != "PATCH" || c.Status != 503 || c.RequestBytes != 48 || c.DurationMs != 500 {
		t.Errorf("caddy line 2: %+v", c)
	}
	envoy := readAll(t, "envoy.json", accesslog.JSON)
	if len(envoy) != 3 {
		t.Fatalf("envoy: %+v", envoy)
	}
	if e := envoy[0].line; envoy[0].err != "" || e.Method != "GET" || e.Path != "/api/v2/users/8f1c" || e.Status != 200 || e.Bytes != 2326 || e.DurationMs != 7 {
		t.Errorf("envoy line 1: %+v", envoy[0])
	}
	if !strings.Contains(envoy[1].err, `status "not a number"`) || !strings.Contains(envoy[2].err, "no time field") {
		t.Errorf("envoy errors: %q, %q", envoy[1].err, envoy[2].err)
	}
}

func TestParseErrors(t *testing.T) {
	f := func(format accesslog.Format, line, inErr string) {
		t.Helper()
		_, err := accesslog.NewParser(format).Parse([]byte(line))
		var pe *accesslog.ParseError
		if !errors.As(err, &pe) || !strings.Contains(pe.Reason, inErr) {
			t.Errorf("Parse(%q): %v, want a ParseError with %q", line, err, inErr)
		}
	}
	c := accesslog.Combined
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "-" 400 0 "-" "-"`, "not METHOD TARGET PROTOCOL")
	f(c, `1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 1`, "is not dd/Mon/yyyy")
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 700 1`, "not an HTTP status")
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 x`, `size "x"`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET noslash HTTP/1.1" 200 1`, "does not start with /")
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 1 "ref"`, "user agent")
	j := accesslog.JSON
	f(j, `[1,2]`, "not a JSON object")
	f(j, `{"method":"GET"`, "not JSON")
	f(j, `{"path":"/","status":200,"time":"2026-01-01T00:00:00Z"}`, "no method")
	f(j, `{"method":"GET","status":200,"time":"2026-01-01T00:00:00Z"}`, "no path")
	f(j, `{"method":"GET","path":"/","time":"2026-01-01T00:00:00Z"}`, "no status")
	f(j, `{"method":"GET","path":"/","status":200,"time":"then"}`, "neither RFC 3339")
}

func TestReaderEdges(t *testing.T) {
	line := `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET /a HTTP/1.1" 200 1 "-" "-"`
	long := `{"method":"GET","path":"/` + strings.Repeat("x", 1<<20) + `"}`
	in := line + "\r\n" + long + "\n" + line // CRLF, an overlong line, no final newline
	r, err := accesslog.NewReader(strings.NewReader(in), accesslog.Combined)
	if err != nil {
		t.Fatal(err)
	}
	l, no, _, err := r.Next()
	if err != nil || no != 1 || l.Path != "/a" {
		t.Fatalf("line 1: %v %d %+v", err, no, l)
	}
	_, no, _, err = r.Next()
	var pe *accesslog.ParseError
	if !errors.As(err, &pe) || no != 2 || !strings.Contains(pe.Reason, "longer than") {
		t.Fatalf("line 2: %v %d", err, no)
	}
	if l, no, _, err = r.Next(); err != nil || no != 3 || l.Path != "/a" {
		t.Fatalf("line 3: %v %d %+v", err, no, l)
	}
	if _, _, _, err = r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last line: %v", err)
	}
}

func TestEventID(t *testing.T) {
	a := accesslog.EventID("access.log", 1, []byte("x"))
	if a != accesslog.EventID("access.log", 1, []byte("x")) {
		t.Fatal("EventID is not stable")
	}
	for _, other := range []string{
		accesslog.EventID("access.log", 2, []byte("x")),
		accesslog.EventID("access.log.1", 1, []byte("x")),
		accesslog.EventID("access.log", 1, []byte("y")),
		accesslog.EventID("access.lo", 1, []byte("gx")),
	} {
		if other == a {
			t.Errorf("EventID collides: %s", a)
		}
	}
	if len(a) > 128 {
		t.Errorf("EventID %q is longer than an event id may be", a)
	}
}

func FuzzParseCombined(f *testing.F) {
	f.Add(`203.0.113.7 - ann [10/Nov/2026:13:55:37 +0100] "POST /api/v2/conversations?x HTTP/1.1" 201 512 "-" "agent" 0.042`)
	f.Add(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET http://h HTTP/1.1" 200 -`)
	f.Fuzz(func(t *testing.T, line string) { checkParsed(t, accesslog.Combined, line) })
}

func FuzzParseJSON(f *testing.F) {
	f.Add(`{"ts":1794314136.5,"request":{"method":"GET","uri":"/a?b","headers":{"X":["y"]}},"status":200,"size":1,"duration":0.5}`)
	f.Add(`{"start_time":"2026-11-10T12:55:36.123Z","method":"GET","path":"/a","response_code":200,"duration":7}`)
	f.Fuzz(func(t *testing.T, line string) { checkParsed(t, accesslog.JSON, line) })
}

func checkParsed(t *testing.T, f accesslog.Format, line string) {
	l, err := accesslog.NewParser(f).Parse([]byte(line))
	if err != nil {
		var pe *accesslog.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		return
	}
	if l.Method == "" || !strings.HasPrefix(l.Path, "/") || l.Status < 100 || l.Status > 599 || l.Time.IsZero() || l.Bytes < 0 || l.DurationMs < 0 {
		t.Fatalf("Parse(%q) = %+v", line, l)
	}
}

func BenchmarkParseCombined(b *testing.B) {
	line := []byte(`203.0.113.7 - ann [10/Nov/2026:13:55:37 +0100] "POST /api/v2/conversations HTTP/1.1" 201 512 "https://app.example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 0.042`)
	p := accesslog.NewParser(accesslog.Combined)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
