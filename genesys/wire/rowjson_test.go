package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// strs are values that take every path of appendString.
var strs = []string{"", "client-17", "2026-03-01T00:00:00Z", `say "hi"`, `back\slash`, "<script>&", "tab\there",
	"\x00\x1f", "naïve", "日本", "\u2028\u2029", "bad \xff utf-8", "\x7f del", "GET", "a&b", "x>y"}

func randomRow(r *rand.Rand) AggregateRow {
	s := func() string { return strs[r.IntN(len(strs))] }
	n := func() int64 {
		return [...]int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, r.Int64()}[r.IntN(7)]
	}
	row := AggregateRow{UsageRow: UsageRow{ClientID: s(), ClientName: s(), OrganizationID: s(), UserID: s(),
		TemplateURI: s(), HTTPMethod: s(), Status200: n(), Status300: n(), Status400: n(), Status500: n(),
		Status429: n(), Requests: n(), Date: s()}, Platform: s()}
	measure := func() *int64 { // present or not, as a query asks
		if r.IntN(2) == 0 {
			return nil
		}
		v := n()
		return &v
	}
	row.DurationP50, row.DurationP90, row.DurationP95, row.DurationP99, row.DurationMax = measure(), measure(), measure(), measure(), measure()
	row.RequestBytes, row.ResponseBytes = measure(), measure()
	if v := measure(); v != nil {
		avg := Millis(*v)
		row.DurationAvg = &avg
	}
	return row
}

func TestMillis(t *testing.T) {
	for v, want := range map[int64]string{0: "0.000", 5: "0.005", 12345: "12.345", 1000: "1.000", -1500: "-1.500",
		math.MaxInt64: "9223372036854775.807", math.MinInt64: "-9223372036854775.808"} {
		if got := Millis(v); string(got) != want {
			t.Errorf("Millis(%d) = %s, want %s", v, got, want)
		}
		if _, err := Millis(v).Float64(); err != nil {
			t.Errorf("Millis(%d) is not a number: %v", v, err)
		}
	}
}

// The rows appended by hand are byte for byte what encoding/json writes.
func TestAppendJSONIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		row := randomRow(r)
		checkAppendJSON(t, row)
	}
}

func checkAppendJSON(t *testing.T, row AggregateRow) {
	t.Helper()
	for _, c := range []struct {
		v   any
		got []byte
	}{{row.UsageRow, row.UsageRow.AppendJSON([]byte("x"))}, {row, row.AppendJSON([]byte("x"))}} {
		want, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.got, append([]byte("x"), want...)) {
			t.Fatalf("AppendJSON(%+v) =\n%s\nwant\nx%s", c.v, c.got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range strs {
		f.Add(s, s, int64(7))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		checkAppendJSON(t, AggregateRow{UsageRow: UsageRow{ClientID: a, ClientName: b, OrganizationID: a, UserID: b,
			TemplateURI: a, HTTPMethod: b, Status200: n, Status300: -n, Requests: n, Date: b}, Platform: a})
	})
}
