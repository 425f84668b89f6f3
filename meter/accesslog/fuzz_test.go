package accesslog_test

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/usaged/usaged/meter/accesslog"
)

// addFixtures seeds a fuzz corpus with every line of the fixtures.
func addFixtures(f *testing.F, files ...string) {
	for _, name := range files {
		fh, err := os.Open("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		fh.Close()
	}
}

func FuzzParseCombined(f *testing.F) {
	addFixtures(f, "combined.log")
	f.Add(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET http://h?x HTTP/1.1" 200 - "-" "-" rt="0.5"`)
	f.Add(`1.2.3.4 - - [10/Nov/2026:13:55:36 +0100] "GET /a%2Fb%zz HTTP/1.1" 200 1 "a \" b" "\\"`)
	f.Fuzz(func(t *testing.T, line string) { checkParsed(t, accesslog.Combined, line) })
}

func FuzzParseJSON(f *testing.F) {
	addFixtures(f, "caddy.json", "envoy.json", "nginx.json")
	f.Add(`{"ts":1e19,"request":{"method":"GET","uri":"http://h","headers":{"A":[]}},"status":200,"duration":"1h"}`)
	f.Add(`{"http":{"method":"GET","url":"/a"},"http.status_code":200,"timestamp":"10/Nov/2026:13:55:36 +0100"}`)
	f.Fuzz(func(t *testing.T, line string) { checkParsed(t, accesslog.JSON, line) })
}

// checkParsed holds a parse to its contract: a *ParseError, or a line
// usaged can take as an event.
func checkParsed(t *testing.T, f accesslog.Format, line string) {
	l, err := accesslog.NewParser(f).Parse([]byte(line))
	if err != nil {
		var pe *accesslog.ParseError
		if !errors.As(err, &pe) || pe.Reason == "" {
			t.Fatalf("Parse(%q): error of type %T: %v", line, err, err)
		}
		return
	}
	if l.Method == "" || l.Method != strings.ToUpper(l.Method) || !strings.HasPrefix(l.Path, "/") ||
		l.Status < 100 || l.Status > 599 || l.Time.IsZero() || l.Bytes < 0 || l.RequestBytes < 0 || l.DurationMs < 0 {
		t.Fatalf("Parse(%q) = %+v", line, l)
	}
	if l.Header != nil {
		l.Header("X-Org-Id") // must not panic
	}
}
