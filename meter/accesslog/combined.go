package accesslog

import (
	"math"
	"strconv"
	"strings"

	"github.com/usaged/usaged/usage"
)

// timeLayout is $time_local of nginx and %t of Apache, without brackets.
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// parseCombined reads a combined or common log line; the package doc has
// the layout.
func parseCombined(line []byte) (Line, *ParseError) {
	s := string(line)
	var l Line
	open := strings.Index(s, " [")
	if open < 0 {
		return l, parseErr("no [time] after the remote user")
	}
	head := strings.Fields(s[:open])
	if len(head) < 3 {
		return l, parseErr("%d fields before the [time], want host, ident and remote user", len(head))
	}
	if u := strings.Trim(head[len(head)-1], `"`); u != "-" {
		l.RemoteUser = u // Apache logs an empty user as ""
	}
	s = s[open+2:]
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return l, parseErr("[time] has no closing ]")
	}
	t, err := usage.ParseTime(timeLayout, s[:end])
	if err != nil {
		return l, parseErr("time %q is not dd/Mon/yyyy:hh:mm:ss ±zzzz", truncate(s[:end]))
	}
	l.Time = t
	s = s[end+1:]

	req, rest, perr := quoted(s, "request", "[time]")
	if perr != nil {
		return l, perr
	}
	s = rest
	method, target, perr := requestLine(req)
	if perr != nil {
		return l, perr
	}
	l.Method, l.Path = method, pathOf(target)

	status, rest := field(s)
	if status == "" {
		return l, parseErr("no status after the request")
	}
	if l.Status, err = strconv.Atoi(status); err != nil {
		return l, parseErr("status %q is not a number", truncate(status))
	}
	size, rest := field(rest)
	switch size {
	case "":
		return l, parseErr("no size after the status")
	case "-":
	default:
		if l.Bytes, err = strconv.ParseInt(size, 10, 64); err != nil || l.Bytes < 0 {
			return l, parseErr("size %q is not a number of bytes", truncate(size))
		}
	}
	s = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(s, `"`) {
		return l, nil // common log format, perhaps with unquoted additions
	}
	if _, s, perr = quoted(s, "referer", "size"); perr != nil {
		return l, perr
	}
	if _, s, perr = quoted(s, "user agent", "referer"); perr != nil {
		return l, perr
	}
	l.DurationMs = requestTime(s)
	return l, nil
}

// requestLine splits "METHOD TARGET PROTOCOL"; HTTP/0.9's "METHOD TARGET"
// is accepted too. nginx logs whatever the client sent, so "-" (nothing),
// TLS bytes sent to a plain-text port and scanners' junk all end here.
func requestLine(req string) (method, target string, _ *ParseError) {
	parts := strings.Fields(req)
	if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && !strings.HasPrefix(parts[2], "HTTP/")) {
		return "", "", parseErr("request %q is not METHOD TARGET PROTOCOL", truncate(req))
	}
	return parts[0], parts[1], nil
}

// requestTime reads nginx's $request_time (seconds, always with a decimal
// point) from the field after the user agent, or returns 0: the field is
// an optional extension, so anything else there is left alone.
func requestTime(s string) int64 {
	f, _ := field(s)
	f = strings.Trim(f, `"`)
	for _, prefix := range []string{"rt=", "request_time="} {
		f = strings.TrimPrefix(f, prefix)
	}
	f = strings.Trim(f, `"`) // rt="0.042"
	if !strings.Contains(f, ".") {
		return 0
	}
	secs, err := strconv.ParseFloat(f, 64)
	if err != nil || !(secs >= 0 && secs < 1e9) {
		return 0
	}
	return int64(math.Round(secs * 1000))
}

// field returns the next space-separated field of s and what follows it.
func field(s string) (f, rest string) {
	s = strings.TrimLeft(s, " ")
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// quoted returns the next "…" field of s, with its escapes (\" of Apache,
// \x22 of nginx) left as logged, and what follows it.
func quoted(s, name, after string) (f, rest string, _ *ParseError) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, `"`) {
		return "", "", parseErr(`no "%s" after the %s`, name, after)
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[1:i], s[i+1:], nil
		}
	}
	return "", "", parseErr(`"%s" has no closing quote`, name)
}
