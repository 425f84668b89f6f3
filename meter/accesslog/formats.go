package accesslog

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// parseCombined reads
//
//	host ident user [time] "request" status bytes ["referer" "agent" [extra…]]
//
// the combined log format of nginx and Apache, and the common format
// without referer and agent. When the first field after the agent is a
// number with a decimal point, it is taken as nginx's $request_time
// (seconds), the usual addition.
func parseCombined(line []byte) (Line, error) {
	s := string(line)
	var l Line
	next := func() (string, bool) { // one space-separated field
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return "", false
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		f := s[:i]
		s = s[i:]
		return f, true
	}
	quoted := func() (string, bool) { // a "…" field, with \" escapes
		s = strings.TrimLeft(s, " ")
		if !strings.HasPrefix(s, `"`) {
			return "", false
		}
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				f := s[1:i]
				s = s[i+1:]
				return f, true
			}
		}
		return "", false
	}
	if _, ok := next(); !ok {
		return l, parseErr("empty line")
	}
	next() // ident
	user, ok := next()
	if !ok {
		return l, parseErr("line ends before the time")
	}
	if user != "-" {
		l.RemoteUser = user
	}
	s = strings.TrimLeft(s, " ")
	end := strings.IndexByte(s, ']')
	if !strings.HasPrefix(s, "[") || end < 0 {
		return l, parseErr("no [time] after the remote user")
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", s[1:end])
	if err != nil {
		return l, parseErr("time %q is not dd/Mon/yyyy:hh:mm:ss ±zzzz", s[1:end])
	}
	l.Time = t
	s = s[end+1:]
	req, ok := quoted()
	if !ok {
		return l, parseErr(`no "request" after the time`)
	}
	parts := strings.Fields(req)
	if len(parts) < 2 || len(parts) > 3 {
		return l, parseErr("request %q is not METHOD TARGET PROTOCOL", truncate(req))
	}
	l.Method, l.Path = parts[0], pathOf(parts[1])
	status, ok := next()
	if !ok {
		return l, parseErr("no status after the request")
	}
	if l.Status, err = strconv.Atoi(status); err != nil {
		return l, parseErr("status %q is not a number", truncate(status))
	}
	size, ok := next()
	if !ok {
		return l, parseErr("no size after the status")
	}
	if size != "-" {
		if l.Bytes, err = strconv.ParseInt(size, 10, 64); err != nil {
			return l, parseErr("size %q is not a number", truncate(size))
		}
	}
	if _, ok := quoted(); !ok { // common log format: done
		return l, nil
	}
	if _, ok := quoted(); !ok {
		return l, parseErr(`no "user agent" after the referer`)
	}
	if extra, ok := next(); ok && strings.Contains(extra, ".") {
		if secs, err := strconv.ParseFloat(extra, 64); err == nil && secs >= 0 && secs < 1e6 {
			l.DurationMs = int64(math.Round(secs * 1000))
		}
	}
	return l, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// parseJSON reads one JSON object. Fields are looked for under the names
// of Caddy (ts, request.method, request.uri, status, size, duration in
// seconds, bytes_read), of Envoy's JSON access log (start_time, method,
// path or x-envoy-original-path, response_code, bytes_sent,
// bytes_received, duration in milliseconds), and generic ones (time or
// timestamp, method, path, uri or url, status or status_code), first found
// first used.
func parseJSON(line []byte) (Line, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(line)
	if err != nil {
		return Line{}, parseErr("not JSON: %v", err)
	}
	if v.Type() != fastjson.TypeObject {
		return Line{}, parseErr("not a JSON object")
	}
	fields := map[string]string{}
	flatten("", v, fields)
	pick := func(names ...string) string {
		for _, n := range names {
			if s, ok := fields[n]; ok && s != "" {
				return s
			}
		}
		return ""
	}
	var l Line
	l.Fields = fields
	l.Method = pick("request.method", "method", "http.method", "req.method")
	if l.Method == "" {
		return l, parseErr("no method field (request.method, method)")
	}
	target := pick("x-envoy-original-path", "request.uri", "path", "uri", "url", "request.path", "req.url")
	if target == "" {
		return l, parseErr("no path field (request.uri, path, uri, url)")
	}
	l.Path = pathOf(target)
	status := pick("status", "response_code", "status_code", "response.status")
	if status == "" {
		return l, parseErr("no status field (status, response_code, status_code)")
	}
	if l.Status, err = strconv.Atoi(status); err != nil {
		return l, parseErr("status %q is not a number", truncate(status))
	}
	ts := pick("ts", "start_time", "time", "timestamp", "@timestamp")
	if ts == "" {
		return l, parseErr("no time field (ts, start_time, time, timestamp)")
	}
	if l.Time, err = parseTime(ts); err != nil {
		return l, err
	}
	num := func(names ...string) int64 {
		n, _ := strconv.ParseFloat(pick(names...), 64)
		if n < 0 || n > 1e15 {
			return 0
		}
		return int64(n)
	}
	l.Bytes = num("size", "bytes_sent", "body_bytes_sent", "response.size")
	l.RequestBytes = num("bytes_read", "bytes_received", "request.size")
	if _, caddy := fields["request.uri"]; caddy {
		if d, err := strconv.ParseFloat(pick("duration"), 64); err == nil && d >= 0 && d < 1e6 {
			l.DurationMs = int64(math.Round(d * 1000)) // Caddy logs seconds
		}
	} else {
		l.DurationMs = num("duration", "duration_ms")
	}
	l.RemoteUser = pick("user_id", "request.user_id", "user")
	return l, nil
}

// parseTime reads RFC 3339, or Unix seconds with a fraction (Caddy's ts).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs > 0 && secs < 1e11 {
		whole, frac := math.Modf(secs)
		return time.Unix(int64(whole), int64(frac*1e9)), nil
	}
	return time.Time{}, parseErr("time %q is neither RFC 3339 nor Unix seconds", truncate(s))
}

// flatten puts every scalar of v into out under its dotted path; a list
// contributes its first element (Caddy logs headers as lists).
func flatten(prefix string, v *fastjson.Value, out map[string]string) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		o.Visit(func(k []byte, c *fastjson.Value) {
			key := string(k)
			if prefix != "" {
				key = prefix + "." + key
			}
			flatten(key, c, out)
		})
	case fastjson.TypeArray:
		a, _ := v.Array()
		if len(a) > 0 {
			flatten(prefix, a[0], out)
		}
	case fastjson.TypeString:
		out[prefix] = string(v.GetStringBytes())
	case fastjson.TypeNumber:
		out[prefix] = string(bytes.TrimSpace(v.MarshalTo(nil)))
	case fastjson.TypeTrue:
		out[prefix] = "true"
	case fastjson.TypeFalse:
		out[prefix] = "false"
	}
}
