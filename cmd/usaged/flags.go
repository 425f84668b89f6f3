package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/usaged/usaged/internal/flagvalue"
)

// sharedEnv lists the flags whose variable is shared by every command that
// has them, because they mean the same in each: where the server is and how
// to reach it, and how a daemon logs and stops. One exported USAGED_SERVER or
// USAGED_TOKEN serves every client command.
var sharedEnv = map[string]bool{
	"server": true, "token": true, "token-file": true, "timeout": true,
	"log-format": true, "log-level": true, "shutdown-timeout": true,
}

// envNames returns the environment variables that back flag name of
// command, in order of precedence. The flags of serve and the shared flags
// (sharedEnv) read USAGED_ and the name in upper snake case; every other
// command's own flags read USAGED_, the command and the name, because the
// same name means different things in different commands (--format is
// table, csv or json for query, text or json elsewhere, a log format for
// import): --format of query is USAGED_QUERY_FORMAT, --org of client create
// USAGED_CLIENT_CREATE_ORG. A --token flag also falls back to
// USAGED_ADMIN_TOKEN, and --token-file to USAGED_ADMIN_TOKEN_FILE, so that
// the variable a server was started with serves every client command too.
func envNames(command, name string) []string {
	prefix := "USAGED_"
	if command != "serve" && !sharedEnv[name] {
		prefix += envWord(command) + "_"
	}
	n := prefix + envWord(name)
	switch name {
	case "token":
		return []string{n, "USAGED_ADMIN_TOKEN"}
	case "token-file":
		return []string{n, "USAGED_ADMIN_TOKEN_FILE"}
	}
	return []string{n}
}

// envWord is s in upper snake case: "bench query" is BENCH_QUERY.
func envWord(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(s))
}

// commandOf returns the command whose flags fs holds, from its name.
func commandOf(fs *flag.FlagSet) string { return strings.TrimPrefix(fs.Name(), "usaged ") }

// documentEnv appends each flag's environment variables to its help text.
func documentEnv(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "$USAGED_") {
			f.Usage += " [$" + strings.Join(envNames(commandOf(fs), f.Name), ", $") + "]"
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
		for level, env := range envNames(commandOf(fs), f.Name) {
			v, ok := lookup(env)
			if !ok {
				continue
			}
			if partner != "" {
				other := envNames(commandOf(fs), partner)
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
				errs = append(errs, badEnv(fs, f, env, v, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// badEnv is the error for a variable whose value the flag refuses. The
// standard flag types say only "parse error", so the message says what the
// flag wants; usaged's own types say it in their error.
func badEnv(fs *flag.FlagSet, f *flag.Flag, env, v string, err error) error {
	where := fmt.Sprintf("--%s of usaged %s", f.Name, commandOf(fs))
	want := ""
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		want = "a boolean: true or false (or 1, 0)"
	} else {
		switch fmt.Sprintf("%T", f.Value) {
		case "*flag.intValue", "*flag.int64Value":
			want = "an integer"
		case "*flag.uintValue", "*flag.uint64Value":
			want = "a non-negative integer"
		case "*flag.float64Value":
			want = "a number"
		case "*flag.durationValue":
			want = "a duration such as 500ms, 30s, 5m or 2h"
		}
	}
	if want == "" {
		return fmt.Errorf("$%s (%s): %v", env, where, err)
	}
	return fmt.Errorf("$%s=%q is not %s (%s)", env, v, want, where)
}

// Flag values of package flagvalue, under the names the commands use.
type (
	listValue   = flagvalue.List
	dayDuration = flagvalue.DayDuration
	byteSize    = flagvalue.ByteSize
)

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
