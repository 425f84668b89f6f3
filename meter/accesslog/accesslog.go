// Package accesslog reads the requests out of access logs — nginx and Apache
// combined (or common) logs, and JSON logs of Caddy, Envoy and the like — so
// that an API's existing logs can be metered without touching the API.
//
// A Reader numbers the lines of a log stream (gzipped or not) and parses
// each with a Parser into a Line: what the log says about one request. A
// line that cannot be read is a *ParseError carrying its line number, for
// the caller to report: nothing is skipped silently except blank lines,
// which say nothing about any request. EventIDs derives usage event ids
// from a line's source and content, so that importing a log twice, renamed,
// rotated or appended to, counts each request once.
//
// # Combined and common logs
//
// Format Combined reads
//
//	host ident user [time] "request" status bytes ["referer" "agent" [extra…]]
//
// which is nginx's default log format ($remote_addr - $remote_user
// [$time_local] "$request" $status $body_bytes_sent "$http_referer"
// "$http_user_agent"), Apache's combined format (%h %l %u %t "%r" %>s %b
// "%{Referer}i" "%{User-agent}i") and, without referer and agent, the
// common log format. The time is 02/Jan/2006:15:04:05 -0700; the request
// is METHOD TARGET PROTOCOL, its target in origin form (/a?b) or absolute
// form (http://host/a?b). The remote user is the last field before the
// bracketed time, so that a host field of several addresses
// ($http_x_forwarded_for logs "a, b") does not hide it.
//
// Fields after the agent are what nginx setups commonly append. Only the
// one right after the agent is looked at: when it is a number with a
// decimal point, optionally quoted or written rt=…/request_time=…, it is
// nginx's $request_time in seconds and becomes DurationMs. $request_time
// always has a decimal point, while the integers other setups append there
// ($request_length, $bytes_sent, Apache's %D microseconds) do not, so an
// integer is never mistaken for a duration of unknown unit.
//
// # JSON logs
//
// Format JSON reads one JSON object per line. Which program wrote it is
// told by its keys, and decides where each value is looked for and in
// which unit:
//
//   - Caddy, when "request" is an object with "method" or "uri":
//     ts (Unix seconds, or RFC 3339/ISO 8601 by time_format),
//     request.method, request.uri, status, size, bytes_read,
//     duration (seconds, or a Go duration string), user_id, and
//     Line.Header reads request.headers.
//   - Envoy, when there is "start_time" or "response_code" (the names of
//     Envoy's documented default format and Istio's): start_time,
//     method, x-envoy-original-path else path, response_code,
//     bytes_sent, bytes_received, duration (milliseconds), and
//     Line.Header reads the top-level keys such configurations name after
//     request headers (user_agent, x_forwarded_for, request_id, authority).
//   - Anything else is generic: time, timestamp, @timestamp, time_iso8601,
//     time_local or ts; method, request_method or http.method; path, uri,
//     url, request_uri or http.url — or, as nginx JSON logs have it, a
//     "request" string holding the whole request line; status,
//     status_code or http.status_code; bytes_sent, body_bytes_sent, size
//     or bytes; request_length, bytes_received or request_size;
//     duration_ms (milliseconds) or request_time (seconds); remote_user,
//     user_id or user; and Line.Header reads "headers" or
//     "request_headers" when the object has one.
//
// The first name present wins. A missing method, path, status or time is a
// ParseError naming the fields looked for; a value that is there but
// unreadable, the measurements included, is a ParseError naming the field
// and the value. null, "" and "-" (Envoy's placeholder for a value it does
// not have) count as missing. A numeric time is read by its size: Unix
// seconds below 1e11, milliseconds below 1e14, microseconds below 1e17,
// nanoseconds above, which covers every time_format Caddy has.
package accesslog

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Format is a log format.
type Format int

const (
	Combined Format = iota + 1 // nginx/Apache combined or common log format
	JSON                       // one JSON object per line: Caddy, Envoy or generic
)

// String returns the name ParseFormat reads.
func (f Format) String() string {
	switch f {
	case Combined:
		return "combined"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses "combined" or "json", ignoring case.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "combined":
		return Combined, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("log format %q is not known: use combined (which reads common logs too) or json", s)
}

// Line is one parsed log line: what the log says about the request.
type Line struct {
	Time         time.Time // in UTC
	Method       string    // upper case
	Path         string    // the URL path, percent-decoded, without the query string
	Status       int       // 100–599
	Bytes        int64     // response bytes, 0 when "-"
	RequestBytes int64     // when the format has it
	DurationMs   int64     // when the format has it
	// RemoteUser is the authenticated user the server logged: combined's
	// %u field ("-" → ""), Caddy's user_id, a generic log's remote_user.
	RemoteUser string
	// Header returns the first value of a request header, its name in any
	// case, when the log has request headers (Caddy's request.headers,
	// Envoy's fields named after headers, a generic "headers" object), and
	// "" for a header the line does not have. It is nil for logs without
	// headers.
	Header func(name string) string
	// Fields holds, for JSON logs, every scalar field, nested ones under
	// their dotted path ("request.uri", "request.headers.X-Org-Id"; a list
	// holds its first element, as Caddy logs each header as a list), so
	// that requests can be attributed by configured field names. Numbers
	// are as written in the log; nulls are left out.
	Fields map[string]string
}

// ParseError is a line that could not be read.
type ParseError struct {
	Line   int    // numbered from 1; set by Reader, 0 from Parser.Parse
	Reason string // what was wrong, e.g. `status "abc" is not a number`
}

// Error returns "line N: reason", or the reason alone when the line number
// is not known.
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return e.Reason
}

func parseErr(format string, args ...any) *ParseError {
	return &ParseError{Reason: fmt.Sprintf(format, args...)}
}

// Parser parses the lines of one format. It is safe for concurrent use.
type Parser struct{ f Format }

// NewParser returns a parser of format f.
func NewParser(f Format) *Parser { return &Parser{f: f} }

// Parse parses one line; a trailing line ending is ignored. The error is a
// *ParseError (Line 0) for a line it cannot read, its Reason naming the
// field and the value that were wrong.
func (p *Parser) Parse(line []byte) (Line, error) {
	line = trimEOL(line)
	var (
		l   Line
		err *ParseError
	)
	switch p.f {
	case Combined:
		l, err = parseCombined(line)
	case JSON:
		l, err = parseJSON(line)
	default:
		return Line{}, parseErr("log format %v is not known", p.f)
	}
	if err == nil {
		err = check(&l)
	}
	if err != nil {
		return Line{}, err
	}
	return l, nil
}

// check holds every parsed line, whatever its format, to what a usage event
// needs, so that the import never sends an event usaged must reject for
// something the log already got wrong.
func check(l *Line) *ParseError {
	switch {
	case l.Time.IsZero() || l.Time.Year() < 1970:
		return parseErr("time %s is before 1970", l.Time.Format(time.RFC3339))
	case !isMethod(l.Method):
		return parseErr("method %q is not an HTTP method", truncate(l.Method))
	case !strings.HasPrefix(l.Path, "/"):
		return parseErr("path %q does not start with /", truncate(l.Path))
	case l.Status < 100 || l.Status > 599:
		return parseErr("status %d is not an HTTP status (100–599)", l.Status)
	}
	l.Time = l.Time.UTC()
	l.Method = strings.ToUpper(l.Method)
	return nil
}

// isMethod reports whether m looks like an HTTP method: letters, and the
// hyphen and underscore of extension methods such as VERSION-CONTROL.
// Stricter than HTTP's token, so that a garbled request line is reported
// rather than counted under a method nobody called.
func isMethod(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i] | 0x20 // lower case, for letters
		if (c < 'a' || c > 'z') && m[i] != '-' && m[i] != '_' {
			return false
		}
	}
	return true
}

// pathOf takes the path out of a request target: origin form (/a/b?x=1) or
// absolute form (http://host/a/b?x=1). The path is percent-decoded, as
// net/http's URL.Path is, so that a request imported from a log is matched
// to the same route template as the same request metered by the proxy or
// the middleware; a path that is not valid percent-encoding stays as
// logged.
func pathOf(target string) string {
	if !strings.HasPrefix(target, "/") {
		if i := strings.Index(target, "://"); i > 0 {
			rest := target[i+3:]
			if j := strings.IndexAny(rest, "/?#"); j >= 0 && rest[j] == '/' {
				target = rest[j:]
			} else {
				target = "/"
			}
		}
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if strings.IndexByte(target, '%') >= 0 {
		if p, err := url.PathUnescape(target); err == nil {
			target = p
		}
	}
	return target
}

// truncate keeps error messages about a huge value readable.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// trimEOL drops a trailing "\n" or "\r\n".
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// EventIDs derives the usage event ids of the lines of one import: an id
// is a hash of the source, the line's bytes and the line's occurrence — how
// many lines with the same bytes came before it in this import. It depends
// neither on the file's name nor on the line's number, so a log that was
// renamed, rotated (access.log → access.log.1 → access.log.2.gz),
// compressed or appended to yields the same ids again, and usaged counts
// none of its lines twice.
//
// The occurrence keeps identical lines apart: the same client repeating the
// same call within a log's one-second time resolution writes the same bytes
// twice, and those are two requests. Identical bytes carry the same time,
// so the count is in effect per second. It is counted over every file of
// the import, so that when a rotation falls inside such a second, the copy
// that went to access.log.1 and the one that went to access.log get
// different ids when both files are imported together. An import that sees
// n copies of a line sends ids 0…n-1: importing again, with more files or
// after appends, sends the same ids for the copies already counted and new
// ones only for new copies. The limit: copies imported in separate runs
// that never met in one run get the same id, so all but one are taken for
// duplicates — an undercount, never an overcount.
//
// The source is part of the id so that the same line written by two
// servers (behind one balancer, logging the same health check in the same
// second) counts twice.
//
// EventIDs is not safe for concurrent use. It remembers each distinct
// line of the import: 30 to 45 bytes of memory a line.
type EventIDs struct {
	source string
	seen   map[[16]byte]uint32
}

// NewEventIDs returns the ids of an import of source: a label naming where
// the logs were written, such as the host's name.
func NewEventIDs(source string) *EventIDs {
	return &EventIDs{source: source, seen: map[[16]byte]uint32{}}
}

// Next returns the id of the next line read, given its bytes without the
// line ending (as Reader.Next returns them).
func (e *EventIDs) Next(raw []byte) string {
	sum := sha256.Sum256(raw)
	key := [16]byte(sum[:16])
	n := e.seen[key]
	e.seen[key] = n + 1
	return EventID(e.source, int(n), raw)
}

// EventID is the id of the line raw (without its line ending) that is the
// occurrence-th (from 0) with these bytes in an import of source; see
// EventIDs.
//
// The id is "log-" and 24 base64url characters (144 bits of SHA-256 over a
// version tag, the length-prefixed source, the occurrence and the bytes):
// far shorter than usage.MaxEventIDLen, and a collision is less likely than
// between random UUIDs. It must never change: a changed id would count every
// re-imported line again. The version tag keeps these ids apart from those
// of the earlier scheme, which hashed the file's name and the line's number.
func EventID(source string, occurrence int, raw []byte) string {
	h := sha256.New()
	h.Write([]byte("usaged access log line v2\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(source)))
	h.Write(n[:])
	h.Write([]byte(source))
	binary.BigEndian.PutUint64(n[:], uint64(occurrence))
	h.Write(n[:])
	h.Write(raw)
	return "log-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}
