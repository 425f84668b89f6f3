package ingest_test

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// TestReadBodyBounds: a body is bounded on the wire as well as after
// decompression, for every face that reads events through ReadBody.
func TestReadBodyBounds(t *testing.T) {
	const max = 4096
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	// tooLarge: the body must be refused as too large; else read whole.
	f := func(name string, body []byte, encoding string, tooLarge bool, wantLen int) {
		t.Helper()
		got, err := ingest.ReadBody(bytes.NewReader(body), encoding, max)
		switch {
		case tooLarge && usage.KindOf(err) != usage.KindTooLarge:
			t.Errorf("%s: got %d bytes, %v; want a too-large error", name, len(got), err)
		case !tooLarge && (err != nil || len(got) != wantLen):
			t.Errorf("%s: got %d bytes, %v; want %d bytes", name, len(got), err, wantLen)
		}
	}
	// Empty gzip members inflate to nothing: only the wire bound stops them.
	var members []byte
	for len(members) <= max {
		members = append(members, gz("")...)
	}
	f("empty gzip members past the limit", members, "gzip", true, 0)
	f("a few empty gzip members", members[:len(gz(""))*3], "gzip", false, 0)
	f("a body of exactly the limit", []byte(strings.Repeat("x", max)), "", false, max)
	f("one byte over", []byte(strings.Repeat("x", max+1)), "", true, 0)
	f("gzip inflating past the limit", gz(strings.Repeat("1,", 4*max)), "gzip", true, 0)
	f("gzip within the limit", gz(strings.Repeat("1,", max/4)), "gzip", false, max/2)
}
