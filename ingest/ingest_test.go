package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func mustPipeline(tb testing.TB) *ingest.Pipeline {
	tb.Helper()
	db, err := pebble.Open(pebble.Config{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	p, err := ingest.New(ingest.Config{Store: db, Now: func() time.Time { return now },
		KnownOrganization: func(id string) bool { return id != "ghost" }})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

const good = `{"id":"e1","time":"2026-06-15T11:00:00Z","organizationId":"o1","clientId":"c1","clientName":"CRM","userId":"u1","templateUri":"/api/v2/users/{userId}","httpMethod":"get","status":200}`

// with returns the good event with one field replaced (or removed when v is "").
func with(field, v string) string {
	var b strings.Builder
	b.WriteString(`{`)
	first := true
	for _, kv := range [][2]string{{"id", `"e1"`}, {"time", `"2026-06-15T11:00:00Z"`}, {"organizationId", `"o1"`},
		{"clientId", `"c1"`}, {"clientName", `"CRM"`}, {"templateUri", `"api/v2/users"`}, {"httpMethod", `"GET"`}, {"status", `200`}} {
		val := kv[1]
		if kv[0] == field {
			if v == "" {
				continue
			}
			val = v
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", kv[0], val)
	}
	b.WriteString("}")
	return b.String()
}

func TestEventOutcomes(t *testing.T) {
	p := mustPipeline(t)
	f := func(scope string, event, code, inMessage string) {
		t.Helper()
		b, err := ingest.Decode([]byte("["+event+"]"), ingest.FormatJSON, ingest.Limits{})
		if err != nil {
			t.Fatalf("Decode(%s): %v", event, err)
		}
		res, err := ingestBatch(t.Context(), p, b, ingest.Scope{OrganizationID: scope})
		if err != nil {
			t.Fatal(err)
		}
		if code == "" {
			if res.Rejected != 0 {
				t.Fatalf("%s rejected: %+v", event, res.Errors)
			}
			return
		}
		if res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Code != code || !strings.Contains(res.Errors[0].Message, inMessage) {
			t.Fatalf("%s: got %+v, want code %s with %q", event, res, code, inMessage)
		}
	}
	f("", good, "", "")
	f("", with("id", ""), ingest.CodeMissingField, "id")
	f("", with("id", `"`+strings.Repeat("x", 129)+`"`), ingest.CodeInvalidField, "id is 129 bytes")
	f("", with("id", `7`), ingest.CodeInvalidField, "id must be a string")
	f("", with("time", ""), ingest.CodeMissingField, "time")
	f("", with("time", `"yesterday"`), ingest.CodeInvalidField, `time "yesterday"`)
	f("", with("time", `"2026-06-15T11:00:00"`), ingest.CodeInvalidField, "RFC 3339")
	// Offsets run to 23:59: time.Parse alone would take 24:00 and a 60th minute.
	f("", with("time", `"2026-06-15T11:00:00+23:59"`), "", "")
	f("", with("time", `"2026-06-15T11:00:00+24:00"`), ingest.CodeInvalidField, `time "2026-06-15T11:00:00+24:00" is not an RFC 3339 date-time`)
	f("", with("time", `"2026-06-15T11:00:00-24:00"`), ingest.CodeInvalidField, `time "2026-06-15T11:00:00-24:00" is not an RFC 3339 date-time`)
	f("", with("time", `"2026-06-15T11:00:00+23:60"`), ingest.CodeInvalidField, `time "2026-06-15T11:00:00+23:60" is not an RFC 3339 date-time`)
	f("", with("time", `"2026-06-15T11:00:00+00:60"`), ingest.CodeInvalidField, `time "2026-06-15T11:00:00+00:60" is not an RFC 3339 date-time`)
	f("", with("time", `"2026-01-01T00:00:00Z"`), ingest.CodeOutsideWindow, "time 2026-01-01T00:00:00Z")
	f("", with("time", `"2026-06-15T12:06:00Z"`), ingest.CodeInFuture, "time 2026-06-15T12:06:00Z")
	f("", with("time", `"2026-06-15T12:04:00Z"`), "", "")
	f("", with("organizationId", ""), ingest.CodeMissingField, "organizationId")
	f("", with("organizationId", `"ghost"`), ingest.CodeInvalidField, `organizationId "ghost"`)
	f("o2", good, ingest.CodeForbiddenOrganization, `organizationId "o1"`)
	f("o1", with("organizationId", ""), "", "")
	f("", with("clientId", ""), ingest.CodeMissingField, "clientId")
	f("", with("clientName", ""), ingest.CodeMissingField, "clientName")
	f("", with("templateUri", ""), ingest.CodeMissingField, "templateUri")
	f("", with("templateUri", `"/"`), ingest.CodeMissingField, "templateUri")
	f("", with("templateUri", `"a\u0000b"`), ingest.CodeInvalidField, "templateUri")
	f("", with("httpMethod", ""), ingest.CodeMissingField, "httpMethod")
	f("", with("httpMethod", `"FETCH"`), ingest.CodeInvalidField, `httpMethod "FETCH"`)
	f("", with("status", ""), ingest.CodeMissingField, "status")
	f("", with("status", `"200"`), ingest.CodeInvalidField, "status must be an integer")
	f("", with("status", `99`), ingest.CodeInvalidField, "status 99")
	f("", with("status", `600`), ingest.CodeInvalidField, "status 600")
	f("", with("status", `2.5`), ingest.CodeInvalidField, "status must be an integer")
	f("", with("status", `-1`), ingest.CodeInvalidField, "status -1")
	plus := func(kv string) string { return good[:len(good)-1] + "," + kv + "}" }
	f("", plus(`"durationMs":86400000,"requestBytes":1099511627776,"responseBytes":0`), "", "")
	f("", plus(`"durationMs":86400001`), ingest.CodeInvalidField, "durationMs 86400001 is not from 0 to 86400000")
	f("", plus(`"requestBytes":1099511627777`), ingest.CodeInvalidField, "requestBytes 1099511627777")
	f("", plus(`"responseBytes":9223372036854775807`), ingest.CodeInvalidField, "responseBytes 9223372036854775807")
	f("", plus(`"durationMs":-5`), ingest.CodeInvalidField, "durationMs -5")
	f("", `[1]`, ingest.CodeMalformed, "not a JSON object")
	// A property that is no field is rejected, naming the field the client
	// most likely meant: ignored, it would be lost, and the corrected event
	// refused as a duplicate.
	unknown := ingest.CodeUnknownField
	f("", plus(`"userID":"alice"`), unknown, "userID is not a field of API request events: did you mean userId?")
	f("", plus(`"ClientName":"CRM"`), unknown, "did you mean clientName?")
	f("", plus(`"duration":5`), unknown, "did you mean durationMs?")
	f("", plus(`"responseByte":5`), unknown, "did you mean responseBytes?")
	f("", plus(`"template_uri":"x"`), unknown, "did you mean templateUri?")
	f("", plus(`"method":"GET"`), unknown, "method is not a field of API request events: use id, time, organizationId, clientId, clientName, templateUri, httpMethod, status, userId, platform, durationMs, requestBytes, responseBytes")
	f("", plus(`"":1`), unknown, " is not a field of API request events: use id")
	f("o1", plus(`"userID":null`), unknown, "did you mean userId?")
	// Reported before the problems it explains, wherever it stands.
	f("", `{"Status":200,`+with("status", "")[1:], unknown, "Status is not a field of API request events: did you mean status?")
	f("", with("status", `"x"`)[:len(with("status", `"x"`))-1]+`,"userID":"u"}`, unknown, "did you mean userId?")
}

// TestTimeBeforeEpoch checks that a window reaching back past 1970 does not
// let such times through.
func TestTimeBeforeEpoch(t *testing.T) {
	db, err := pebble.Open(pebble.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := ingest.New(ingest.Config{Store: db, Now: func() time.Time { return now }, DedupeWindow: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ingest.Decode([]byte("["+with("time", `"1969-12-31T23:00:00Z"`)+"]"), ingest.FormatJSON, ingest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ingestBatch(t.Context(), p, b, ingest.Scope{})
	if err != nil || res.Rejected != 1 || res.Errors[0].Code != ingest.CodeInvalidField || !strings.Contains(res.Errors[0].Message, "before 1970") {
		t.Fatalf("1969 event: %+v, %v", res, err)
	}
}

func TestDecodeForms(t *testing.T) {
	f := func(body string, format ingest.Format, events, errs int) {
		t.Helper()
		b, err := ingest.Decode([]byte(body), format, ingest.Limits{})
		if err != nil {
			t.Fatalf("Decode(%q): %v", body, err)
		}
		if len(b.Events) != events || len(b.Errors) != errs {
			t.Fatalf("Decode(%q) = %d events, %d errors (%+v); want %d, %d", body, len(b.Events), len(b.Errors), b.Errors, events, errs)
		}
	}
	f("["+good+","+good+"]", ingest.FormatJSON, 2, 0)
	f(`{"events":[`+good+`]}`, ingest.FormatJSON, 1, 0)
	f(good+"\n"+good+"\n", ingest.FormatNDJSON, 2, 0)
	f(good+"\r\n\n"+good, ingest.FormatNDJSON, 2, 0)
	f(good+"\n{not json\n"+good, ingest.FormatNDJSON, 2, 1)
	f("[]", ingest.FormatJSON, 0, 0)

	bad := func(body string, format ingest.Format) {
		t.Helper()
		if _, err := ingest.Decode([]byte(body), format, ingest.Limits{}); usage.KindOf(err) != usage.KindInvalid {
			t.Fatalf("Decode(%q) = %v, want an invalid-body error", body, err)
		}
	}
	bad("", ingest.FormatJSON)
	bad("[", ingest.FormatJSON)
	bad(`{"event":[]}`, ingest.FormatJSON)
	bad(`"x"`, ingest.FormatJSON)
	bad("\n\n", ingest.FormatNDJSON)
}

func TestFormatOf(t *testing.T) {
	for ct, want := range map[string]ingest.Format{"": ingest.FormatJSON, "application/json; charset=utf-8": ingest.FormatJSON, "application/x-ndjson": ingest.FormatNDJSON} {
		if got, err := ingest.FormatOf(ct); err != nil || got != want {
			t.Fatalf("FormatOf(%q) = %v, %v", ct, got, err)
		}
	}
	for _, ct := range []string{"text/plain", "application/xml", "multipart/form-data; boundary=x", ";;"} {
		if _, err := ingest.FormatOf(ct); usage.KindOf(err) != usage.KindUnsupported {
			t.Fatalf("FormatOf(%q) = %v, want unsupported", ct, err)
		}
	}
}

func TestReadBody(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(strings.Repeat("a", 1000)))
	zw.Close()
	if b, err := ingest.ReadBody(bytes.NewReader(zb.Bytes()), "gzip", 1000); err != nil || len(b) != 1000 {
		t.Fatalf("gzip within limit: %d bytes, %v", len(b), err)
	}
	if _, err := ingest.ReadBody(bytes.NewReader(zb.Bytes()), "gzip", 999); usage.KindOf(err) != usage.KindTooLarge {
		t.Fatalf("gzip bomb over limit: %v, want too large", err)
	}
	if _, err := ingest.ReadBody(strings.NewReader("abc"), "", 2); usage.KindOf(err) != usage.KindTooLarge {
		t.Fatalf("over limit: %v", err)
	}
	if _, err := ingest.ReadBody(strings.NewReader("abc"), "gzip", 10); usage.KindOf(err) != usage.KindInvalid {
		t.Fatalf("not gzip: %v", err)
	}
	if _, err := ingest.ReadBody(strings.NewReader("abc"), "br", 10); usage.KindOf(err) != usage.KindUnsupported {
		t.Fatalf("brotli: %v", err)
	}
}

func TestDuplicatesWithinAndAcrossBatches(t *testing.T) {
	p := mustPipeline(t)
	body := good + "\n" + good + "\n" + with("id", `"e2"`)
	for i, want := range []ingest.Result{{Accepted: 2, Duplicates: 1}, {Duplicates: 3}} {
		b, err := ingest.Decode([]byte(body), ingest.FormatNDJSON, ingest.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := ingestBatch(t.Context(), p, b, ingest.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != want.Accepted || res.Duplicates != want.Duplicates || res.Rejected != 0 {
			t.Fatalf("batch %d: %+v, want %+v", i, res, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("["+good+"]"), false)
	f.Add([]byte(`{"events":[`+good+`,{"id":1}]}`), false)
	f.Add([]byte(good+"\n"+with("status", `"x"`)+"\n[]\n"), true)
	f.Add([]byte(with("time", `"2026-06-15T11:00:00.123456789+05:30"`)), true)
	f.Fuzz(func(t *testing.T, body []byte, nd bool) {
		format := ingest.FormatJSON
		if nd {
			format = ingest.FormatNDJSON
		}
		b, err := ingest.Decode(body, format, ingest.Limits{})
		if err != nil {
			if usage.KindOf(err) != usage.KindInvalid {
				t.Fatalf("Decode error of kind %v: %v", usage.KindOf(err), err)
			}
			return
		}
		if len(b.Events) != len(b.Index) {
			t.Fatalf("%d events but %d indexes", len(b.Events), len(b.Index))
		}
		seen := map[int]bool{}
		for _, i := range b.Index {
			seen[i] = true
		}
		for _, e := range b.Errors {
			if seen[e.Index] || e.Code == "" || e.Message == "" {
				t.Fatalf("bad element error %+v", e)
			}
			seen[e.Index] = true
		}
		if len(seen)+b.ErrorsOmitted != b.Len() {
			t.Fatalf("element indexes overlap: %d distinct for %d elements", len(seen), b.Len())
		}
	})
}

// TestUnknownFieldErrorCap checks that events rejected for an unknown field
// are listed up to the cap and counted beyond it, as every rejection is.
func TestUnknownFieldErrorCap(t *testing.T) {
	bad := good[:len(good)-1] + `,"userID":"alice"}`
	body := "[" + strings.Repeat(bad+",", 4) + good + "]"
	b, err := ingest.Decode([]byte(body), ingest.FormatJSON, ingest.Limits{MaxErrors: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || len(b.Errors) != 3 || b.ErrorsOmitted != 1 || b.Len() != 5 {
		t.Fatalf("%d events, %d errors, %d omitted", len(b.Events), len(b.Errors), b.ErrorsOmitted)
	}
	for i, e := range b.Errors {
		if e.Index != i || e.Code != ingest.CodeUnknownField || e.ID != "e1" || !strings.Contains(e.Message, "did you mean userId?") {
			t.Fatalf("error %d: %+v", i, e)
		}
	}
	ab, err := ingest.DecodeActivity([]byte(strings.Repeat(act("storage", "Bytes", "1")+"\n", 4)), ingest.FormatNDJSON, ingest.Limits{MaxErrors: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(ab.Errors) != 3 || ab.ErrorsOmitted != 1 || ab.Errors[2].Code != ingest.CodeUnknownField {
		t.Fatalf("activity: %+v, %d omitted", ab.Errors, ab.ErrorsOmitted)
	}
}

// ingestBatch ingests the events of b and reports the outcome of its body,
// as a face does.
func ingestBatch(ctx context.Context, p *ingest.Pipeline, b *ingest.Batch, scope ingest.Scope) (ingest.Result, error) {
	res, err := p.Ingest(ctx, b.Events, scope)
	if err != nil {
		return ingest.Result{}, err
	}
	return b.Merge(res), nil
}

// ingestActivity is ingestBatch for activity events.
func ingestActivity(ctx context.Context, p *ingest.Pipeline, service usage.GUID, b *ingest.ActivityBatch) (ingest.Result, error) {
	res, err := p.IngestActivity(ctx, service, b.Activities)
	if err != nil {
		return ingest.Result{}, err
	}
	return b.Merge(res), nil
}

// Ingest speaks of positions in the events it is given; Merge moves them to
// the body's and adds the elements that did not decode.
func TestIngestPositions(t *testing.T) {
	p := mustPipeline(t)
	late := with("time", `"1969-12-31T23:00:00Z"`)
	b, err := ingest.Decode([]byte("[1,"+good+","+late+"]"), ingest.FormatJSON, ingest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Ingest(t.Context(), b.Events, ingest.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Index != 1 {
		t.Fatalf("Ingest = %+v, want the second event rejected", res)
	}
	res = b.Merge(res)
	if res.Accepted != 1 || res.Rejected != 2 || len(res.Errors) != 2 || res.Errors[0].Index != 0 || res.Errors[1].Index != 2 {
		t.Fatalf("Merge = %+v, want elements 0 and 2 rejected", res)
	}
}
