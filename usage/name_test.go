package usage

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckName(t *testing.T) {
	ok := func(name string) {
		t.Helper()
		if err := CheckName("name", name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	bad := func(name string, rule error, want string) {
		t.Helper()
		err := CheckName("name", name)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid || e.Field != "name" || !errors.Is(err, rule) || e.Message != want {
			t.Errorf("CheckName(%q) = %#v, want invalid name %v: %q", name, err, rule, want)
		}
	}
	ok("Acme")
	ok("Acme, Inc. — Zürich 日本 🚀")
	ok(" padded ")
	ok("=SUM(A1)") // defused where it is written as CSV, not refused
	ok("a\u200db") // a zero-width joiner builds emoji sequences
	ok(strings.Repeat("x", MaxNameLen))
	ok(strings.Repeat("é", MaxNameLen)) // characters, not bytes

	bad("", ErrNameEmpty, "name is required")
	bad(" \t ", ErrNameEmpty, "name is required")
	bad(strings.Repeat("x", MaxNameLen+1), ErrNameTooLong, "name is 257 characters long; the limit is 256")
	bad("a\x00b", ErrNotText, "name holds the control character U+0000 at character 2: send printable text in UTF-8")
	bad("tab\there", ErrNotText, "name holds the control character U+0009 at character 4: send printable text in UTF-8")
	bad("line\n", ErrNotText, "name holds the control character U+000A at character 5: send printable text in UTF-8")
	bad("del\x7f", ErrNotText, "name holds the control character U+007F at character 4: send printable text in UTF-8")
	bad("c1\u0085", ErrNotText, "name holds the control character U+0085 at character 3: send printable text in UTF-8")
	bad("bad\xffutf8", ErrNotText, "name holds invalid UTF-8 (byte 0xff) at character 4: send printable text in UTF-8")
	bad("\xc3", ErrNotText, "name holds invalid UTF-8 (byte 0xc3) at character 1: send printable text in UTF-8")
	bad("bad\uFFFD", ErrNotText, "name holds U+FFFD, the replacement character that stands for invalid UTF-8, at character 4: send printable text in UTF-8")
	bad("evil\u202eexe.txt", ErrNotText, "name holds the invisible formatting character U+202E at character 5: send printable text in UTF-8")
	bad("a\u2028b", ErrNotText, "name holds the invisible formatting character U+2028 at character 2: send printable text in UTF-8")
	bad("a\u2066b", ErrNotText, "name holds the invisible formatting character U+2066 at character 2: send printable text in UTF-8")

	// CheckText alone lets the empty string through.
	if err := CheckText("description", ""); err != nil {
		t.Errorf("CheckText of nothing: %v", err)
	}
	if err := CheckText("description", "x\x01"); !errors.Is(err, ErrNotText) || !strings.HasPrefix(err.Error(), "description holds") {
		t.Errorf("CheckText names its field: %v", err)
	}
}

// FuzzCheckName: a name is accepted exactly when it is non-blank valid
// UTF-8 of at most MaxNameLen characters without a control, replacement,
// separator or bidirectional character, and a refusal names the field.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"Acme", "", " ", "a\x00", "\xff", "\uFFFD", "\u202e", "日本", "=1", strings.Repeat("x", 257), "\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckName("field", s)
		want := strings.TrimSpace(s) != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= MaxNameLen &&
			!strings.ContainsFunc(s, func(r rune) bool {
				return r < 0x20 || r >= 0x7f && r < 0xa0 || r == utf8.RuneError || r == 0x2028 || r == 0x2029 ||
					r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
			})
		if (err == nil) != want {
			t.Fatalf("CheckName(%q) = %v, want accepted: %v", s, err, want)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field != "field" || e.Kind != KindInvalid || !strings.HasPrefix(e.Message, "field ") {
				t.Fatalf("CheckName(%q) = %#v: not an invalid error naming the field", s, err)
			}
			if !utf8.ValidString(e.Message) {
				t.Fatalf("CheckName(%q): message %q is not UTF-8", s, e.Message)
			}
		}
	})
}
