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

	"github.com/usaged/usaged/usage"
)

type queryFlags struct {
	remote         *remoteFlags
	clientID       string
	clientSecret   string
	org            string
	interval       string
	granularity    string
	groupBy        listValue
	metrics        listValue
	filterClient   listValue
	filterName     listValue
	filterTemplate listValue
	filterMethod   listValue
	filterUser     listValue
	filterPlatform listValue
	format         oneOf
}

func (c *cli) queryCommand() *command {
	cmd := c.newCommand("query", "query usage counts (POST /api/v2/usage/aggregate)",
		`Authenticates with --token (a client's access token or the admin token), or
with --client-id and --client-secret through /oauth/token. The table shows the
date (with a granularity), the grouped dimensions and the chosen metrics, and a
total; csv shows the same columns; json prints the server's answer as is.`)
	f := &queryFlags{format: oneOf{value: "table", allowed: []string{"table", "csv", "json"}}}
	f.remote = addRemoteFlags(cmd.fs, "bearer token: a client access token or the admin token")
	fs := cmd.fs
	fs.StringVar(&f.clientID, "client-id", "", "OAuth client id, to get a token with the client-credentials grant")
	fs.StringVar(&f.clientSecret, "client-secret", "", "OAuth client secret, with --client-id")
	fs.StringVar(&f.org, "org", "", "organization id; required with the admin token, implied by a client token")
	fs.StringVar(&f.interval, "interval", "", "ISO-8601 interval, required: 2026-01-01/2026-01-31, 2026-01-01T00:00:00Z/P7D, P30D/2026-02-01")
	fs.StringVar(&f.granularity, "granularity", "", "time buckets: Hour, Day, Week or Month; empty for one row per group over the whole interval")
	fs.Var(&f.groupBy, "group-by", "comma-separated `dimensions`: OAuthClientId, OrganizationId, UserId, TemplateUri, HttpMethod, Platform; \"none\" for no grouping")
	fs.Lookup("group-by").DefValue = defaultGroupBy
	fs.Var(&f.metrics, "metrics", "comma-separated `metrics`: Requests, Status200, Status300, Status400, Status500, Status429 (default all)")
	fs.Var(&f.filterClient, "filter-client", "only these client `ids` (comma-separated)")
	fs.Var(&f.filterName, "filter-client-name", "only these client `names` (comma-separated)")
	fs.Var(&f.filterTemplate, "filter-template", "only these route `templates` (comma-separated)")
	fs.Var(&f.filterMethod, "filter-method", "only these HTTP `methods` (comma-separated)")
	fs.Var(&f.filterUser, "filter-user", "only these user `ids` (comma-separated)")
	fs.Var(&f.filterPlatform, "filter-platform", "only these `platforms` (comma-separated)")
	fs.Var(&f.format, "format", "output `format`: table, csv or json")
	cmd.run = func(ctx context.Context) error { return c.query(ctx, f) }
	return cmd
}

const defaultGroupBy = "OAuthClientId"

// aggregateRequest is the body of POST /api/v2/usage/aggregate.
type aggregateRequest struct {
	OrganizationID string           `json:"organizationId,omitempty"`
	Interval       string           `json:"interval"`
	Granularity    string           `json:"granularity,omitempty"`
	GroupBy        []string         `json:"groupBy"`
	Metrics        []string         `json:"metrics,omitempty"`
	Filter         *aggregateFilter `json:"filter,omitempty"`
}

type aggregateFilter struct {
	ClientIDs    []string `json:"clientIds,omitempty"`
	ClientNames  []string `json:"clientNames,omitempty"`
	UserIDs      []string `json:"userIds,omitempty"`
	TemplateURIs []string `json:"templateUris,omitempty"`
	HTTPMethods  []string `json:"httpMethods,omitempty"`
	Platforms    []string `json:"platforms,omitempty"`
}

type aggregateResponse struct {
	Interval string           `json:"interval"`
	Results  []map[string]any `json:"results"`
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
	usage.DimPlatform:       {{"PLATFORM", "platform", false}},
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
		return usageError{err: errors.New("--interval is required, e.g. --interval 2026-01-01/2026-01-31")}
	}
	req := aggregateRequest{OrganizationID: f.org, Interval: f.interval, Granularity: f.granularity, GroupBy: []string{}}
	var cols []column
	if f.granularity != "" {
		if _, err := usage.ParseGranularity(f.granularity); err != nil {
			return usageError{err: fmt.Errorf("--granularity: %w", err)}
		}
		cols = append(cols, column{"DATE", "date", false})
	}
	if len(f.groupBy) == 0 {
		f.groupBy = listValue{defaultGroupBy}
	}
	for _, name := range f.groupBy {
		if strings.EqualFold(name, "none") {
			continue
		}
		d, err := usage.ParseDimension(name)
		if err != nil {
			return usageError{err: fmt.Errorf("--group-by: %w", err)}
		}
		req.GroupBy = append(req.GroupBy, d.String())
		cols = append(cols, dimensionColumns[d]...)
	}
	metrics := usage.Metrics
	if len(f.metrics) > 0 {
		metrics = nil
		for _, name := range f.metrics {
			m, err := usage.ParseMetric(name)
			if err != nil {
				return usageError{err: fmt.Errorf("--metrics: %w", err)}
			}
			metrics = append(metrics, m)
			req.Metrics = append(req.Metrics, m.String())
		}
	}
	for _, m := range metrics {
		cols = append(cols, metricColumns[m])
	}
	filter := aggregateFilter{ClientIDs: f.filterClient, ClientNames: f.filterName, UserIDs: f.filterUser,
		TemplateURIs: f.filterTemplate, HTTPMethods: f.filterMethod, Platforms: f.filterPlatform}
	if len(usage.Filter(filter).Dimensions()) > 0 {
		req.Filter = &filter
	}

	api, err := f.remote.client(false, 1)
	if err != nil {
		return err
	}
	switch {
	case f.clientID != "":
		if f.clientSecret == "" {
			return usageError{err: errors.New("--client-id needs --client-secret")}
		}
		if api.token, err = api.accessToken(ctx, f.clientID, f.clientSecret); err != nil {
			return err
		}
	case api.token == "":
		return usageError{err: errors.New("query needs --token (or $USAGED_TOKEN, $USAGED_ADMIN_TOKEN), or --client-id and --client-secret")}
	}
	var raw []byte
	if err := api.do(ctx, "POST", "/api/v2/usage/aggregate", req, &raw); err != nil {
		return err
	}
	if f.format.value == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("the server's answer is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	var resp aggregateResponse
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // counts stay exact however large
	if err := dec.Decode(&resp); err != nil {
		return fmt.Errorf("the server's answer is not the JSON expected: %w", err)
	}
	if f.format.value == "csv" {
		return writeCSV(c.stdout, cols, resp.Results)
	}
	return writeTable(c.stdout, cols, &resp)
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

func writeTable(w io.Writer, cols []column, resp *aggregateResponse) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := make([]string, len(cols))
	for i, col := range cols {
		line[i] = col.header
	}
	fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	totals := make([]int64, len(cols))
	for _, row := range resp.Results {
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
	_, err := fmt.Fprintf(w, "%d rows, interval %s\n", len(resp.Results), resp.Interval)
	return err
}
