package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/querytable"
	"github.com/usaged/usaged/usage"
)

type queryFlags struct {
	remote       *remoteFlags
	clientID     string
	clientSecret string
	client       string
	interval     string
	granularity  string
	groupBy      flagvalue.List
	metrics      flagvalue.List
	timeZone     string
	format       flagvalue.OneOf
	poll         client.Poll // --poll and --wait
}

func (c *cli) queryCommand() *cmdline.Command {
	cmd := c.newCommand("query", "query usage counts through the Genesys usage query",
		`Starts an organization usage query (POST /api/v2/usage/query), or with --client
a client usage query (POST /api/v2/oauth/clients/{clientId}/usage/query), and
polls its results URI until it is complete, as any Genesys client does. The
query answers for the organization of the token: use a client's token, or its
--client-id and --client-secret (through /oauth/token), not the admin token.

With --time-zone, days, weeks and months are those of an IANA time zone: the
Genesys query knows only UTC, so the query goes to usaged's aggregate (POST
/api/v2/usage/aggregate) instead, which needs usage:organization:view. So
does a query whose --metrics name one of usaged's latency and traffic
measures, which the Genesys query does not have: durationP50, durationP90,
durationP95, durationP99, durationMax and durationAvg (in ms; percentiles
within 1 %, exact up to 98 ms; events without a duration are not counted)
and requestBytes and responseBytes (exact sums). The table totals the
counts and bytes, not the durations.

The table shows the date (with a granularity), the grouped dimensions and the
chosen metrics, and a total; csv shows the same columns; json prints the
results document as the server sent it.`)
	f := &queryFlags{format: flagvalue.OneOf{Value: "table", Allowed: []string{"table", "csv", "json"}}}
	f.remote = addRemoteFlags(cmd.Flags, "bearer token: a client access token")
	fs := cmd.Flags
	fs.StringVar(&f.clientID, "client-id", "", "OAuth client id, to get a token with the client-credentials grant")
	fs.StringVar(&f.clientSecret, "client-secret", "", "OAuth client secret, with --client-id")
	fs.StringVar(&f.client, "client", "", "the OAuth client `id` whose usage to query, instead of the whole organization's")
	fs.StringVar(&f.interval, "interval", "", "ISO-8601 interval, required: 2026-01-01/2026-01-31, 2026-01-01T00:00:00Z/P7D, P30D/2026-02-01")
	fs.StringVar(&f.granularity, "granularity", "", "time buckets: Hour, Day, Week or Month; empty for one row per group over the whole interval")
	fs.Var(&f.groupBy, "group-by", "comma-separated `dimensions`: OAuthClientId, OrganizationId, UserId, TemplateUri, HttpMethod (default OAuthClientId)")
	fs.Var(&f.metrics, "metrics", "comma-separated `metrics`: Requests, Status200, Status300, Status400, Status500, Status429 (default all counts), or the measures durationP50, durationP90, durationP95, durationP99, durationMax, durationAvg, requestBytes, responseBytes")
	fs.StringVar(&f.timeZone, "time-zone", "", "IANA time `zone` of the days, weeks and months, such as Europe/Berlin (default UTC)")
	fs.Var(&f.format, "format", "output `format`: table, csv or json")
	fs.DurationVar(&f.poll.Interval, "poll", 100*time.Millisecond, "first interval between polls of the results; it doubles up to 2s")
	fs.DurationVar(&f.poll.Timeout, "wait", 5*time.Minute, "how long to wait for the query to complete")
	cmd.Run = func(ctx context.Context) error { return c.query(ctx, f) }
	return cmd
}

func (c *cli) query(ctx context.Context, f *queryFlags) error {
	if f.interval == "" {
		return cmdline.UsageError{Err: errors.New("--interval is required, e.g. --interval 2026-01-01/2026-01-31")}
	}
	if f.poll.Interval <= 0 || f.poll.Timeout <= 0 {
		return cmdline.UsageError{Err: errors.New("--poll and --wait must be positive")}
	}
	// The server validates every name; the client only needs the columns.
	req := queryRequest(f.interval, f.granularity, f.groupBy, f.metrics)
	cols := querytable.Columns(f.granularity, f.groupBy, f.metrics)

	api, err := f.remote.client(false, 1)
	if err != nil {
		return err
	}
	switch {
	case f.clientID != "":
		if f.clientSecret == "" {
			return cmdline.UsageError{Err: errors.New("--client-id needs --client-secret")}
		}
		tok, err := api.AccessToken(ctx, f.clientID, f.clientSecret)
		if err != nil {
			return err
		}
		api = api.WithToken(tok.AccessToken)
	case f.remote.token == "":
		return cmdline.UsageError{Err: errors.New("query needs --token (or $USAGED_TOKEN), or --client-id and --client-secret")}
	}
	var doc []byte
	if f.timeZone != "" || wantsMeasures(f.metrics) {
		agg := wire.AggregateRequest{Interval: f.interval, Granularity: f.granularity, GroupBy: f.groupBy, Metrics: f.metrics, TimeZone: f.timeZone}
		if len(agg.GroupBy) == 0 {
			agg.GroupBy = []string{"OAuthClientId"} // the Genesys query's default
		}
		if f.client != "" {
			agg.Filter = &wire.AggregateFilter{ClientIDs: []string{f.client}}
		}
		res, err := api.Aggregate(ctx, agg)
		if err != nil {
			return err
		}
		if doc, err = json.Marshal(res); err != nil {
			return err
		}
	} else {
		path := client.OrganizationQueryPath
		if f.client != "" {
			path = client.ClientQueryPath(f.client)
		}
		ex, err := api.Query(ctx, path, req, f.poll)
		if err != nil {
			return err
		}
		doc = ex.Raw
	}
	if f.format.Value == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return fmt.Errorf("the server's answer is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	rows, err := querytable.Rows(doc)
	if err != nil {
		return err
	}
	if f.format.Value == "csv" {
		return querytable.WriteCSV(c.stdout, cols, rows)
	}
	return querytable.WriteTable(c.stdout, cols, rows, f.interval)
}

// wantsMeasures reports whether metrics name a measure, which only the
// aggregate answers. Names that are none are left to the server to refuse.
func wantsMeasures(metrics []string) bool {
	for _, name := range metrics {
		if m, err := usage.ParseMetric(name); err == nil && m.IsMeasure() {
			return true
		}
	}
	return false
}

// queryRequest is the body of a usage query; empty values are left out.
func queryRequest(interval, granularity string, groupBy, metrics []string) wire.UsageQueryRequest {
	req := wire.UsageQueryRequest{Interval: &interval, GroupBy: groupBy, Metrics: metrics}
	if granularity != "" {
		req.Granularity = &granularity
	}
	return req
}
