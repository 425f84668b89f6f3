package browsertest

// The usage limits view and the limits drawn on the API usage charts:
// each bar's value and percentage are checked against counts the test
// makes itself from the events it sends, over windows it works out itself.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// uiLimit is a limit the test creates, and what it counts by hand.
type uiLimit struct {
	Name       string         `json:"name"`
	Scope      string         `json:"scope"`
	ClientID   string         `json:"clientId,omitempty"`
	Filter     map[string]any `json:"filter,omitempty"`
	Metric     string         `json:"metric"`
	Window     map[string]any `json:"window"`
	Value      float64        `json:"value"`
	Thresholds []int          `json:"thresholds"`
	Enforced   bool           `json:"enforced"`

	id    string
	loc   *time.Location
	keep  func(*uiEvent) bool // its filters
	start time.Time           // of the window holding the present
	end   time.Time
}

// window works out the calendar window of type typ in loc that holds now.
func window(typ string, loc *time.Location, now time.Time) (time.Time, time.Time) {
	t := now.In(loc)
	switch typ {
	case "hour":
		s := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
		return s, s.Add(time.Hour)
	case "day":
		s := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		return s, s.AddDate(0, 0, 1)
	}
	panic("no window " + typ)
}

// limitBar is what the view should show for a limit, or a client of a
// limit on each client.
type limitBar struct {
	key, limit, client string
	value, percentage  float64
	level              string
	marks              int
	enforced           bool
	l                  *uiLimit
}

// count is l's metric over its window by hand: of the events it keeps,
// by client for eachClient (every client the window counted), else one
// value under "".
func (l *uiLimit) count(events []uiEvent) map[string]float64 {
	type acc struct{ requests, errors, metric int64 }
	by := map[string]*acc{}
	for i := range events {
		e := &events[i]
		if e.at.Before(l.start) || !e.at.Before(l.end) || !l.keep(e) || l.Scope == "client" && e.ClientID != l.ClientID {
			continue
		}
		k := ""
		if l.Scope == "eachClient" {
			k = e.ClientID
		}
		a := by[k]
		if a == nil {
			a = &acc{}
			by[k] = a
		}
		a.requests++
		if e.Status >= 400 {
			a.errors++
		}
		switch l.Metric {
		case "requests":
			a.metric++
		case "status500":
			if e.Status >= 500 {
				a.metric++
			}
		}
	}
	out := map[string]float64{}
	for k, a := range by {
		if l.Metric == "errorRate" {
			out[k] = float64(a.errors) / float64(a.requests)
		} else {
			out[k] = float64(a.metric)
		}
	}
	if l.Scope != "eachClient" && len(out) == 0 {
		out[""] = 0
	}
	return out
}

// bars are the bars the view should show for limits, by hand.
func limitBars(limits []*uiLimit, events []uiEvent) []limitBar {
	var out []limitBar
	for _, l := range limits {
		marks := map[int]bool{100: true}
		for _, t := range l.Thresholds {
			marks[t] = true
		}
		for client, v := range l.count(events) {
			b := limitBar{key: l.id, limit: l.Name, client: client, value: v, percentage: v / l.Value * 100, marks: len(marks), enforced: l.Enforced, l: l}
			if l.Scope == "eachClient" {
				b.key += "|" + client
			}
			b.level = "ok"
			if b.percentage >= 100 {
				b.level = "over"
			} else if len(l.Thresholds) > 0 && b.percentage >= float64(slices.Max(l.Thresholds)) {
				b.level = "warn"
			}
			out = append(out, b)
		}
	}
	return out
}

// roundedFrom reports whether shown is v to one decimal: within half a
// step of it, whichever way a tie was rounded.
func roundedFrom(shown string, v float64) bool {
	s, err := strconv.ParseFloat(shown, 64)
	return err == nil && strings.Count(shown, ".") == 1 && len(shown)-strings.Index(shown, ".") == 2 && math.Abs(s-v) <= 0.05+1e-9
}

// thousands writes n as the page does, with a comma every three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// sendLimitEvents sends events of three clients at hand-picked statuses,
// templates and methods: n at random over the last 40 hours, and n/4 in
// the present hour.
func sendLimitEvents(tb testing.TB, base string, o *uiOrg, n int, rng *rand.Rand, now time.Time) {
	tb.Helper()
	statuses := []int{200, 200, 200, 201, 304, 404, 429, 500, 503}
	templates := []string{"api/v2/users", "api/v2/conversations"}
	hour := now.Truncate(time.Hour)
	var evs []uiEvent
	for i := range n + n/4 {
		at := now.Add(-time.Duration(1+rng.Int64N(int64(40*time.Hour/time.Second))) * time.Second)
		if i >= n {
			at = hour.Add(time.Duration(rng.Int64N(int64(now.Sub(hour)) + 1)))
		}
		k := rng.IntN(len(o.clients))
		evs = append(evs, uiEvent{ID: fmt.Sprintf("l-%d", i), Time: at.Format(time.RFC3339Nano), OrganizationID: o.id,
			ClientID: o.clients[k], ClientName: o.names[k], TemplateURI: templates[rng.IntN(2)], HTTPMethod: []string{"GET", "GET", "POST"}[rng.IntN(3)],
			Status: statuses[rng.IntN(len(statuses))], at: at})
	}
	body, _ := json.Marshal(evs)
	var res ingestResult
	adminJSON(tb, base, uiAdmin, "/api/v2/usage/events", json.RawMessage(body), 200, &res)
	if res != (ingestResult{Accepted: len(evs)}) {
		tb.Fatalf("send: %+v", res)
	}
	o.oracle.events = append(o.oracle.events, evs...)
}

// limitViewer creates a client of o that may read its usage and its limits.
func limitViewer(tb testing.TB, base string, o *uiOrg) (id, secret string) {
	tb.Helper()
	var c struct{ ID, Secret string }
	adminJSON(tb, base, uiAdmin, "/api/v2/admin/organizations/"+o.id+"/clients",
		map[string]any{"name": o.name + " limits viewer", "permissions": []string{"usage:organization:view", "usage:limit:view"}}, 201, &c)
	return c.ID, c.Secret
}

// chartLines are the limits a chart draws as lines (data-lines).
type chartLine struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

func (b *uiBrowser) chartLines(tb testing.TB, chart string) []chartLine {
	tb.Helper()
	return evalJS[[]chartLine](tb, b, fmt.Sprintf(`JSON.parse(document.querySelector('.chart[data-chart=%q]').dataset.lines || "null")`, chart))
}

// TestDashboardLimits: the limits view shows every limit of the
// organization, and every client of a limit on each client, with the value
// and percentage of its current window as the test counts them, nearest
// its limit first, filtered by name, exported as CSV and kept fresh; a
// token without usage:limit:view sees a note, an organization without
// limits a sentence on how to create one. The API usage charts draw a
// limit as a line exactly where their buckets count what it bounds.
func TestDashboardLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser against a usaged process")
	}
	// The windows must not move while the test looks at them: an hour's
	// end, which every UTC and Tokyo day's end is, must be minutes away.
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 4*time.Minute {
		t.Logf("waiting %v for the next hour", left.Round(time.Second))
		time.Sleep(left + 2*time.Second)
	}
	b, base := browserAndServer(t)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	o := newOrg(t, base, uiAdmin, "Limits Corp")
	o.clients = []string{"crm-sync", "etl-batch", "mobile-app"}
	o.names = []string{"CRM sync", "ETL batch", "Mobile app"}
	sendLimitEvents(t, base, o, 400, rand.New(rand.NewPCG(29, 31)), now)
	viewer, secret := limitViewer(t, base, o)

	all := func(*uiEvent) bool { return true }
	day := func(zone string) map[string]any { return map[string]any{"type": "day", "timeZone": zone} }
	limits := []*uiLimit{
		{Name: "Org requests per UTC day", Scope: "organization", Metric: "requests", Window: day("UTC"), Value: 300, Thresholds: []int{50, 80, 100}, Enforced: true, keep: all},
		{Name: "Org requests per Tokyo day", Scope: "organization", Metric: "requests", Window: day("Asia/Tokyo"), Value: 250, Thresholds: []int{80}, keep: all},
		{Name: "Org requests per UTC hour", Scope: "organization", Metric: "requests", Window: map[string]any{"type": "hour"}, Value: 400, Thresholds: []int{50}, keep: all},
		{Name: "Org error rate per Tokyo day", Scope: "organization", Metric: "errorRate", Window: day("Asia/Tokyo"), Value: 0.25, Thresholds: []int{50, 100}, keep: all},
		{Name: "CRM requests per UTC day", Scope: "client", ClientID: "crm-sync", Metric: "requests", Window: day("UTC"), Value: 40, Thresholds: []int{50, 90}, keep: all},
		{Name: "CRM 5xx per UTC day", Scope: "client", ClientID: "crm-sync", Metric: "status500", Window: day("UTC"), Value: 5, Thresholds: []int{100, 200}, keep: all},
		{Name: "Requests of each client per Tokyo day", Scope: "eachClient", Metric: "requests", Window: day("Asia/Tokyo"), Value: 60, Thresholds: []int{50, 75}, keep: all},
		{Name: "GET users per UTC day", Scope: "organization", Metric: "requests", Window: day("UTC"), Value: 1000, Thresholds: []int{},
			Filter: map[string]any{"templateUris": []string{"/api/v2/users"}, "httpMethods": []string{"get"}},
			keep:   func(e *uiEvent) bool { return e.TemplateURI == "api/v2/users" && e.HTTPMethod == "GET" }},
	}
	for _, l := range limits {
		l.loc = time.UTC
		if l.Window["timeZone"] == "Asia/Tokyo" {
			l.loc = tokyo
		}
		l.start, l.end = window(l.Window["type"].(string), l.loc, now)
		var created struct{ ID string }
		adminJSON(t, base, uiAdmin, "/api/v2/usage/limits?organizationId="+url.QueryEscape(o.id), l, 201, &created)
		l.id = created.ID
	}
	byName := map[string]*uiLimit{}
	for _, l := range limits {
		byName[l.Name] = l
	}

	// Into the view, from the navigation.
	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d&tz=UTC"))
	b.signIn(t, viewer, secret)
	b.waitReady(t, "api")
	b.act(t, "limits", click("#nav-limits"))
	checkLimits(t, b, limitBars(limits, o.oracle.events))
	b.checkFits(t, "limits", true)
	b.screenshot(t, "17-limits")
	b.checkAccessibility(t, "limits")
	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	b.checkFits(t, "limits on a phone", false)
	b.screenshot(t, "22-limits-phone")
	b.do(t, chromedp.EmulateViewport(1400, 900))

	// The filter keeps the names that contain it, and the URL keeps it.
	b.do(t, chromedp.SendKeys(chromedp.CSS("#limit-filter"), "tokyo"))
	b.poll(t, `[...document.querySelectorAll(".limit-bar")].every(li => li.querySelector(".limit-name").textContent.toLowerCase().includes("tokyo"))`)
	var tokyoBars []limitBar
	for _, bar := range limitBars(limits, o.oracle.events) {
		if strings.Contains(strings.ToLower(bar.limit), "tokyo") {
			tokyoBars = append(tokyoBars, bar)
		}
	}
	checkLimits(t, b, tokyoBars)
	if search := evalJS[string](t, b, `location.search`); !strings.Contains(search, "name=tokyo") {
		t.Errorf("the URL does not hold the filter: %s", search)
	}
	b.do(t, chromedp.Reload())
	b.waitReady(t, "limits")
	if got := evalJS[string](t, b, `document.getElementById("limit-filter").value`); got != "tokyo" {
		t.Errorf("after a reload the filter reads %q", got)
	}
	checkLimits(t, b, tokyoBars)
	b.act(t, "limits", click("#nav-limits"))

	// The CSV is the table: every limit's value and percentage.
	_, body := b.download(t, `button[data-csv=limits]`)
	checkLimitsCSV(t, body, limitBars(limits, o.oracle.events), o)

	// Live: events sent now move the bars without a reload.
	var fresh []uiEvent
	for i := range 5 {
		at := time.Now().UTC().Add(-time.Second)
		fresh = append(fresh, uiEvent{ID: fmt.Sprintf("live-%d", i), Time: at.Format(time.RFC3339Nano), OrganizationID: o.id,
			ClientID: o.clients[0], ClientName: o.names[0], TemplateURI: "api/v2/users", HTTPMethod: "GET", Status: 200, at: at})
	}
	body, _ = json.Marshal(fresh)
	adminJSON(t, base, uiAdmin, "/api/v2/usage/events", json.RawMessage(body), 200, nil)
	o.oracle.events = append(o.oracle.events, fresh...)
	crm := limitBars([]*uiLimit{byName["CRM requests per UTC day"]}, o.oracle.events)[0]
	b.pollFor(t, fmt.Sprintf(`document.querySelector('table[data-table=limits] tr[data-key=%q] td[data-col=value]')?.dataset.value === "%d"`, crm.key, int64(crm.value)), time.Minute)
	checkLimits(t, b, limitBars(limits, o.oracle.events))

	// The lines on the charts: by UTC day, the organization's UTC day
	// limits on requests; the filtered one, the hourly one, Tokyo's and
	// the status and client limits are not what the chart counts.
	want := func(names ...string) []chartLine {
		out := []chartLine{}
		for _, n := range names {
			l := byName[n]
			v := l.Value
			if l.Metric == "errorRate" {
				v *= 100
			}
			out = append(out, chartLine{n, v})
		}
		return out
	}
	lines := func(what, query string, requests, errorRate []chartLine) {
		t.Helper()
		b.do(t, chromedp.Navigate(base+"/?view=api&"+query))
		b.waitReady(t, "api")
		checkCharts(t, b, "requests", "error-rate")
		for chart, w := range map[string][]chartLine{"requests": requests, "error-rate": errorRate} {
			if got := b.chartLines(t, chart); !slices.Equal(got, w) {
				t.Errorf("%s: the %s chart draws %v, want %v", what, chart, got, w)
			}
		}
	}
	lines("UTC days", "range=7d&tz=UTC", want("Org requests per UTC day"), want())
	if note := evalJS[string](t, b, `document.querySelector('[data-note=limit-lines]')?.textContent || ""`); !strings.Contains(note, "Org requests per UTC day (300)") {
		t.Errorf("the requests panel's note on its lines reads %q", note)
	}
	b.screenshot(t, "18-limit-line-utc-days")
	lines("Tokyo days", "range=7d&tz=Asia%2FTokyo", want("Org requests per Tokyo day"), want("Org error rate per Tokyo day"))
	b.screenshot(t, "19-limit-lines-tokyo-days")
	lines("UTC hours", "range=24h&tz=UTC", want("Org requests per UTC hour"), want())
	lines("CRM by UTC day", "range=7d&tz=UTC&client=crm-sync", want("CRM requests per UTC day"), want())
	lines("ETL by UTC day", "range=7d&tz=UTC&client=etl-batch", want(), want())
	lines("ETL by Tokyo day", "range=7d&tz=Asia%2FTokyo&client=etl-batch", want("Requests of each client per Tokyo day"), want())
	lines("GET /api/v2/users by UTC day", "range=7d&tz=UTC&template=api%2Fv2%2Fusers&method=GET", want("GET users per UTC day"), want())
	lines("UTC weeks", "range=30d&tz=UTC&granularity=Week", want(), want())
	b.checkAccessibility(t, "API usage with limit lines")

	// A token without usage:limit:view: a note, no failure, no lines.
	b.act(t, "signin", click("#signout"))
	b.signIn(t, o.viewer, o.secret)
	b.waitReady(t, "api")
	if got := b.chartLines(t, "requests"); len(got) != 0 {
		t.Errorf("without usage:limit:view the requests chart draws %v", got)
	}
	b.act(t, "limits", click("#nav-limits"))
	note := evalJS[string](t, b, `(n => n && !n.hidden ? n.textContent : "")(document.querySelector('[data-note=limits-forbidden]'))`)
	if !strings.Contains(note, "usage:limit:view") {
		t.Errorf("without usage:limit:view the view's note reads %q", note)
	}
	if !evalJS[bool](t, b, `document.getElementById("load-error").hidden`) {
		t.Errorf("the refusal shows as a failed load: %s", evalJS[string](t, b, `document.getElementById("load-error").textContent`))
	}
	if n := evalJS[int](t, b, `document.querySelectorAll(".limit-bar, table[data-table=limits]").length`); n != 0 {
		t.Errorf("without usage:limit:view %d bars or tables show", n)
	}
	b.screenshot(t, "20-limits-forbidden")
	b.checkAccessibility(t, "limits refused")

	// An organization without limits: how to create one.
	empty := newOrg(t, base, uiAdmin, "No Limits Inc")
	id, sec := limitViewer(t, base, empty)
	b.act(t, "signin", click("#signout"))
	b.signIn(t, id, sec)
	b.waitReady(t, "api")
	b.act(t, "limits", click("#nav-limits"))
	note = evalJS[string](t, b, `(n => n && !n.hidden ? n.textContent : "")(document.querySelector('[data-note=limits-empty]'))`)
	if !strings.Contains(note, "no usage limits") || !strings.Contains(note, "usaged limit create") {
		t.Errorf("without limits the view's note reads %q", note)
	}
	b.screenshot(t, "21-limits-empty")
}

// uiBar is a bar as the page shows it.
type uiBar struct {
	Key, Level, Percentage, Amount, Window, Enforced string
	Marks                                            int
}

// checkLimits compares the bars and the table the limits view shows with
// want: the same bars, in order of percentage, with their numbers.
func checkLimits(tb testing.TB, b *uiBrowser, want []limitBar) {
	tb.Helper()
	shown := evalJS[[]uiBar](tb, b, `[...document.querySelectorAll(".limit-bar")].map(li => {
		const f = (n) => li.querySelector('[data-field=' + n + ']')?.textContent || "";
		return {key: li.dataset.key, level: li.dataset.level, percentage: f("percentage"), amount: f("amount"), window: f("window"), enforced: f("enforced"),
			marks: li.querySelectorAll(".limit-mark").length};
	})`)
	rows := map[string]uiRow{}
	for _, r := range b.table(tb, "limits") {
		rows[r.Key] = r
	}
	text := b.cells(tb, "limits")
	byKey := map[string]limitBar{}
	for _, w := range want {
		byKey[w.key] = w
	}
	if len(shown) != len(want) || len(rows) != len(want) {
		var keys []string
		for _, s := range shown {
			keys = append(keys, s.Key)
		}
		tb.Fatalf("%d bars %v and %d table rows, want %d", len(shown), keys, len(rows), len(want))
	}
	last := math.Inf(1)
	for _, s := range shown {
		w, ok := byKey[s.Key]
		if !ok {
			tb.Fatalf("unexpected bar %q", s.Key)
		}
		if w.percentage > last {
			tb.Errorf("bar %s (%s) at %.3f %% comes after one at %.3f %%", w.key, w.limit, w.percentage, last)
		}
		last = w.percentage
		if p, ok := strings.CutSuffix(s.Percentage, " %"); !ok || !roundedFrom(p, w.percentage) {
			tb.Errorf("bar %s (%s %s): %q, want %.3f %%", w.key, w.limit, w.client, s.Percentage, w.percentage)
		}
		if w.l.Metric != "errorRate" {
			if a := thousands(int64(w.value)) + " of " + thousands(int64(w.l.Value)); s.Amount != a {
				tb.Errorf("bar %s (%s %s): %q, want %q", w.key, w.limit, w.client, s.Amount, a)
			}
		}
		if s.Level != w.level || s.Marks != w.marks {
			tb.Errorf("bar %s (%s %s): level %s with %d marks, want %s with %d", w.key, w.limit, w.client, s.Level, s.Marks, w.level, w.marks)
		}
		if win := fmt.Sprintf("%s – %s", w.l.start.Format("2006-01-02 15:04"), w.l.end.Format("2006-01-02 15:04")); !strings.Contains(s.Window, win) || !strings.Contains(s.Window, w.l.loc.String()) {
			tb.Errorf("bar %s (%s): window %q, want %s in %s", w.key, w.limit, s.Window, win, w.l.loc)
		}
		if (s.Enforced == "enforced") != w.enforced {
			tb.Errorf("bar %s (%s): %q", w.key, w.limit, s.Enforced)
		}
		r := rows[s.Key]
		v, err1 := strconv.ParseFloat(r.Cols["value"], 64)
		p, err2 := strconv.ParseFloat(r.Cols["percentage"], 64)
		if err1 != nil || err2 != nil || math.Abs(v-w.value) > 1e-12 || math.Abs(p-w.percentage) > 1e-9 {
			tb.Errorf("row %s (%s %s): value %s, %s %%; want %g, %g %%", w.key, w.limit, w.client, r.Cols["value"], r.Cols["percentage"], w.value, w.percentage)
		}
		if got := text[s.Key]["windowStart"] + " / " + text[s.Key]["windowEnd"] + " / " + text[s.Key]["zone"]; got != w.l.start.Format("2006-01-02 15:04")+" / "+w.l.end.Format("2006-01-02 15:04")+" / "+w.l.loc.String() {
			tb.Errorf("row %s (%s): window %s", w.key, w.limit, got)
		}
	}
}

// checkLimitsCSV compares the downloaded table with want, row by row by
// limit and client name.
func checkLimitsCSV(tb testing.TB, body []byte, want []limitBar, o *uiOrg) {
	tb.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(recs) == 0 {
		tb.Fatalf("CSV: %v", err)
	}
	col := func(name string) int {
		i := slices.Index(recs[0], name)
		if i < 0 {
			tb.Fatalf("CSV header %v lacks %q", recs[0], name)
		}
		return i
	}
	name, client, value, pct := col("Limit"), col("Client"), col("Value"), col("Percentage (%)")
	got := map[string][2]string{}
	for _, r := range recs[1:] {
		got[r[name]+"|"+r[client]] = [2]string{r[value], r[pct]}
	}
	if len(got) != len(want) || len(recs)-1 != len(want) {
		tb.Fatalf("CSV has %d rows, want %d", len(recs)-1, len(want))
	}
	for _, w := range want {
		who := ""
		switch w.l.Scope {
		case "eachClient":
			who = o.names[slices.Index(o.clients, w.client)]
		case "client":
			who = w.l.ClientID // a client's limit names its id only
		}
		g, ok := got[w.limit+"|"+who]
		v, err := strconv.ParseFloat(g[0], 64)
		if !ok || err != nil || math.Abs(v-w.value) > 1e-12 || !roundedFrom(g[1], w.percentage) {
			tb.Errorf("CSV row %s %s: %q, want %g and %.3f %%", w.limit, who, g, w.value, w.percentage)
		}
	}
}
