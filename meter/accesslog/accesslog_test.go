package accesslog_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/meter/accesslog"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files with what the Reader returns")

// render writes what Next returns, one line per call, in the form the
// golden files hold.
func render(t *testing.T, r *accesslog.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		l, no, raw, err := r.Next()
		if errors.Is(err, io.EOF) {
			return b.String()
		}
		var pe *accesslog.ParseError
		switch {
		case errors.As(err, &pe):
			if pe.Line != no {
				t.Errorf("ParseError.Line %d, Next said line %d", pe.Line, no)
			}
			fmt.Fprintf(&b, "%s\n", pe)
		case err != nil:
			t.Fatalf("after line %d: %v", no, err)
		default:
			if len(raw) == 0 {
				t.Errorf("line %d: no raw bytes", no)
			}
			fmt.Fprintf(&b, "line %d: %s %s %d time=%s bytes=%d request_bytes=%d duration_ms=%d user=%q\n",
				no, l.Method, l.Path, l.Status, l.Time.Format(time.RFC3339Nano), l.Bytes, l.RequestBytes, l.DurationMs, l.RemoteUser)
		}
	}
}

func mustOpen(tb testing.TB, name string, f accesslog.Format) *accesslog.Reader {
	tb.Helper()
	fh, err := os.Open("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fh.Close() })
	r, err := accesslog.NewReader(fh, f)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestGolden reads each fixture and compares every line's outcome, parse
// errors with their line numbers included, to its golden file.
func TestGolden(t *testing.T) {
	f := func(fixture, golden string, format accesslog.Format) {
		t.Helper()
		got := render(t, mustOpen(t, fixture, format))
		path := "testdata/" + golden
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to write it)", err)
		}
		if got != string(want) {
			t.Errorf("%s: got\n%s\nwant (%s)\n%s", fixture, got, path, want)
		}
	}
	f("combined.log", "combined.golden", accesslog.Combined)
	f("combined.log.gz", "combined.golden", accesslog.Combined) // the same lines, gzipped
	f("caddy.json", "caddy.golden", accesslog.JSON)
	f("envoy.json", "envoy.golden", accesslog.JSON)
	f("nginx.json", "nginx.golden", accesslog.JSON)
}

// TestGzipFixture keeps the gzipped fixture the copy of the plain one that
// TestGolden takes it for.
func TestGzipFixture(t *testing.T) {
	plain, err := os.ReadFile("testdata/combined.log")
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open("testdata/combined.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, err := io.ReadAll(zr); err != nil || !bytes.Equal(unzipped, plain) {
		t.Fatalf("combined.log.gz is not combined.log gzipped (%v): regenerate it with gzip -n -k", err)
	}
}

func TestParseCombined(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	p := accesslog.NewParser(accesslog.Combined)
	f := func(line string, want accesslog.Line) {
		t.Helper()
		got, err := p.Parse([]byte(line))
		if err != nil {
			t.Errorf("Parse(%q): %v", line, err)
			return
		}
		if got.Header != nil || got.Fields != nil {
			t.Errorf("Parse(%q): a combined line has neither headers nor fields: %+v", line, got)
		}
		if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
			t.Errorf("Parse(%q).Time = %v, want %v in UTC", line, got.Time, want.Time)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", line, got, want)
		}
	}
	// nginx's default combined format.
	f(`203.0.113.7 - - [10/Nov/2026:13:55:36 +0100] "GET /api/v2/users/8f1c?expand=presence HTTP/1.1" 200 2326 "-" "curl/8.5.0"`,
		accesslog.Line{Time: at("2026-11-10T12:55:36Z"), Method: "GET", Path: "/api/v2/users/8f1c", Status: 200, Bytes: 2326})
	// nginx with $request_time after the agent, in the forms setups write it.
	for _, rt := range []string{`0.042`, `"0.042"`, `rt=0.042`, `request_time=0.042 upstream=10.0.0.5:80`, `rt="0.042"`} {
		f(`203.0.113.7 - ann [10/Nov/2026:13:55:37 +0100] "POST /api/v2/conversations HTTP/2.0" 201 512 "https://app.example.com/" "Mozilla/5.0" `+rt,
			accesslog.Line{Time: at("2026-11-10T12:55:37Z"), Method: "POST", Path: "/api/v2/conversations", Status: 201, Bytes: 512, DurationMs: 42, RemoteUser: "ann"})
	}
	// An integer after the agent is some other extension, not a duration.
	f(`203.0.113.7 - - [10/Nov/2026:13:55:37 +0000] "GET /a HTTP/1.1" 200 1 "-" "-" 312 0.042`,
		accesslog.Line{Time: at("2026-11-10T13:55:37Z"), Method: "GET", Path: "/a", Status: 200, Bytes: 1})
	f(`203.0.113.7 - - [10/Nov/2026:13:55:37 +0000] "GET /a HTTP/1.1" 200 1 "-" "-" nan.x`,
		accesslog.Line{Time: at("2026-11-10T13:55:37Z"), Method: "GET", Path: "/a", Status: 200, Bytes: 1})
	// Apache combined: %b "-", escaped quotes in the agent, an empty %u.
	f(`192.0.2.44 - "" [10/Nov/2026:04:55:41 -0800] "PUT /api/v2/users/me HTTP/1.1" 204 - "-" "python-requests/2.32.3 \"patched\""`,
		accesslog.Line{Time: at("2026-11-10T12:55:41Z"), Method: "PUT", Path: "/api/v2/users/me", Status: 204})
	// Common log format, and with unquoted additions.
	f(`10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
		accesslog.Line{Time: at("2000-10-10T20:55:36Z"), Method: "GET", Path: "/apache_pb.gif", Status: 200, Bytes: 2326, RemoteUser: "frank"})
	f(`10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 1234`,
		accesslog.Line{Time: at("2000-10-10T20:55:36Z"), Method: "GET", Path: "/apache_pb.gif", Status: 200, Bytes: 2326, RemoteUser: "frank"})
	// Absolute-form targets; percent-decoding like net/http's URL.Path.
	f(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0000] "GET http://api.example.com/a/b?x=1 HTTP/1.1" 200 1`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "GET", Path: "/a/b", Status: 200, Bytes: 1})
	f(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0000] "GET https://api.example.com?x=/y HTTP/1.1" 200 1`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "GET", Path: "/", Status: 200, Bytes: 1})
	f(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0000] "GET /users/J%C3%B6rg#top HTTP/1.1" 200 1`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "GET", Path: "/users/Jörg", Status: 200, Bytes: 1})
	f(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0000] "GET /100%25%zz HTTP/1.1" 200 1`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "GET", Path: "/100%25%zz", Status: 200, Bytes: 1})
	// HTTP/0.9, lower-case methods, several forwarded-for hosts, IPv6.
	f(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0000] "get /" 200 1`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "GET", Path: "/", Status: 200, Bytes: 1})
	f(`203.0.113.7, 10.0.0.2 - bob [10/Nov/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "GET", Path: "/", Status: 200, Bytes: 1, RemoteUser: "bob"})
	f(`2001:db8::1 - - [10/Nov/2026:13:55:36 +0000] "OPTIONS /api HTTP/1.1" 204 0 "-" "-"`,
		accesslog.Line{Time: at("2026-11-10T13:55:36Z"), Method: "OPTIONS", Path: "/api", Status: 204})
}

func TestParseJSON(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339Nano, s); return tm }
	p := accesslog.NewParser(accesslog.JSON)
	f := func(line string, want accesslog.Line) {
		t.Helper()
		got, err := p.Parse([]byte(line))
		if err != nil {
			t.Errorf("Parse(%q): %v", line, err)
			return
		}
		if !got.Time.Equal(want.Time) {
			t.Errorf("Parse(%q).Time = %v, want %v", line, got.Time, want.Time)
		}
		if got.Method != want.Method || got.Path != want.Path || got.Status != want.Status || got.Bytes != want.Bytes ||
			got.RequestBytes != want.RequestBytes || got.DurationMs != want.DurationMs || got.RemoteUser != want.RemoteUser {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", line, got, want)
		}
	}
	// Caddy: ts in each time_format, duration in seconds or as a string.
	caddy := func(ts, duration string) string {
		return `{"ts":` + ts + `,"request":{"method":"GET","uri":"/a?b"},"status":200,"size":10,"bytes_read":3,"duration":` + duration + `}`
	}
	want := accesslog.Line{Time: at("2026-11-10T12:55:36.5Z"), Method: "GET", Path: "/a", Status: 200, Bytes: 10, RequestBytes: 3, DurationMs: 13}
	f(caddy(`1794315336.5`, `0.0125`), want)
	f(caddy(`1794315336500`, `"12.5ms"`), want)            // unix_milli_float
	f(caddy(`1794315336500000000`, `0.0125`), want)        // unix_nano
	f(caddy(`"2026-11-10T12:55:36.500Z"`, `0.0125`), want) // rfc3339_nano
	f(caddy(`"2026-11-10T13:55:36.500+0100"`, `0.0125`), want)
	// Envoy: duration in milliseconds, the original path before a rewrite.
	f(`{"start_time":"2026-11-10T12:55:36.5Z","method":"GET","path":"/v2/a","x-envoy-original-path":"/api/v2/a?x","response_code":200,"bytes_sent":10,"bytes_received":3,"duration":13}`,
		func() accesslog.Line { w := want; w.Path = "/api/v2/a"; return w }())
	f(`{"start_time":"2026-11-10T12:55:36.5Z","method":"GET","path":"/a","x-envoy-original-path":null,"response_code":"200","bytes_sent":"10","bytes_received":3,"duration":13}`,
		want)
	// Generic keys, flat or nested.
	f(`{"time":"2026-11-10T12:55:36.5Z","method":"GET","uri":"/a","status":200,"bytes_sent":10,"request_length":3,"duration_ms":13}`, want)
	f(`{"@timestamp":"2026-11-10T12:55:36.5Z","http":{"method":"GET","url":"/a","status_code":200},"size":10,"request_size":3,"request_time":0.013}`, want)
	f(`{"http.method":"GET","http.url":"/a","http.status_code":200,"timestamp":1794315336.5,"bytes":10,"bytes_received":3.0,"duration_ms":13.9}`, want)
	f(`{"time_local":"10/Nov/2026:12:55:36 +0000","request":"GET /a?b HTTP/1.1","status":200,"body_bytes_sent":10,"request_length":3,"request_time":0.013,"remote_user":"ann"}`,
		accesslog.Line{Time: at("2026-11-10T12:55:36Z"), Method: "GET", Path: "/a", Status: 200, Bytes: 10, RequestBytes: 3, DurationMs: 13, RemoteUser: "ann"})
}

func TestHeadersAndFields(t *testing.T) {
	p := accesslog.NewParser(accesslog.JSON)
	f := func(line string, header map[string]string, fields map[string]string) {
		t.Helper()
		l, err := p.Parse([]byte(line))
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if header == nil && l.Header != nil {
			t.Errorf("Parse(%q): Header is set for a log without headers", line)
		}
		for name, want := range header {
			if l.Header == nil {
				t.Fatalf("Parse(%q): Header is nil", line)
			}
			if got := l.Header(name); got != want {
				t.Errorf("Parse(%q).Header(%q) = %q, want %q", line, name, got, want)
			}
		}
		for name, want := range fields {
			if got, ok := l.Fields[name]; got != want || ok != (want != "") {
				t.Errorf("Parse(%q).Fields[%q] = %q, %v; want %q", line, name, got, ok, want)
			}
		}
	}
	caddy := `{"ts":1794315336.5,"request":{"method":"GET","uri":"/a","headers":{"X-Org-Id":["org-7","org-8"],"User-Agent":["curl/8.5.0"]}},"status":200,"user_id":"u-1","tls":{"resumed":false},"n":null}`
	f(caddy, map[string]string{"X-Org-Id": "org-7", "x-org-id": "org-7", "USER-AGENT": "curl/8.5.0", "Cookie": ""},
		map[string]string{"request.headers.X-Org-Id": "org-7", "request.uri": "/a", "user_id": "u-1", "status": "200",
			"ts": "1794315336.5", "tls.resumed": "false", "n": ""})
	envoy := `{"start_time":"2026-11-10T12:55:36Z","method":"GET","path":"/a","response_code":200,"user_agent":"curl/8.5.0","x-org-id":"org-7","request_id":"r-1","authority":"api.example.com","x_forwarded_for":"-"}`
	f(envoy, map[string]string{"User-Agent": "curl/8.5.0", "X-Org-Id": "org-7", "X-Request-Id": "r-1", "Host": "api.example.com",
		"X-Forwarded-For": "", "Cookie": ""}, map[string]string{"x-org-id": "org-7"})
	f(`{"time":"2026-11-10T12:55:36Z","method":"GET","path":"/a","status":200,"headers":{"x-org-id":"org-9"}}`,
		map[string]string{"X-Org-Id": "org-9"}, map[string]string{"headers.x-org-id": "org-9"})
	f(`{"time":"2026-11-10T12:55:36Z","method":"GET","path":"/a","status":200,"org":{"id":7}}`, nil, map[string]string{"org.id": "7"})
}

// TestParseErrors pins the reason of each kind of unreadable line: the
// message a user reads to fix the log or the format.
func TestParseErrors(t *testing.T) {
	f := func(format accesslog.Format, line, want string) {
		t.Helper()
		l, err := accesslog.NewParser(format).Parse([]byte(line))
		var pe *accesslog.ParseError
		if !errors.As(err, &pe) || pe.Reason != want || pe.Line != 0 || err.Error() != want {
			t.Errorf("Parse(%q) = %+v, %v\nwant a ParseError %q", line, l, err, want)
		}
	}
	c := accesslog.Combined
	f(c, ``, `no [time] after the remote user`)
	f(c, `this is not a log line`, `no [time] after the remote user`)
	f(c, `- - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 1`, `2 fields before the [time], want host, ident and remote user`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100 "GET / HTTP/1.1" 200 1`, `[time] has no closing ]`)
	f(c, `1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 1`, `time "yesterday" is not dd/Mon/yyyy:hh:mm:ss ±zzzz`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +2400] "GET / HTTP/1.1" 200 1`, `time "10/Nov/2026:13:55:36 +2400" is not dd/Mon/yyyy:hh:mm:ss ±zzzz`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 -0060] "GET / HTTP/1.1" 200 1`, `time "10/Nov/2026:13:55:36 -0060" is not dd/Mon/yyyy:hh:mm:ss ±zzzz`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] GET / HTTP/1.1 200 1`, `no "request" after the [time]`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1 200 1`, `"request" has no closing quote`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "-" 400 0 "-" "-"`, `request "-" is not METHOD TARGET PROTOCOL`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / FTP/1.0" 200 1`, `request "GET / FTP/1.0" is not METHOD TARGET PROTOCOL`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "\x16\x03\x01 HTTP/1.1" 400 1`, `method "\\x16\\x03\\x01" is not an HTTP method`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1"`, `no status after the request`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" abc 1`, `status "abc" is not a number`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 700 1`, `status 700 is not an HTTP status (100–599)`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200`, `no size after the status`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 x`, `size "x" is not a number of bytes`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 -5`, `size "-5" is not a number of bytes`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET noslash HTTP/1.1" 200 1`, `path "noslash" does not start with /`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "OPTIONS * HTTP/1.1" 200 1`, `path "*" does not start with /`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 1 "ref"`, `no "user agent" after the referer`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET / HTTP/1.1" 200 1 "ref" "curl`, `"user agent" has no closing quote`)
	f(c, `1.2.3.4 - - [10/Nov/0001:13:55:36 +0000] "GET / HTTP/1.1" 200 1`, `time 0001-11-10T13:55:36Z is before 1970`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET `+strings.Repeat("/x", 40)+` HTTP/1.1" 200 1 "ref"`,
		`no "user agent" after the referer`)
	f(c, `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET`+strings.Repeat("x", 70)+` / HTTP/1.1" 200 1`,
		`method "GET`+strings.Repeat("x", 61)+`…" is not an HTTP method`)

	j := accesslog.JSON
	f(j, `[1,2]`, `a JSON array, not an object`)
	f(j, `{"method":"GET"`, `not JSON: cannot parse JSON: cannot parse object: unexpected end of object; unparsed tail: ""`)
	f(j, `{"path":"/","status":200,"time":"2026-01-01T00:00:00Z"}`, `no method field (looked for method, request_method, http.method)`)
	f(j, `{"method":"GET","status":200,"time":"2026-01-01T00:00:00Z"}`, `no path field (looked for path, uri, url, request_uri, http.url)`)
	f(j, `{"method":"GET","path":"-","status":200,"time":"2026-01-01T00:00:00Z"}`, `no path field (looked for path, uri, url, request_uri, http.url)`)
	f(j, `{"method":"GET","path":"/","time":"2026-01-01T00:00:00Z"}`, `no status field (looked for status, status_code, http.status_code)`)
	f(j, `{"method":"GET","path":"/","status":200}`, `no time field (looked for time, timestamp, @timestamp, time_iso8601, time_local, ts)`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"then"}`, `time "then" is not a time: neither RFC 3339, dd/Mon/yyyy:hh:mm:ss ±zzzz nor Unix time`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"2026-01-01T00:00:00+24:00"}`, `time "2026-01-01T00:00:00+24:00" is not a time: neither RFC 3339, dd/Mon/yyyy:hh:mm:ss ±zzzz nor Unix time`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"2026-01-01T00:00:00+2360"}`, `time "2026-01-01T00:00:00+2360" is not a time: neither RFC 3339, dd/Mon/yyyy:hh:mm:ss ±zzzz nor Unix time`)
	f(j, `{"method":"GET","path":"/","status":200,"time":-5}`, `time "-5" is not a time: neither RFC 3339, dd/Mon/yyyy:hh:mm:ss ±zzzz nor Unix time`)
	f(j, `{"method":"GET","path":"/","status":200.5,"time":"2026-01-01T00:00:00Z"}`, `status "200.5" is not a number`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"2026-01-01T00:00:00Z","bytes_sent":"lots"}`, `bytes_sent "lots" is not a number from 0 to 2^53`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"2026-01-01T00:00:00Z","request_length":-1}`, `request_length "-1" is not a number from 0 to 2^53`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"2026-01-01T00:00:00Z","request_time":"slow"}`, `request_time "slow" is not a non-negative number of seconds`)
	f(j, `{"method":"GET","path":"/","status":200,"time":"2026-01-01T00:00:00Z","duration_ms":1e300}`, `duration_ms "1e300" is not a number from 0 to 2^53`)
	f(j, `{"method":"GET /","path":"/","status":200,"time":"2026-01-01T00:00:00Z"}`, `method "GET /" is not an HTTP method`)
	f(j, `{"request":"\u0016\u0003","status":400,"time":"2026-01-01T00:00:00Z"}`, `request "\x16\x03" is not METHOD TARGET PROTOCOL`)
	f(j, `{"ts":1794315336.5,"request":{"uri":"/a"},"status":200}`, `no method field (looked for request.method)`)
	f(j, `{"ts":1794315336.5,"request":{"method":"GET","uri":"/a"}}`, `no status field (looked for status)`)
	f(j, `{"ts":1794315336.5,"request":{"method":"GET","uri":"/a"},"status":200,"duration":"forever"}`, `duration "forever" is not a non-negative number of seconds`)
	f(j, `{"request":{"method":"GET","uri":"/a"},"status":200,"time":"2026-01-01T00:00:00Z"}`, `no time field (looked for ts)`)
	f(j, `{"start_time":"2026-11-10T12:55:36Z","path":"/a","response_code":200}`, `no method field (looked for method)`)
	f(j, `{"start_time":"2026-11-10T12:55:36Z","method":"GET","response_code":200}`, `no path field (looked for x-envoy-original-path, path)`)
	f(j, `{"start_time":"2026-11-10T12:55:36Z","method":"GET","path":"/a","status":200}`, `no status field (looked for response_code)`)
	f(j, `{"method":"GET","path":"/a","response_code":200}`, `no time field (looked for start_time)`)
	f(j, `{"start_time":"2026-11-10T12:55:36Z","method":"GET","path":"/a","response_code":0}`,
		`response_code 0: Envoy sent no response (the client went away or the stream was reset)`)
	f(j, `{"start_time":"2026-11-10T12:55:36Z","method":"GET","path":"/a","response_code":200,"duration":"7ms"}`, `duration "7ms" is not a number from 0 to 2^53`)
}

// TestReaderEdges covers line endings, a missing final newline, blank
// lines, a byte-order mark and lines over the limit.
func TestReaderEdges(t *testing.T) {
	line := `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET /a HTTP/1.1" 200 1 "-" "-"`
	pad := func(n int) string { // a line of exactly n bytes
		return line + " " + strings.Repeat("x", n-len(line)-1)
	}
	f := func(in, want string) {
		t.Helper()
		r, err := accesslog.NewReader(strings.NewReader(in), accesslog.Combined)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		for {
			l, no, raw, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fmt.Fprintf(&got, "%v|", err)
				continue
			}
			if !bytes.HasPrefix(raw, []byte("1.2.3.4")) && !bytes.HasPrefix(raw, []byte("\ufeff1.2.3.4")) || bytes.ContainsAny(raw, "\r\n") {
				t.Errorf("line %d: raw %q is not the line without its ending", no, raw)
			}
			fmt.Fprintf(&got, "%d %s|", no, l.Path)
		}
		if got.String() != want {
			t.Errorf("reading %.40q…\n got %s\nwant %s", in, got.String(), want)
		}
		if _, _, _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("Next after the end: %v, want io.EOF again", err)
		}
	}
	f("", "")
	f("\n\n", "")
	f(line, "1 /a|")
	f(line+"\n", "1 /a|")
	f(line+"\r\n"+line+"\r\n", "1 /a|2 /a|")
	f(line+"\r\n"+line, "1 /a|2 /a|")
	f("\n \t\n"+line+"\n\r\n"+line, "3 /a|5 /a|")
	f("\ufeff"+line+"\n"+line, "1 /a|2 /a|")
	f("garbage\r\n"+line, "line 1: no [time] after the remote user|2 /a|")

	const max = accesslog.MaxLineLen
	tooLong := fmt.Sprintf("line %d: line longer than %d bytes|", 2, max)
	f(line+"\n"+pad(max)+"\r\n"+line, "1 /a|2 /a|3 /a|")
	f(line+"\n"+pad(max)+"\n"+line, "1 /a|2 /a|3 /a|")
	f(line+"\n"+pad(max+1)+"\n"+line, "1 /a|"+tooLong+"3 /a|")
	f(line+"\n"+pad(max+1)+"\r\n"+line, "1 /a|"+tooLong+"3 /a|")
	f(line+"\n"+pad(max+2)+"\n"+line, "1 /a|"+tooLong+"3 /a|")
	f(line+"\n"+pad(3*max+7)+"\n"+line+"\n", "1 /a|"+tooLong+"3 /a|")
	f(line+"\n"+pad(2*max+4), "1 /a|"+tooLong)      // the last line, a multiple of the buffer
	f(line+"\n"+pad(2*max+4)+"\n", "1 /a|"+tooLong) // the same, with its newline
}

func TestReaderGzip(t *testing.T) {
	line := `1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET /a HTTP/1.1" 200 1 "-" "-"` + "\n"
	var gz bytes.Buffer
	for range 2 { // two members, as appending to a gzip file makes
		zw := gzip.NewWriter(&gz)
		io.WriteString(zw, line)
		zw.Close()
	}
	r, err := accesslog.NewReader(bytes.NewReader(gz.Bytes()), accesslog.Combined)
	if err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		if l, no, _, err := r.Next(); err != nil || no != want || l.Path != "/a" {
			t.Fatalf("line %d: %v, %d, %+v", want, err, no, l)
		}
	}
	if _, _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after both members: %v", err)
	}

	// A file cut short, as when the disk filled during rotation: what was
	// read is returned, then a read error, not a ParseError.
	r, err = accesslog.NewReader(bytes.NewReader(gz.Bytes()[:gz.Len()/2-4]), accesslog.Combined)
	if err != nil {
		t.Fatal(err)
	}
	if l, no, _, err := r.Next(); err != nil || no != 1 || l.Path != "/a" {
		t.Fatalf("line 1 of a truncated file: %v, %d, %+v", err, no, l)
	}
	_, _, _, err = r.Next()
	var pe *accesslog.ParseError
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &pe) || err.Error() != "reading after line 1: unexpected EOF" {
		t.Fatalf("the truncated end: %v, want a read error", err)
	}
	if _, _, _, again := r.Next(); again != err {
		t.Fatalf("Next after a read error: %v, want it again", again)
	}

	if _, err := accesslog.NewReader(bytes.NewReader([]byte{0x1f, 0x8b, 0}), accesslog.Combined); err == nil {
		t.Fatal("NewReader of a broken gzip header: no error")
	}
	if _, err := accesslog.NewReader(strings.NewReader(line), 0); err == nil {
		t.Fatal("NewReader of format 0: no error")
	}
}

func TestParseFormat(t *testing.T) {
	f := func(s string, want accesslog.Format, wantErr string) {
		t.Helper()
		got, err := accesslog.ParseFormat(s)
		if got != want || (err == nil) != (wantErr == "") || (err != nil && err.Error() != wantErr) {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v, %q", s, got, err, want, wantErr)
		}
		if err == nil && got.String() != strings.ToLower(s) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), strings.ToLower(s))
		}
	}
	f("combined", accesslog.Combined, "")
	f("Combined", accesslog.Combined, "")
	f("JSON", accesslog.JSON, "")
	f("json", accesslog.JSON, "")
	f("clf", 0, `log format "clf" is not known: use combined (which reads common logs too) or json`)
	f("", 0, `log format "" is not known: use combined (which reads common logs too) or json`)
}

func TestEventID(t *testing.T) {
	line := []byte(`203.0.113.7 - - [10/Nov/2026:13:55:36 +0100] "GET /api/v2/users HTTP/1.1" 200 2326 "-" "curl/8.5.0"`)
	id := accesslog.EventID("web1", 0, line)
	// Pinned: ids already sent to usaged must come out the same from every
	// later build, or importing a file again would count it twice.
	if want := "log-0-9rKh-ZL_rwo_5VcA3WgZNS"; id != want {
		t.Errorf("EventID = %q, want %q: the id of a line must never change", id, want)
	}
	if len(id) > 128 {
		t.Errorf("EventID %q is longer than an event id may be", id)
	}
	seen := map[string]string{id: "the original"}
	f := func(what, source string, no int, raw []byte) {
		t.Helper()
		other := accesslog.EventID(source, no, raw)
		if prev, ok := seen[other]; ok {
			t.Errorf("EventID of %s equals that of %s: %s", what, prev, other)
		}
		seen[other] = what
	}
	f("the next occurrence", "web1", 1, line)
	f("another source", "web2", 0, line)
	f("another line", "web1", 0, append(bytes.Clone(line), ' '))
	f("a shifted boundary", "web", 0, append([]byte("1"), line...))
	f("an empty source", "", 0, line)
	f("a large occurrence", "web1", 1<<40+1, line)
	// The earlier scheme hashed the file's name and the line's number in
	// the same layout; its ids must not come back for other lines.
	f("the earlier scheme's source and number", "access.log", 1, line)
	if old := "log-NzomJ4bsG2Xvv75CEq18k_l8"; seen[old] != "" {
		t.Errorf("EventID of %s is the earlier scheme's id of line 1 of access.log", seen[old])
	}
}

// EventIDs gives the lines of a log the same ids however its files are
// named, split, ordered and compressed, and identical lines different ones.
func TestEventIDs(t *testing.T) {
	const (
		a = `203.0.113.7 - - [10/Nov/2026:13:55:36 +0100] "GET /health HTTP/1.1" 200 2 "-" "check/1"`
		b = `203.0.113.7 - - [10/Nov/2026:13:55:37 +0100] "GET /health HTTP/1.1" 200 2 "-" "check/1"`
	)
	ids := func(source string, files ...[]string) []string {
		e := accesslog.NewEventIDs(source)
		var out []string
		for _, f := range files {
			for _, l := range f {
				out = append(out, e.Next([]byte(l)))
			}
		}
		slices.Sort(out)
		return out
	}
	whole := ids("web1", []string{a, a, b, a})
	if n := len(slices.Compact(slices.Clone(whole))); n != 4 {
		t.Errorf("4 lines, 3 of them identical, have %d distinct ids: %v", n, whole)
	}
	// Rotated inside second a, imported newest first: the same ids.
	if got := ids("web1", []string{a, b}, []string{a, a}); !slices.Equal(got, whole) {
		t.Errorf("the log split in two files and read in another order has ids\n%v, want\n%v", got, whole)
	}
	// Before appends, a subset of the ids: nothing counts twice.
	for _, id := range ids("web1", []string{a, a}) {
		if _, ok := slices.BinarySearch(whole, id); !ok {
			t.Errorf("id %s of the log before appends is not among those after", id)
		}
	}
	// Another host's same lines count separately.
	for _, id := range ids("web2", []string{a, a, b, a}) {
		if _, ok := slices.BinarySearch(whole, id); ok {
			t.Errorf("id %s of web2 is also web1's", id)
		}
	}
}

// A byte order mark is no part of the line's content: a file written with
// one yields the ids of the same lines written without.
func TestReaderDropsBOMFromRaw(t *testing.T) {
	const line = `203.0.113.7 - - [10/Nov/2026:13:55:36 +0100] "GET /health HTTP/1.1" 200 2 "-" "check/1"`
	r, err := accesslog.NewReader(strings.NewReader("\xef\xbb\xbf"+line+"\r\n"), accesslog.Combined)
	if err != nil {
		t.Fatal(err)
	}
	_, _, raw, err := r.Next()
	if err != nil || string(raw) != line {
		t.Errorf("Next = %q, %v; want %q", raw, err, line)
	}
}
