package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// Env says which environment variables back the flags of a program's
// commands, and which flags hold secrets that may also come from a file.
type Env struct {
	Prefix string // "USAGED": every variable starts with it and _
	// Daemon is the command whose flags read Prefix_FLAG, like the Shared
	// flags of every command; the other commands' own flags read
	// Prefix_COMMAND_FLAG.
	Daemon string
	Shared map[string]bool
	// Fallbacks are further variables of a flag, of lower precedence than
	// its own: "token": {"USAGED_ADMIN_TOKEN"}.
	Fallbacks map[string][]string
	// SecretFiles pairs each flag naming a file that holds a secret with
	// the flag of the secret itself: "token-file": "token". The two are one
	// setting, on the command line and in the environment.
	SecretFiles map[string]string
}

// Names returns the environment variables that back flag name of command,
// in order of precedence.
func (e Env) Names(command, name string) []string {
	prefix := e.Prefix + "_"
	if command != e.Daemon && !e.Shared[name] {
		prefix += word(command) + "_"
	}
	return append([]string{prefix + word(name)}, e.Fallbacks[name]...)
}

// word is s in upper snake case: "bench query" is BENCH_QUERY.
func word(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(s))
}

// Document appends each flag's environment variables to its help text.
func (e Env) Document(command string, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "$"+e.Prefix+"_") {
			f.Usage += " [$" + strings.Join(e.Names(command, f.Name), ", $") + "]"
		}
	})
}

// Apply sets every flag of command not given on the command line from its
// environment variable, if one is set. It runs after fs.Parse, so the
// command line always wins; program names the program in errors.
//
// A secret and its file flag (SecretFiles) are one setting: either given on
// the command line leaves both alone, the variable of higher precedence
// wins (USAGED_TOKEN_FILE over USAGED_ADMIN_TOKEN), and both set at the
// same precedence (USAGED_TOKEN and USAGED_TOKEN_FILE) is an error.
func (e Env) Apply(program, command string, fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		partner := e.secretPartner(fs, f.Name)
		if given[f.Name] || partner != "" && given[partner] {
			return
		}
		for level, env := range e.Names(command, f.Name) {
			v, ok := lookup(env)
			if !ok {
				continue
			}
			if partner != "" {
				other := e.Names(command, partner)
				for l := 0; l <= level && l < len(other); l++ {
					if _, set := lookup(other[l]); !set {
						continue
					}
					if l == level && e.SecretFiles[partner] == f.Name { // reported once, by the inline secret
						errs = append(errs, fmt.Errorf("$%s and $%s are both set: set one", env, other[l]))
					}
					return
				}
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, badEnv(fmt.Sprintf("--%s of %s %s", f.Name, program, command), f, env, v, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// badEnv is the error for a variable whose value the flag refuses. The
// standard flag types say only "parse error", so the message says what the
// flag wants; a program's own types say it in their error.
func badEnv(where string, f *flag.Flag, env, v string, err error) error {
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

// secretPartner returns the other flag of name's pair in fs, or "".
func (e Env) secretPartner(fs *flag.FlagSet, name string) string {
	other := e.SecretFiles[name]
	for file, secret := range e.SecretFiles {
		if secret == name {
			other = file
		}
	}
	if other == "" || fs.Lookup(other) == nil {
		return ""
	}
	return other
}

// checkSecretFlags refuses a secret given both inline and as a file on the
// command line, where the two would contradict each other.
func (e Env) checkSecretFlags(fs *flag.FlagSet) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for file, secret := range e.SecretFiles {
		if given[file] && given[secret] {
			return fmt.Errorf("--%s and --%s are mutually exclusive: give one (--%s keeps the secret out of ps)", secret, file, file)
		}
	}
	return nil
}

// readSecretFiles sets each secret whose file flag is set from that file,
// with surrounding whitespace (the newline an editor or echo leaves)
// trimmed. It runs once the command line and the environment are applied.
func (e Env) readSecretFiles(fs *flag.FlagSet) error {
	for file, secret := range e.SecretFiles {
		ff, sf := fs.Lookup(file), fs.Lookup(secret)
		if ff == nil || sf == nil || ff.Value.String() == "" {
			continue
		}
		path := ff.Value.String()
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--%s: %w", file, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return fmt.Errorf("--%s: %s is empty: put the %s in it", file, path, strings.ReplaceAll(secret, "-", " "))
		}
		if err := sf.Value.Set(v); err != nil {
			return fmt.Errorf("--%s: %w", file, err)
		}
	}
	return nil
}
