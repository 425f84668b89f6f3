// Package rowchunk encodes the result rows of a query in chunks of at most
// Size rows each, for the stores that keep asynchronous query results.
//
// Results can number a million rows, but they repeat few values: one
// organization, a few methods and templates, dates in order. A chunk stores
// each distinct string once and refers to it afterwards, and each date as
// the difference from the one before, so that a row takes a few bytes and a
// store writes and reads one value per Size rows rather than a key, or a
// tuple of sixteen columns, per row. A page of results reads only the
// chunks it overlaps.
//
// The encoding is stored on disk by the embedded store: it never changes
// under the same version byte.
package rowchunk

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/usaged/usaged/usage"
)

// Size is the most rows a chunk holds. A store of results keeps every chunk
// of an execution full but the last, so that it finds the chunk of an
// offset by dividing by Size; it is part of their stored format.
const Size = 1000

// version is the first byte of a chunk.
const version = 1

// ErrCorrupt is the error of a chunk that Append did not write: truncated,
// of another version, or with references out of range. Decoders wrap it.
var ErrCorrupt = errors.New("corrupt chunk of execution rows")

// zeroUnix is the Unix time of the zero time.Time, so that dates counted from
// it encode the zero Date as 0.
var zeroUnix = time.Time{}.Unix()

// Append appends a chunk of rows to dst and returns the extended slice. It
// panics if rows holds more than Size rows, which no decoder would read. A
// chunk is
//
//	version byte, uvarint row count, then for each row
//	  varint seconds since year 1, less the previous row's (0 for the first)
//	  uvarint nanoseconds
//	  ClientID ClientName OrganizationID UserID TemplateURI HTTPMethod Platform, as strings
//	  Requests Status200 Status300 Status400 Status500 Status429, as varints
//
// A string is uvarint 0, uvarint length and its bytes the first time it occurs
// in the chunk, and uvarint i+1 when it is the chunk's i'th distinct string:
// rows repeat few values (organization, methods, templates) many times. Dates
// are deltas because rows often come in date order. Dates keep their instant
// to the nanosecond, not their location: they decode in UTC.
func Append(dst []byte, rows []usage.Row) []byte {
	if len(rows) > Size {
		panic("rowchunk: Append of more than Size rows")
	}
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, uint64(len(rows)))
	strs := map[string]uint64{}
	// last holds each column's string of the row before and its reference:
	// most columns repeat it (an organization's rows by client share all
	// but the client), and comparing is cheaper than looking up.
	var last [7]struct {
		s   string
		ref uint64
	}
	var prev int64
	for i := range rows {
		r := &rows[i]
		secs := int64(0)
		var nanos uint64
		if !r.Date.IsZero() {
			secs, nanos = r.Date.Unix()-zeroUnix, uint64(r.Date.Nanosecond())
		}
		dst = binary.AppendVarint(dst, secs-prev)
		dst = binary.AppendUvarint(dst, nanos)
		prev = secs
		for c, s := range [...]string{r.ClientID, r.ClientName, r.OrganizationID, r.UserID, r.TemplateURI, r.HTTPMethod, r.Platform} {
			if i > 0 && s == last[c].s {
				dst = binary.AppendUvarint(dst, last[c].ref)
				continue
			}
			if ref, ok := strs[s]; ok {
				dst = binary.AppendUvarint(dst, ref)
				last[c].s, last[c].ref = s, ref
				continue
			}
			ref := uint64(len(strs)) + 1
			strs[s] = ref
			last[c].s, last[c].ref = s, ref
			dst = binary.AppendUvarint(dst, 0)
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
		for _, v := range [...]int64{r.Requests, r.Status200, r.Status300, r.Status400, r.Status500, r.Status429} {
			dst = binary.AppendVarint(dst, v)
		}
	}
	return dst
}

// Decoder reads the rows of one chunk in order. Rows before the wanted ones
// must be decoded too: they define the strings and dates later rows refer
// to.
type Decoder struct {
	b    []byte
	n    int // rows left
	strs []string
	prev int64
}

// NewDecoder returns a decoder of the chunk b, which it reads in place: b
// must not change until the last row is decoded. An error wraps ErrCorrupt.
func NewDecoder(b []byte) (*Decoder, error) {
	if len(b) == 0 || b[0] != version {
		return nil, ErrCorrupt
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > Size {
		return nil, ErrCorrupt
	}
	return &Decoder{b: b[1+k:], n: int(n)}, nil
}

// Len returns the number of rows not yet decoded: right after NewDecoder,
// the number of rows of the chunk.
func (d *Decoder) Len() int { return d.n }

// Next decodes the next row into r. After the last row it returns
// ErrCorrupt, as it does for a row that is cut short or refers to a string
// the chunk has not defined, and for bytes left after the last row.
func (d *Decoder) Next(r *usage.Row) error {
	if d.n == 0 {
		return ErrCorrupt
	}
	d.n--
	delta, err := d.varint()
	if err != nil {
		return err
	}
	nanos, err := d.uvarint()
	if err != nil || nanos >= 1e9 {
		return ErrCorrupt
	}
	// Seconds wrap around as the encoder's subtraction did, so that any
	// date a chunk can hold decodes to the one encoded.
	d.prev += delta
	if d.prev == 0 && nanos == 0 {
		r.Date = time.Time{}
	} else {
		r.Date = time.Unix(d.prev+zeroUnix, int64(nanos)).UTC()
	}
	for _, p := range [...]*string{&r.ClientID, &r.ClientName, &r.OrganizationID, &r.UserID, &r.TemplateURI, &r.HTTPMethod, &r.Platform} {
		if *p, err = d.str(); err != nil {
			return err
		}
	}
	for _, p := range [...]*int64{&r.Requests, &r.Status200, &r.Status300, &r.Status400, &r.Status500, &r.Status429} {
		if *p, err = d.varint(); err != nil {
			return err
		}
	}
	if d.n == 0 && len(d.b) != 0 {
		return ErrCorrupt
	}
	return nil
}

func (d *Decoder) uvarint() (uint64, error) {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		return 0, ErrCorrupt
	}
	d.b = d.b[k:]
	return v, nil
}

func (d *Decoder) varint() (int64, error) {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		return 0, ErrCorrupt
	}
	d.b = d.b[k:]
	return v, nil
}

func (d *Decoder) str() (string, error) {
	ref, err := d.uvarint()
	if err != nil {
		return "", err
	}
	if ref > 0 {
		if ref > uint64(len(d.strs)) {
			return "", ErrCorrupt
		}
		return d.strs[ref-1], nil
	}
	n, err := d.uvarint()
	if err != nil || n > uint64(len(d.b)) {
		return "", ErrCorrupt
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	d.strs = append(d.strs, s)
	return s, nil
}
