package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/proxyd"
	"github.com/usaged/usaged/meter/route"
)

func (c *cli) proxyCommand() *cmdline.Command {
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
	cfg := proxyd.DefaultConfig()
	headers := attrib.HeaderConfig{}
	jwt := attrib.JWTConfig{OrgClaim: attrib.DefaultOrgClaim, ClientClaim: attrib.DefaultClientClaim,
		ClientNameClaim: attrib.DefaultClientNameClaim, UserClaim: attrib.DefaultUserClaim}
	usaged := attrib.UsagedConfig{NegativeTTL: attrib.DefaultNegativeTTL, LookupRate: attrib.DefaultLookupRate, LookupBurst: attrib.DefaultLookupBurst}
	usagedTokens := true
	logFormat := flagvalue.OneOf{Value: "auto", Allowed: []string{"auto", "text", "json"}}
	var upstream, logLevel string
	f := cmd.Flags
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on")
	f.StringVar(&upstream, "upstream", "", "base URL of the API to forward to, e.g. http://127.0.0.1:9000 (required)")
	routes := addTemplateFlags(f)
	f.StringVar(&cfg.Server, "server", cfg.Server, "base URL of the usaged server events are shipped to")
	f.StringVar(&cfg.Token, "token", "", "bearer token events are shipped with (this or --token-file is required); ps shows it to every user: prefer --token-file")
	f.String("token-file", "", "file holding the token events are shipped with (whitespace trimmed), instead of --token")
	f.StringVar(&cfg.SpoolDir, "spool", cfg.SpoolDir, "directory of the durable event spool")
	f.Var((*flagvalue.ByteSize)(&cfg.SpoolMaxBytes), "spool-max-bytes", "bound on the spool on disk; beyond it events are dropped and counted (a `size`, e.g. 1GiB)")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "events per shipment")
	f.BoolVar(&cfg.PreserveHost, "preserve-host", false, "send the client's Host header upstream instead of the upstream's")
	f.StringVar(&cfg.Anonymous, "anonymous-client", "", "record requests nobody could be identified for (no token, or a refused one) under this client id (with --anonymous-org); default: do not record them, only count them (--metrics-addr) and log the count every 10 s")
	f.StringVar(&cfg.AnonymousOrg, "anonymous-org", "", "organization of --anonymous-client")
	f.BoolVar(&usagedTokens, "usaged-tokens", usagedTokens, "attribute bearer tokens issued by --server's /oauth/token (asked once per token, cached)")
	f.Float64Var(&usaged.LookupRate, "token-lookup-rate", usaged.LookupRate, "lookups a second of unknown bearer tokens toward --server, in bursts of up to --token-lookup-burst; beyond, requests wait for attribution; negative: unbounded")
	f.IntVar(&usaged.LookupBurst, "token-lookup-burst", usaged.LookupBurst, "lookups of unknown tokens made at once before --token-lookup-rate applies")
	f.DurationVar(&usaged.NegativeTTL, "refused-token-ttl", usaged.NegativeTTL, "how long a token --server refused is remembered as refused, without asking again")
	f.IntVar(&cfg.MaxPending, "max-pending", cfg.MaxPending, "requests kept waiting for attribution (--server unreachable, asking to wait, or lookups deferred); beyond, or beyond --max-pending-bytes, a request is recorded at once as unidentified")
	f.Var((*flagvalue.ByteSize)(&cfg.MaxPendingBytes), "max-pending-bytes", "bound on the headers and URLs of the requests waiting for attribution (a `size`, e.g. 64MiB)")
	f.StringVar(&jwt.JWKSURL, "jwks-url", "", "attribute JWTs verified against this JWKS URL (with --jwt-issuer and --jwt-audience)")
	f.StringVar(&jwt.Issuer, "jwt-issuer", "", "required issuer (iss) of JWTs")
	f.StringVar(&jwt.Audience, "jwt-audience", "", "required audience (aud) of JWTs")
	f.StringVar(&jwt.OrgClaim, "jwt-org-claim", jwt.OrgClaim, "JWT claim naming the organization")
	f.StringVar(&jwt.ClientClaim, "jwt-client-claim", jwt.ClientClaim, "JWT claim naming the OAuth client")
	f.StringVar(&jwt.ClientNameClaim, "jwt-client-name-claim", jwt.ClientNameClaim, "JWT claim naming the client's name")
	f.StringVar(&jwt.UserClaim, "jwt-user-claim", jwt.UserClaim, "JWT claim naming the user")
	f.StringVar(&headers.Organization, "header-org", "", "trust this request header (set by an upstream gateway) for the organization; with --header-client")
	f.StringVar(&headers.Client, "header-client", "", "trusted header naming the OAuth client")
	f.StringVar(&headers.ClientName, "header-client-name", "", "trusted header naming the client's name")
	f.StringVar(&headers.User, "header-user", "", "trusted header naming the user")
	f.Var(&logFormat, "log-format", "log `format`: text, json, or auto")
	f.StringVar(&logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	f.BoolVar(&cfg.Enforce, "enforce", cfg.Enforce, "answer 429 to a client over a usage limit marked enforced, following the limits from --server (the token needs usage:limit:view, or be the admin token)")
	f.BoolVar(&cfg.FailClosed, "fail-closed", false, "with --enforce, answer 503 to identified clients while the limits are not known (before --server first answers, and once nothing was heard from it for --limits-stale); default: fail open, on the last limits known")
	f.DurationVar(&cfg.Stale, "limits-stale", cfg.Stale, "with --enforce, how long without a word from --server before the limits count as unknown")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve the proxy's counters (requests recorded, unidentified, waiting for attribution; spool and shipping) at /metrics in the Prometheus format on this address, e.g. 127.0.0.1:9091; default: none")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGINT or SIGTERM, how long requests in flight may take to finish")
	cmd.Run = func(ctx context.Context) error {
		// The attribution sources are those the flags name; the headers
		// attribution reads are kept on disk with a request waiting for it.
		var src attrib.Sources
		if headers.Organization != "" || headers.Client != "" {
			src.Headers = &headers
		}
		if jwt.JWKSURL != "" {
			src.JWT = &jwt
		}
		if usagedTokens {
			usaged.Server = cfg.Server
			src.Usaged = &usaged
		}
		cfg.KeepHeaders = []string{"Authorization"}
		for _, name := range []string{headers.Organization, headers.Client, headers.ClientName, headers.User} {
			if name != "" {
				cfg.KeepHeaders = append(cfg.KeepHeaders, name)
			}
		}
		return c.proxy(ctx, cfg, src, upstream, routes, logFormat.Value, logLevel)
	}
	return cmd
}

func (c *cli) proxy(ctx context.Context, cfg proxyd.Config, src attrib.Sources, upstream string, routes *templateFlags, logFormat, logLevel string) (err error) {
	if cfg.Logger, err = cmdline.NewLogger(c.stderr, logFormat, logLevel); err != nil {
		return err
	}
	up, err := url.Parse(upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return cmdline.UsageError{Err: fmt.Errorf("--upstream %q is not an http or https URL such as http://127.0.0.1:9000", upstream)}
	}
	cfg.Upstream = up
	if cfg.Token == "" {
		return cmdline.UsageError{Err: errors.New("--token or --token-file is required: events are shipped to --server with it")}
	}
	if err := inRange(bound{"batch", cfg.Batch, 1, 100_000}); err != nil {
		return err
	}
	if cfg.Templates, err = routes.matcher(); err != nil {
		return err
	}
	cfg.Attributor, err = attrib.New(ctx, src)
	if errors.Is(err, attrib.ErrNoSource) {
		return cmdline.UsageError{Err: errors.New("no attribution source: keep --usaged-tokens, or give --jwks-url or --header-org/--header-client")}
	} else if err != nil {
		return cmdline.UsageError{Err: err}
	}
	p, err := proxyd.New(cfg)
	if errors.Is(err, proxyd.ErrConfig) {
		return cmdline.UsageError{Err: err}
	} else if err != nil {
		return err
	}
	return p.Run(ctx, func(addr net.Addr) {
		fmt.Fprintf(c.stdout, "proxying http://%s → %s, recording to %s\n", addr, strings.TrimRight(up.String(), "/"), cfg.Server)
	})
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
		return nil, cmdline.UsageError{Err: errors.New("--templates is required: an OpenAPI document or a file of route templates")}
	}
	list, err := route.Load(t.file)
	if err != nil {
		return nil, err
	}
	return route.New(list, route.Options{CatchAll: t.catchAll})
}
