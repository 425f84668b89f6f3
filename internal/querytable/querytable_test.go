package querytable

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The table's footer counts rows in the singular for one and shows the span
// the server counted, not just the --interval given.
func TestFooter(t *testing.T) {
	var out bytes.Buffer
	cols := []Column{{"CLIENT", "clientId", false}, {"REQUESTS", "requests", true}}
	rows := []map[string]any{{"clientId": "c1", "requests": json.Number("3")}}
	if err := WriteTable(&out, cols, rows, "2026-01-01/2026-01-31"); err != nil {
		t.Fatal(err)
	}
	want := "1 row, interval 2026-01-01T00:00:00Z to 2026-02-01T00:00:00Z, end excluded (--interval 2026-01-01/2026-01-31)\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Fatalf("footer:\n%s\nwant it to end in %q", out.String(), want)
	}
	out.Reset()
	WriteTable(&out, cols, nil, "2026-03-01T10:30:00Z/PT1H")
	if want := "0 rows, interval 2026-03-01T10:00:00Z to 2026-03-01T12:00:00Z, end excluded (--interval 2026-03-01T10:30:00Z/PT1H)\n"; !strings.HasSuffix(out.String(), want) {
		t.Fatalf("footer:\n%s\nwant it to end in %q", out.String(), want)
	}
}
