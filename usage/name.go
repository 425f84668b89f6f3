package usage

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest name of an organization, an OAuth client, a
// partner, a reseller, a collection, a service or an API key, in characters.
const MaxNameLen = 256

// The rule a name broke, in the chain of CheckName's error (errors.Is), for
// faces that word each rule their own way.
var (
	ErrNameEmpty   = errors.New("name is empty")
	ErrNameTooLong = errors.New("name is too long")
	ErrNotText     = errors.New("not printable text")
)

// CheckName reports whether name may name an entity: it is not blank, it
// has at most MaxNameLen characters, and it is printable text (CheckText).
// Every face and every registry checks names with it, so that one rule holds
// whichever way a name comes in. The error is a KindInvalid *Error naming
// field, with ErrNameEmpty, ErrNameTooLong or ErrNotText in its chain.
func CheckName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return &Error{Kind: KindInvalid, Field: field, Message: field + " is required", Err: ErrNameEmpty}
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return &Error{Kind: KindInvalid, Field: field, Err: ErrNameTooLong,
			Message: fmt.Sprintf("%s is %d characters long; the limit is %d", field, n, MaxNameLen)}
	}
	return CheckText(field, name)
}

// CheckText reports whether s, which may be empty, is printable text:
// valid UTF-8 without
//
//   - control characters (U+0000–U+001F, U+007F–U+009F), which terminals,
//     logs and CSV readers act on;
//   - U+FFFD, the replacement character: JSON decoders put it in place of
//     invalid UTF-8, so it stands for bytes that were not text, and rejecting
//     it is what rejects invalid UTF-8 sent in JSON instead of storing it
//     silently altered;
//   - the line and paragraph separators (U+2028, U+2029) and the
//     bidirectional embeddings, overrides and isolates (U+202A–U+202E,
//     U+2066–U+2069), which make a name display other than it is.
//
// The error is a KindInvalid *Error naming field and the first offending
// character and its position, with ErrNotText in its chain.
func CheckText(field, s string) error {
	pos := 0
	for i, r := range s {
		pos++
		var what string
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			what = fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", s[i])
		case r == utf8.RuneError:
			what = "U+FFFD, the replacement character that stands for invalid UTF-8,"
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			what = fmt.Sprintf("the control character %U", r)
		case r == 0x2028 || r == 0x2029 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			what = fmt.Sprintf("the invisible formatting character %U", r)
		default:
			continue
		}
		return &Error{Kind: KindInvalid, Field: field, Err: ErrNotText,
			Message: fmt.Sprintf("%s holds %s at character %d: send printable text in UTF-8", field, what, pos)}
	}
	return nil
}
