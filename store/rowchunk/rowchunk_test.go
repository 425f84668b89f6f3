package rowchunk

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// decodeAll decodes every row of chunk b.
func decodeAll(b []byte) ([]usage.Row, error) {
	d, err := NewDecoder(b)
	if err != nil {
		return nil, err
	}
	rows := make([]usage.Row, d.Len())
	for i := range rows {
		if err := d.Next(&rows[i]); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	rows := storetest.MakeRows(Size)
	// Dates before the previous row's and before 1970, nanoseconds, negative
	// counts and bytes that are not UTF-8 all survive.
	rows[1].Date = time.Date(1969, 7, 20, 20, 17, 40, 999_999_999, time.UTC)
	rows[2].Date = time.Date(9999, 12, 31, 23, 59, 59, 1, time.UTC)
	rows[3].Counts.Status500 = -7
	rows[4].TemplateURI = "\xff\xfe"
	rows[5].Counts.Requests = math.MaxInt64
	b := Append(nil, rows)
	dec, err := NewDecoder(b)
	if err != nil || dec.Len() != len(rows) {
		t.Fatalf("NewDecoder: %v", err)
	}
	for i := range rows {
		var r usage.Row
		if err := dec.Next(&r); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if r != rows[i] {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, r, rows[i])
		}
	}
	if len(dec.b) != 0 || dec.Len() != 0 {
		t.Fatalf("%d bytes and %d rows left over", len(dec.b), dec.Len())
	}
	var r usage.Row
	if err := dec.Next(&r); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Next after the last row: %v, want ErrCorrupt", err)
	}
	t.Logf("%d rows in %d bytes", len(rows), len(b))
	if got, err := decodeAll(Append(nil, nil)); err != nil || len(got) != 0 {
		t.Fatalf("an empty chunk decodes to %d rows, %v", len(got), err)
	}
}

// The encoding is on disk: a chunk written by the first release still reads,
// and the same rows encode to the same bytes.
func TestFormat(t *testing.T) {
	t.Parallel()
	rows := []usage.Row{
		{Date: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), ClientID: "c1", ClientName: "Alpha", OrganizationID: "o", HTTPMethod: "GET", Counts: usage.Counts{Requests: 3, Status200: 2, Status429: 1}},
		{Date: time.Date(2026, 3, 10, 0, 0, 0, 5, time.UTC), ClientID: "c2", ClientName: "Alpha", OrganizationID: "o", HTTPMethod: "GET", Counts: usage.Counts{Requests: 1, Status500: -1}},
		{ClientID: "c1", TemplateURI: "ü"},
	}
	const want = "0103809e9594dc0300000263310005416c70686100016f000004000347455404060400000002ffc50a0500026332020304040504020000000100ffd78a94dc0300010404040002c3bc0404000000000000"
	if got := hex.EncodeToString(Append(nil, rows)); got != want {
		t.Fatalf("Append =\n%s\nwant\n%s", got, want)
	}
	b, _ := hex.DecodeString(want)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], rows[i])
		}
	}
}

// A chunk cut short, of another version, with a row too many or bytes after
// its last row is ErrCorrupt, never a panic.
func TestCorrupt(t *testing.T) {
	t.Parallel()
	b := Append(nil, storetest.MakeRows(30))
	f := func(name string, b []byte) {
		t.Helper()
		if _, err := decodeAll(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	for n := range len(b) {
		f(fmt.Sprintf("truncated to %d bytes", n), b[:n])
	}
	f("version 2", append([]byte{2}, b[1:]...))
	f("a byte after the last row", append(b[:len(b):len(b)], 0))
	f("1001 rows", append([]byte{version, 0xe9, 0x07}, b[2:]...))
	f("a string not yet defined", []byte{version, 1, 0, 0, 1})
	second := binary.AppendUvarint([]byte{version, 1, 0}, 1e9)
	f("a nanosecond count of a second", append(second, Append(nil, make([]usage.Row, 1))[4:]...))
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, storetest.MakeRows(20)))
	f.Add(Append(nil, nil))
	f.Add([]byte{version, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := decodeAll(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("an error that is not ErrCorrupt: %v", err)
			}
			return
		}
		// The rows a chunk holds encode to a chunk holding the same rows.
		again, err := decodeAll(Append(nil, rows))
		if err != nil {
			t.Fatalf("re-encoded %d rows do not decode: %v", len(rows), err)
		}
		for i := range rows {
			if again[i] != rows[i] {
				t.Fatalf("row %d:\n got %+v\nwant %+v", i, again[i], rows[i])
			}
		}
	})
}

// BenchmarkAppend encodes the rows of an organization's 90 days by client
// (200 clients a day), the shape of the largest results.
func BenchmarkAppend(b *testing.B) {
	rows := make([]usage.Row, Size)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = usage.Row{Date: day.AddDate(0, 0, i/200), ClientID: fmt.Sprintf("client-%03d-0000-0000-000000000000", i%200),
			ClientName: fmt.Sprintf("Client %d", i%200), OrganizationID: "d16b773a-1265-4392-9ce3-d1aba4469a9c",
			Counts: usage.Counts{Requests: int64(i), Status200: int64(i)}}
	}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = Append(dst[:0], rows)
	}
}
