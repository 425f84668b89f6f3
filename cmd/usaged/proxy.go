package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/proxyd"
	"github.com/usaged/usaged/meter/route"
)

type proxyConfig struct {
	listen, upstream                 string
	routes                           *templateFlags
	server, token                    string
	spoolDir                         string
	spoolMax                         byteSize
	batch                            int
	preserveHost                     bool
	anonymous, anonymousOrg          string
	usagedTokens                     bool
	jwksURL, jwtIssuer, jwtAudience  string
	jwtOrg, jwtClient, jwtClientName string
	jwtUser                          string
	headerOrg, headerClient          string
	headerClientName, headerUser     string
	lookupRate                       float64
	lookupBurst                      int
	refusedTTL                       time.Duration
	maxPending                       int
	maxPendingBytes                  byteSize
	logFormat                        oneOf
	logLevel                         string
	shutdownTimeout                  time.Duration
	metricsAddr                      string
}

func (c *cli) proxyCommand() *command {
	cmd := c.newCommand("proxy", "meter an API without code changes: a reverse proxy that records every request",
		`Forwards every request to --upstream (bodies stream both ways; server-sent
events and websockets pass through) and records one usage event per request:
method, route template (from --templates, an OpenAPI 3 or Swagger 2 document in
JSON or YAML, or a list of templates; unmatched paths count under --catch-all), status, duration
and bytes, attributed to the organization, OAuth client and user of the
request's credentials: tokens issued by usaged (asked of --server), JWTs of
another identity provider (--jwks-url), or headers set by a trusted gateway.

Recording never blocks or fails a proxied request: events go to a durable spool
in --spool (fsynced every 100 ms, bounded by --spool-max-bytes) and are shipped
to --server in batches, with retries, using --token (an admin token, or a client
token with usage:event:add for one organization's events). If usaged is down,
events wait in the spool, across restarts of the proxy too; every event keeps
its id, so nothing is counted twice.`)
	cfg := &proxyConfig{spoolMax: 1 << 30, maxPendingBytes: meter.DefaultMaxRetryingBytes, logFormat: oneOf{value: "auto", allowed: []string{"auto", "text", "json"}}}
	f := cmd.Flags
	f.StringVar(&cfg.listen, "listen", "127.0.0.1:9090", "address to listen on")
	f.StringVar(&cfg.upstream, "upstream", "", "base URL of the API to forward to, e.g. http://127.0.0.1:9000 (required)")
	cfg.routes = addTemplateFlags(f)
	f.StringVar(&cfg.server, "server", "http://127.0.0.1:8080", "base URL of the usaged server events are shipped to")
	f.StringVar(&cfg.token, "token", "", "bearer token events are shipped with (this or --token-file is required); ps shows it to every user: prefer --token-file")
	f.String("token-file", "", "file holding the token events are shipped with (whitespace trimmed), instead of --token")
	f.StringVar(&cfg.spoolDir, "spool", "./usaged-spool", "directory of the durable event spool")
	f.Var(&cfg.spoolMax, "spool-max-bytes", "bound on the spool on disk; beyond it events are dropped and counted (a `size`, e.g. 1GiB)")
	f.IntVar(&cfg.batch, "batch", 5000, "events per shipment")
	f.BoolVar(&cfg.preserveHost, "preserve-host", false, "send the client's Host header upstream instead of the upstream's")
	f.StringVar(&cfg.anonymous, "anonymous-client", "", "record requests nobody could be identified for (no token, or a refused one) under this client id (with --anonymous-org); default: do not record them, only count them (--metrics-addr) and log the count every 10 s")
	f.StringVar(&cfg.anonymousOrg, "anonymous-org", "", "organization of --anonymous-client")
	f.BoolVar(&cfg.usagedTokens, "usaged-tokens", true, "attribute bearer tokens issued by --server's /oauth/token (asked once per token, cached)")
	f.Float64Var(&cfg.lookupRate, "token-lookup-rate", attrib.DefaultLookupRate, "lookups a second of unknown bearer tokens toward --server, in bursts of up to --token-lookup-burst; beyond, requests wait for attribution; negative: unbounded")
	f.IntVar(&cfg.lookupBurst, "token-lookup-burst", attrib.DefaultLookupBurst, "lookups of unknown tokens made at once before --token-lookup-rate applies")
	f.DurationVar(&cfg.refusedTTL, "refused-token-ttl", attrib.DefaultNegativeTTL, "how long a token --server refused is remembered as refused, without asking again")
	f.IntVar(&cfg.maxPending, "max-pending", meter.DefaultMaxRetrying, "requests kept waiting for attribution (--server unreachable, asking to wait, or lookups deferred); beyond, or beyond --max-pending-bytes, a request is recorded at once as unidentified")
	f.Var(&cfg.maxPendingBytes, "max-pending-bytes", "bound on the headers and URLs of the requests waiting for attribution (a `size`, e.g. 64MiB)")
	f.StringVar(&cfg.jwksURL, "jwks-url", "", "attribute JWTs verified against this JWKS URL (with --jwt-issuer and --jwt-audience)")
	f.StringVar(&cfg.jwtIssuer, "jwt-issuer", "", "required issuer (iss) of JWTs")
	f.StringVar(&cfg.jwtAudience, "jwt-audience", "", "required audience (aud) of JWTs")
	f.StringVar(&cfg.jwtOrg, "jwt-org-claim", attrib.DefaultOrgClaim, "JWT claim naming the organization")
	f.StringVar(&cfg.jwtClient, "jwt-client-claim", attrib.DefaultClientClaim, "JWT claim naming the OAuth client")
	f.StringVar(&cfg.jwtClientName, "jwt-client-name-claim", attrib.DefaultClientNameClaim, "JWT claim naming the client's name")
	f.StringVar(&cfg.jwtUser, "jwt-user-claim", attrib.DefaultUserClaim, "JWT claim naming the user")
	f.StringVar(&cfg.headerOrg, "header-org", "", "trust this request header (set by an upstream gateway) for the organization; with --header-client")
	f.StringVar(&cfg.headerClient, "header-client", "", "trusted header naming the OAuth client")
	f.StringVar(&cfg.headerClientName, "header-client-name", "", "trusted header naming the client's name")
	f.StringVar(&cfg.headerUser, "header-user", "", "trusted header naming the user")
	f.Var(&cfg.logFormat, "log-format", "log `format`: text, json, or auto")
	f.StringVar(&cfg.logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	f.StringVar(&cfg.metricsAddr, "metrics-addr", "", "serve the proxy's counters (requests recorded, unidentified, waiting for attribution; spool and shipping) at /metrics in the Prometheus format on this address, e.g. 127.0.0.1:9091; default: none")
	f.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGINT or SIGTERM, how long requests in flight may take to finish")
	cmd.Run = func(ctx context.Context) error { return c.proxy(ctx, cfg) }
	return cmd
}

// attributor asks the attribution sources the flags name.
func (cfg *proxyConfig) attributor(ctx context.Context) (attrib.Attributor, error) {
	var src attrib.Sources
	if cfg.headerOrg != "" || cfg.headerClient != "" {
		src.Headers = &attrib.HeaderConfig{Organization: cfg.headerOrg, Client: cfg.headerClient, ClientName: cfg.headerClientName, User: cfg.headerUser}
	}
	if cfg.jwksURL != "" {
		src.JWT = &attrib.JWTConfig{JWKSURL: cfg.jwksURL, Issuer: cfg.jwtIssuer, Audience: cfg.jwtAudience,
			OrgClaim: cfg.jwtOrg, ClientClaim: cfg.jwtClient, ClientNameClaim: cfg.jwtClientName, UserClaim: cfg.jwtUser}
	}
	if cfg.usagedTokens {
		src.Usaged = &attrib.UsagedConfig{Server: cfg.server, NegativeTTL: cfg.refusedTTL, LookupRate: cfg.lookupRate, LookupBurst: cfg.lookupBurst}
	}
	who, err := attrib.New(ctx, src)
	if errors.Is(err, attrib.ErrNoSource) {
		return nil, usageError{Err: errors.New("no attribution source: keep --usaged-tokens, or give --jwks-url or --header-org/--header-client")}
	} else if err != nil {
		return nil, usageError{Err: err}
	}
	return who, nil
}

func (c *cli) proxy(ctx context.Context, cfg *proxyConfig) error {
	log, err := newLogger(c.stderr, cfg.logFormat.value, cfg.logLevel)
	if err != nil {
		return err
	}
	up, err := url.Parse(cfg.upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return usageError{Err: fmt.Errorf("--upstream %q is not an http or https URL such as http://127.0.0.1:9000", cfg.upstream)}
	}
	if cfg.token == "" {
		return usageError{Err: errors.New("--token or --token-file is required: events are shipped to --server with it")}
	}
	if cfg.batch < 1 || cfg.batch > 100_000 {
		return usageError{Err: fmt.Errorf("--batch must be from 1 to 100000, got %d", cfg.batch)}
	}
	matcher, err := cfg.routes.matcher()
	if err != nil {
		return err
	}
	who, err := cfg.attributor(ctx)
	if err != nil {
		return err
	}
	p, err := proxyd.New(proxyd.Config{
		Listen: cfg.listen, Upstream: up, PreserveHost: cfg.preserveHost, Templates: matcher, Attributor: who,
		Server: cfg.server, Token: cfg.token, SpoolDir: cfg.spoolDir, SpoolMaxBytes: int64(cfg.spoolMax), Batch: cfg.batch,
		Anonymous: cfg.anonymous, AnonymousOrg: cfg.anonymousOrg, MaxPending: cfg.maxPending, MaxPendingBytes: int64(cfg.maxPendingBytes),
		KeepHeaders: cfg.keepHeaders(), MetricsAddr: cfg.metricsAddr, ShutdownTimeout: cfg.shutdownTimeout, Logger: log,
	})
	if errors.Is(err, proxyd.ErrConfig) {
		return usageError{Err: err}
	} else if err != nil {
		return err
	}
	return p.Run(ctx, func(addr net.Addr) {
		fmt.Fprintf(c.stdout, "proxying http://%s → %s, recording to %s\n", addr, strings.TrimRight(up.String(), "/"), cfg.server)
	})
}

// keepHeaders are the headers attribution reads, kept on disk with a
// request waiting for it: the bearer token's, and the trusted headers.
func (cfg *proxyConfig) keepHeaders() []string {
	h := []string{"Authorization"}
	for _, name := range []string{cfg.headerOrg, cfg.headerClient, cfg.headerClientName, cfg.headerUser} {
		if name != "" {
			h = append(h, name)
		}
	}
	return h
}

// templateFlags are the route-table flags of the metering commands.
type templateFlags struct{ file, catchAll string }

func addTemplateFlags(fs *flag.FlagSet) *templateFlags {
	t := &templateFlags{}
	fs.StringVar(&t.file, "templates", "", "route templates: an OpenAPI 3 or Swagger 2 document in JSON or YAML, or a file of one template per line (required)")
	fs.StringVar(&t.catchAll, "catch-all", route.DefaultCatchAll, "template under which paths no template matches are recorded")
	return t
}

// matcher loads the route table.
func (t *templateFlags) matcher() (*route.Matcher, error) {
	if t.file == "" {
		return nil, usageError{Err: errors.New("--templates is required: an OpenAPI document or a file of route templates")}
	}
	list, err := route.Load(t.file)
	if err != nil {
		return nil, err
	}
	return route.New(list, route.Options{CatchAll: t.catchAll})
}
