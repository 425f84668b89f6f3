package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/internal/cmdline"
)

// remoteFlags are the flags of every command that talks to a server.
type remoteFlags struct {
	server  string
	token   string
	timeout time.Duration
}

func addRemoteFlags(fs *flag.FlagSet, tokenHelp string) *remoteFlags {
	r := &remoteFlags{}
	fs.StringVar(&r.server, "server", "http://127.0.0.1:8080", "base URL of the usaged server")
	fs.StringVar(&r.token, "token", "", tokenHelp+"; ps shows it to every user: prefer --token-file")
	fs.String("token-file", "", "file holding the token (whitespace trimmed), instead of --token")
	fs.DurationVar(&r.timeout, "timeout", time.Minute, "limit on each HTTP request")
	return r
}

// client returns an API client for the flags; needToken makes a missing
// token an error.
func (r *remoteFlags) client(needToken bool, maxConns int) (*client.Client, error) {
	u, err := url.Parse(r.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, cmdline.UsageError{Err: fmt.Errorf("--server %q is not an http or https URL such as http://127.0.0.1:8080", r.server)}
	}
	if needToken && r.token == "" {
		return nil, cmdline.UsageError{Err: errors.New("--token or --token-file is required: the admin token (also from $USAGED_TOKEN, $USAGED_TOKEN_FILE, $USAGED_ADMIN_TOKEN or $USAGED_ADMIN_TOKEN_FILE)")}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every worker keeps its own connection alive between batches.
	tr.MaxIdleConnsPerHost = max(maxConns, 2)
	tr.DisableCompression = true
	return client.New(client.Config{Server: r.server, Token: r.token, UserAgent: "usaged/" + version,
		HTTPClient: &http.Client{Transport: tr, Timeout: r.timeout}})
}
