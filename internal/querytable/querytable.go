// Package querytable shows the results of a Genesys usage query to a
// person: a table of the date, the grouped dimensions and the chosen
// metrics with a total, or the same columns as CSV.
package querytable

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/usage"
)

// Column is one column: its header and the result field it shows.
type Column struct {
	Header, Field string
	Metric        bool // a count or a sum, grouped in thousands and totalled; else shown as sent, without a total
}

var dimensionColumns = map[usage.Dimension][]Column{
	usage.DimClientID:       {{"CLIENT ID", "clientId", false}, {"CLIENT NAME", "clientName", false}},
	usage.DimOrganizationID: {{"ORGANIZATION", "organizationId", false}},
	usage.DimUserID:         {{"USER", "userId", false}},
	usage.DimTemplateURI:    {{"TEMPLATE", "templateUri", false}},
	usage.DimHTTPMethod:     {{"METHOD", "httpMethod", false}},
}

var metricColumns = map[usage.Metric]Column{
	usage.MetricRequests:  {"REQUESTS", "requests", true},
	usage.MetricStatus200: {"2XX", "status200", true},
	usage.MetricStatus300: {"3XX", "status300", true},
	usage.MetricStatus400: {"4XX", "status400", true},
	usage.MetricStatus500: {"5XX", "status500", true},
	// The measures: durations in ms, which do not add up, and byte sums.
	usage.MetricDurationP50:   {"P50 MS", "durationP50", false},
	usage.MetricDurationP90:   {"P90 MS", "durationP90", false},
	usage.MetricDurationP95:   {"P95 MS", "durationP95", false},
	usage.MetricDurationP99:   {"P99 MS", "durationP99", false},
	usage.MetricDurationMax:   {"MAX MS", "durationMax", false},
	usage.MetricDurationAvg:   {"AVG MS", "durationAvg", false},
	usage.MetricRequestBytes:  {"REQUEST BYTES", "requestBytes", true},
	usage.MetricResponseBytes: {"RESPONSE BYTES", "responseBytes", true},
	usage.MetricStatus429:     {"429", "status429", true},
}

// Columns returns the columns of a query's results: the date with a
// granularity, the groupBy dimensions (OAuthClientId when none) and the
// metrics (all when none). Names the server would refuse are left out; the
// server says what is wrong with them.
func Columns(granularity string, groupBy, metrics []string) []Column {
	var cols []Column
	if granularity != "" {
		cols = append(cols, Column{"DATE", "date", false})
	}
	if len(groupBy) == 0 {
		groupBy = []string{usage.DimClientID.String()}
	}
	for _, name := range groupBy {
		if d, err := usage.ParseDimension(name); err == nil {
			cols = append(cols, dimensionColumns[d]...)
		}
	}
	ms := usage.Metrics
	if len(metrics) > 0 {
		ms = nil
		for _, name := range metrics {
			if m, err := usage.ParseMetric(name); err == nil {
				ms = append(ms, m)
			}
		}
	}
	for _, m := range ms {
		cols = append(cols, metricColumns[m])
	}
	return cols
}

// Rows decodes the rows of a complete ApiUsageQueryResult document, its
// counts kept exact however large.
func Rows(doc []byte) ([]map[string]any, error) {
	var res struct {
		Results []map[string]any `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("the server's results are not the JSON expected: %w", err)
	}
	return res.Results, nil
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

// WriteCSV writes rows as CSV under a header of the columns' fields.
func WriteCSV(w io.Writer, cols []Column, rows []map[string]any) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(cols))
	for i, col := range cols {
		rec[i] = col.Field
	}
	cw.Write(rec)
	for _, row := range rows {
		for i, col := range cols {
			rec[i] = cell(row, col.Field)
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes rows as a table with a line of totals, then a footer
// that counts the rows and names the span the server counted for the
// --interval given.
func WriteTable(w io.Writer, cols []Column, rows []map[string]any, interval string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := make([]string, len(cols))
	for i, col := range cols {
		line[i] = col.Header
	}
	fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	totals := make([]int64, len(cols))
	for _, row := range rows {
		for i, col := range cols {
			line[i] = cell(row, col.Field)
			if col.Metric {
				n, _ := strconv.ParseInt(line[i], 10, 64)
				totals[i] += n
				line[i] = termout.Group(n)
			}
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	for i, col := range cols {
		switch {
		case col.Metric:
			line[i] = termout.Group(totals[i])
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
	_, err := fmt.Fprintf(w, "%s, %s\n", termout.Plural(len(rows), "row"), servedInterval(interval))
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
