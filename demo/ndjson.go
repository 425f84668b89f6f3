package demo

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/usaged/usaged/usage"
)

// AppendNDJSON appends ev as one line of NDJSON in the wire format of
// POST /api/v2/usage/events and returns the extended buffer. Empty optional
// fields (userId, platform) and zero measurements are left out. The time is
// written in RFC 3339 UTC with the fraction it has.
//
// It exists because encoding/json would make the load generators, not the
// server, the bottleneck.
func AppendNDJSON(dst []byte, ev *usage.Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, ev.ID)
	dst = append(dst, `,"time":"`...)
	dst = ev.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","organizationId":`...)
	dst = appendString(dst, ev.OrganizationID)
	dst = append(dst, `,"clientId":`...)
	dst = appendString(dst, ev.ClientID)
	dst = append(dst, `,"clientName":`...)
	dst = appendString(dst, ev.ClientName)
	if ev.UserID != "" {
		dst = append(dst, `,"userId":`...)
		dst = appendString(dst, ev.UserID)
	}
	dst = append(dst, `,"templateUri":`...)
	dst = appendString(dst, ev.TemplateURI)
	dst = append(dst, `,"httpMethod":`...)
	dst = appendString(dst, ev.HTTPMethod)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(ev.Status), 10)
	if ev.Platform != "" {
		dst = append(dst, `,"platform":`...)
		dst = appendString(dst, ev.Platform)
	}
	if ev.DurationMs != 0 {
		dst = append(dst, `,"durationMs":`...)
		dst = strconv.AppendInt(dst, ev.DurationMs, 10)
	}
	if ev.RequestBytes != 0 {
		dst = append(dst, `,"requestBytes":`...)
		dst = strconv.AppendInt(dst, ev.RequestBytes, 10)
	}
	if ev.ResponseBytes != 0 {
		dst = append(dst, `,"responseBytes":`...)
		dst = strconv.AppendInt(dst, ev.ResponseBytes, 10)
	}
	return append(dst, "}\n"...)
}

// appendString appends s as a JSON string. strconv.AppendQuote is not used:
// its \x and \U escapes are not JSON. Invalid UTF-8 becomes U+FFFD, as with
// encoding/json, so the output is always valid JSON.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, needing no escapes
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
