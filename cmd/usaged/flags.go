package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// envNames returns the environment variables that back flag name, in order
// of precedence: USAGED_ and the name in upper snake case. A --token flag
// also falls back to USAGED_ADMIN_TOKEN, and --token-file to
// USAGED_ADMIN_TOKEN_FILE, so that the variable a server was started with
// serves every client command too.
func envNames(name string) []string {
	n := "USAGED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	switch name {
	case "token":
		return []string{n, "USAGED_ADMIN_TOKEN"}
	case "token-file":
		return []string{n, "USAGED_ADMIN_TOKEN_FILE"}
	}
	return []string{n}
}

// documentEnv appends each flag's environment variables to its help text.
func documentEnv(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "$USAGED_") {
			f.Usage += " [$" + strings.Join(envNames(f.Name), ", $") + "]"
		}
	})
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if one is set. It runs after fs.Parse, so the
// command line always wins.
//
// A secret and its file flag (secretFiles) are one setting: either given on
// the command line leaves both alone, the variable of higher precedence
// wins (USAGED_TOKEN_FILE over USAGED_ADMIN_TOKEN), and both set at the
// same precedence (USAGED_TOKEN and USAGED_TOKEN_FILE) is an error.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		partner := secretPartner(fs, f.Name)
		if given[f.Name] || partner != "" && given[partner] {
			return
		}
		for level, env := range envNames(f.Name) {
			v, ok := lookup(env)
			if !ok {
				continue
			}
			if partner != "" {
				other := envNames(partner)
				for l := 0; l <= level && l < len(other); l++ {
					if _, set := lookup(other[l]); !set {
						continue
					}
					if l == level && secretFiles[partner] == f.Name { // reported once, by the inline secret
						errs = append(errs, fmt.Errorf("$%s and $%s are both set: set one", env, other[l]))
					}
					return
				}
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for $%s (--%s): %v", v, env, f.Name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// listValue is a comma-separated list flag. Repeating the flag appends.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// dayDuration is a duration flag that also accepts a whole number of days
// with a d suffix, alone or before a Go duration: "35d", "1d12h", "840h".
type dayDuration time.Duration

func (d *dayDuration) String() string {
	v := time.Duration(*d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *dayDuration) Set(s string) error {
	v, err := parseDayDuration(s)
	if err != nil {
		return err
	}
	*d = dayDuration(v)
	return nil
}

func parseDayDuration(s string) (time.Duration, error) {
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

// byteSize is a size flag: a number of bytes, optionally with a binary unit
// suffix (KiB, MiB, GiB; K, M, G and KB, MB, GB mean the same).
type byteSize int64

func (b *byteSize) String() string {
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

func (b *byteSize) Set(s string) error {
	t, mult := splitUnit(strings.TrimSpace(s))
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return fmt.Errorf("%q is not a positive size: want e.g. 16MiB, 512KiB or 1048576", s)
	}
	*b = byteSize(n * mult)
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

// oneOf is a string flag restricted to a few values.
type oneOf struct {
	value   string
	allowed []string
}

func (o *oneOf) String() string {
	if o == nil {
		return ""
	}
	return o.value
}

func (o *oneOf) Set(s string) error {
	for _, a := range o.allowed {
		if strings.EqualFold(s, a) {
			o.value = a
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(o.allowed, ", "))
}
