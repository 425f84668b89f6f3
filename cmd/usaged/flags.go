package main

import (
	"fmt"

	"github.com/usaged/usaged/internal/cmdline"
)

// env names the variables behind every flag. The flags of serve and those
// shared by every command that has them, because they mean the same in
// each (where the server is and how to reach it, how a daemon logs and
// stops), read USAGED_ and the name in upper snake case: one exported
// USAGED_SERVER or USAGED_TOKEN serves every client command. Every other
// command's own flags read USAGED_, the command and the name, because the
// same name means different things in different commands (--format is
// table, csv or json for query, text or json elsewhere, a log format for
// import): --format of query is USAGED_QUERY_FORMAT, --org of client create
// USAGED_CLIENT_CREATE_ORG. A --token flag also falls back to
// USAGED_ADMIN_TOKEN, and --token-file to USAGED_ADMIN_TOKEN_FILE, so that
// the variable a server was started with serves every client command too.
//
// A secret given inline is readable by every user of the machine (ps,
// /proc/<pid>/cmdline), a file of mode 0600 only by its owner: each secret
// flag has a file flag that keeps the secret out of sight, the inline form
// stays for scripts and tests.
var env = cmdline.Env{
	Prefix: "USAGED",
	Daemon: "serve",
	Shared: map[string]bool{
		"server": true, "token": true, "token-file": true, "timeout": true,
		"log-format": true, "log-level": true, "shutdown-timeout": true,
	},
	Fallbacks:   map[string][]string{"token": {"USAGED_ADMIN_TOKEN"}, "token-file": {"USAGED_ADMIN_TOKEN_FILE"}},
	SecretFiles: map[string]string{"token-file": "token", "admin-token-file": "admin-token"},
}

// bound is a flag's value and the range it must be in.
type bound struct {
	flag          string
	val, min, max int
}

// inRange is the usage error of the first flag out of its range, or nil.
func inRange(bounds ...bound) error {
	for _, b := range bounds {
		if b.val < b.min || b.val > b.max {
			return cmdline.UsageError{Err: fmt.Errorf("--%s must be from %d to %d, got %d", b.flag, b.min, b.max, b.val)}
		}
	}
	return nil
}
