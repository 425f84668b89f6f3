// Package accesslog reads the requests out of access logs — nginx and Apache
// combined (or common) logs, and JSON logs of Caddy, Envoy and the like — so
// that an API's existing logs can be metered without touching the API.
package accesslog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Format is a log format.
type Format int

const (
	Combined Format = iota + 1 // nginx/Apache combined or common log format
	JSON                       // one JSON object per line
)

// ParseFormat parses "combined" or "json", ignoring case.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "combined", "common":
		return Combined, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("log format %q is not known: use combined or json", s)
}

// Line is what one log line says about a request.
type Line struct {
	Time         time.Time // UTC
	Method       string    // upper case
	Path         string    // the URL path, without the query
	Status       int
	Bytes        int64 // response bytes
	RequestBytes int64 // when the format has it
	DurationMs   int64 // when the format has it
	RemoteUser   string
	// Fields holds, for JSON logs, every scalar field, nested ones under
	// their dotted path ("request.headers.X-Org-Id"; a list holds its first
	// value), so that requests can be attributed by configured fields.
	Fields map[string]string
}

// ParseError is a line that could not be read.
type ParseError struct {
	Line   int // 1-based; 0 when parsed outside a Reader
	Reason string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return e.Reason
}

func parseErr(format string, args ...any) error {
	return &ParseError{Reason: fmt.Sprintf(format, args...)}
}

// Parser parses lines of one format.
type Parser struct{ f Format }

// NewParser returns a parser for f.
func NewParser(f Format) *Parser { return &Parser{f: f} }

// Parse parses one line (without its line ending). Errors are *ParseError.
func (p *Parser) Parse(line []byte) (Line, error) {
	var l Line
	var err error
	if p.f == JSON {
		l, err = parseJSON(line)
	} else {
		l, err = parseCombined(line)
	}
	if err != nil {
		return Line{}, err
	}
	return l, check(&l)
}

// check holds every parsed line to what a usage event needs.
func check(l *Line) error {
	switch {
	case l.Time.IsZero() || l.Time.Year() < 1970:
		return parseErr("no usable time")
	case l.Method == "" || len(l.Method) > 16 || strings.ContainsAny(l.Method, " \t\"/"):
		return parseErr("method %q is not an HTTP method", l.Method)
	case !strings.HasPrefix(l.Path, "/"):
		return parseErr("path %q does not start with /", l.Path)
	case l.Status < 100 || l.Status > 599:
		return parseErr("status %d is not an HTTP status", l.Status)
	case l.Bytes < 0 || l.RequestBytes < 0 || l.DurationMs < 0:
		return parseErr("negative sizes or duration")
	}
	l.Time = l.Time.UTC()
	l.Method = strings.ToUpper(l.Method)
	return nil
}

// pathOf takes the path out of a request target: origin form
// (/a/b?x=1) or absolute form (http://host/a/b?x=1).
func pathOf(target string) string {
	if i := strings.Index(target, "://"); i > 0 && !strings.HasPrefix(target, "/") {
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}

// maxLine bounds one log line.
const maxLine = 1 << 20

// Reader reads a log stream, gzipped or not, line by line.
type Reader struct {
	sc   *bufio.Scanner
	p    *Parser
	n    int
	long bool // within a line over maxLine
}

// NewReader returns a Reader of r in format f; gzip is detected by its magic
// bytes.
func NewReader(r io.Reader, f Format) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("not valid gzip: %w", err)
		}
		r = zr
	} else {
		r = br
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	sc.Split(scanLines)
	return &Reader{sc: sc, p: NewParser(f)}, nil
}

// scanLines is bufio.ScanLines, except that when a line fills the whole
// buffer it returns the buffered part as overlong instead of stopping the
// scan; the rest of that line comes as the next token.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	adv, tok, err := bufio.ScanLines(data, atEOF)
	if adv == 0 && tok == nil && err == nil && len(data) >= maxLine {
		return len(data), overlong, nil
	}
	return adv, tok, err
}

// overlong marks a piece of a line over maxLine. It holds a NUL byte, which
// no text log line does.
var overlong = []byte("\x00overlong")

// Next returns the next line, its number and its raw bytes (valid until the
// next call), a *ParseError (its Line set) for a line that cannot be read —
// the caller reports it and calls Next again — or io.EOF. Blank lines are
// skipped but counted.
func (r *Reader) Next() (Line, int, []byte, error) {
	for r.sc.Scan() {
		raw := r.sc.Bytes()
		if bytes.Equal(raw, overlong) {
			r.long = true // the rest of this line comes next
			continue
		}
		r.n++
		if r.long {
			r.long = false
			return Line{}, r.n, nil, &ParseError{Line: r.n, Reason: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		l, err := r.p.Parse(raw)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Line = r.n
			}
			return Line{}, r.n, raw, err
		}
		return l, r.n, raw, nil
	}
	if err := r.sc.Err(); err != nil {
		return Line{}, r.n, nil, err
	}
	return Line{}, r.n, nil, io.EOF
}

// EventID derives the usage event id of a log line from the name of its
// source (the file's base name), its line number and its bytes. Importing
// the same file again yields the same ids, so usaged counts nothing twice;
// the line number keeps two identical lines (two identical requests in one
// second) two events, and the source keeps the same line in two files two
// events.
func EventID(source string, lineNo int, raw []byte) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(source)))
	h.Write(n[:])
	h.Write([]byte(source))
	binary.BigEndian.PutUint64(n[:], uint64(lineNo))
	h.Write(n[:])
	h.Write(raw)
	return "log-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}
