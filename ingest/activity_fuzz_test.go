package ingest_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// FuzzDecodeActivity decodes each input as a JSON body and as NDJSON and
// checks that decoding never panics, that every element of a body that
// decodes is accounted for exactly once, and that every activity it lets
// through is one the store may record.
func FuzzDecodeActivity(f *testing.F) {
	fixture, err := os.ReadFile("testdata/activity.ndjson")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture)
	lines := strings.Split(strings.TrimSpace(string(fixture)), "\n")
	f.Add([]byte("[" + strings.Join(lines, ",") + "]"))
	f.Add([]byte(`{"events":[` + lines[4] + `,1,{"type":"users","id":"x","time":"2026-06-15T10:00:00Z","total":-1}]}`))
	for _, typ := range []string{"message", "feature", "users", "storage", "user"} {
		f.Add([]byte(act(typ)))
	}
	f.Add([]byte(act("message", "recipients", `["x@y","b0b00000-0000-4000-8000-000000000002",{}]`, "attachments", "1e3")))
	f.Add([]byte(act("storage", "bytes", "99999999999999999999", "time", `"2026-06-15T11:00:00.123456789+05:30"`)))
	f.Add([]byte(act("user", "event", `"INVITED"`, "invitedBy", `"(00000000-0000-0000-0000-000000000000)"`, "type", `"USER"`)))
	f.Add([]byte("{not json\n\n[]\n" + act("feature", "feature", `"securelargefiles"`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []ingest.Format{ingest.FormatJSON, ingest.FormatNDJSON} {
			b, err := ingest.DecodeActivity(body, format, ingest.Limits{})
			if err != nil {
				if usage.KindOf(err) != usage.KindInvalid {
					t.Fatalf("DecodeActivity error of kind %v: %v", usage.KindOf(err), err)
				}
				continue
			}
			if want := countElements(t, body, format); b.Len() != want {
				t.Fatalf("format %d: %d activities and %d errors for %d elements", format, len(b.Activities), len(b.Errors), want)
			}
			checkAccounted(t, b)
			for i := range b.Activities {
				checkActivity(t, &b.Activities[i])
			}
		}
	})
}

// countElements counts the elements of a body that decoded, independently of
// the decoder: the length of the array, or the non-blank lines.
func countElements(t *testing.T, body []byte, format ingest.Format) int {
	if format == ingest.FormatNDJSON {
		n := 0
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				n++
			}
		}
		return n
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil {
		t.Fatalf("body decoded but does not parse: %v", err)
	}
	if v.Type() == fastjson.TypeObject {
		v = v.Get("events")
	}
	return len(v.GetArray())
}

// checkAccounted checks that each element has exactly one of an activity or
// an error, and that each error says what is wrong.
func checkAccounted(t *testing.T, b *ingest.ActivityBatch) {
	if len(b.Activities) != len(b.Index) {
		t.Fatalf("%d activities but %d indexes", len(b.Activities), len(b.Index))
	}
	seen := make([]bool, b.Len())
	mark := func(i int) {
		if i < 0 || i >= len(seen) || seen[i] {
			t.Fatalf("element %d of %d is out of range or accounted for twice", i, len(seen))
		}
		seen[i] = true
	}
	for _, i := range b.Index {
		mark(i)
	}
	for _, e := range b.Errors {
		mark(e.Index)
		switch e.Code {
		case ingest.CodeMissingField, ingest.CodeInvalidField, ingest.CodeMalformed, ingest.CodeUnknownField:
		default:
			t.Fatalf("element %d: decode error code %q", e.Index, e.Code)
		}
		if e.Message == "" || !utf8.ValidString(e.Message) {
			t.Fatalf("element %d: message %q", e.Index, e.Message)
		}
	}
}

// checkActivity checks the invariants the store relies on.
func checkActivity(t *testing.T, a *usage.Activity) {
	fail := func(what string) { t.Helper(); t.Fatalf("%s: %+v", what, *a) }
	switch {
	case a.Kind < usage.ActivityMessage || a.Kind > usage.ActivityUser:
		fail("kind not set")
	case a.ID == "" || len(a.ID) > usage.MaxEventIDLen || !utf8.ValidString(a.ID):
		fail("bad id")
	case a.Time.IsZero() || a.Time.Location() != time.UTC || a.Time.Before(time.Unix(0, 0)):
		fail("bad time")
	case a.Attachments < 0 || a.AttachmentBytes < 0 || a.StorageBytes < 0 ||
		a.Users.Total < 0 || a.Users.Pro < 0 || a.Users.Guest < 0 || a.Users.Disabled < 0 || a.Users.Unregistered < 0:
		fail("negative count")
	}
	named := a.Kind == usage.ActivityMessage || a.Kind == usage.ActivityFeature || a.Kind == usage.ActivityUser
	if named == a.User.IsZero() {
		fail("user set for the wrong kind")
	}
	if (a.Kind == usage.ActivityFeature) != (a.Feature != 0) || a.Feature > usage.NumFeatures {
		fail("feature")
	}
	if (a.Kind == usage.ActivityUser) != (a.UserEvent != 0) {
		fail("user event")
	}
	if a.Kind != usage.ActivityMessage && (a.Recipients != nil || a.Attachments != 0 || a.AttachmentBytes != 0) {
		fail("message fields on another kind")
	}
	seen := make(map[usage.GUID]bool)
	for _, g := range a.Recipients {
		if g.IsZero() || seen[g] {
			fail("zero or repeated recipient")
		}
		seen[g] = true
	}
}
