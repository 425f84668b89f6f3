package ingest

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
// The encoders here are for clients — load generators, the metering
// shipper — which must not be the bottleneck, hence no encoding/json.
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

// AppendActivityNDJSON appends a as one line of NDJSON in the wire format of
// POST /api/services/{ServiceGuid}/events and returns the extended buffer.
// Only the properties of a's type are written, and of those the optional
// ones only when set; GUIDs are written as 32 hex digits and the time in
// RFC 3339 UTC.
func AppendActivityNDJSON(dst []byte, a *usage.Activity) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, a.ID)
	dst = append(dst, `,"time":"`...)
	dst = a.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":"`...)
	dst = append(dst, a.Kind.String()...)
	dst = append(dst, '"')
	guid := func(name string, g usage.GUID) {
		if !g.IsZero() {
			dst = append(dst, `,"`...)
			dst = append(dst, name...)
			dst = append(dst, `":"`...)
			dst = append(dst, g.String()...)
			dst = append(dst, '"')
		}
	}
	num := func(name string, n int64, always bool) {
		if n != 0 || always {
			dst = append(dst, `,"`...)
			dst = append(dst, name...)
			dst = append(dst, `":`...)
			dst = strconv.AppendInt(dst, n, 10)
		}
	}
	str := func(name, v string) {
		if v != "" {
			dst = append(dst, `,"`...)
			dst = append(dst, name...)
			dst = append(dst, `":`...)
			dst = appendString(dst, v)
		}
	}
	switch a.Kind {
	case usage.ActivityMessage:
		guid("userGuid", a.User)
		if len(a.Recipients) > 0 {
			dst = append(dst, `,"recipients":[`...)
			for i, g := range a.Recipients {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, '"')
				dst = append(dst, g.String()...)
				dst = append(dst, '"')
			}
			dst = append(dst, ']')
		}
		num("attachments", a.Attachments, false)
		num("attachmentBytes", a.AttachmentBytes, false)
	case usage.ActivityFeature:
		guid("userGuid", a.User)
		str("feature", a.Feature.String())
	case usage.ActivityUsers:
		num("total", a.Users.Total, true)
		num("pro", a.Users.Pro, true)
		num("guest", a.Users.Guest, true)
		num("disabled", a.Users.Disabled, true)
		num("unregistered", a.Users.Unregistered, true)
	case usage.ActivityStorage:
		num("bytes", a.StorageBytes, true)
	case usage.ActivityUser:
		str("event", a.UserEvent.String())
		guid("userGuid", a.User)
		str("email", a.Email)
		str("firstName", a.FirstName)
		str("lastName", a.LastName)
		str("groupName", a.GroupName)
		if a.Status != 0 {
			str("status", a.Status.String())
		}
		if a.GroupType != 0 {
			str("groupType", a.GroupType.String())
		}
		guid("groupGuid", a.GroupGUID)
		guid("invitedBy", a.InvitedBy)
	}
	return append(dst, "}\n"...)
}

const hexDigits = "0123456789abcdef"
