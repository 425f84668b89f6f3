package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/usaged/usaged/usage"
)

// DefaultMaxBody is the default limit on a request body, after decompression.
const DefaultMaxBody = 16 << 20

// Batch is a decoded request body: the events that decoded, each with its
// position in the body, and an error for each element that did not.
type Batch struct {
	Events []usage.Event
	Index  []int        // Index[i] is the position of Events[i] in the body
	Errors []EventError // elements that could not be decoded into an event
}

// Len returns the number of elements the body held.
func (b *Batch) Len() int { return len(b.Events) + len(b.Errors) }

// Format is an accepted body format.
type Format int

const (
	FormatJSON   Format = iota // a JSON array of events, or {"events":[…]}
	FormatNDJSON               // one JSON event object per line
)

// FormatOf maps a Content-Type to a Format. An empty type is taken as JSON.
func FormatOf(contentType string) (Format, error) {
	if contentType == "" {
		return FormatJSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, usage.Errorf(usage.KindUnsupported, "Content-Type", "Content-Type %q cannot be parsed: use application/json or application/x-ndjson", contentType)
	}
	switch mt {
	case "application/json", "text/json":
		return FormatJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return FormatNDJSON, nil
	}
	return 0, usage.Errorf(usage.KindUnsupported, "Content-Type", "Content-Type %q is not supported: use application/json or application/x-ndjson", mt)
}

// ReadBody reads r, gunzipping it when contentEncoding is gzip, and fails with
// a KindTooLarge error once more than max bytes (after decompression) arrive.
func ReadBody(r io.Reader, contentEncoding string, max int64) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, usage.Errorf(usage.KindInvalid, "Content-Encoding", "body is not valid gzip: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, usage.Errorf(usage.KindUnsupported, "Content-Encoding", "Content-Encoding %q is not supported: use gzip or none", contentEncoding)
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, usage.Errorf(usage.KindInvalid, "body", "body could not be read: %v", err)
	}
	if n > max {
		return nil, tooLarge(max)
	}
	return buf.Bytes(), nil
}

func tooLarge(max int64) error {
	return usage.Errorf(usage.KindTooLarge, "body", "body is larger than the limit of %d bytes", max)
}

var parsers fastjson.ParserPool

// Decode decodes body in format f. It fails only when the body as a whole
// cannot be parsed; elements that are not valid events are reported in the
// Batch's Errors.
func Decode(body []byte, f Format) (*Batch, error) {
	d := decoder{strs: make(map[string]string)}
	if f == FormatNDJSON {
		return d.ndjson(body)
	}
	return d.json(body)
}

type decoder struct {
	b    Batch
	strs map[string]string // interns repeated values (clients, templates) within one body
}

func (d *decoder) json(body []byte) (*Batch, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, usage.Errorf(usage.KindInvalid, "body", "body is not valid JSON: %v", err)
	}
	var arr []*fastjson.Value
	switch v.Type() {
	case fastjson.TypeArray:
		arr, _ = v.Array()
	case fastjson.TypeObject:
		ev := v.Get("events")
		if ev == nil || ev.Type() != fastjson.TypeArray {
			return nil, usage.Errorf(usage.KindInvalid, "events", `body must be a JSON array of events or an object {"events":[…]}`)
		}
		arr, _ = ev.Array()
	default:
		return nil, usage.Errorf(usage.KindInvalid, "body", `body must be a JSON array of events or an object {"events":[…]}, not %s`, v.Type())
	}
	d.b.Events = make([]usage.Event, 0, len(arr))
	d.b.Index = make([]int, 0, len(arr))
	for i, e := range arr {
		d.add(i, e)
	}
	return &d.b, nil
}

func (d *decoder) ndjson(body []byte) (*Batch, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	n := bytes.Count(body, []byte{'\n'}) + 1
	d.b.Events = make([]usage.Event, 0, n)
	d.b.Index = make([]int, 0, n)
	i := 0
	for len(body) > 0 {
		line := body
		if j := bytes.IndexByte(body, '\n'); j >= 0 {
			line, body = body[:j], body[j+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue // blank lines separate nothing
		}
		v, err := p.ParseBytes(line)
		if err != nil {
			d.fail(i, "", CodeMalformed, fmt.Sprintf("line %d is not valid JSON: %v", i+1, err))
		} else {
			d.add(i, v)
		}
		i++
	}
	if i == 0 {
		return nil, usage.Errorf(usage.KindInvalid, "body", "body holds no events")
	}
	return &d.b, nil
}

func (d *decoder) fail(i int, id, code, msg string) {
	d.b.Errors = append(d.b.Errors, EventError{Index: i, ID: id, Code: code, Message: msg})
}

// add decodes element i. Type errors are reported per event; range checks
// are left to validation.
func (d *decoder) add(i int, v *fastjson.Value) {
	if v.Type() != fastjson.TypeObject {
		d.fail(i, "", CodeMalformed, fmt.Sprintf("event %d is %s, not a JSON object", i, v.Type()))
		return
	}
	var ev usage.Event
	var bad *EventError
	str := func(name string, intern bool) string {
		f := v.Get(name)
		if f == nil || f.Type() == fastjson.TypeNull {
			return ""
		}
		if f.Type() != fastjson.TypeString {
			if bad == nil {
				bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("%s must be a string, got %s", name, f.Type())}
			}
			return ""
		}
		b, _ := f.StringBytes()
		if !intern {
			return string(b)
		}
		if s, ok := d.strs[string(b)]; ok {
			return s
		}
		s := string(b)
		if len(d.strs) < 1<<16 {
			d.strs[s] = s
		}
		return s
	}
	num := func(name string) int64 {
		f := v.Get(name)
		if f == nil || f.Type() == fastjson.TypeNull {
			return 0 // missing; validation names required ones
		}
		n, err := f.Int64()
		if err != nil || f.Type() != fastjson.TypeNumber {
			if bad == nil {
				bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("%s must be an integer, got %s", name, truncate(f.String()))}
			}
			return 0
		}
		if n < 0 && bad == nil {
			bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("%s %d must not be negative", name, n)}
		}
		return n
	}
	ev.ID = str("id", false)
	ts := str("time", false)
	ev.OrganizationID = str("organizationId", true)
	ev.ClientID = str("clientId", true)
	ev.ClientName = str("clientName", true)
	ev.UserID = str("userId", true)
	ev.TemplateURI = str("templateUri", true)
	ev.HTTPMethod = str("httpMethod", true)
	ev.Platform = str("platform", true)
	status := num("status")
	ev.DurationMs = num("durationMs")
	ev.RequestBytes = num("requestBytes")
	ev.ResponseBytes = num("responseBytes")
	if bad == nil && ts != "" {
		t, err := parseTime(ts)
		if err != nil {
			bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("time %q is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z", ts)}
		}
		ev.Time = t
	}
	if bad != nil {
		bad.Index, bad.ID = i, ev.ID
		d.b.Errors = append(d.b.Errors, *bad)
		return
	}
	if status > 1_000_000 {
		status = 1_000_000 // out of range either way; validation names it
	}
	ev.Status = int(status)
	d.b.Events = append(d.b.Events, ev)
	d.b.Index = append(d.b.Index, i)
}

// parseTime parses an RFC 3339 date-time. A missing offset is not accepted:
// an event time must be unambiguous.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
