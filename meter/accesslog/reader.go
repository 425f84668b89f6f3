package accesslog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// MaxLineLen is the longest line a Reader parses, in bytes without the line
// ending; a longer one is a ParseError, and reading goes on after it.
const MaxLineLen = 1 << 20

// Reader reads a log stream, gzipped or not, line by line. It is not safe
// for concurrent use.
type Reader struct {
	br   *bufio.Reader
	p    *Parser
	n    int   // the number of the last line read
	err  error // the error that ended the stream: io.EOF or a read error
	done bool  // the last line has been read; err follows
}

// NewReader returns a Reader of r in format f. A gzip stream (several
// concatenated ones, as some rotations write, included) is recognised by
// its magic bytes, so rotated and compressed logs need no flag. The error
// is an unknown format, a read error or a broken gzip header.
func NewReader(r io.Reader, f Format) (*Reader, error) {
	if f != Combined && f != JSON {
		return nil, fmt.Errorf("log format %v is not known", f)
	}
	// The buffer holds a whole line, "\r\n" included, so that ReadSlice
	// returns it in one piece, without copying.
	br := bufio.NewReaderSize(r, MaxLineLen+2)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading the gzip header: %w", err)
		}
		br = bufio.NewReaderSize(zr, MaxLineLen+2)
	}
	return &Reader{br: br, p: NewParser(f)}, nil
}

// utf8BOM starts some files written on Windows; it is no part of the line.
var utf8BOM = []byte("\xef\xbb\xbf")

// Next returns the next line parsed, its number (from 1) and its raw bytes
// without the line ending and, on line 1, without a UTF-8 byte order mark
// (valid until the next call), so that the bytes are the line's content
// however the file was written; or a *ParseError,
// its Line set, for a line that cannot be read — the caller reports it and
// calls Next again; or io.EOF at the end; or another error when the stream
// cannot be read (a truncated gzip file), after which the Reader is done.
//
// Lines end in "\n" or "\r\n"; the last one may have no ending. Blank lines
// are counted but skipped: they say nothing about any request, and the
// line numbers must stay those an editor shows.
func (r *Reader) Next() (Line, int, []byte, error) {
	for {
		if r.done {
			return Line{}, r.n, nil, r.err
		}
		raw, err := r.br.ReadSlice('\n')
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			r.n++
			if err := r.skipLine(); err != nil {
				r.finish(err)
			}
			return Line{}, r.n, nil, r.tooLong()
		case errors.Is(err, io.EOF):
			r.finish(err)
			if len(raw) == 0 {
				return Line{}, r.n, nil, io.EOF
			}
		default:
			r.finish(err)
			return Line{}, r.n, nil, r.err
		}
		r.n++
		raw = trimEOL(raw)
		if len(raw) > MaxLineLen {
			return Line{}, r.n, nil, r.tooLong()
		}
		if r.n == 1 {
			raw = bytes.TrimPrefix(raw, utf8BOM)
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
}

// skipLine reads past the rest of an overlong line.
func (r *Reader) skipLine() error {
	for {
		_, err := r.br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// finish ends the stream with err: io.EOF, or a read error reported once
// the lines read before it have been returned.
func (r *Reader) finish(err error) {
	r.done = true
	r.err = err
	if !errors.Is(err, io.EOF) {
		r.err = fmt.Errorf("reading after line %d: %w", r.n, err)
	}
}

func (r *Reader) tooLong() error {
	return &ParseError{Line: r.n, Reason: fmt.Sprintf("line longer than %d bytes", MaxLineLen)}
}
