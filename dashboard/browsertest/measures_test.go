package browsertest

// The API usage view's latency and traffic: what the page shows is checked
// against percentiles, maxima, means and byte sums the test works out from
// the events it sends.

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// uiMeasures are the measures of a group of events, by hand.
type uiMeasures struct {
	requests  int64
	durations []int64 // of the events with one: 0 ms is none
	in, out   int64
}

func (m *uiMeasures) add(e *uiEvent) {
	m.requests++
	if e.DurationMs > 0 {
		m.durations = append(m.durations, e.DurationMs)
	}
	m.in += e.RequestBytes
	m.out += e.ResponseBytes
}

// percentile is the lower nearest-rank p-th percentile, the ⌈p·n/100⌉-th
// smallest of the n durations, which the aggregate answers exactly up to
// 98 ms; ok is false without durations.
func (m *uiMeasures) percentile(p int) (ms int64, ok bool) {
	n := len(m.durations)
	if n == 0 {
		return 0, false
	}
	d := slices.Sorted(slices.Values(m.durations))
	return d[(p*n+99)/100-1], true
}

func (m *uiMeasures) max() (int64, bool) {
	if len(m.durations) == 0 {
		return 0, false
	}
	return slices.Max(m.durations), true
}

func (m *uiMeasures) mean() (float64, bool) {
	if len(m.durations) == 0 {
		return 0, false
	}
	var sum int64
	for _, d := range m.durations {
		sum += d
	}
	return float64(sum) / float64(len(m.durations)), true
}

// measure groups the events from since on that keep accepts by key.
func (o *uiOracle) measure(since time.Time, keep func(*uiEvent) bool, key func(*uiEvent) string) map[string]*uiMeasures {
	out := map[string]*uiMeasures{}
	for i := range o.events {
		e := &o.events[i]
		if e.at.Before(since) || !keep(e) {
			continue
		}
		m := out[key(e)]
		if m == nil {
			m = &uiMeasures{}
			out[key(e)] = m
		}
		m.add(e)
	}
	return out
}

// buckets are want with an empty group for each of keys it lacks: a
// table over time has a row for every bucket of its range.
func buckets(want map[string]*uiMeasures, keys []string) map[string]*uiMeasures {
	for _, k := range keys {
		if want[k] == nil {
			want[k] = &uiMeasures{}
		}
	}
	return want
}

// dayKeys are the dates of the last n days in loc, as the server writes
// a bucket's start, oldest first.
func dayKeys(loc *time.Location, n int) []string {
	today := time.Now().In(loc)
	var keys []string
	for i := n - 1; i >= 0; i-- {
		keys = append(keys, time.Date(today.Year(), today.Month(), today.Day()-i, 0, 0, 0, 0, loc).Format(time.RFC3339))
	}
	return keys
}

// inDays is the key of an event's day in loc.
func inDays(loc *time.Location) func(*uiEvent) string {
	return func(e *uiEvent) string {
		t := e.at.In(loc)
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).Format(time.RFC3339)
	}
}

// uiCells are a table's cells as shown: per row key, per column, the text.
func (b *uiBrowser) cells(tb testing.TB, name string) map[string]map[string]string {
	tb.Helper()
	return evalJS[map[string]map[string]string](tb, b, fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll('table[data-table=%q] tbody tr[data-key]')].map(tr =>
		[tr.dataset.key, Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, td.textContent]))]))`, name))
}

// byteHeader is the size of the unit a table's byte column names in its
// header ("Bytes in (KiB)").
func (b *uiBrowser) byteHeader(tb testing.TB, table, col string) (string, float64) {
	tb.Helper()
	head := evalJS[string](tb, b, fmt.Sprintf(`document.querySelector('table[data-table=%q] th:has(button[data-sort=%q])')?.textContent || ""`, table, col))
	units := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	_, unit, _ := strings.Cut(strings.TrimSuffix(head, ")"), "(")
	if units[unit] == 0 {
		tb.Fatalf("table %s: column %s's header %q names no unit", table, col, head)
	}
	return unit, units[unit]
}

// checkMeasures compares a latency or traffic table the page shows with
// the oracle's measures of each row: the raw values (data-value), and the
// text shown, milliseconds as they are and bytes in the header's unit.
// cols are the columns the table has.
func checkMeasures(tb testing.TB, b *uiBrowser, what, name string, want map[string]*uiMeasures, cols ...string) {
	tb.Helper()
	got := b.table(tb, name)
	text := b.cells(tb, name)
	if len(got) != len(want) {
		var keys []string
		for _, r := range got {
			keys = append(keys, r.Key)
		}
		tb.Fatalf("%s: %d rows %v, want %d", what, len(got), keys, len(want))
	}
	units := map[string]float64{}
	for _, c := range cols {
		if c == "requestBytes" || c == "responseBytes" {
			_, units[c] = b.byteHeader(tb, name, c)
		}
	}
	none := func(v int64, ok bool) string {
		if !ok {
			return "–"
		}
		return strconv.FormatInt(v, 10)
	}
	for _, r := range got {
		w := want[r.Key]
		if w == nil {
			tb.Fatalf("%s: unexpected row %q", what, r.Key)
		}
		for _, c := range cols {
			raw, shown := r.Cols[c], text[r.Key][c]
			switch c {
			case "requests":
				if raw != strconv.FormatInt(w.requests, 10) {
					tb.Errorf("%s: row %s requests %s, want %d", what, r.Key, raw, w.requests)
				}
			case "p50", "p95", "p99", "max":
				var v string
				if c == "max" {
					v = none(w.max())
				} else {
					p, _ := strconv.Atoi(c[1:])
					v = none(w.percentile(p))
				}
				// Up to 98 ms the value and its text are the same integer.
				if raw != v || shown != v {
					tb.Errorf("%s: row %s %s = %s shown %q, want %s", what, r.Key, c, raw, shown, v)
				}
			case "avg":
				mean, ok := w.mean()
				if !ok {
					if raw != "–" {
						tb.Errorf("%s: row %s mean %s, want none", what, r.Key, raw)
					}
					continue
				}
				// The aggregate answers three decimals; the page shows one.
				v, err := strconv.ParseFloat(raw, 64)
				s, err2 := strconv.ParseFloat(shown, 64)
				if err != nil || err2 != nil || math.Abs(v-mean) > 0.0005+1e-9 || math.Abs(s-mean) > 0.05+1e-9 {
					tb.Errorf("%s: row %s mean %s shown %q, want %.4f", what, r.Key, raw, shown, mean)
				}
			case "requestBytes", "responseBytes":
				sum := w.in
				if c == "responseBytes" {
					sum = w.out
				}
				v, err := strconv.ParseFloat(shown, 64)
				if raw != strconv.FormatInt(sum, 10) || err != nil || math.Abs(v-float64(sum)/units[c]) > 0.5 {
					tb.Errorf("%s: row %s %s = %s shown %q, want %d", what, r.Key, c, raw, shown, sum)
				}
			default:
				tb.Fatalf("no check for column %s", c)
			}
		}
	}
}

// seedMeasured sends n events over the last 6 days, none 4 days ago, of
// three clients: a fast one (1–40 ms), a slow one (30–98 ms) and an
// uploader whose events carry no duration but large request bodies. A
// tenth of the others' events have no duration either.
func seedMeasured(tb testing.TB, base string, o *uiOrg, n int, rng *rand.Rand, now time.Time) {
	tb.Helper()
	o.names = []string{"Shop frontend", "Reporting", "Batch uploader"}
	o.clients = []string{"shop-frontend", "reporting", "batch-uploader"}
	templates := []string{"api/v2/users", "api/v2/analytics/query", "api/v2/uploads/{uploadId}"}
	today := now.Truncate(24 * time.Hour)
	for i := range n {
		at := today.AddDate(0, 0, -[]int{0, 1, 2, 3, 5}[rng.IntN(5)]).Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		if at.After(now) {
			at = now.Add(-time.Duration(rng.IntN(60)+1) * time.Second)
		}
		k := rng.IntN(3)
		e := uiEvent{
			ID: fmt.Sprintf("m-%d", i), Time: at.Format(time.RFC3339Nano), OrganizationID: o.id,
			ClientID: o.clients[k], ClientName: o.names[k], TemplateURI: templates[rng.IntN(2)],
			HTTPMethod: "GET", Status: 200, ResponseBytes: int64(500 + rng.IntN(20000)), at: at,
		}
		switch k {
		case 0:
			e.DurationMs = int64(1 + rng.IntN(40))
		case 1:
			e.DurationMs = int64(30 + rng.IntN(69))
		case 2:
			e.TemplateURI, e.HTTPMethod, e.Status = templates[2], "PUT", 201
			e.RequestBytes, e.ResponseBytes = int64(200_000+rng.IntN(800_000)), 0
		}
		if rng.IntN(10) == 0 {
			e.DurationMs = 0
		}
		o.oracle.events = append(o.oracle.events, e)
	}
	body, _ := json.Marshal(o.oracle.events)
	var res ingestResult
	adminJSON(tb, base, uiAdmin, "/api/v2/usage/events", json.RawMessage(body), 200, &res)
	if res != (ingestResult{Accepted: n}) {
		tb.Fatalf("send: %+v", res)
	}
}

var (
	latencyCols = []string{"p50", "p95", "p99"}
	trafficCols = []string{"requestBytes", "responseBytes"}
	groupCols   = []string{"requests", "p50", "p95", "p99", "max", "avg", "requestBytes", "responseBytes"}
)

// TestDashboardMeasures: the API usage view's latency over time, bytes in
// and out over time, and both per client and per template, in the view's
// range, granularity, zone and filters; and, where the server refuses the
// measures, the counts alone with a note saying why.
func TestDashboardMeasures(t *testing.T) {
	b, base := browserAndServer(t)
	now := time.Now().UTC()
	o := newOrg(t, base, uiAdmin, "Measured Corp")
	seedMeasured(t, base, o, 400, rand.New(rand.NewPCG(19, 23)), now)

	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d"))
	b.signIn(t, o.viewer, o.secret)
	b.waitReady(t, "api")
	since := rangeStart(now, 7)
	checkMeasures(t, b, "latency by UTC day", "latency", buckets(o.oracle.measure(since, anyEvent, inDays(time.UTC)), dayKeys(time.UTC, 7)), latencyCols...)
	checkMeasures(t, b, "bytes by UTC day", "traffic", buckets(o.oracle.measure(since, anyEvent, inDays(time.UTC)), dayKeys(time.UTC, 7)), trafficCols...)
	checkMeasures(t, b, "per client", "client-latency", o.oracle.measure(since, anyEvent, byClient), groupCols...)
	checkMeasures(t, b, "per template", "template-latency", o.oracle.measure(since, anyEvent, byTemplate), groupCols...)
	checkCharts(t, b, "latency", "traffic", "client-latency", "template-latency")
	if got := evalJS[[]string](t, b, `JSON.parse(document.querySelector('.chart[data-chart=latency]').dataset.series)`); !slices.Equal(got, []string{"p50", "p95", "p99"}) {
		t.Errorf("the latency chart's lines are %q", got)
	}
	if got := evalJS[string](t, b, `document.querySelector('[data-note=measures]').hidden ? "" : "shown"`); got != "" {
		t.Error("the note on refused measures shows while the measures do")
	}
	// The days are the last 7; 6 and 4 days ago had no events: no
	// duration (a gap, not 0 ms) and no bytes.
	gap := dayKeys(time.UTC, 7)[0]
	if r := b.cells(t, "latency")[gap]; r["p95"] != "–" {
		t.Errorf("a day without events shows p95 %q", r["p95"])
	}
	b.checkFits(t, "latency and traffic", true)
	b.screenshot(t, "15-latency-and-traffic")
	b.checkAccessibility(t, "latency and traffic")

	// Tokyo's days, and the last 24 hours by hour.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d&tz=Asia/Tokyo"))
	b.waitReady(t, "api")
	tokyoToday := time.Now().In(tokyo)
	sinceTokyo := time.Date(tokyoToday.Year(), tokyoToday.Month(), tokyoToday.Day()-6, 0, 0, 0, 0, tokyo)
	byTokyoDay := buckets(o.oracle.measure(sinceTokyo, anyEvent, inDays(tokyo)), dayKeys(tokyo, 7))
	checkMeasures(t, b, "latency by Tokyo day", "latency", byTokyoDay, latencyCols...)
	checkMeasures(t, b, "bytes by Tokyo day", "traffic", byTokyoDay, trafficCols...)

	b.do(t, chromedp.Navigate(base+"/?view=api&range=24h"))
	b.waitReady(t, "api")
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	var hours []string
	for h := end.Add(-24 * time.Hour); h.Before(end); h = h.Add(time.Hour) {
		hours = append(hours, h.Format(time.RFC3339))
	}
	inRange := func(e *uiEvent) bool { return e.at.Before(end) }
	byHour := buckets(o.oracle.measure(end.Add(-24*time.Hour), inRange, func(e *uiEvent) string { return e.at.Truncate(time.Hour).Format(time.RFC3339) }), hours)
	checkMeasures(t, b, "latency by hour", "latency", byHour, latencyCols...)
	checkMeasures(t, b, "bytes by hour", "traffic", byHour, trafficCols...)

	// A client's drill-down, from its row: its own latency over time; the
	// per-client panel, like the counts', leaves.
	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d"))
	b.waitReady(t, "api")
	slow := o.clients[1]
	b.act(t, "api", click(fmt.Sprintf(`table[data-table=client-latency] tr[data-key=%q] a[data-drill=client]`, slow)))
	if !strings.Contains(evalJS[string](t, b, `location.search`), "client="+slow) {
		t.Errorf("drill-down URL %s", evalJS[string](t, b, `location.search`))
	}
	isSlow := func(e *uiEvent) bool { return e.ClientID == slow }
	checkMeasures(t, b, "latency of "+slow, "latency", buckets(o.oracle.measure(since, isSlow, inDays(time.UTC)), dayKeys(time.UTC, 7)), latencyCols...)
	checkMeasures(t, b, "templates of "+slow, "template-latency", o.oracle.measure(since, isSlow, byTemplate), groupCols...)
	if evalJS[bool](t, b, `document.querySelector('.chart[data-chart=client-latency]').offsetParent !== null`) {
		t.Error("the per-client latency shows in a client's drill-down")
	}

	// A store that does not keep the measures (the cluster's) refuses a
	// query naming one with 400 naming metrics, answered here in its exact
	// ErrorBody for every such query the page sends: the counts show, the
	// measures' panels do not, and a note says why.
	refusal := `{"message":"the cluster store does not keep latency and traffic measures yet: ask for counts only (requests, status200, status300, status400, status500, status429), or use the embedded store","code":"bad.request","status":400,"contextId":"c0ffee","details":[{"errorCode":"bad.request","fieldName":"metrics"}],"errors":[]}`
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(`{
		const fetch = window.fetch;
		window.fetch = (url, init) => String(url).endsWith("/api/v2/usage/aggregate") && /"(Duration\w+|RequestBytes|ResponseBytes)"/.test(String(init && init.body))
			? Promise.resolve(new Response(%q, {status: 400, headers: {"Content-Type": "application/json"}}))
			: fetch(url, init);
	}`, refusal)}); err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d"))
	b.waitReady(t, "api")
	checkTable(t, "clients without measures", b.table(t, "clients"), o.oracle.count(since, anyEvent, byClient))
	checkTable(t, "templates without measures", b.table(t, "templates"), o.oracle.count(since, anyEvent, byTemplate))
	checkCharts(t, b, "requests", "error-rate", "methods", "clients", "templates")
	note := evalJS[string](t, b, `(n => n && !n.hidden ? n.innerText : "")(document.querySelector('[data-note=measures]'))`)
	if !strings.Contains(note, "does not keep latency and traffic measures") {
		t.Errorf("the note on refused measures reads %q", note)
	}
	for _, p := range []string{"latency", "traffic", "client-latency", "template-latency"} {
		if evalJS[bool](t, b, fmt.Sprintf(`document.querySelector('.chart[data-chart=%q]').offsetParent !== null`, p)) {
			t.Errorf("panel %s shows without measures", p)
		}
	}
	if !evalJS[bool](t, b, `document.getElementById("load-error").hidden`) {
		t.Errorf("the refusal shows as a failed load: %s", evalJS[string](t, b, `document.getElementById("load-error").textContent`))
	}
	b.checkFits(t, "API usage without measures", true)
	b.screenshot(t, "16-measures-refused")
	b.checkAccessibility(t, "API usage without measures")
}
