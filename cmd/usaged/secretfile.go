package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// secretFiles pairs each flag naming a file that holds a secret with the
// flag of the secret itself. A command line is readable by every user of
// the machine (ps, /proc/<pid>/cmdline), a file of mode 0600 only by its
// owner: the file form keeps the secret out of sight, the inline form stays
// for scripts and tests.
var secretFiles = map[string]string{"token-file": "token", "admin-token-file": "admin-token"}

// secretPartner returns the other flag of name's pair in fs, or "".
func secretPartner(fs *flag.FlagSet, name string) string {
	other := secretFiles[name]
	for file, secret := range secretFiles {
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
func checkSecretFlags(fs *flag.FlagSet) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for file, secret := range secretFiles {
		if given[file] && given[secret] {
			return fmt.Errorf("--%s and --%s are mutually exclusive: give one (--%s keeps the secret out of ps)", secret, file, file)
		}
	}
	return nil
}

// readSecretFiles sets each secret whose file flag is set from that file,
// with surrounding whitespace (the newline an editor or echo leaves)
// trimmed. It runs once the command line and the environment are applied.
func readSecretFiles(fs *flag.FlagSet) error {
	for file, secret := range secretFiles {
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
