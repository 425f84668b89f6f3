package ingest_test

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

var end = time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC)

func TestAppendNDJSONInvalidUTF8(t *testing.T) {
	ev := usage.Event{ID: "a\xffb\xc3", Time: end, OrganizationID: "o", ClientID: "c", ClientName: "n", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	line := ingest.AppendNDJSON(nil, &ev)
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if m["id"] != "a\ufffdb\ufffd" {
		t.Fatalf("id decoded to %q, want invalid bytes replaced by U+FFFD", m["id"])
	}
}

func FuzzAppendNDJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\", "\x00\x1f\x7f", "ü☃😀", "\xff\xfe", "\u2028\u2029", "</script>"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, id, name string) {
		ev := usage.Event{ID: id, Time: end, OrganizationID: "o", ClientID: "c", ClientName: name, TemplateURI: "t", HTTPMethod: "GET", Status: 200}
		line := ingest.AppendNDJSON(nil, &ev)
		if !json.Valid(line) {
			t.Fatalf("invalid JSON for %q, %q: %s", id, name, line)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(id) && m["id"] != id {
			t.Fatalf("id %q decoded to %q", id, m["id"])
		}
		if utf8.ValidString(name) && m["clientName"] != name {
			t.Fatalf("clientName %q decoded to %q", name, m["clientName"])
		}
	})
}
