package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

type queryFlags struct {
	remote       *remoteFlags
	clientID     string
	clientSecret string
	client       string
	interval     string
	granularity  string
	groupBy      listValue
	metrics      listValue
	format       oneOf
	poll         time.Duration
	wait         time.Duration
}

func (c *cli) queryCommand() *command {
	cmd := c.newCommand("query", "query usage counts through the Genesys usage query",
		`Starts an organization usage query (POST /api/v2/usage/query), or with --client
a client usage query (POST /api/v2/oauth/clients/{clientId}/usage/query), and
polls its results URI until it is complete, as any Genesys client does. The
query answers for the organization of the token: use a client's token, or its
--client-id and --client-secret (through /oauth/token), not the admin token.

The table shows the date (with a granularity), the grouped dimensions and the
chosen metrics, and a total; csv shows the same columns; json prints the
results document as the server sent it.`)
	f := &queryFlags{format: oneOf{value: "table", allowed: []string{"table", "csv", "json"}}}
	f.remote = addRemoteFlags(cmd.Flags, "bearer token: a client access token")
	fs := cmd.Flags
	fs.StringVar(&f.clientID, "client-id", "", "OAuth client id, to get a token with the client-credentials grant")
	fs.StringVar(&f.clientSecret, "client-secret", "", "OAuth client secret, with --client-id")
	fs.StringVar(&f.client, "client", "", "the OAuth client `id` whose usage to query, instead of the whole organization's")
	fs.StringVar(&f.interval, "interval", "", "ISO-8601 interval, required: 2026-01-01/2026-01-31, 2026-01-01T00:00:00Z/P7D, P30D/2026-02-01")
	fs.StringVar(&f.granularity, "granularity", "", "time buckets: Hour, Day, Week or Month; empty for one row per group over the whole interval")
	fs.Var(&f.groupBy, "group-by", "comma-separated `dimensions`: OAuthClientId, OrganizationId, UserId, TemplateUri, HttpMethod (default OAuthClientId)")
	fs.Var(&f.metrics, "metrics", "comma-separated `metrics`: Requests, Status200, Status300, Status400, Status500, Status429 (default all)")
	fs.Var(&f.format, "format", "output `format`: table, csv or json")
	fs.DurationVar(&f.poll, "poll", 100*time.Millisecond, "first interval between polls of the results; it doubles up to 2s")
	fs.DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for the query to complete")
	cmd.Run = func(ctx context.Context) error { return c.query(ctx, f) }
	return cmd
}

// usageQueryResult is the rows of a complete ApiUsageQueryResult, kept as
// decoded JSON.
type usageQueryResult struct {
	Results []map[string]any `json:"results"`
}

// column is one column of the table: its header and the row field it shows.
type column struct {
	header, field string
	metric        bool
}

var dimensionColumns = map[usage.Dimension][]column{
	usage.DimClientID:       {{"CLIENT ID", "clientId", false}, {"CLIENT NAME", "clientName", false}},
	usage.DimOrganizationID: {{"ORGANIZATION", "organizationId", false}},
	usage.DimUserID:         {{"USER", "userId", false}},
	usage.DimTemplateURI:    {{"TEMPLATE", "templateUri", false}},
	usage.DimHTTPMethod:     {{"METHOD", "httpMethod", false}},
}

var metricColumns = map[usage.Metric]column{
	usage.MetricRequests:  {"REQUESTS", "requests", true},
	usage.MetricStatus200: {"2XX", "status200", true},
	usage.MetricStatus300: {"3XX", "status300", true},
	usage.MetricStatus400: {"4XX", "status400", true},
	usage.MetricStatus500: {"5XX", "status500", true},
	usage.MetricStatus429: {"429", "status429", true},
}

func (c *cli) query(ctx context.Context, f *queryFlags) error {
	if f.interval == "" {
		return usageError{Err: errors.New("--interval is required, e.g. --interval 2026-01-01/2026-01-31")}
	}
	if f.poll <= 0 || f.wait <= 0 {
		return usageError{Err: errors.New("--poll and --wait must be positive")}
	}
	// The server validates every name; the client only needs the columns.
	req := queryRequest(f.interval, f.granularity, f.groupBy, f.metrics)
	var cols []column
	if f.granularity != "" {
		cols = append(cols, column{"DATE", "date", false})
	}
	groupBy := f.groupBy
	if len(groupBy) == 0 {
		groupBy = listValue{usage.DimClientID.String()}
	}
	for _, name := range groupBy {
		if d, err := usage.ParseDimension(name); err == nil {
			cols = append(cols, dimensionColumns[d]...)
		}
	}
	metrics := usage.Metrics
	if len(f.metrics) > 0 {
		metrics = nil
		for _, name := range f.metrics {
			if m, err := usage.ParseMetric(name); err == nil {
				metrics = append(metrics, m)
			}
		}
	}
	for _, m := range metrics {
		cols = append(cols, metricColumns[m])
	}

	api, err := f.remote.client(false, 1)
	if err != nil {
		return err
	}
	switch {
	case f.clientID != "":
		if f.clientSecret == "" {
			return usageError{Err: errors.New("--client-id needs --client-secret")}
		}
		tok, err := api.AccessToken(ctx, f.clientID, f.clientSecret)
		if err != nil {
			return err
		}
		api = api.WithToken(tok.AccessToken)
	case f.remote.token == "":
		return usageError{Err: errors.New("query needs --token (or $USAGED_TOKEN), or --client-id and --client-secret")}
	}
	path := client.OrganizationQueryPath
	if f.client != "" {
		path = client.ClientQueryPath(f.client)
	}
	ex, err := api.Query(ctx, path, req, client.Poll{Interval: f.poll, Timeout: f.wait})
	if err != nil {
		return err
	}
	if f.format.value == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, ex.Raw, "", "  "); err != nil {
			return fmt.Errorf("the server's answer is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	var res usageQueryResult
	dec := json.NewDecoder(bytes.NewReader(ex.Raw))
	dec.UseNumber() // counts stay exact however large
	if err := dec.Decode(&res); err != nil {
		return fmt.Errorf("the server's results are not the JSON expected: %w", err)
	}
	if f.format.value == "csv" {
		return writeCSV(c.stdout, cols, res.Results)
	}
	return writeTable(c.stdout, cols, res.Results, f.interval)
}

// queryRequest is the body of a usage query; empty values are left out.
func queryRequest(interval, granularity string, groupBy, metrics []string) wire.UsageQueryRequest {
	req := wire.UsageQueryRequest{Interval: &interval, GroupBy: groupBy, Metrics: metrics}
	if granularity != "" {
		req.Granularity = &granularity
	}
	return req
}

func cell(row map[string]any, field string) string {
	switch v := row[field].(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

func writeCSV(w io.Writer, cols []column, rows []map[string]any) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(cols))
	for i, col := range cols {
		rec[i] = col.field
	}
	cw.Write(rec)
	for _, row := range rows {
		for i, col := range cols {
			rec[i] = cell(row, col.field)
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

func writeTable(w io.Writer, cols []column, rows []map[string]any, interval string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := make([]string, len(cols))
	for i, col := range cols {
		line[i] = col.header
	}
	fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	totals := make([]int64, len(cols))
	for _, row := range rows {
		for i, col := range cols {
			line[i] = cell(row, col.field)
			if col.metric {
				n, _ := strconv.ParseInt(line[i], 10, 64)
				totals[i] += n
				line[i] = group(n)
			}
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	for i, col := range cols {
		switch {
		case col.metric:
			line[i] = group(totals[i])
		case i == 0:
			line[i] = "TOTAL"
		default:
			line[i] = ""
		}
	}
	fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s, %s\n", plural(len(rows), "row"), servedInterval(interval))
	return err
}

// servedInterval says which span the server counted for the --interval
// given: the server reads it with usage.ParseInterval (a date as the end
// includes that day) and widens it to whole UTC hours (usage.Query
// Normalize), so the footer shows the exact start and exclusive end.
func servedInterval(given string) string {
	iv, err := usage.ParseInterval(given)
	if err != nil { // the server accepted it, so this does not happen
		return "interval " + given
	}
	return fmt.Sprintf("interval %s to %s, end excluded (--interval %s)",
		iv.Hours().Start.Format(time.RFC3339), iv.Hours().End.Format(time.RFC3339), given)
}
