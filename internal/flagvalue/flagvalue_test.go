package flagvalue

import (
	"strings"
	"testing"
	"time"
)

func TestDayDuration(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := ParseDayDuration(in)
		if err != nil || got != want {
			t.Fatalf("ParseDayDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		d := DayDuration(got)
		if back, err := ParseDayDuration(d.String()); err != nil || back != got {
			t.Fatalf("%q does not round-trip through String: %q", in, d.String())
		}
	}
	f("35d", 35*24*time.Hour)
	f("1d12h", 36*time.Hour)
	f("840h", 35*24*time.Hour)
	f("90m", 90*time.Minute)
	f("0d", 0)
	bad := func(in string) {
		t.Helper()
		if _, err := ParseDayDuration(in); err == nil {
			t.Fatalf("ParseDayDuration(%q) succeeded", in)
		}
	}
	bad("")
	bad("d")
	bad("3x")
	bad("-1d")
	bad("-5h")
	bad("1d2")
}

func TestByteSize(t *testing.T) {
	f := func(in string, want int64) {
		t.Helper()
		var b ByteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Fatalf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	f("16MiB", 16<<20)
	f("16M", 16<<20)
	f("512 KiB", 512<<10)
	f("1g", 1<<30)
	f("1048576", 1<<20)
	f("100B", 100)
	for _, in := range []string{"", "MiB", "-1", "0", "1.5MiB", "2TiB"} {
		var b ByteSize
		if err := b.Set(in); err == nil {
			t.Fatalf("Set(%q) succeeded with %d", in, b)
		}
	}
	if s := ByteSize(16 << 20); s.String() != "16MiB" {
		t.Fatalf("String() = %q", s.String())
	}
}

func TestMemoryLimit(t *testing.T) {
	f := func(in string, want MemoryLimit, wantString string) {
		t.Helper()
		var m MemoryLimit
		if err := m.Set(in); err != nil {
			t.Fatalf("Set(%q): %v", in, err)
		}
		if m != want || m.String() != wantString {
			t.Fatalf("Set(%q) = %+v (%s), want %+v (%s)", in, m, m.String(), want, wantString)
		}
	}
	f("auto", MemoryLimit{Auto: true}, "auto")
	f("AUTO", MemoryLimit{Auto: true}, "auto")
	f("off", MemoryLimit{}, "off")
	f("0", MemoryLimit{}, "off")
	f("4GiB", MemoryLimit{Bytes: 4 << 30}, "4GiB")
	f("512M", MemoryLimit{Bytes: 512 << 20}, "512MiB")
	for _, bad := range []string{"", "-1", "lots", "4XB"} {
		var m MemoryLimit
		if err := m.Set(bad); err == nil || !strings.Contains(err.Error(), "auto, off, or a size") {
			t.Fatalf("Set(%q) = %v, want an error saying what is accepted", bad, err)
		}
	}
}

func TestOneOf(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		o := OneOf{Value: "auto", Allowed: []string{"auto", "text", "json"}}
		if err := o.Set(in); err != nil || o.Value != want || o.String() != want {
			t.Fatalf("Set(%q) = %q, %v; want %q", in, o.Value, err, want)
		}
	}
	f("text", "text")
	f("JSON", "json")
	o := OneOf{Value: "auto", Allowed: []string{"auto", "text", "json"}}
	if err := o.Set("xml"); err == nil || err.Error() != `"xml" is not one of auto, text, json` || o.Value != "auto" {
		t.Fatalf(`Set("xml") = %v, leaving %q; want an error naming the values, leaving auto`, err, o.Value)
	}
}
