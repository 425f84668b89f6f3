package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
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
// position in the body, and an error for the first elements that did not.
type Batch struct {
	Events []usage.Event
	Index  []int        // Index[i] is the position of Events[i] in the body
	Errors []EventError // the first elements that could not be decoded into an event, at most Limits.MaxErrors
	// ErrorsOmitted counts the elements that could not be decoded beyond
	// those in Errors.
	ErrorsOmitted int
	maxErrors     int // the Limits.MaxErrors the body was decoded with
}

// Len returns the number of elements the body held.
func (b *Batch) Len() int { return len(b.Events) + len(b.Errors) + b.ErrorsOmitted }

// Merge returns r, the outcome of Pipeline.Ingest of b.Events, as the
// outcome of the body b was decoded from: error indexes are positions in the
// body, and the elements that did not decode are among the rejected.
func (b *Batch) Merge(r Result) Result {
	return merge(b.Errors, b.ErrorsOmitted, b.Index, b.maxErrors, r)
}

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
// a KindTooLarge error once more than max bytes arrive, on the wire or after
// decompression. Both bounds matter: gzip bounds neither (a small body can
// inflate a thousandfold, and empty gzip members inflate to nothing, so a
// client could stream them for as long as its connection lasts).
func ReadBody(r io.Reader, contentEncoding string, max int64) ([]byte, error) {
	wire := &cappedReader{r: r, left: max}
	r = wire
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
	if wire.over || n > max {
		return nil, tooLarge(max)
	}
	if err != nil {
		return nil, usage.Errorf(usage.KindInvalid, "body", "body could not be read: %v", err)
	}
	return buf.Bytes(), nil
}

// errOverLimit is what cappedReader returns once its limit is passed.
var errOverLimit = errors.New("body over limit")

// cappedReader reads at most left bytes of r and records an attempt to read
// more.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Probe for one more byte: a body of exactly the limit is fine.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, errOverLimit
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func tooLarge(max int64) error {
	return usage.Errorf(usage.KindTooLarge, "body", "body is larger than the limit of %d bytes", max)
}

var parsers fastjson.ParserPool

// Decode decodes body in format f within lim. It fails when the body as a
// whole cannot be parsed, and with a usage.KindTooLarge error when it holds
// more than lim.MaxEvents elements; elements that are not valid events,
// among them those with a property that is no event field
// (CodeUnknownField), are reported in the Batch's Errors, the first lim.MaxErrors of them, and
// counted in its ErrorsOmitted beyond that.
func Decode(body []byte, f Format, lim Limits) (*Batch, error) {
	lim = lim.withDefaults()
	d := decoder{strs: make(map[string]string)}
	d.errs.max = lim.MaxErrors
	if err := walk(body, f, lim.MaxEvents, &d); err != nil {
		return nil, err
	}
	d.b.Errors, d.b.ErrorsOmitted, d.b.maxErrors = d.errs.list, d.errs.omitted, lim.MaxErrors
	return &d.b, nil
}

// elementSink receives the elements of a body from walk. Both kinds of event
// body share walk, so that they accept the same shapes and report malformed
// elements alike.
type elementSink interface {
	grow(n int)                    // at most n elements follow
	add(i int, o *fastjson.Object) // element i is an object; o is valid only during the call
	errors() *errorList            // where rejected elements go
}

// walk splits body into its elements and hands each to s: a JSON array or
// {"events":[…]} in FormatJSON, one value per non-blank line in FormatNDJSON.
// An element that is not a JSON object is reported as malformed. walk fails
// when the body as a whole is not one of these shapes, and before parsing
// element maxEvents+1 when there is one.
func walk(body []byte, f Format, maxEvents int, s elementSink) error {
	p := parsers.Get()
	defer parsers.Put(p)
	if f == FormatNDJSON {
		return walkNDJSON(p, body, maxEvents, s)
	}
	// Counted before parsing: the parsed tree of a small body of tiny
	// elements ([1,1,…]) is many times its size.
	if countJSONEvents(body, maxEvents) > maxEvents {
		return tooManyEvents(maxEvents)
	}
	v, err := p.ParseBytes(body)
	if err != nil {
		return usage.Errorf(usage.KindInvalid, "body", "body is not valid JSON: %v", err)
	}
	var arr []*fastjson.Value
	switch v.Type() {
	case fastjson.TypeArray:
		arr, _ = v.Array()
	case fastjson.TypeObject:
		ev := v.Get("events")
		if ev == nil || ev.Type() != fastjson.TypeArray {
			return usage.Errorf(usage.KindInvalid, "events", `body must be a JSON array of events or an object {"events":[…]}`)
		}
		arr, _ = ev.Array()
	default:
		return usage.Errorf(usage.KindInvalid, "body", `body must be a JSON array of events or an object {"events":[…]}, not %s`, v.Type())
	}
	if len(arr) > maxEvents { // the count above is of the same elements; this is a backstop
		return tooManyEvents(maxEvents)
	}
	s.grow(len(arr))
	for i, e := range arr {
		element(s, i, e)
	}
	return nil
}

func walkNDJSON(p *fastjson.Parser, body []byte, maxEvents int, s elementSink) error {
	lines := bytes.Count(body, []byte{'\n'}) + 1
	if lines > maxEvents && countLines(body, maxEvents) > maxEvents {
		return tooManyEvents(maxEvents) // before parsing any, as for JSON
	}
	s.grow(min(lines, maxEvents))
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
		if i == maxEvents {
			return tooManyEvents(maxEvents)
		}
		v, err := p.ParseBytes(line)
		if err != nil {
			s.errors().addf(i, CodeMalformed, "line %d is not valid JSON: %v", i+1, err)
		} else {
			element(s, i, v)
		}
		i++
	}
	if i == 0 {
		return usage.Errorf(usage.KindInvalid, "body", "body holds no events")
	}
	return nil
}

func element(s elementSink, i int, v *fastjson.Value) {
	o, err := v.Object()
	if err != nil {
		s.errors().addf(i, CodeMalformed, "event %d is %s, not a JSON object", i, v.Type())
		return
	}
	s.add(i, o)
}

// fieldReader reads the typed properties of one event object and keeps only
// the first problem: an event is rejected once, for its first bad field.
// A JSON null reads as the property's zero value, so that null and absent
// mean the same.
type fieldReader struct {
	bad *EventError
	// quiet leaves the message out: the error will only be counted, so
	// formatting it would be work for nothing.
	quiet bool
	err   EventError // what bad points to
}

func (r *fieldReader) failf(code, format string, args ...any) {
	if r.bad != nil {
		return
	}
	r.err.Code = code
	if !r.quiet {
		r.err.Message = fmt.Sprintf(format, args...)
	}
	r.bad = &r.err
}

func (r *fieldReader) wrong(name, want string, f *fastjson.Value) {
	if r.bad != nil || r.quiet {
		r.failf(CodeInvalidField, "")
		return
	}
	r.failf(CodeInvalidField, "%s must be %s, got %s", name, want, truncate(f.String()))
}

// str returns the bytes of string property f (nil for null), which are valid
// only as long as the parsed body is.
func (r *fieldReader) str(name string, f *fastjson.Value) []byte {
	if f.Type() == fastjson.TypeNull {
		return nil
	}
	b, err := f.StringBytes()
	if err != nil {
		r.wrong(name, "a string", f)
		return nil
	}
	return b
}

// int returns integer property f (0 for null). Only plain integer literals
// are integers: 2.0 and 2e3 are not, so that no client relies on rounding.
func (r *fieldReader) int(name string, f *fastjson.Value) int64 {
	if f.Type() == fastjson.TypeNull {
		return 0
	}
	n, err := f.Int64()
	if err != nil || f.Type() != fastjson.TypeNumber {
		r.wrong(name, "an integer", f)
		return 0
	}
	if n < 0 {
		r.failf(CodeInvalidField, "%s %d must not be negative", name, n)
	}
	return n
}

type decoder struct {
	b    Batch
	errs errorList
	strs map[string]string // interns repeated values (clients, templates) within one body
}

func (d *decoder) grow(n int) {
	d.b.Events = make([]usage.Event, 0, n)
	d.b.Index = make([]int, 0, n)
}

func (d *decoder) errors() *errorList { return &d.errs }

// add decodes element i. Type errors are reported per event; range checks
// are left to validation. Fields are read in one pass over the object.
func (d *decoder) add(i int, o *fastjson.Object) {
	var ev usage.Event
	var ts string
	var status int64
	var unknown []byte // the first property that is not a field, valid while o is
	hasUnknown := false
	r := fieldReader{quiet: d.errs.full()}
	str := func(name string, f *fastjson.Value, intern bool) string {
		b := r.str(name, f)
		if b == nil {
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
			status = r.int("status", f)
		case "durationMs":
			ev.DurationMs = r.int("durationMs", f)
		case "requestBytes":
			ev.RequestBytes = r.int("requestBytes", f)
		case "responseBytes":
			ev.ResponseBytes = r.int("responseBytes", f)
		default:
			if !hasUnknown {
				unknown, hasUnknown = k, true
			}
		}
	})
	if hasUnknown {
		r.unknownField(unknown, "API request events", eventFields)
	}
	if r.bad == nil && ts != "" {
		t, err := parseTime(ts)
		if err != nil {
			r.failf(CodeInvalidField, "time %q is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z", truncate(ts))
		}
		ev.Time = t
	}
	if r.bad != nil {
		r.bad.Index, r.bad.ID = i, ev.ID
		d.errs.add(*r.bad)
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
// an event time must be unambiguous; nor is an offset RFC 3339 does not
// allow, such as +24:00.
func parseTime(s string) (time.Time, error) {
	if t, ok := parseTimeUTC(s); ok {
		return t, nil
	}
	t, err := usage.ParseTime(time.RFC3339Nano, s)
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
