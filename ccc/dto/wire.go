// Package dto holds the data transfer objects of usaged's service-usage
// API, the ServiceStack-conventions face of package ccc: the server writes
// them and package client reads them, so that each shape is written once.
// It imports only the domain, so that a client does not pull in the server.
package dto

import (
	"encoding"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// Guid is a usage.GUID on the wire: written as 32 lowercase hex digits, as
// ServiceStack writes a .NET Guid, and read from any form usage.ParseGUID
// accepts. The empty string reads as the zero Guid, as ServiceStack reads ""
// as Guid.Empty; IsZero lets `json:",omitzero"` leave the zero Guid out.
type Guid usage.GUID

// String returns the wire form.
func (g Guid) String() string { return usage.GUID(g).String() }

// IsZero reports whether g is the zero Guid, which stands for "none".
func (g Guid) IsZero() bool { return usage.GUID(g).IsZero() }

// MarshalText writes the wire form; encoding/json writes it as a string.
func (g Guid) MarshalText() ([]byte, error) { return usage.GUID(g).MarshalText() }

// UnmarshalText reads any form of a GUID, or "" as the zero Guid.
func (g *Guid) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*g = Guid{}
		return nil
	}
	v, err := usage.ParseGUID(string(b))
	if err != nil {
		return err
	}
	*g = Guid(v)
	return nil
}

// Time is a time on the wire: written as ISO-8601 in UTC,
// 2006-01-02T15:04:05Z, with a fraction of a second only when there is one
// (…:05.123Z). The fraction stops at 100 ns, the tick of a .NET DateTime, so
// that .NET clients parse every value we write. It reads any form ParseDate
// accepts, and "" as the zero Time; IsZero lets `json:",omitzero"` leave the
// zero Time out. Written, the zero Time is 0001-01-01T00:00:00Z, as the
// vendor's samples show it.
type Time time.Time

// timeLayout is the wire form of Time: Go drops the trailing zeros of a
// .9999999 fraction, and the dot with them.
const timeLayout = "2006-01-02T15:04:05.9999999Z"

// String returns the wire form.
func (t Time) String() string { return time.Time(t).UTC().Format(timeLayout) }

// IsZero reports whether t is the zero time, which stands for "none".
func (t Time) IsZero() bool { return time.Time(t).IsZero() }

// MarshalText writes the wire form; encoding/json writes it as a string.
func (t Time) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(nil, timeLayout), nil
}

// UnmarshalText reads any form ParseDate accepts, or "" as the zero Time.
func (t *Time) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*t = Time{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// Guid and Time are text on every wire: JSON strings, CSV fields, XML text.
var (
	_ encoding.TextMarshaler   = Guid{}
	_ encoding.TextUnmarshaler = (*Guid)(nil)
	_ encoding.TextMarshaler   = Time{}
	_ encoding.TextUnmarshaler = (*Time)(nil)
)

// ParseDate reads a date or time in the forms ServiceStack accepts:
// yyyy-MM-dd (midnight UTC); ISO-8601 / RFC 3339 date-times with a T (or t,
// or a space, so "yyyy-MM-dd HH:mm:ss" too), with or without seconds and a
// fraction of up to 9 digits, and with an offset (Z, ±hh:mm, ±hhmm, ±hh) or
// without one, which means UTC; and WCF's /Date(ms)/ or /Date(ms±hhmm)/,
// where ms counts milliseconds since the Unix epoch (negative before it) and
// the offset only says which zone the writer was in. The result is UTC and
// within the years 1 to 9999 that a .NET DateTime can hold.
func ParseDate(s string) (time.Time, error) {
	var t time.Time
	var ok bool
	if strings.HasPrefix(s, "/Date(") && strings.HasSuffix(s, ")/") {
		t, ok = parseWCFDate(s[len("/Date(") : len(s)-len(")/")])
	} else {
		t, ok = parseISODate(s)
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not a date: use yyyy-MM-dd, ISO-8601 such as 2006-01-02T15:04:05Z, or /Date(ms)/", s)
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("%q is out of range: dates run from 0001-01-01 to 9999-12-31", s)
	}
	return t, nil
}

// parseWCFDate reads the inside of /Date(…)/: ms, then an optional ±hhmm.
func parseWCFDate(s string) (time.Time, bool) {
	ms := s
	if i := strings.LastIndexAny(s, "+-"); i > 0 {
		ms = s[:i]
		if _, ok := offset(s[i:]); !ok {
			return time.Time{}, false
		}
	}
	digits := strings.TrimPrefix(ms, "-")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}

// parseISODate reads yyyy-MM-dd[(T|t| )HH:mm[:ss[(.|,)f…]][offset]].
func parseISODate(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	year, ok1 := number(s[0:4])
	month, ok2 := number(s[5:7])
	day, ok3 := number(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 {
		return time.Time{}, false
	}
	var hour, min, sec, nsec int
	off := 0
	if rest := s[10:]; rest != "" {
		if len(rest) < 6 || rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ' || rest[3] != ':' {
			return time.Time{}, false
		}
		var ok4, ok5 bool
		hour, ok4 = number(rest[1:3])
		min, ok5 = number(rest[4:6])
		if !ok4 || !ok5 || hour > 23 || min > 59 {
			return time.Time{}, false
		}
		rest = rest[6:]
		if len(rest) >= 3 && rest[0] == ':' {
			var ok bool
			if sec, ok = number(rest[1:3]); !ok || sec > 59 {
				return time.Time{}, false
			}
			rest = rest[3:]
			if len(rest) > 1 && (rest[0] == '.' || rest[0] == ',') {
				n := 1
				for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
					n++
				}
				if n == 1 || n > 10 {
					return time.Time{}, false
				}
				frac, _ := number(rest[1:n])
				for range 10 - n {
					frac *= 10
				}
				nsec, rest = frac, rest[n:]
			}
		}
		switch rest {
		case "", "Z", "z":
		default:
			var ok bool
			if off, ok = offset(rest); !ok {
				return time.Time{}, false
			}
		}
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC)
	if t.Day() != day { // time.Date normalised an impossible day, such as 02-30
		return time.Time{}, false
	}
	return t.Add(-time.Duration(off) * time.Second).UTC(), true
}

// offset reads a zone offset, ±hh:mm, ±hhmm or ±hh, in seconds east of UTC.
func offset(s string) (int, bool) {
	if len(s) < 3 || s[0] != '+' && s[0] != '-' {
		return 0, false
	}
	hh, mm := s[1:3], "00"
	switch {
	case len(s) == 6 && s[3] == ':':
		mm = s[4:6]
	case len(s) == 5:
		mm = s[3:5]
	case len(s) != 3:
		return 0, false
	}
	h, ok1 := number(hh)
	m, ok2 := number(mm)
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, false
	}
	secs := (h*60 + m) * 60
	if s[0] == '-' {
		secs = -secs
	}
	return secs, true
}

// number reads a run of ASCII digits; strconv.Atoi would also take a sign.
func number(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
