package servicestack

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParseDate: ParseDate never panics, and what it accepts is UTC, within
// a .NET DateTime's years, and reads back unchanged from its wire form but
// for the 100 ns the wire keeps.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{
		"2026-03-04", "2026-03-04T05:06:07Z", "2026-03-04T05:06", "2026-03-04 05:06:07",
		"2026-03-04T05:06:07.123456789+05:30", "2026-03-04T05:06:07,5-0800", "2026-03-04T05:06+01",
		"/Date(1772600767123)/", "/Date(-1+0100)/", "/Date(253402300799999)/", "/Date(-62135596800000)/",
		"0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999Z", "2026-02-30", "", "/Date()/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDate(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || got.Year() < 1 || got.Year() > 9999 {
			t.Fatalf("ParseDate(%q) = %v: not UTC or out of range", s, got)
		}
		wire := Time(got).String()
		back, err := ParseDate(wire)
		if err != nil || !back.Equal(got.Truncate(100*time.Nanosecond)) {
			t.Fatalf("ParseDate(%q) = %v, written %s, read back as %v, %v", s, got, wire, back, err)
		}
	})
}

// FuzzNegotiate: any path, query and Accept header gives a known format, a
// callback of safe characters only, and a response that says what it is.
func FuzzNegotiate(f *testing.F) {
	f.Add("/api/services/x/serviceusage.csv", "callback=cb&format=xml", "text/csv")
	f.Add("/api/services/x/serviceusage.XML", "Format=CSV", "application/json;q=0.1, text/csv;q=0.2")
	f.Add("/api/collections", "callback=alert(1)%3B%2F%2F%3Cscript%3E", "*/*")
	f.Add("/a%2Fb.json", "format=&callback=%E6%97%A5", "text/html,application/xml;q=0.9,*/*;q=0.8")
	f.Add("/.csv", "format=jsv;x", "text/csv;q=NaN, application/xml;q=1e400")
	f.Add("", "%zz=1&callback", ";;,,")
	f.Fuzz(func(t *testing.T, path, rawQuery, accept string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path, RawQuery: rawQuery}, Header: http.Header{"Accept": {accept}}}
		r = r.WithContext(t.Context())
		w := httptest.NewRecorder()
		var got format
		var cb string
		WithSuffixes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, cb = negotiate(r)
			Respond(w, r, "Op", http.StatusTeapot, sampleContact{Name: path})
		})).ServeHTTP(w, r)
		if got != formatJSON && got != formatCSV && got != formatXML {
			t.Fatalf("unknown format %d", got)
		}
		if strings.Trim(cb, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._") != "" {
			t.Fatalf("unsafe callback %q", cb)
		}
		ct := w.Header().Get("Content-Type")
		switch {
		case cb != "":
			if w.Code != http.StatusOK || ct != "application/javascript; charset=utf-8" || !strings.HasPrefix(w.Body.String(), cb+"(") {
				t.Fatalf("JSONP: %d %q %q", w.Code, ct, w.Body)
			}
		case w.Code != http.StatusTeapot || ct != got.contentType():
			t.Fatalf("%s: %d %q", got, w.Code, ct)
		}
	})
}

// FuzzCSVField: any value, invalid UTF-8 included, written as a CSV field
// reads back the same with encoding/csv, except that it reads a quoted CRLF
// as LF.
func FuzzCSVField(f *testing.F) {
	for _, s := range []string{"plain", "a,b", `"`, `say "hi"`, "a\nb", "a\rb", "a\r\nb", "\r", "\n", "日本", " lead", "", `""`, "#x", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		writeCSVRow(&b, []string{s, "end"})
		rows, err := csv.NewReader(&b).ReadAll()
		if err != nil {
			t.Fatalf("%q written as %q: %v", s, b.String(), err)
		}
		want := strings.ReplaceAll(s, "\r\n", "\n")
		if len(rows) != 1 || len(rows[0]) != 2 || rows[0][0] != want || rows[0][1] != "end" {
			t.Fatalf("%q written as %q reads back as %q", s, b.String(), rows)
		}
	})
}
