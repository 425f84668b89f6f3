// Package flagvalue holds the flag.Value types of usaged's commands:
// lists, durations in days and sizes with units.
package flagvalue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// List is a comma-separated list flag. Repeating the flag appends.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

func (l *List) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// DayDuration is a duration flag that also accepts a whole number of days
// with a d suffix, alone or before a Go duration: "35d", "1d12h", "840h".
type DayDuration time.Duration

func (d *DayDuration) String() string {
	v := time.Duration(*d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *DayDuration) Set(s string) error {
	v, err := ParseDayDuration(s)
	if err != nil {
		return err
	}
	*d = DayDuration(v)
	return nil
}

// ParseDayDuration reads a DayDuration: 35d, 1d12h or 840h.
func ParseDayDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("duration is empty: want e.g. 35d, 1d12h or 72h")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > 100_000 {
			return 0, fmt.Errorf("%q is not a duration: want e.g. 35d, 1d12h or 72h", s)
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration: want e.g. 35d, 1d12h or 72h", s)
		}
	}
	d := time.Duration(days)*24*time.Hour + rest
	if d < 0 {
		return 0, fmt.Errorf("duration %s must not be negative", d)
	}
	return d, nil
}

// ByteSize is a size flag: a number of bytes, optionally with a binary unit
// suffix (KiB, MiB, GiB; K, M, G and KB, MB, GB mean the same).
type ByteSize int64

func (b *ByteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.size == 0 {
			return strconv.FormatInt(v/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *ByteSize) Set(s string) error {
	t, mult := splitUnit(strings.TrimSpace(s))
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return fmt.Errorf("%q is not a positive size: want e.g. 16MiB, 512KiB or 1048576", s)
	}
	*b = ByteSize(n * mult)
	return nil
}

// splitUnit splits a size into its number and the multiplier of its unit.
func splitUnit(t string) (string, int64) {
	for _, u := range []struct {
		suffixes []string
		size     int64
	}{{[]string{"GiB", "GB", "G"}, 1 << 30}, {[]string{"MiB", "MB", "M"}, 1 << 20}, {[]string{"KiB", "KB", "K"}, 1 << 10}, {[]string{"B"}, 1}} {
		for _, suf := range u.suffixes {
			if len(t) > len(suf) && strings.EqualFold(t[len(t)-len(suf):], suf) {
				return strings.TrimSpace(t[:len(t)-len(suf)]), u.size
			}
		}
	}
	return t, 1
}

// Reserve is a size to keep free: a size as ByteSize takes it, or 0 for no
// reserve.
type Reserve ByteSize

func (r *Reserve) String() string { return (*ByteSize)(r).String() }

func (r *Reserve) Set(s string) error {
	if strings.TrimSpace(s) == "0" {
		*r = 0
		return nil
	}
	if err := (*ByteSize)(r).Set(s); err != nil {
		return fmt.Errorf("%q is not a size: want e.g. 256MiB, 1GiB, or 0 for no reserve", s)
	}
	return nil
}

// MemoryLimit is a soft limit on the Go heap: "auto", "off" (or 0), or a
// size as ByteSize takes it. Its fields are those of server.MemoryLimit, so
// that a pointer to one converts to a pointer to the other.
type MemoryLimit struct {
	Auto  bool
	Bytes int64 // when not Auto; 0 means no limit
}

func (m *MemoryLimit) String() string {
	switch {
	case m == nil || m.Auto:
		return "auto"
	case m.Bytes == 0:
		return "off"
	}
	return (*ByteSize)(&m.Bytes).String()
}

func (m *MemoryLimit) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*m = MemoryLimit{Auto: true}
		return nil
	case "off", "0":
		*m = MemoryLimit{}
		return nil
	}
	var b ByteSize
	if err := b.Set(s); err != nil {
		return fmt.Errorf("%q is not a memory limit: want auto, off, or a size such as 4GiB", s)
	}
	*m = MemoryLimit{Bytes: int64(b)}
	return nil
}

// OneOf is a string flag restricted to a few values, matched regardless of
// case: Value is the one given, spelled as in Allowed.
type OneOf struct {
	Value   string
	Allowed []string
}

func (o *OneOf) String() string {
	if o == nil {
		return ""
	}
	return o.Value
}

func (o *OneOf) Set(s string) error {
	for _, a := range o.Allowed {
		if strings.EqualFold(s, a) {
			o.Value = a
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(o.Allowed, ", "))
}
