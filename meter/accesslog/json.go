package accesslog

import (
	"bytes"
	"math"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/usaged/usaged/usage"
)

// dialect is where one program's JSON access log keeps each value; the
// package doc lists them and how a line's dialect is told.
type dialect struct {
	time, method, path, status []string
	bytes, requestBytes        []string
	durationMs, durationSecs   []string
	user                       []string
	// requestLine is the field of a whole request line, "GET /a HTTP/1.1",
	// read when there is neither method nor path: nginx JSON logs usually
	// carry $request rather than its parts.
	requestLine string
	// header returns Line.Header for a line's fields, or nil.
	header func(fields map[string]string) func(string) string
}

var (
	caddy = dialect{
		time: []string{"ts"}, method: []string{"request.method"}, path: []string{"request.uri"}, status: []string{"status"},
		bytes: []string{"size"}, requestBytes: []string{"bytes_read"}, durationSecs: []string{"duration"},
		user: []string{"user_id"},
		header: func(fields map[string]string) func(string) string {
			return headerMap(fields, "request.headers.")
		},
	}
	envoy = dialect{
		time: []string{"start_time"}, method: []string{"method"}, path: []string{"x-envoy-original-path", "path"},
		status: []string{"response_code"}, bytes: []string{"bytes_sent"}, requestBytes: []string{"bytes_received"},
		durationMs: []string{"duration"},
		header:     envoyHeader,
	}
	generic = dialect{
		time:   []string{"time", "timestamp", "@timestamp", "time_iso8601", "time_local", "ts"},
		method: []string{"method", "request_method", "http.method"},
		path:   []string{"path", "uri", "url", "request_uri", "http.url"},
		status: []string{"status", "status_code", "http.status_code"},
		bytes:  []string{"bytes_sent", "body_bytes_sent", "size", "bytes"}, requestBytes: []string{"request_length", "bytes_received", "request_size"},
		durationMs: []string{"duration_ms"}, durationSecs: []string{"request_time"},
		user: []string{"remote_user", "user_id", "user"}, requestLine: "request",
		header: func(fields map[string]string) func(string) string {
			for _, prefix := range []string{"headers.", "request_headers."} {
				for k := range fields {
					if strings.HasPrefix(k, prefix) {
						return headerMap(fields, prefix)
					}
				}
			}
			return nil
		},
	}
)

// parsers recycles fastjson's parsers, which keep their memory between
// lines, while Parser stays safe for concurrent use.
var parsers fastjson.ParserPool

// parseJSON reads one JSON object in the dialect its keys tell.
func parseJSON(line []byte) (Line, *ParseError) {
	jp := parsers.Get()
	defer parsers.Put(jp)
	v, err := jp.ParseBytes(line)
	if err != nil {
		return Line{}, parseErr("not JSON: %v", err)
	}
	o, err := v.Object()
	if err != nil {
		return Line{}, parseErr("a JSON %s, not an object", v.Type())
	}
	fields := make(map[string]string, 2*o.Len())
	flatten(nil, v, fields)
	d := &generic
	if r := v.Get("request"); r != nil && r.Type() == fastjson.TypeObject && (r.Exists("method") || r.Exists("uri")) {
		d = &caddy
	} else if o.Get("start_time") != nil || o.Get("response_code") != nil {
		d = &envoy
	}
	return d.parse(fields)
}

// parse reads a line's flattened fields.
func (d *dialect) parse(fields map[string]string) (Line, *ParseError) {
	l := Line{Fields: fields}
	get := func(names []string) (name, value string) {
		for _, n := range names {
			if v := fields[n]; v != "" && v != "-" {
				return n, v
			}
		}
		return "", ""
	}
	missing := func(what string, names []string) *ParseError {
		return parseErr("no %s field (looked for %s)", what, strings.Join(names, ", "))
	}

	_, l.Method = get(d.method)
	_, target := get(d.path)
	if req := fields[d.requestLine]; d.requestLine != "" && req != "" && l.Method == "" && target == "" {
		m, t, err := requestLine(req)
		if err != nil {
			return l, err
		}
		l.Method, target = m, t
	}
	if l.Method == "" {
		return l, missing("method", d.method)
	}
	if target == "" {
		return l, missing("path", d.path)
	}
	l.Path = pathOf(target)

	name, status := get(d.status)
	if status == "" {
		return l, missing("status", d.status)
	}
	var err error
	if l.Status, err = strconv.Atoi(status); err != nil {
		return l, parseErr("%s %q is not a number", name, truncate(status))
	}
	if l.Status == 0 && name == "response_code" {
		return l, parseErr("response_code 0: Envoy sent no response (the client went away or the stream was reset)")
	}

	name, ts := get(d.time)
	if ts == "" {
		return l, missing("time", d.time)
	}
	if l.Time, err = parseTime(ts); err != nil {
		return l, parseErr("%s %q is not a time: neither RFC 3339, dd/Mon/yyyy:hh:mm:ss ±zzzz nor Unix time", name, truncate(ts))
	}

	var perr *ParseError
	if l.Bytes, perr = measure(get(d.bytes)); perr != nil {
		return l, perr
	}
	if l.RequestBytes, perr = measure(get(d.requestBytes)); perr != nil {
		return l, perr
	}
	if name, v := get(d.durationMs); v != "" {
		l.DurationMs, perr = measure(name, v)
	} else if name, v := get(d.durationSecs); v != "" {
		l.DurationMs, perr = seconds(name, v)
	}
	if perr != nil {
		return l, perr
	}
	_, l.RemoteUser = get(d.user)
	if d.header != nil {
		l.Header = d.header(fields)
	}
	return l, nil
}

// maxMeasure bounds bytes and milliseconds to what a float64 holds exactly.
const maxMeasure = 1 << 53

// measure reads a non-negative byte count or millisecond duration; "" is 0.
// A fraction is dropped: some loggers write every number as a float.
func measure(name, v string) (int64, *ParseError) {
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= maxMeasure {
		return n, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= maxMeasure) {
		return 0, parseErr("%s %q is not a number from 0 to 2^53", name, truncate(v))
	}
	return int64(f), nil
}

// seconds reads a duration in seconds, or as a Go duration string ("12.5ms",
// Caddy's duration_format "string"), into milliseconds.
func seconds(name, v string) (int64, *ParseError) {
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs*1000 <= maxMeasure {
		return int64(math.Round(secs * 1000)), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d.Round(time.Millisecond).Milliseconds(), nil
	}
	return 0, parseErr("%s %q is not a non-negative number of seconds", name, truncate(v))
}

// timeLayouts are the textual times JSON logs write: RFC 3339 (Envoy,
// generic), zap's ISO 8601 without the offset's colon (Caddy's
// time_format iso8601), and nginx's $time_local.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", timeLayout}

// unixUnits are the units of a numeric time, told apart by its size: Unix
// seconds until the year 5138, milliseconds, microseconds, nanoseconds.
var unixUnits = []struct {
	below  float64
	perSec int64
}{{1e11, 1}, {1e14, 1e3}, {1e17, 1e6}, {9e18, 1e9}}

// parseTime reads a textual time, or a Unix time whose unit its size tells.
func parseTime(s string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := usage.ParseTime(layout, s); err == nil {
			return t, nil
		}
	}
	// An integer is taken exactly: a float64 cannot hold today's time in
	// nanoseconds.
	var (
		w    int64
		frac float64
	)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		w = i
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 9e18 {
		whole, fr := math.Modf(f)
		w, frac = int64(whole), fr
	} else {
		return time.Time{}, strconv.ErrSyntax
	}
	for _, u := range unixUnits {
		if w > 0 && float64(w) < u.below {
			nsPerUnit := 1e9 / u.perSec
			// The fraction is rounded to the microsecond: a float64 of
			// Unix seconds holds no more than that.
			fracNs := int64(math.Round(frac*float64(nsPerUnit)/1e3)) * 1e3
			return time.Unix(w/u.perSec, w%u.perSec*nsPerUnit+fracNs), nil
		}
	}
	return time.Time{}, strconv.ErrRange
}

// flatten puts every scalar of v into out under its dotted path; a list
// contributes its first element, under the list's own path.
func flatten(path []byte, v *fastjson.Value, out map[string]string) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		o.Visit(func(k []byte, c *fastjson.Value) {
			p := path
			if len(p) > 0 {
				p = append(p, '.')
			}
			flatten(append(p, k...), c, out)
		})
	case fastjson.TypeArray:
		if a, _ := v.Array(); len(a) > 0 {
			flatten(path, a[0], out)
		}
	case fastjson.TypeString:
		out[string(path)] = string(v.GetStringBytes())
	case fastjson.TypeNumber:
		out[string(path)] = string(bytes.TrimSpace(v.MarshalTo(nil)))
	case fastjson.TypeTrue:
		out[string(path)] = "true"
	case fastjson.TypeFalse:
		out[string(path)] = "false"
	}
}

// headerMap reads headers logged as an object under prefix, looking the
// name up in Go's canonical form first, the form Caddy logs them in.
func headerMap(fields map[string]string, prefix string) func(string) string {
	return func(name string) string {
		if v, ok := fields[prefix+textproto.CanonicalMIMEHeaderKey(name)]; ok {
			return v
		}
		for k, v := range fields {
			if len(k) > len(prefix) && strings.HasPrefix(k, prefix) && strings.EqualFold(k[len(prefix):], name) {
				return v
			}
		}
		return ""
	}
}

// envoyHeader reads headers from an Envoy log, which has no header map:
// json_format configurations give each %REQ(…)% a top-level key named
// after the header, lower case with dashes or underscores, the "x-"
// sometimes dropped (request_id), and the host as "authority".
func envoyHeader(fields map[string]string) func(string) string {
	return func(name string) string {
		n := strings.ToLower(name)
		if n == "host" || n == ":authority" {
			n = "authority"
		}
		snake := strings.ReplaceAll(n, "-", "_")
		for _, k := range []string{n, snake, strings.TrimPrefix(snake, "x_")} {
			if strings.Contains(k, ".") {
				continue // a nested field, not a header
			}
			if v := fields[k]; v != "" && v != "-" {
				return v
			}
		}
		return ""
	}
}
