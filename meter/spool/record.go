package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/usaged/usaged/usage"
)

// A record is one event in a segment file:
//
//	length  uint32 little endian: the payload's length in bytes
//	crc     uint32 little endian: CRC-32C of the length bytes and the payload
//	payload version byte (recordVersion), then the fields of usage.Event
//
// The checksum covers the length too, so that a torn or garbled length is
// caught rather than trusted: a record is read only if all of it is there
// and its checksum matches. A crash can leave at most the tail of the last
// write torn, and that tail fails the check instead of being mis-read.
const (
	recordHeader  = 8
	recordVersion = 1
	// maxPayload bounds a record. It keeps a garbled length from making a
	// reader allocate gigabytes, and no real event comes near it (usaged
	// caps an id at 128 bytes; names and templates are short).
	maxPayload = 64 << 10
)

// castagnoli is CRC-32C, which CPUs compute in hardware: checksumming is
// not what makes Add slow.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn is a record that is incomplete or fails its checksum.
var errTorn = errors.New("torn or corrupt record")

// appendRecord appends the record of ev to b. It reports false, leaving b as
// it was, when the event is too large to be a record.
//
// The payload is compact binary: strings are length-prefixed, integers are
// varints, the time is Unix seconds and nanoseconds (so that any time.Time
// round-trips as an instant, zero time included).
func appendRecord(b []byte, ev *usage.Event) ([]byte, bool) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, recordVersion)
	b = appendEvent(b, ev)
	return finishRecord(b, start)
}

// finishRecord fills in the length and checksum of the record that starts at
// start of b; false, leaving b as it was before the record, when the payload
// is too large.
func finishRecord(b []byte, start int) ([]byte, bool) {
	n := len(b) - start - recordHeader
	if n > maxPayload {
		return b[:start], false
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	crc := crc32.Update(0, castagnoli, b[start:start+4])
	crc = crc32.Update(crc, castagnoli, b[start+recordHeader:])
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b, true
}

// appendEvent appends the fields of ev.
func appendEvent(b []byte, ev *usage.Event) []byte {
	b = appendString(b, ev.ID)
	b = binary.AppendVarint(b, ev.Time.Unix())
	b = binary.AppendUvarint(b, uint64(ev.Time.Nanosecond()))
	b = appendString(b, ev.OrganizationID)
	b = appendString(b, ev.ClientID)
	b = appendString(b, ev.ClientName)
	b = appendString(b, ev.UserID)
	b = appendString(b, ev.TemplateURI)
	b = appendString(b, ev.HTTPMethod)
	b = binary.AppendVarint(b, int64(ev.Status))
	b = appendString(b, ev.Platform)
	b = binary.AppendVarint(b, ev.DurationMs)
	b = binary.AppendVarint(b, ev.RequestBytes)
	return binary.AppendVarint(b, ev.ResponseBytes)
}

// appendString appends s, length first.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodePayload decodes a payload whose checksum has been verified. An
// error here means a payload of another version or a bug, never a torn
// write.
func decodePayload(p []byte) (usage.Event, error) {
	d := payloadDecoder{p: p}
	if v := d.byte(); v != recordVersion {
		return usage.Event{}, fmt.Errorf("record version %d is not supported (this build reads version %d)", v, recordVersion)
	}
	ev := d.event()
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%d bytes left over after the event", len(d.p))
	}
	if d.err != nil {
		return usage.Event{}, fmt.Errorf("decoding a record: %w", d.err)
	}
	return ev, nil
}

// event reads the fields appendEvent wrote.
func (d *payloadDecoder) event() usage.Event {
	var ev usage.Event
	ev.ID = d.string()
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.err = errTorn
	}
	ev.Time = time.Unix(sec, int64(nsec)).UTC()
	ev.OrganizationID = d.string()
	ev.ClientID = d.string()
	ev.ClientName = d.string()
	ev.UserID = d.string()
	ev.TemplateURI = d.string()
	ev.HTTPMethod = d.string()
	ev.Status = int(d.varint())
	ev.Platform = d.string()
	ev.DurationMs = d.varint()
	ev.RequestBytes = d.varint()
	ev.ResponseBytes = d.varint()
	return ev
}

// payloadDecoder reads the fields of a payload and keeps the first error.
type payloadDecoder struct {
	p   []byte
	err error
}

// byte reads one byte.
func (d *payloadDecoder) byte() byte {
	if len(d.p) == 0 {
		d.err = io.ErrUnexpectedEOF
		return 0
	}
	c := d.p[0]
	d.p = d.p[1:]
	return c
}

// uvarint reads an unsigned varint.
func (d *payloadDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		if d.err == nil {
			d.err = io.ErrUnexpectedEOF
		}
		return 0
	}
	d.p = d.p[n:]
	return v
}

// varint reads a signed varint.
func (d *payloadDecoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		if d.err == nil {
			d.err = io.ErrUnexpectedEOF
		}
		return 0
	}
	d.p = d.p[n:]
	return v
}

// string reads a length-prefixed string, checking the length against
// what is left so that a bad length cannot allocate.
func (d *payloadDecoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.p)) {
		if d.err == nil {
			d.err = io.ErrUnexpectedEOF
		}
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}

// recordReader reads the records of a segment from an offset up to a known
// end. It returns io.EOF exactly at end, and errTorn when the bytes before
// end do not hold a whole record with a matching checksum.
type recordReader struct {
	r   *bufio.Reader
	off int64 // offset of the next record
	end int64
	hdr [recordHeader]byte
	buf []byte
}

func newRecordReader(ra io.ReaderAt, off, end int64) *recordReader {
	rr := &recordReader{}
	rr.reset(ra, off, end)
	return rr
}

// reset makes rr read another range, keeping its buffers.
func (rr *recordReader) reset(ra io.ReaderAt, off, end int64) {
	sr := io.NewSectionReader(ra, off, end-off)
	if rr.r == nil {
		rr.r = bufio.NewReaderSize(sr, 256<<10)
	} else {
		rr.r.Reset(sr)
	}
	rr.off, rr.end = off, end
}

// next returns the payload of the next record, valid until the following
// call, and the record's size on disk.
func (rr *recordReader) next() ([]byte, int64, error) {
	if rr.off >= rr.end {
		return nil, 0, io.EOF
	}
	if rr.end-rr.off < recordHeader {
		return nil, 0, errTorn
	}
	if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
		return nil, 0, readErr(err)
	}
	n := int64(binary.LittleEndian.Uint32(rr.hdr[:4]))
	if n == 0 || n > maxPayload || n > rr.end-rr.off-recordHeader {
		return nil, 0, errTorn
	}
	if int64(cap(rr.buf)) < n {
		rr.buf = make([]byte, n, max(n, 4096))
	}
	p := rr.buf[:n]
	if _, err := io.ReadFull(rr.r, p); err != nil {
		return nil, 0, readErr(err)
	}
	crc := crc32.Update(0, castagnoli, rr.hdr[:4])
	if crc32.Update(crc, castagnoli, p) != binary.LittleEndian.Uint32(rr.hdr[4:]) {
		return nil, 0, errTorn
	}
	rr.off += recordHeader + n
	return p, recordHeader + n, nil
}

// readErr maps a short read inside the known end (the file shrank under
// us) to errTorn and passes real I/O errors on.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTorn
	}
	return err
}
