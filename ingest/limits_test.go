package ingest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// badMix builds a body of n elements where every sixth is a good event and
// the others fail in turn at decoding (not an object, a wrong type) and at
// validation (a missing field, outside the window), and returns the indexes
// of the bad ones, counted here rather than by the code under test.
func badMix(n int, nd bool) (body []byte, bad []int) {
	var b strings.Builder
	if !nd {
		b.WriteString("[")
	}
	for i := range n {
		if i > 0 && !nd {
			b.WriteString(",")
		}
		id := fmt.Sprintf(`"e%d"`, i)
		switch i % 6 {
		case 0:
			b.WriteString(with("id", id))
		case 1:
			b.WriteString("1")
		case 2:
			b.WriteString(with("status", `"x"`))
		case 3:
			b.WriteString(strings.Replace(with("clientId", ""), `"e1"`, id, 1))
		case 4:
			b.WriteString(strings.Replace(with("time", `"2020-01-01T00:00:00Z"`), `"e1"`, id, 1))
		case 5:
			b.WriteString(`"text"`)
		}
		if i%6 != 0 {
			bad = append(bad, i)
		}
		if nd {
			b.WriteString("\n")
		}
	}
	if !nd {
		b.WriteString("]")
	}
	return []byte(b.String()), bad
}

// TestErrorEntriesCapped checks that an answer lists only the first
// MaxErrors rejected events, by position, whichever stage rejected them,
// while every count stays exact and errorsOmitted says how many are left out.
func TestErrorEntriesCapped(t *testing.T) {
	for _, nd := range []bool{false, true} {
		format := map[bool]ingest.Format{false: ingest.FormatJSON, true: ingest.FormatNDJSON}[nd]
		f := func(n int, lim ingest.Limits, wantErrors int) {
			t.Helper()
			p := mustPipeline(t)
			body, bad := badMix(n, nd)
			b, err := ingest.Decode(body, format, lim)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ingestBatch(t.Context(), p, b, ingest.Scope{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != n-len(bad) || res.Rejected != len(bad) || res.Duplicates != 0 {
				t.Fatalf("%d elements (ndjson %v): accepted %d, rejected %d, duplicates %d; want %d, %d, 0",
					n, nd, res.Accepted, res.Rejected, res.Duplicates, n-len(bad), len(bad))
			}
			if len(res.Errors) != wantErrors || res.ErrorsOmitted != len(bad)-wantErrors {
				t.Fatalf("%d elements (ndjson %v): %d errors listed, %d omitted; want %d and %d",
					n, nd, len(res.Errors), res.ErrorsOmitted, wantErrors, len(bad)-wantErrors)
			}
			for i, e := range res.Errors {
				if e.Index != bad[i] || e.Code == "" || e.Message == "" {
					t.Fatalf("error %d is %+v, want the one of element %d with a code and a message", i, e, bad[i])
				}
			}
			var wire struct {
				Rejected      int               `json:"rejected"`
				Errors        []json.RawMessage `json:"errors"`
				ErrorsOmitted *int              `json:"errorsOmitted"`
			}
			j, _ := json.Marshal(res)
			if err := json.Unmarshal(j, &wire); err != nil || wire.ErrorsOmitted == nil || *wire.ErrorsOmitted != len(bad)-wantErrors || len(wire.Errors) != wantErrors {
				t.Fatalf("answer on the wire: %.200s…", j)
			}
		}
		f(6_000, ingest.Limits{}, 1_000) // 5,000 bad: 1,000 listed, 4,000 omitted
		f(1_200, ingest.Limits{}, 1_000)
		f(60, ingest.Limits{}, 50)
		f(60, ingest.Limits{MaxErrors: 7}, 7)
		f(60, ingest.Limits{MaxErrors: 50}, 50)
		f(1, ingest.Limits{MaxErrors: 1}, 0)
	}
}

// TestActivityErrorEntriesCapped is TestErrorEntriesCapped for activity:
// decode errors and window errors share the cap.
func TestActivityErrorEntriesCapped(t *testing.T) {
	p, fake := mustActivityPipeline(t)
	var b strings.Builder
	var bad []int
	for i := range 3_000 {
		id := fmt.Sprintf(`"a%d"`, i)
		switch i % 3 {
		case 0:
			b.WriteString(act("storage", "id", id))
		case 1:
			b.WriteString(`{"type":"storage"}`)
			bad = append(bad, i)
		case 2:
			b.WriteString(act("storage", "id", id, "time", `"2020-01-01T00:00:00Z"`))
			bad = append(bad, i)
		}
		b.WriteString("\n")
	}
	res, err := ingestActivity(t.Context(), p, service, mustDecodeActivity(t, b.String(), ingest.FormatNDJSON))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1_000 || res.Rejected != 2_000 || len(res.Errors) != 1_000 || res.ErrorsOmitted != 1_000 || len(fake.kept) != 1_000 {
		t.Fatalf("accepted %d, rejected %d, %d errors, %d omitted, %d kept; want 1000, 2000, 1000, 1000, 1000",
			res.Accepted, res.Rejected, len(res.Errors), res.ErrorsOmitted, len(fake.kept))
	}
	for i, e := range res.Errors {
		if e.Index != bad[i] {
			t.Fatalf("error %d is of element %d, want %d", i, e.Index, bad[i])
		}
	}
}

// TestMaxEvents checks that a body of more than MaxEvents elements is
// refused whole, in every shape, and that one of exactly MaxEvents is not.
func TestMaxEvents(t *testing.T) {
	f := func(body string, format ingest.Format, max int, wantTooLarge bool) {
		t.Helper()
		lim := ingest.Limits{MaxEvents: max}
		for _, activity := range []bool{false, true} {
			var err error
			if activity {
				_, err = ingest.DecodeActivity([]byte(body), format, lim)
			} else {
				_, err = ingest.Decode([]byte(body), format, lim)
			}
			switch {
			case wantTooLarge && usage.KindOf(err) != usage.KindTooLarge:
				t.Fatalf("%q with MaxEvents %d (activity %v): %v, want a too-large error", body, max, activity, err)
			case wantTooLarge && !strings.Contains(err.Error(), fmt.Sprintf("more than %d events", max)) || wantTooLarge && !strings.Contains(err.Error(), "--max-events"):
				t.Fatalf("%q: message %q names neither the limit nor its flag", body, err)
			case !wantTooLarge && err != nil:
				t.Fatalf("%q with MaxEvents %d (activity %v): %v", body, max, activity, err)
			}
		}
	}
	const js, nd = ingest.FormatJSON, ingest.FormatNDJSON
	f(`[1,2,3]`, js, 3, false)
	f(`[1,2,3,4]`, js, 3, true)
	f(` [ {"a":[1,2,3,4,5]} , "x,y]" , [[],[]] ] `, js, 3, false)
	f(`[{"a":[1,2,3,4,5]},"x,y]\"",[[],[]],{}]`, js, 3, true)
	f(`[]`, js, 1, false)
	f(`{"events":[1,2,3,4]}`, js, 3, true)
	f(`{"x":{"events":[1,2,3,4]},"y":"\"events\"","events":[1,2,3]}`, js, 3, false)
	f(`{"x":[{"events":[]}],"events":[1,2,3,4],"z":1}`, js, 3, true)
	f(`{"ev\u0065nts":[1,2,3,4]}`, js, 3, true)
	f(`{"events":[1,2,3],"events":[1,2,3,4]}`, js, 3, false) // the parser reads the first
	f("1\n2\n\n   \n3\n", nd, 3, false)
	f("1\n2\n3\n4", nd, 3, true)
	f("{}\n{}\n{}\n{}\n", nd, 3, true)

	// The default: 100,000.
	many := "[" + strings.Repeat("1,", ingest.DefaultMaxEvents) + "1]"
	if _, err := ingest.Decode([]byte(many), js, ingest.Limits{}); usage.KindOf(err) != usage.KindTooLarge || !strings.Contains(err.Error(), "more than 100000 events") {
		t.Fatalf("100,001 elements: %v, want a too-large error naming 100000", err)
	}
	b, err := ingest.Decode([]byte(many[:len(many)-3]+"]"), js, ingest.Limits{})
	if err != nil || b.Len() != ingest.DefaultMaxEvents {
		t.Fatalf("100,000 elements: %v", err)
	}
}
