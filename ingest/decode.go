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
// are left to validation. Fields are read in one pass over the object.
func (d *decoder) add(i int, v *fastjson.Value) {
	o, err := v.Object()
	if err != nil {
		d.fail(i, "", CodeMalformed, fmt.Sprintf("event %d is %s, not a JSON object", i, v.Type()))
		return
	}
	var ev usage.Event
	var ts string
	var status int64
	var bad *EventError
	wrong := func(name, want string, f *fastjson.Value) {
		if bad == nil {
			bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("%s must be %s, got %s", name, want, truncate(f.String()))}
		}
	}
	str := func(name string, f *fastjson.Value, intern bool) string {
		if f.Type() == fastjson.TypeNull {
			return ""
		}
		b, err := f.StringBytes()
		if err != nil {
			wrong(name, "a string", f)
			return ""
		}
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
	num := func(name string, f *fastjson.Value) int64 {
		if f.Type() == fastjson.TypeNull {
			return 0
		}
		n, err := f.Int64()
		if err != nil || f.Type() != fastjson.TypeNumber {
			wrong(name, "an integer", f)
			return 0
		}
		if n < 0 && bad == nil {
			bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("%s %d must not be negative", name, n)}
		}
		return n
	}
	o.Visit(func(k []byte, f *fastjson.Value) {
		switch string(k) {
		case "id":
			ev.ID = str("id", f, false)
		case "time":
			ts = str("time", f, false)
		case "organizationId":
			ev.OrganizationID = str("organizationId", f, true)
		case "clientId":
			ev.ClientID = str("clientId", f, true)
		case "clientName":
			ev.ClientName = str("clientName", f, true)
		case "userId":
			ev.UserID = str("userId", f, true)
		case "templateUri":
			ev.TemplateURI = str("templateUri", f, true)
		case "httpMethod":
			ev.HTTPMethod = str("httpMethod", f, true)
		case "platform":
			ev.Platform = str("platform", f, true)
		case "status":
			status = num("status", f)
		case "durationMs":
			ev.DurationMs = num("durationMs", f)
		case "requestBytes":
			ev.RequestBytes = num("requestBytes", f)
		case "responseBytes":
			ev.ResponseBytes = num("responseBytes", f)
		}
	})
	if bad == nil && ts != "" {
		t, err := parseTime(ts)
		if err != nil {
			bad = &EventError{Code: CodeInvalidField, Message: fmt.Sprintf("time %q is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z", truncate(ts))}
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
	if t, ok := parseTimeUTC(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// parseTimeUTC is a fast path for the common whole-second UTC form
// 2006-01-02T15:04:05Z; it reports false for anything else.
func parseTimeUTC(s string) (time.Time, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	n := func(i, w int) int {
		v := 0
		for _, c := range []byte(s[i : i+w]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, se := n(0, 4), n(5, 2), n(8, 2), n(11, 2), n(14, 2), n(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d { // e.g. February 30th normalised into March
		return time.Time{}, false
	}
	return t, true
}
