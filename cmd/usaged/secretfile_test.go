package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usaged/usaged/internal/cmdline"
)

// writeSecret writes a secret file of mode 0600 and returns its path.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every command that takes a secret inline takes it from a file too, from
// the command line or the environment; the two forms of one secret never
// silently contradict each other.
func TestSecretFiles(t *testing.T) {
	t.Parallel()
	tok := writeSecret(t, "token", "  from-file-token\n")
	adm := writeSecret(t, "admin", "admin-token-from-file-0123\n")
	empty := writeSecret(t, "empty", " \n")
	missing := filepath.Join(t.TempDir(), "missing")

	// parsed parses args as the command they name and returns the value of
	// the secret flag, or the error.
	parsed := func(env map[string]string, secret string, args ...string) (string, error) {
		t.Helper()
		p := (&cli{stdout: io.Discard, stderr: io.Discard}).program(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		cmd, err := p.Parse(args)
		if cmd == nil {
			t.Fatal(err)
		}
		if err != nil {
			return "", err
		}
		return cmd.Flags.Lookup(secret).Value.String(), nil
	}
	ok := func(env map[string]string, want string, args ...string) {
		t.Helper()
		secret := "token"
		if args[0] == "serve" {
			secret = "admin-token"
		}
		got, err := parsed(env, secret, args...)
		if err != nil || got != want {
			t.Errorf("%q with %v: --%s = %q, %v; want %q", args, env, secret, got, err, want)
		}
	}
	bad := func(env map[string]string, inMessage string, args ...string) {
		t.Helper()
		_, err := parsed(env, "token", args...)
		var ue cmdline.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), inMessage) {
			t.Errorf("%q with %v: %v, want a usage error with %q", args, env, err, inMessage)
		}
	}
	none := map[string]string{}

	// Every command with a secret flag has its file flag.
	for _, cmd := range (&cli{stdout: io.Discard, stderr: io.Discard}).commands() {
		for file, secret := range env.SecretFiles {
			if cmd.Flags.Lookup(secret) != nil && cmd.Flags.Lookup(file) == nil {
				t.Errorf("%s has --%s but no --%s", cmd.Name, secret, file)
			}
		}
	}
	// Every client command and the proxy: --token-file, trimmed.
	for _, cmd := range [][]string{{"org", "list"}, {"client", "create"}, {"query"}, {"demo"}, {"bench", "ingest"},
		{"bench", "query"}, {"partner", "list"}, {"reseller", "list"}, {"apikey", "list"}, {"import"}, {"proxy"}} {
		ok(none, "from-file-token", append(cmd, "--token-file", tok)...)
	}
	// The server: --admin-token-file.
	ok(none, "admin-token-from-file-0123", "serve", "--admin-token-file", adm)
	ok(map[string]string{"USAGED_ADMIN_TOKEN_FILE": adm}, "admin-token-from-file-0123", "serve")
	ok(map[string]string{"USAGED_ADMIN_TOKEN": "inline-admin-token-0123"}, "inline-admin-token-0123", "serve")

	// The environment, in order of precedence; the command line wins.
	ok(map[string]string{"USAGED_TOKEN_FILE": tok}, "from-file-token", "org", "list")
	ok(map[string]string{"USAGED_ADMIN_TOKEN_FILE": tok}, "from-file-token", "org", "list")
	ok(map[string]string{"USAGED_TOKEN_FILE": tok, "USAGED_ADMIN_TOKEN": "admin"}, "from-file-token", "org", "list")
	ok(map[string]string{"USAGED_TOKEN": "client", "USAGED_ADMIN_TOKEN_FILE": tok}, "client", "org", "list")
	ok(map[string]string{"USAGED_TOKEN": "client"}, "from-file-token", "org", "list", "--token-file", tok)
	ok(map[string]string{"USAGED_TOKEN_FILE": tok}, "inline", "org", "list", "--token", "inline")
	ok(map[string]string{"USAGED_ADMIN_TOKEN": "inline-admin-token-0123"}, "admin-token-from-file-0123", "serve", "--admin-token-file", adm)

	// Contradictions and unusable files are usage errors that say what to do.
	bad(none, "--token and --token-file are mutually exclusive", "org", "list", "--token", "x", "--token-file", tok)
	bad(none, "--admin-token and --admin-token-file are mutually exclusive", "serve", "--admin-token", "x", "--admin-token-file", adm)
	bad(none, "--token and --token-file are mutually exclusive", "proxy", "--token-file", tok, "--token", "x")
	bad(map[string]string{"USAGED_TOKEN": "x", "USAGED_TOKEN_FILE": tok}, "$USAGED_TOKEN and $USAGED_TOKEN_FILE are both set", "org", "list")
	bad(map[string]string{"USAGED_ADMIN_TOKEN": "x", "USAGED_ADMIN_TOKEN_FILE": tok}, "$USAGED_ADMIN_TOKEN and $USAGED_ADMIN_TOKEN_FILE are both set", "org", "list")
	bad(map[string]string{"USAGED_ADMIN_TOKEN": "x", "USAGED_ADMIN_TOKEN_FILE": adm}, "$USAGED_ADMIN_TOKEN and $USAGED_ADMIN_TOKEN_FILE are both set", "serve")
	bad(none, "--token-file: open "+missing, "org", "list", "--token-file", missing)
	bad(none, "--token-file: "+empty+" is empty: put the token in it", "org", "list", "--token-file", empty)
	bad(none, "--admin-token-file: "+empty+" is empty: put the admin token in it", "serve", "--admin-token-file", empty)
}

// A server started with its admin token in a file, and client commands
// given theirs the same way, work together, and neither secret is on a
// command line: the client runs as a real process whose arguments any user
// could read.
func TestSecretFilesEndToEnd(t *testing.T) {
	t.Parallel()
	const admin = "admin-token-kept-in-a-file"
	adm := writeSecret(t, "admin", admin+"\n")
	s := mustServe(t, "--data", t.TempDir(), "--admin-token-file", adm)

	out := runCLI(t, nil, "org", "create", "--server", s.base, "--token-file", adm, "--name", "Acme")
	if !strings.Contains(out, "Acme") {
		t.Fatalf("org create printed %q", out)
	}
	if _, err := tryCLI(t, nil, "org", "list", "--server", s.base, "--token-file", writeSecret(t, "wrong", "not-the-admin-token\n")); err == nil {
		t.Fatal("a wrong token from a file was accepted")
	}

	bin, err := buildUsaged()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "org", "list", "--server", s.base)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USAGED_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "USAGED_TOKEN_FILE="+adm)
	list, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(list), "Acme") {
		t.Fatalf("usaged org list with $USAGED_TOKEN_FILE: %v\n%s", err, list)
	}
	if strings.Contains(strings.Join(cmd.Args, " "), admin) {
		t.Fatal("the admin token is on the command line")
	}
}
