package usage

import (
	"strings"
	"time"
)

// ParseTime parses s with layout as time.Parse does, and also refuses a zone
// offset that time.Parse lets through although RFC 3339 and ISO 8601 do not
// allow it: an hour above 23 (+24:00) or a minute above 59 (+23:60,
// +00:60). Every parser of untrusted times with an offset goes through it,
// so that one instant has one spelling. The error is a KindInvalid *Error;
// time.Parse's *time.ParseError is in its chain.
func ParseTime(layout, s string) (time.Time, error) {
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, &Error{Kind: KindInvalid, Err: err}
	}
	if err := checkOffset(t, s); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// checkOffset checks the zone offset that t was parsed from, the end of s.
// time.Parse takes offset hours up to 24 and minutes up to 60; an hour of 24
// shows in the offset itself, a minute of 60 only in the text, where it
// reads as the next hour.
func checkOffset(t time.Time, s string) error {
	_, off := t.Zone()
	if off == 0 {
		return nil // Z, ±00:00, or no offset at all
	}
	zone := s
	if i := strings.LastIndexAny(s, "+-"); i >= 0 {
		zone = s[i:]
	}
	bad := Errorf(KindInvalid, "", "time zone offset %s is out of range: hours run to 23 and minutes to 59", zone)
	if off <= -24*60*60 || off >= 24*60*60 {
		return bad
	}
	if digits := strings.ReplaceAll(strings.TrimLeft(zone, "+-"), ":", ""); len(digits) == 4 && digits[2:] >= "60" {
		return bad
	}
	return nil
}
