package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/usage"
)

func TestNewClickHouse(t *testing.T) {
	c, err := newClickHouse("http://bench:s%40cret@127.0.0.1:8123/ignored?x=1", "", 4)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != "http://127.0.0.1:8123" {
		t.Errorf("server %q keeps more than scheme and host", c.String())
	}
	if pw, _ := c.user.Password(); c.user.Username() != "bench" || pw != "s@cret" {
		t.Errorf("credentials %v", c.user)
	}
	if !strings.HasPrefix(c.qualified(), "default.usaged_bench_") {
		t.Errorf("table %q", c.qualified())
	}
	want := "http://127.0.0.1:8123/?input_format_skip_unknown_fields=0&query=" +
		url.QueryEscape("INSERT INTO "+c.qualified()+" FORMAT JSONEachRow")
	if got := c.insertURL(); got != want {
		t.Errorf("insert URL\n got %s\nwant %s", got, want)
	}
	for _, bad := range []struct{ url, db string }{
		{"127.0.0.1:8123", ""}, {"clickhouse://127.0.0.1:9000", ""}, {"http://", ""},
		{"http://127.0.0.1:8123", "a;DROP"}, {"http://127.0.0.1:8123", "db.x"},
	} {
		if _, err := newClickHouse(bad.url, bad.db, 1); err == nil {
			t.Errorf("newClickHouse(%q, %q) took it", bad.url, bad.db)
		}
	}
}

// TestClickHouseTableHasEveryField: every field usaged's NDJSON may carry
// has a column of that name, and no column lacks a field but the computed
// timestamp.
func TestClickHouseTableHasEveryField(t *testing.T) {
	ev := usage.Event{ID: "e", Time: time.Date(2026, 12, 6, 10, 0, 0, 123e6, time.UTC), OrganizationID: "o", ClientID: "c",
		ClientName: "n", UserID: "u", TemplateURI: "t", HTTPMethod: "GET", Status: 200, Platform: "p",
		DurationMs: 1, RequestBytes: 2, ResponseBytes: 3}
	var fields map[string]any
	if err := json.Unmarshal(ingest.AppendNDJSON(nil, &ev), &fields); err != nil {
		t.Fatal(err)
	}
	c, _ := newClickHouse("http://127.0.0.1:8123", "bench", 1)
	ddl := c.createStatement()
	if !strings.HasPrefix(ddl, "CREATE TABLE bench.usaged_bench_") || !strings.HasSuffix(ddl, ") ENGINE = MergeTree ORDER BY (organizationId, timestamp)") {
		t.Errorf("DDL:\n%s", ddl)
	}
	columns := map[string]bool{}
	for line := range strings.Lines(clickHouseColumns) {
		columns[strings.Fields(line)[0]] = true
	}
	for f := range fields {
		if !columns[f] {
			t.Errorf("field %s has no column", f)
		}
	}
	for col := range columns {
		if _, ok := fields[col]; !ok && col != "timestamp" {
			t.Errorf("column %s has no field", col)
		}
	}
}

func TestRatioAndLoadAdd(t *testing.T) {
	if r := ratio(300, 200); r != 1.5 {
		t.Errorf("ratio = %v", r)
	}
	if r := ratio(300, 0); r != 0 {
		t.Errorf("ratio by 0 = %v", r)
	}
	var l load
	l.add(load{batches: 2, failed: 1, events: 10, accepted: 9, latencies: []time.Duration{1}})
	l.add(load{batches: 3, events: 15, accepted: 15, firstError: "boom", latencies: []time.Duration{2, 3}})
	l.add(load{firstError: "later"})
	if l.batches != 5 || l.failed != 1 || l.events != 25 || l.accepted != 24 || len(l.latencies) != 3 || l.firstError != "boom" {
		t.Errorf("sum %+v", l)
	}
}

func TestClickHouseReportText(t *testing.T) {
	var b bytes.Buffer
	IngestReport{Server: "http://u", Seconds: 30, EventsPerSecond: 100, Rounds: 2, ClickHouse: &ClickHouseReport{
		Server: "http://c", Version: "18.16.1", Table: "default.usaged_bench_x", Engine: clickHouseEngine,
		Seconds: 30, Batches: 4, Events: 20, Rows: 20, EventsPerSecond: 200, Ratio: 0.5}}.WriteText(&b)
	for _, want := range []string{"ClickHouse    http://c  18.16.1", "alternating with usaged in 2 rounds",
		"no deduplication, no fsync", "20 rows in the table", "usaged ÷ ClickHouse  0.50×"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}
}

// benchTemplates makes small templates over two organizations.
func benchTemplates(t *testing.T, gz bool) ([]ingestTemplate, IngestConfig) {
	cfg := IngestConfig{Orgs: []demo.Org{{ID: "org-a"}, {ID: "org-b"}}, Batch: 200, Concurrency: 2,
		Clients: 3, Users: 10, Templates: 20, Seed: 7, Variety: 3, Gzip: gz}
	tmpls, err := ingestTemplates(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tmpls, cfg
}

// TestLoadSendsTheSameBodies: two runs with sequences of their own send
// the same body as their k-th batch, whatever the order the workers took.
func TestLoadSendsTheSameBodies(t *testing.T) {
	tmpls, cfg := benchTemplates(t, false)
	runs := make([]map[string]string, 2) // first event's id: body
	for i := range runs {
		var mu sync.Mutex
		runs[i] = map[string]string{}
		var seq atomic.Uint64
		var l load
		err := l.run(context.Background(), tmpls, cfg, 50*time.Millisecond, &seq, func(_ context.Context, body []byte, n int) (ingest.Result, error) {
			var first chRow
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&first); err != nil {
				return ingest.Result{}, err
			}
			mu.Lock()
			runs[i][first.ID] = string(body)
			mu.Unlock()
			return ingest.Result{Accepted: n}, nil
		}, func(error) bool { return true })
		if err != nil || l.accepted != int64(l.batches*cfg.Batch) || int(seq.Load()) != l.batches {
			t.Fatalf("run %d: %+v %v, sequence at %d", i, l, err, seq.Load())
		}
	}
	same := 0
	for id, body := range runs[0] {
		if other, ok := runs[1][id]; ok {
			if other != body {
				t.Fatalf("the bodies of the batch starting with %s differ", id)
			}
			same++
		}
	}
	if same == 0 {
		t.Fatal("no batch in common")
	}
}

// chRow is an event as the NDJSON or ClickHouse's JSONEachRow output has
// it; Timestamp is ClickHouse's computed column, in Unix seconds.
type chRow struct {
	ID             string `json:"id"`
	Time           string `json:"time"`
	OrganizationID string `json:"organizationId"`
	ClientID       string `json:"clientId"`
	ClientName     string `json:"clientName"`
	UserID         string `json:"userId"`
	TemplateURI    string `json:"templateUri"`
	HTTPMethod     string `json:"httpMethod"`
	Status         int    `json:"status"`
	Platform       string `json:"platform"`
	DurationMs     int64  `json:"durationMs"`
	RequestBytes   int64  `json:"requestBytes"`
	ResponseBytes  int64  `json:"responseBytes"`
	Timestamp      int64  `json:"ts,omitempty"`
}

// TestClickHouseInsert posts batches to the test cluster's ClickHouse as
// bench ingest --clickhouse does, then checks that the table holds a row
// for every event sent and that sampled rows hold every field as sent.
func TestClickHouseInsert(t *testing.T) {
	server := clustertest.ClickHouseHTTP(t)
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			ctx := context.Background()
			tmpls, cfg := benchTemplates(t, gz)
			ch, err := newClickHouse(server, "default", cfg.Concurrency)
			if err != nil {
				t.Fatal(err)
			}
			if err := ch.create(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ch.drop(ctx); err != nil {
					t.Error(err)
				}
			}()
			var seq atomic.Uint64
			var l load
			if err := l.run(ctx, tmpls, cfg, time.Second, &seq, ch.post(gz), permanentClickHouse); err != nil {
				t.Fatal(err)
			}
			if l.failed != 0 || l.batches == 0 {
				t.Fatalf("%d of %d batches failed, the first: %s", l.failed, l.batches, l.firstError)
			}
			rows, err := ch.count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rows != uint64(l.accepted) || l.accepted != int64(l.batches*cfg.Batch) {
				t.Fatalf("%d rows for %d events sent in %d batches", rows, l.accepted, l.batches)
			}

			// The events sent: batch k is template k mod 3 with ids from
			// k*Batch on.
			want := map[string]chRow{}
			last := seq.Load() - 1
			for _, k := range []uint64{0, 1, last} {
				body := bytes.Clone(tmpls[k%uint64(len(tmpls))].body)
				for i, off := range tmpls[k%uint64(len(tmpls))].offsets {
					putHex16(body[off:off+16], k*uint64(cfg.Batch)+uint64(i))
				}
				lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
				for _, j := range []int{0, 1, cfg.Batch / 2, cfg.Batch - 1} {
					var r chRow
					if err := json.Unmarshal([]byte(lines[j]), &r); err != nil {
						t.Fatal(err)
					}
					tm, err := time.Parse(time.RFC3339Nano, r.Time)
					if err != nil {
						t.Fatal(err)
					}
					r.Timestamp = tm.Unix()
					want[r.ID] = r
				}
			}
			var ids []string
			for id := range want {
				ids = append(ids, "'"+id+"'")
			}
			out, err := ch.do(ctx, server+"/?output_format_json_quote_64bit_integers=0", []byte("SELECT *, toUnixTimestamp(timestamp) AS ts FROM "+
				ch.qualified()+" WHERE id IN ("+strings.Join(ids, ",")+") FORMAT JSONEachRow"), false)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for line := range strings.Lines(string(out)) {
				var r chRow
				dec := json.NewDecoder(strings.NewReader(line))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				if r != want[r.ID] {
					t.Errorf("ClickHouse holds\n%+v\nfor the event sent as\n%+v", r, want[r.ID])
				}
				got++
			}
			if got != len(want) {
				t.Errorf("%d of the %d sampled events found", got, len(want))
			}
		})
	}
}
