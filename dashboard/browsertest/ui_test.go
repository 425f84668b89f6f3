package browsertest

// The dashboard in a real headless Chromium against a real usaged: what the
// page shows, exports and hides is checked against counts the test makes
// itself from the events it sends.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/usaged/usaged/demo"
)

// uiBrowser is one headless Chromium with one tab.
type uiBrowser struct {
	ctx       context.Context
	downloads string
	shots     string

	mu   sync.Mutex
	done map[string]string // download GUID → suggested file name, once complete
}

// chromiumPath finds the browser: $USAGED_CHROMIUM, else chromium on PATH.
// Without one the test is skipped, unless USAGED_REQUIRE_BROWSER is set (CI
// sets it), when it fails.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("USAGED_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("USAGED_REQUIRE_BROWSER") != "" {
		tb.Fatal("no Chromium found (install Debian's chromium or set USAGED_CHROMIUM)")
	}
	tb.Skip("no Chromium found; set USAGED_CHROMIUM to run the browser tests")
	return ""
}

// artifactDir is where screenshots go: $USAGED_TEST_ARTIFACTS/dashboard, or
// a temporary directory.
func artifactDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("USAGED_TEST_ARTIFACTS")
	if dir == "" {
		return tb.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func newBrowser(tb testing.TB) *uiBrowser {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(tb)),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1400, 900),
		// As root, and with the network closed: no sandbox, no GPU, and
		// none of the browser's own connections.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	// One deadline for the whole test: a context derived per step and
	// cancelled after it would take the tab's page state with it. Waits
	// have their own timeouts (poll).
	ctx, cancel := context.WithTimeout(tab, 5*time.Minute)
	tb.Cleanup(func() { cancel(); cancelTab(); cancelAlloc() })
	b := &uiBrowser{ctx: ctx, downloads: tb.TempDir(), shots: artifactDir(tb), done: map[string]string{}}
	names := map[string]string{}
	err := chromedp.ListenBrowser(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *browser.EventDownloadWillBegin:
			names[ev.GUID] = ev.SuggestedFilename
		case *browser.EventDownloadProgress:
			if ev.State == browser.DownloadProgressStateCompleted {
				b.done[ev.GUID] = names[ev.GUID]
			}
		}
	})
	if err != nil {
		tb.Fatalf("starting Chromium: %v", err)
	}
	events := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: b.downloads, EventsEnabled: &events,
	}); err != nil {
		tb.Fatalf("download behavior: %v", err)
	}
	// The API usage view counts in the browser's zone unless the URL names
	// one, and the tests count UTC days: the tab's clock is UTC wherever
	// the machine's is.
	b.setZone(tb, "UTC")
	return b
}

// setZone sets the time zone the tab's clock reads, as if the machine's
// were zone.
func (b *uiBrowser) setZone(tb testing.TB, zone string) {
	tb.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone}); err != nil {
		tb.Fatalf("time zone %s: %v", zone, err)
	}
}

// do runs steps in the tab.
func (b *uiBrowser) do(tb testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		tb.Fatalf("browser: %v", err)
	}
}

// evalJS evaluates a JavaScript expression in the tab.
func evalJS[T any](tb testing.TB, b *uiBrowser, expr string) T {
	tb.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// poll waits until a JavaScript expression is true.
func (b *uiBrowser) poll(tb testing.TB, expr string) {
	tb.Helper()
	b.pollFor(tb, expr, 30*time.Second)
}

func (b *uiBrowser) pollFor(tb testing.TB, expr string, timeout time.Duration) {
	tb.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		tb.Fatalf("browser: waiting for %s: %v", expr, err)
	}
}

// waitReady waits for the view to have its data: the page sets
// body[data-ready] to "false" when the view changes and to "true" once
// every panel is loaded.
func (b *uiBrowser) waitReady(tb testing.TB, view string) {
	tb.Helper()
	b.poll(tb, fmt.Sprintf(`document.body.dataset.ready === "true" && document.body.dataset.view === %q`, view))
}

// act runs a JavaScript statement that changes the view (a click, a
// select's change) and waits for the new view to be ready. The page marks
// itself not ready, or shows another view, synchronously, inside the event
// handler.
func (b *uiBrowser) act(tb testing.TB, view, js string) {
	tb.Helper()
	started := evalJS[bool](tb, b, fmt.Sprintf(`(() => { const was = document.body.dataset.view; %s; return document.body.dataset.ready === "false" || document.body.dataset.view !== was; })()`, js))
	if !started {
		tb.Fatalf("%s did not start a new view", js)
	}
	b.waitReady(tb, view)
}

// choose picks a value of a <select> as a user does: the change event
// follows.
func choose(id, value string) string {
	return fmt.Sprintf(`{ const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); }`, id, value)
}

func click(selector string) string {
	return fmt.Sprintf(`document.querySelector(%q).click()`, selector)
}

// signIn fills and submits the client credentials form.
func (b *uiBrowser) signIn(tb testing.TB, id, secret string) {
	tb.Helper()
	b.do(tb,
		chromedp.WaitVisible(chromedp.CSS("#signin-oauth")),
		chromedp.SendKeys(chromedp.CSS("#client-id"), id),
		chromedp.SendKeys(chromedp.CSS("#client-secret"), secret),
		chromedp.Click(chromedp.CSS("#signin-oauth button[type=submit]")),
	)
}

// screenshot saves the whole page as name.png among the artefacts.
func (b *uiBrowser) screenshot(tb testing.TB, name string) {
	tb.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot %s", path)
}

// download clicks a CSV button and returns the file's name and contents.
func (b *uiBrowser) download(tb testing.TB, selector string) (string, []byte) {
	tb.Helper()
	evalJS[bool](tb, b, click(selector)+`, true`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		for guid, name := range b.done {
			delete(b.done, guid)
			b.mu.Unlock()
			body, err := os.ReadFile(filepath.Join(b.downloads, guid))
			if err != nil {
				tb.Fatal(err)
			}
			return name, body
		}
		b.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("no download after clicking %s", selector)
	return "", nil
}

// uiRow is a table row as the page shows it: its key, and per column the
// raw count (data-value) or the text.
type uiRow struct {
	Key  string            `json:"key"`
	Cols map[string]string `json:"cols"`
}

func (b *uiBrowser) table(tb testing.TB, name string) []uiRow {
	tb.Helper()
	return evalJS[[]uiRow](tb, b, fmt.Sprintf(`[...document.querySelectorAll('table[data-table=%q] tbody tr[data-key]')].map(tr => ({
		key: tr.dataset.key,
		cols: Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, td.dataset.value ?? td.textContent]))}))`, name))
}

// partial lists the Partial column of a table, row by row.
func (b *uiBrowser) partial(tb testing.TB, name string) []string {
	tb.Helper()
	var out []string
	for _, r := range b.table(tb, name) {
		out = append(out, r.Cols["partial"])
	}
	return out
}

// uiCounts are the counts of one row of an API usage table.
type uiCounts struct{ requests, s2, s3, s4, s429, s5 int64 }

func (c *uiCounts) add(status int) {
	c.requests++
	switch {
	case status >= 500:
		c.s5++
	case status >= 400:
		c.s4++
		if status == 429 {
			c.s429++
		}
	case status >= 300:
		c.s3++
	case status >= 200:
		c.s2++
	}
}

// errorRate is the percentage of requests answered 4xx or 5xx.
func (c uiCounts) errorRate() float64 {
	return float64(c.s4+c.s5) * 100 / float64(c.requests)
}

// checkTable compares a table the page shows with the oracle's counts.
func checkTable(tb testing.TB, what string, got []uiRow, want map[string]*uiCounts) {
	tb.Helper()
	if len(got) != len(want) {
		keys := []string{}
		for _, r := range got {
			keys = append(keys, r.Key)
		}
		tb.Fatalf("%s: %d rows %v, want %d", what, len(got), keys, len(want))
	}
	for _, r := range got {
		w, ok := want[r.Key]
		if !ok {
			tb.Fatalf("%s: unexpected row %q", what, r.Key)
		}
		// The columns are the chart's status classes, which do not overlap:
		// 4xx without its 429s, and what no class covers (1xx).
		other := w.requests - w.s2 - w.s3 - w.s4 - w.s5
		for col, n := range map[string]int64{"requests": w.requests, "status200": w.s2, "status300": w.s3, "other400": w.s4 - w.s429, "status429": w.s429, "status500": w.s5, "other": other} {
			if r.Cols[col] != strconv.FormatInt(n, 10) {
				tb.Errorf("%s: row %s column %s = %q, want %d", what, r.Key, col, r.Cols[col], n)
			}
		}
		// The page rounds to one decimal; the oracle's exact rate must be
		// within half a step of it.
		if got, err := strconv.ParseFloat(r.Cols["errorRate"], 64); err != nil || math.Abs(got-w.errorRate()) > 0.05+1e-9 {
			tb.Errorf("%s: row %s error rate %q, want %.3f", what, r.Key, r.Cols["errorRate"], w.errorRate())
		}
	}
}

// uiEvent is one API request event the test sends, and what it counts as.
type uiEvent struct {
	ID             string `json:"id"`
	Time           string `json:"time"`
	OrganizationID string `json:"organizationId"`
	ClientID       string `json:"clientId"`
	ClientName     string `json:"clientName"`
	TemplateURI    string `json:"templateUri"`
	HTTPMethod     string `json:"httpMethod"`
	Status         int    `json:"status"`
	DurationMs     int64  `json:"durationMs,omitempty"`
	RequestBytes   int64  `json:"requestBytes,omitempty"`
	ResponseBytes  int64  `json:"responseBytes,omitempty"`
	at             time.Time
}

// uiOracle counts events by hand, per range and dimension.
type uiOracle struct{ events []uiEvent }

func (o *uiOracle) count(since time.Time, keep func(*uiEvent) bool, key func(*uiEvent) string) map[string]*uiCounts {
	out := map[string]*uiCounts{}
	for i := range o.events {
		e := &o.events[i]
		if e.at.Before(since) || !keep(e) {
			continue
		}
		c := out[key(e)]
		if c == nil {
			c = &uiCounts{}
			out[key(e)] = c
		}
		c.add(e.Status)
	}
	return out
}

var (
	anyEvent   = func(*uiEvent) bool { return true }
	byClient   = func(e *uiEvent) string { return e.ClientID }
	byTemplate = func(e *uiEvent) string { return e.TemplateURI }
	byMethod   = func(e *uiEvent) string { return e.HTTPMethod }
)

// uiOrg is an organization with a viewer client and the traffic sent for it.
type uiOrg struct {
	id, name       string
	viewer, secret string
	clients, names []string // ids and names of the clients whose traffic is sent
	oracle         uiOracle
}

func adminJSON(tb testing.TB, base, uiAdmin, path string, body any, want int, out any) {
	tb.Helper()
	b, _ := json.Marshal(body)
	status, resp, err := post(base, uiAdmin, path, "application/json", b)
	if err != nil || status != want {
		tb.Fatalf("POST %s: %d %s %v", path, status, resp, err)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			tb.Fatalf("POST %s: %v in %s", path, err, resp)
		}
	}
}

// newOrg creates an organization and its viewer, with no traffic yet.
func newOrg(tb testing.TB, base, uiAdmin, name string) *uiOrg {
	tb.Helper()
	o := &uiOrg{name: name}
	var org struct{ ID string }
	adminJSON(tb, base, uiAdmin, "/api/v2/admin/organizations", map[string]string{"name": name}, 201, &org)
	o.id = org.ID
	var viewer struct{ ID, Secret string }
	adminJSON(tb, base, uiAdmin, "/api/v2/admin/organizations/"+o.id+"/clients",
		map[string]any{"name": name + " viewer", "permissions": []string{"usage:organization:view", "oauth:client:view"}}, 201, &viewer)
	o.viewer, o.secret = viewer.ID, viewer.Secret
	return o
}

// seedOrg creates an organization, its viewer and n events of its clients
// spread over the last 21 days, today included.
func seedOrg(tb testing.TB, base, uiAdmin, name string, clients []string, n int, rng *rand.Rand, now time.Time) *uiOrg {
	tb.Helper()
	o := newOrg(tb, base, uiAdmin, name)
	// Client ids are GUIDs and some names and templates are long, as real
	// ones are: the tables must still show their numbers.
	templates := []string{"api/v2/users", "api/v2/users/{userId}", "api/v2/conversations", "api/v2/analytics/query", "api/v2/users/{userId}/presences/{sourceId}",
		"api/v2/analytics/conversations/details/jobs/{jobId}/results"}
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	statuses := []int{200, 200, 200, 201, 204, 304, 400, 404, 429, 429, 500, 503, 101}
	for _, c := range clients {
		o.clients = append(o.clients, fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Uint64()>>16))
		o.names = append(o.names, c)
	}
	today := now.Truncate(24 * time.Hour)
	for i := range n {
		// Days 0–5 and 12–20 ago: far from the 7- and 30-day ranges' starts,
		// so that a midnight passing during the test moves no event across.
		days := []int{0, 1, 2, 3, 4, 5, 12, 15, 20}[rng.IntN(9)]
		at := today.Add(-time.Duration(days) * 24 * time.Hour).Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		if at.After(now) {
			at = now.Add(-time.Duration(rng.IntN(60)+1) * time.Second)
		}
		k := rng.IntN(len(clients))
		// The first client calls the first template most, so that the
		// drill-down differs from the whole.
		t := rng.IntN(len(templates))
		if k == 0 && rng.IntN(2) == 0 {
			t = 0
		}
		e := uiEvent{
			ID: fmt.Sprintf("%s-%d", o.id, i), Time: at.Format(time.RFC3339Nano), OrganizationID: o.id,
			ClientID: o.clients[k], ClientName: o.names[k], TemplateURI: templates[t],
			HTTPMethod: methods[rng.IntN(len(methods))], Status: statuses[rng.IntN(len(statuses))], at: at,
		}
		o.oracle.events = append(o.oracle.events, e)
	}
	// Sent twice: the second time every event is a duplicate and counts nothing.
	body, _ := json.Marshal(o.oracle.events)
	for round := range 2 {
		var res ingestResult
		adminJSON(tb, base, uiAdmin, "/api/v2/usage/events", json.RawMessage(body), 200, &res)
		if want := (ingestResult{Accepted: n}); round == 1 && res != (ingestResult{Duplicates: n}) || round == 0 && res != want {
			tb.Fatalf("send %d: %+v", round+1, res)
		}
	}
	return o
}

// rangeStart is where the dashboard's last-N-days range starts: N UTC days
// ending today, today included.
func rangeStart(now time.Time, days int) time.Time {
	return now.Truncate(24*time.Hour).AddDate(0, 0, 1-days)
}

// uiAdmin is the admin token of the usaged the browser tests start.
const uiAdmin = "dashboard-admin-token-0123456789"

// browserAndServer starts a browser and a usaged process with a fresh data
// directory, unless -short.
func browserAndServer(t *testing.T) (*uiBrowser, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("drives a browser against a usaged process")
	}
	b := newBrowser(t)
	return b, startServe(t, t.TempDir(), uiAdmin).base
}

func TestDashboardInBrowser(t *testing.T) {
	b, base := browserAndServer(t)
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(7, 11))
	a := seedOrg(t, base, uiAdmin, "Acme Corp", []string{"Acme CRM", "Acme ETL", "Acme Mobile", "Acme Wallboard and Workforce Management Integration (EU)"}, 700, rng, now)
	other := seedOrg(t, base, uiAdmin, "Bravo Inc", []string{"Bravo Secret Sync", "Bravo Hidden Agent"}, 150, rng, now)

	// Sign in through the form.
	b.do(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#signin-oauth")))
	b.screenshot(t, "01-sign-in")
	b.checkAccessibility(t, "sign-in")
	b.signIn(t, a.viewer, a.secret)
	b.waitReady(t, "api")
	if org := evalJS[string](t, b, `document.getElementById("org-name").textContent`); org != a.name {
		t.Errorf("#org-name = %q, want %q", org, a.name)
	}

	// The default view: the last 7 days.
	since7, since30 := rangeStart(now, 7), rangeStart(now, 30)
	checkTable(t, "clients, 7 days", b.table(t, "clients"), a.oracle.count(since7, anyEvent, byClient))
	checkTable(t, "templates, 7 days", b.table(t, "templates"), a.oracle.count(since7, anyEvent, byTemplate))
	checkTable(t, "methods, 7 days", b.table(t, "methods"), a.oracle.count(since7, anyEvent, byMethod))
	checkCharts(t, b, "requests", "error-rate", "clients", "templates", "methods")
	if buckets := evalJS[int](t, b, `document.querySelectorAll('table[data-table=requests] tbody tr[data-key]').length`); buckets != 7 {
		t.Errorf("requests over time has %d day rows, want 7", buckets)
	}
	// The stacked chart's legend and the table name each status class alike.
	legend := evalJS[[]string](t, b, `JSON.parse(document.querySelector('.chart[data-chart=requests]').dataset.series)`)
	heads := evalJS[[]string](t, b, `[...document.querySelectorAll('table[data-table=requests] thead th')].map(th => th.textContent)`)
	for _, name := range legend {
		if !slices.Contains(heads, name) {
			t.Errorf("the legend's %q is no column of the table %v", name, heads)
		}
	}
	// Today, still counting, is the one partial day of the last 7.
	if got := b.partial(t, "requests"); !slices.Equal(got, []string{"", "", "", "", "", "", "in progress"}) {
		t.Errorf("partial days of the last 7: %q", got)
	}
	b.checkFits(t, "API usage, 7 days", true)
	// The page's column narrows without the window changing (as when a
	// scrollbar appears): every chart follows its box.
	evalJS[bool](t, b, `document.querySelector("main").style.maxWidth = "760px", true`)
	b.checkFits(t, "API usage in a narrower column", false)
	evalJS[bool](t, b, `document.querySelector("main").style.maxWidth = "", true`)
	b.checkFits(t, "API usage, 7 days, the column widened again", true)
	// Today's tooltip says it is partial too: hover its bar, the last of seven.
	evalJS[bool](t, b, `(() => {
		const c = document.querySelector('.chart[data-chart=requests]'), r = c.getBoundingClientRect();
		const at = {clientX: r.right - 16 - (r.width - 60) / 14, clientY: r.top + r.height / 2, bubbles: true};
		c.querySelector("canvas").dispatchEvent(new MouseEvent("mousemove", at));
		return true;
	})()`)
	b.poll(t, `document.querySelector('.chart[data-chart=requests]').innerText.includes("partial (in progress)")`)
	b.screenshot(t, "02-api-usage-7d")
	b.checkAccessibility(t, "API usage")

	// The token is in sessionStorage and headers, never in the URL.
	stored := evalJS[string](t, b, `sessionStorage.getItem("usaged.session") || ""`)
	href := evalJS[string](t, b, `location.href`)
	var sess struct{ Token string }
	json.Unmarshal([]byte(stored), &sess)
	if sess.Token == "" || strings.Contains(href, sess.Token) {
		t.Fatalf("token %q, URL %s", sess.Token, href)
	}

	// 30 days, then a reload of the URL restores the same view.
	b.act(t, "api", choose("range", "30d"))
	href = evalJS[string](t, b, `location.search`)
	if !strings.Contains(href, "range=30d") {
		t.Errorf("the URL does not hold the range: %s", href)
	}
	want30 := a.oracle.count(since30, anyEvent, byClient)
	checkTable(t, "clients, 30 days", b.table(t, "clients"), want30)
	checkTable(t, "templates, 30 days", b.table(t, "templates"), a.oracle.count(since30, anyEvent, byTemplate))
	b.screenshot(t, "03-api-usage-30d")
	b.do(t, chromedp.Reload())
	b.waitReady(t, "api")
	checkTable(t, "clients, 30 days, reloaded", b.table(t, "clients"), want30)

	// Drill into a client: its templates and methods only.
	crm := a.clients[0]
	b.act(t, "api", click(fmt.Sprintf(`table[data-table=clients] tr[data-key=%q] a[data-drill=client]`, crm)))
	href = evalJS[string](t, b, `location.search`)
	if !strings.Contains(href, "client="+crm) || !strings.Contains(href, "range=30d") {
		t.Errorf("drill-down URL %s", href)
	}
	if title := evalJS[string](t, b, `document.getElementById("drill-title").textContent`); !strings.Contains(title, a.names[0]) {
		t.Errorf("#drill-title = %q", title)
	}
	isCRM := func(e *uiEvent) bool { return e.ClientID == crm }
	checkTable(t, "templates of "+crm, b.table(t, "templates"), a.oracle.count(since30, isCRM, byTemplate))
	checkTable(t, "methods of "+crm, b.table(t, "methods"), a.oracle.count(since30, isCRM, byMethod))
	b.screenshot(t, "04-client-drill-down")
	b.checkAccessibility(t, "client drill-down")

	// Back to all clients, and export the clients table.
	evalJS[bool](t, b, `history.back(), true`)
	b.poll(t, `!location.search.includes("client=") && document.body.dataset.ready === "true"`)
	name, body := b.download(t, `button[data-csv=clients]`)
	if name != "clients.csv" {
		t.Errorf("download named %q", name)
	}
	fromCSV := csvCounts(t, body, "Client ID")
	fromAPI := apiClientCounts(t, base, sess.Token, since30, now)
	for id, w := range want30 {
		if fromCSV[id] != *w {
			t.Errorf("CSV row %s = %+v, oracle %+v", id, fromCSV[id], *w)
		}
		if fromAPI[id] != *w {
			t.Errorf("API row %s = %+v, oracle %+v", id, fromAPI[id], *w)
		}
	}
	if len(fromCSV) != len(want30) || len(fromAPI) != len(want30) {
		t.Errorf("CSV %d rows, API %d, oracle %d", len(fromCSV), len(fromAPI), len(want30))
	}

	// A template's drill-down ("URL requests"): who calls it, and how.
	tpl := "api/v2/users/{userId}"
	isTpl := func(e *uiEvent) bool { return e.TemplateURI == tpl }
	b.act(t, "api", click(fmt.Sprintf(`table[data-table=templates] tr[data-key=%q] a[data-drill=template]`, tpl)))
	if shown := evalJS[bool](t, b, `document.querySelector('.chart[data-chart=templates]').offsetParent !== null`); shown {
		t.Error("the templates panel shows in a template's drill-down")
	}
	checkTable(t, "clients of "+tpl, b.table(t, "clients"), a.oracle.count(since30, isTpl, byClient))
	checkTable(t, "methods of "+tpl, b.table(t, "methods"), a.oracle.count(since30, isTpl, byMethod))
	b.checkFits(t, "a template's drill-down", true)
	b.screenshot(t, "05-template-drill-down")

	// A custom range, end day included, by day; then by week, grouped by client.
	from, to := now.Truncate(24*time.Hour).AddDate(0, 0, -20), now.Truncate(24*time.Hour).AddDate(0, 0, -12)
	b.act(t, "api", fmt.Sprintf(`{ const f = document.getElementById("from"), u = document.getElementById("to");
		document.getElementById("range").value = "custom"; f.disabled = false; u.disabled = false;
		f.value = %q; u.value = %q; u.dispatchEvent(new Event("change")); }`, from.Format(time.DateOnly), to.Format(time.DateOnly)))
	href = evalJS[string](t, b, `location.search`)
	if !strings.Contains(href, "range=custom") || !strings.Contains(href, "from="+from.Format(time.DateOnly)) || !strings.Contains(href, "to="+to.Format(time.DateOnly)) {
		t.Errorf("custom range URL %s", href)
	}
	inCustom := func(e *uiEvent) bool { return !e.at.Before(from) && e.at.Before(to.AddDate(0, 0, 1)) && isTpl(e) }
	checkTable(t, "clients of "+tpl+", custom range", b.table(t, "clients"), a.oracle.count(from, inCustom, byClient))
	if n := len(b.table(t, "requests")); n != 9 {
		t.Errorf("custom range of 9 days: %d rows", n)
	}
	if got := b.partial(t, "requests"); slices.ContainsFunc(got, func(p string) bool { return p != "" }) {
		t.Errorf("whole past days marked partial: %q", got)
	}
	b.act(t, "api", choose("granularity", "Week"))
	b.act(t, "api", choose("group-by", "client"))
	weekly := map[string]int64{} // "week|client" → requests
	for _, e := range a.oracle.events {
		if inCustom(&e) {
			day := e.at.Truncate(24 * time.Hour)
			monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
			weekly[monday.Format("2006-01-02T15:04:05Z")+"|"+e.ClientID]++
		}
	}
	// Weeks the range cuts are partial; a week the range covers is whole.
	for _, r := range b.table(t, "requests") {
		monday, _ := time.Parse(time.RFC3339, strings.Split(r.Key, "|")[0])
		want := ""
		if monday.Before(from) || monday.AddDate(0, 0, 7).After(to.AddDate(0, 0, 1)) {
			want = "partly outside the range"
		}
		if r.Cols["partial"] != want {
			t.Errorf("week %s: partial %q, want %q", r.Key, r.Cols["partial"], want)
		}
	}
	rows := b.table(t, "requests")
	if len(rows) != len(weekly) {
		t.Errorf("weekly by client: %d rows, want %d", len(rows), len(weekly))
	}
	for _, r := range rows {
		if r.Cols["requests"] != strconv.FormatInt(weekly[r.Key], 10) {
			t.Errorf("weekly by client %s: %s requests, want %d", r.Key, r.Cols["requests"], weekly[r.Key])
		}
	}
	b.checkFits(t, "weekly by client", true)
	b.screenshot(t, "06-custom-range-weekly-by-client")

	// Live: events sent now show up without a reload, and the freshness
	// indicator moves on.
	b.do(t, chromedp.Navigate(base+"/?range=7d"))
	b.waitReady(t, "api")
	updated := evalJS[string](t, b, `document.getElementById("freshness").dataset.updated`)
	var fresh []uiEvent
	for i := range 25 {
		at := time.Now().UTC().Add(-time.Second)
		fresh = append(fresh, uiEvent{ID: fmt.Sprintf("live-%d", i), Time: at.Format(time.RFC3339Nano), OrganizationID: a.id,
			ClientID: a.clients[1], ClientName: a.names[1], TemplateURI: "api/v2/users", HTTPMethod: "GET", Status: 200, at: at})
	}
	body, _ = json.Marshal(fresh)
	adminJSON(t, base, uiAdmin, "/api/v2/usage/events", json.RawMessage(body), 200, nil)
	a.oracle.events = append(a.oracle.events, fresh...)
	want := a.oracle.count(since7, anyEvent, byClient)[a.clients[1]].requests
	b.pollFor(t, fmt.Sprintf(`document.querySelector('table[data-table=clients] tr[data-key=%q] td[data-col=requests]')?.dataset.value === "%d"`, a.clients[1], want), time.Minute)
	if now := evalJS[string](t, b, `document.getElementById("freshness").dataset.updated`); now <= updated {
		t.Errorf("freshness did not move: %s, then %s", updated, now)
	}
	if !strings.HasPrefix(evalJS[string](t, b, `document.getElementById("freshness").textContent`), "Live") {
		t.Errorf("freshness: %q", evalJS[string](t, b, `document.getElementById("freshness").textContent`))
	}
	checkTable(t, "clients after live events", b.table(t, "clients"), a.oracle.count(since7, anyEvent, byClient))

	// Nothing of the other organization shows, even when asked for by id.
	forbidden := append(append([]string{other.name}, other.names...), other.clients...)
	b.assertAbsent(t, forbidden...)
	b.do(t, chromedp.Navigate(base+"/?range=30d&client="+other.clients[0]))
	b.waitReady(t, "api")
	for _, tbl := range []string{"templates", "methods", "requests"} {
		rows := b.table(t, tbl)
		for _, r := range rows {
			if r.Cols["requests"] != "0" {
				t.Errorf("another organization's client shows %s row %s with %s requests", tbl, r.Key, r.Cols["requests"])
			}
		}
	}
	b.assertAbsent(t, append([]string{other.name}, other.names...)...)
	b.screenshot(t, "07-other-organization-client")

	// A phone.
	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait),
		chromedp.Navigate(base+"/?range=7d"))
	b.waitReady(t, "api")
	checkTable(t, "clients on a phone", b.table(t, "clients"), a.oracle.count(since7, anyEvent, byClient))
	if evalJS[bool](t, b, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the phone layout scrolls sideways")
	}
	b.checkFits(t, "API usage on a phone", false)
	b.screenshot(t, "08-api-usage-phone")
	b.checkAccessibility(t, "API usage on a phone")
	b.do(t, chromedp.EmulateViewport(1400, 900))

	// Sign out: the session is gone; the other organization's viewer sees
	// only its own clients.
	b.act(t, "signin", click("#signout"))
	if stored := evalJS[string](t, b, `sessionStorage.getItem("usaged.session") || ""`); stored != "" {
		t.Errorf("after sign-out sessionStorage holds %s", stored)
	}
	for _, id := range []string{"nav", "signout", "freshness"} {
		if evalJS[bool](t, b, fmt.Sprintf(`document.getElementById(%q).offsetParent !== null`, id)) {
			t.Errorf("#%s shows after sign-out", id)
		}
	}
	b.signIn(t, other.viewer, other.secret)
	b.waitReady(t, "api")
	checkTable(t, "the other organization's clients", b.table(t, "clients"), other.oracle.count(since7, anyEvent, byClient))
	b.assertAbsent(t, append([]string{a.name}, a.names...)...)

	// Wrong credentials are refused with a message, and nothing is stored.
	b.act(t, "signin", click("#signout"))
	b.signIn(t, a.viewer, "not-the-secret")
	b.poll(t, `document.getElementById("signin-error").textContent.length > 0`)
	if stored := evalJS[string](t, b, `sessionStorage.getItem("usaged.session") || ""`); strings.Contains(stored, "token") {
		t.Errorf("a refused sign-in stored %s", stored)
	}
	b.screenshot(t, "09-sign-in-refused")
}

// checkAccessibility runs axe-core (the dashboard's npm dev dependency) on
// the page for the WCAG 2 A and AA rules: labels, names, contrast, ARIA,
// table headers. Without dashboard/web/node_modules it is skipped, unless
// the browser tests are required (CI installs it first).
func (b *uiBrowser) checkAccessibility(tb testing.TB, what string) {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join("..", "web", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		if os.Getenv("USAGED_REQUIRE_BROWSER") != "" {
			tb.Fatalf("axe-core: %v (run npm ci in dashboard/web)", err)
		}
		tb.Logf("accessibility not checked: %v", err)
		return
	}
	if !evalJS[bool](tb, b, string(src)+"\n;typeof axe === 'object'") {
		tb.Fatal("axe-core did not load")
	}
	type violation struct {
		ID, Impact, Help string
		Nodes            []string
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	found, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))})))`, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.Fatalf("axe: %v", err)
	}
	for _, v := range found {
		tb.Errorf("%s: accessibility: %s (%s, %s) at %v", what, v.Help, v.ID, v.Impact, v.Nodes)
	}
}

// checkFits checks, at the viewport's width, that every shown chart and
// table stays inside its card: a chart's canvas is as wide as its box, and
// a table's box ends inside the card. Where wide is set (a desktop), a table
// also shows every column without scrolling sideways, so that no number
// hides behind its names. The tables behind charts are opened first.
func (b *uiBrowser) checkFits(tb testing.TB, what string, wide bool) {
	tb.Helper()
	evalJS[bool](tb, b, `document.querySelectorAll("details.behind").forEach(d => d.open = true), true`)
	// The page's layout settles (a scrollbar, charts resized) before it is measured.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise)); err != nil {
		tb.Fatalf("browser: %v", err)
	}
	bad := evalJS[[]string](tb, b, fmt.Sprintf(`(() => {
		const wide = %t, bad = [];
		const out = (r, c) => r.left < c.left - 0.5 || r.right > c.right + 0.5;
		for (const card of document.querySelectorAll(".panel")) {
			if (card.offsetParent === null) continue;
			const c = card.getBoundingClientRect();
			const name = card.querySelector("h2")?.textContent;
			for (const ch of card.querySelectorAll(".chart")) {
				const r = ch.getBoundingClientRect(), cv = ch.querySelector("canvas");
				if (out(r, c)) bad.push(name + ": chart " + Math.round(r.width) + " px wide overflows its card of " + Math.round(c.width));
				if (!cv) { bad.push(name + ": chart not drawn"); continue; }
				const w = cv.getBoundingClientRect().width;
				if (Math.abs(w - ch.clientWidth) > 1) bad.push(name + ": chart canvas " + Math.round(w) + " px in a box of " + ch.clientWidth);
			}
			for (const wrap of card.querySelectorAll(".table-wrap")) {
				const t = wrap.querySelector("table").dataset.table, r = wrap.getBoundingClientRect();
				if (out(r, c)) bad.push("table " + t + " overflows its card: " + Math.round(r.right) + " > " + Math.round(c.right));
				if (wide && wrap.scrollWidth > wrap.clientWidth + 1) bad.push("table " + t + " scrolls sideways: " + wrap.scrollWidth + " px in " + wrap.clientWidth);
			}
		}
		if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) {
			const wider = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1);
			bad.push("the page scrolls sideways: " + wider.slice(0, 3).map(e => e.tagName + "." + e.className).join(", "));
		}
		return bad;
	})()`, wide))
	for _, m := range bad {
		tb.Errorf("%s at %d px: %s", what, evalJS[int](tb, b, `window.innerWidth`), m)
	}
}

// checkCharts checks that each named chart was drawn.
func checkCharts(tb testing.TB, b *uiBrowser, names ...string) {
	tb.Helper()
	for _, n := range names {
		if !evalJS[bool](tb, b, fmt.Sprintf(`(() => { const c = document.querySelector('.chart[data-chart=%q]'); return !!c && c.dataset.rendered === "true" && !!c.querySelector("canvas"); })()`, n)) {
			tb.Errorf("chart %s was not drawn", n)
		}
	}
}

// assertAbsent fails if any of words appears in the page's text or markup.
func (b *uiBrowser) assertAbsent(tb testing.TB, words ...string) {
	tb.Helper()
	page := evalJS[string](tb, b, `document.body.innerText + "\n" + document.documentElement.outerHTML`)
	for _, w := range words {
		if strings.Contains(page, w) {
			tb.Errorf("the page shows %q, which belongs to another organization", w)
		}
	}
}

// csvCounts reads a downloaded API usage CSV into counts keyed by the
// column keyCol.
func csvCounts(tb testing.TB, body []byte, keyCol string) map[string]uiCounts {
	tb.Helper()
	if !bytes.HasSuffix(body, []byte("\r\n")) {
		tb.Errorf("CSV does not end in CRLF")
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	head := recs[0]
	col := func(name string) int {
		i := slices.Index(head, name)
		if i < 0 {
			tb.Fatalf("CSV header %v lacks %q", head, name)
		}
		return i
	}
	key, cols := col(keyCol), []int{col("Requests"), col("2xx"), col("3xx"), col("4xx except 429"), col("429"), col("5xx")}
	out := map[string]uiCounts{}
	for _, r := range recs[1:] {
		var n [6]int64
		for i, c := range cols {
			v, err := strconv.ParseInt(r[c], 10, 64)
			if err != nil {
				tb.Fatalf("CSV cell %q: %v", r[c], err)
			}
			n[i] = v
		}
		out[r[key]] = uiCounts{n[0], n[1], n[2], n[3] + n[4], n[4], n[5]}
	}
	return out
}

// apiClientCounts asks usaged directly what the clients table shows.
func apiClientCounts(tb testing.TB, base, token string, since, now time.Time) map[string]uiCounts {
	tb.Helper()
	end := now.Truncate(24*time.Hour).AddDate(0, 0, 1)
	q := fmt.Sprintf(`{"interval":"%s/%s","groupBy":["OAuthClientId"]}`, since.Format(time.RFC3339), end.Format(time.RFC3339))
	req, _ := http.NewRequest("POST", base+"/api/v2/usage/aggregate", strings.NewReader(q))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			ClientID                                                        string
			Requests, Status200, Status300, Status400, Status429, Status500 int64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		tb.Fatal(err)
	}
	out := map[string]uiCounts{}
	for _, r := range res.Results {
		out[r.ClientID] = uiCounts{r.Requests, r.Status200, r.Status300, r.Status400, r.Status429, r.Status500}
	}
	return out
}

// TestDashboardTimeZone: the API usage view counts in the zone its URL
// names, its days starting at local midnights, in the browser's zone when
// the URL names none, and shows the server's refusal of a zone it cannot
// count in, its controls still at hand.
func TestDashboardTimeZone(t *testing.T) {
	b, base := browserAndServer(t)
	now := time.Now().UTC()
	a := seedOrg(t, base, uiAdmin, "Tokyo Corp", []string{"Tokyo CRM", "Tokyo ETL"}, 300, rand.New(rand.NewPCG(13, 17)), now)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	// The browser is in New York: the URL's zone wins over the browser's.
	b.setZone(t, "America/New_York")
	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d&tz=Asia/Tokyo"))
	b.signIn(t, a.viewer, a.secret)
	b.waitReady(t, "api")
	checkZoneDays(t, b, tokyo, "Asia/Tokyo")
	// The range is Tokyo's last 7 days, which start 9 hours before UTC's.
	today := time.Now().In(tokyo)
	since := time.Date(today.Year(), today.Month(), today.Day()-6, 0, 0, 0, 0, tokyo)
	checkTable(t, "clients, Tokyo's 7 days", b.table(t, "clients"), a.oracle.count(since, anyEvent, byClient))
	b.screenshot(t, "13-api-usage-tokyo")
	b.checkAccessibility(t, "API usage in a time zone")

	// Without a zone in the URL, the browser's.
	b.do(t, chromedp.Navigate(base+"/?view=api&range=7d"))
	b.waitReady(t, "api")
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	checkZoneDays(t, b, newYork, "America/New_York")
	// A browser in a zone the server refuses opens in UTC instead.
	b.setZone(t, "Asia/Kolkata")
	b.do(t, chromedp.Reload())
	b.waitReady(t, "api")
	checkZoneDays(t, b, time.UTC, "UTC")

	// Kolkata is 5:30 ahead of UTC: chosen, the server refuses it, and the
	// view says why.
	kolkata := evalJS[string](t, b, `[...document.getElementById("tz").options].map(o => o.value).find(v => /^Asia\/(Kolkata|Calcutta)$/.test(v)) || ""`)
	if kolkata == "" {
		t.Fatal("no Asia/Kolkata among the zones")
	}
	evalJS[bool](t, b, choose("tz", kolkata)+`; true`)
	b.poll(t, `!document.getElementById("load-error").hidden`)
	msg := evalJS[string](t, b, `document.getElementById("load-error").textContent`)
	if !strings.Contains(msg, kolkata) || !strings.Contains(msg, "+05:30") || !strings.Contains(msg, "whole hours") {
		t.Errorf("the refusal shows %q", msg)
	}
	if search := evalJS[string](t, b, `location.search`); !strings.Contains(search, "tz="+strings.ReplaceAll(kolkata, "/", "%2F")) {
		t.Errorf("the URL does not hold the zone: %s", search)
	}
	b.screenshot(t, "14-time-zone-refused")
	// The controls stay: another zone loads again.
	if disabled := evalJS[bool](t, b, `document.getElementById("tz").disabled`); disabled {
		t.Error("the zone control is disabled after a refusal")
	}
	b.act(t, "api", choose("tz", "Asia/Tokyo"))
	if !evalJS[bool](t, b, `document.getElementById("load-error").hidden`) {
		t.Error("the refusal still shows after another zone loaded")
	}
	checkZoneDays(t, b, tokyo, "Asia/Tokyo")
}

// checkZoneDays checks that the API usage view, by day over the last 7
// days, counts in zone: the control and the date column name it, and the
// table's days are its last 7, each from local midnight as the server
// dates it, the last still counting.
func checkZoneDays(tb testing.TB, b *uiBrowser, loc *time.Location, zone string) {
	tb.Helper()
	if got := evalJS[string](tb, b, `document.getElementById("tz").value`); got != zone {
		tb.Errorf("the zone control shows %q, want %q", got, zone)
	}
	head := evalJS[string](tb, b, `document.querySelector('table[data-table=requests] thead th').textContent`)
	if want := "Day (" + zone + ")"; head != want {
		tb.Errorf("date column %q, want %q", head, want)
	}
	rows := b.table(tb, "requests")
	today := time.Now().In(loc)
	if len(rows) != 7 {
		tb.Fatalf("%s: %d days, want 7", zone, len(rows))
	}
	for i, r := range rows {
		day := time.Date(today.Year(), today.Month(), today.Day()-6+i, 0, 0, 0, 0, loc)
		key := day.Format("2006-01-02T15:04:05Z07:00") // the row's date, as the server writes it
		if r.Key != key || r.Cols["date"] != day.Format(time.DateOnly) {
			tb.Errorf("%s: day %d is %s labelled %q, want %s labelled %q", zone, i, r.Key, r.Cols["date"], key, day.Format(time.DateOnly))
		}
	}
	if got := b.partial(tb, "requests"); !slices.Equal(got, []string{"", "", "", "", "", "", "in progress"}) {
		tb.Errorf("%s: partial days of the last 7: %q", zone, got)
	}
}

// TestDashboardServiceUsage signs in with a partner's API key: the
// services table and a service's days equal what the test sent.
func TestDashboardServiceUsage(t *testing.T) {
	b, base := browserAndServer(t)
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)

	var partner struct{ PartnerGuid string }
	adminJSON(t, base, uiAdmin, "/api/partners", map[string]string{"name": "Acme Partner"}, 200, &partner)
	var reseller struct{ ResellerGuid string }
	adminJSON(t, base, uiAdmin, "/api/partners/"+partner.PartnerGuid+"/resellers", map[string]string{"name": "Acme Resale"}, 200, &reseller)
	var other struct{ PartnerGuid string }
	adminJSON(t, base, uiAdmin, "/api/partners", map[string]string{"name": "Other Partner"}, 200, &other)
	var otherReseller struct{ ResellerGuid string }
	adminJSON(t, base, uiAdmin, "/api/partners/"+other.PartnerGuid+"/resellers", map[string]string{"name": "Other Resale"}, 200, &otherReseller)
	type service struct{ ServiceGuid, Name, Status string }
	create := func(name, reseller, status string) service {
		var s service
		adminJSON(t, base, uiAdmin, "/api/services", map[string]string{"name": name, "resellerGuid": reseller, "primaryDomain": strings.ToLower(strings.ReplaceAll(name, " ", "-")) + ".example.com", "status": status}, 200, &s)
		return s
	}
	services := []service{create("Contoso", reseller.ResellerGuid, "CertifiedSecure"), create("Fabrikam", reseller.ResellerGuid, "TrialActive"), create("Northwind", reseller.ResellerGuid, "Blocked")}
	hidden := create("Hidden Other Service", otherReseller.ResellerGuid, "TrialActive")
	var key struct{ Key string }
	adminJSON(t, base, uiAdmin, "/api/apikeys", map[string]string{"name": "dashboard", "scope": "Partner", "scopeGuid": partner.PartnerGuid}, 200, &key)

	// Messages on each of the last 6 days (today so far included), counted
	// per service and day; user-count and storage gauges reported on two of
	// them, which later days carry forward.
	rng := rand.New(rand.NewPCG(3, 5))
	messages := map[string]map[string]int64{} // service → day → messages
	type gauge struct {
		at                  time.Time
		total, pro, storage int64
	}
	gauges := map[string][]gauge{} // service → reports
	user := "7d4c2a10-5b1e-4f7a-9c3e-2b8d6f0a1e55"
	for _, s := range append(services[:2:2], hidden) {
		messages[s.ServiceGuid] = map[string]int64{}
		var evs []map[string]any
		for d := range 6 {
			at := today.AddDate(0, 0, -d).Add(time.Duration(rng.IntN(12*60)) * time.Minute)
			if at.After(now) {
				at = now.Add(-time.Second)
			}
			n := 1 + rng.IntN(9)
			for k := range n {
				evs = append(evs, map[string]any{"type": "message", "id": fmt.Sprintf("m-%d-%d", d, k), "time": at.Format(time.RFC3339Nano),
					"userGuid": user, "recipients": []string{"bob@example.org"}, "attachments": k % 3, "attachmentBytes": 1000 * (k % 3)})
				messages[s.ServiceGuid][at.Format(time.DateOnly)]++
			}
			if d == 1 || d == 4 {
				g := gauge{at: at, total: int64(10 + rng.IntN(50)), pro: int64(rng.IntN(10)), storage: int64(rng.IntN(1 << 30))}
				gauges[s.ServiceGuid] = append(gauges[s.ServiceGuid], g)
				evs = append(evs,
					map[string]any{"type": "users", "id": fmt.Sprintf("g-%d", d), "time": at.Format(time.RFC3339Nano), "total": g.total, "pro": g.pro, "guest": g.total - g.pro, "disabled": 0, "unregistered": 0},
					map[string]any{"type": "storage", "id": fmt.Sprintf("s-%d", d), "time": at.Format(time.RFC3339Nano), "bytes": g.storage})
			}
		}
		body, _ := json.Marshal(evs)
		status, resp, err := post(base, uiAdmin, "/api/services/"+s.ServiceGuid+"/events", "application/json", body)
		if err != nil || status != 200 {
			t.Fatalf("activity: %d %s %v", status, resp, err)
		}
	}
	yesterday, month := today.AddDate(0, 0, -1).Format(time.DateOnly), today.Format("2006-01")

	b.do(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#signin-apikey")),
		chromedp.SendKeys(chromedp.CSS("#api-key"), key.Key),
		chromedp.Click(chromedp.CSS("#signin-apikey button[type=submit]")))
	b.waitReady(t, "services")
	rows := b.table(t, "services")
	if len(rows) != len(services) {
		t.Fatalf("services table has %d rows, want %d", len(rows), len(services))
	}
	for _, s := range services {
		i := slices.IndexFunc(rows, func(r uiRow) bool { return r.Key == s.ServiceGuid })
		if i < 0 {
			t.Fatalf("service %s missing", s.Name)
		}
		r := rows[i]
		if r.Cols["name"] != s.Name || r.Cols["status"] != s.Status {
			t.Errorf("row %s: %v", s.Name, r.Cols)
		}
		var month64 int64
		for day, n := range messages[s.ServiceGuid] {
			if strings.HasPrefix(day, month) {
				month64 += n
			}
		}
		wantY, wantM := strconv.FormatInt(messages[s.ServiceGuid][yesterday], 10), strconv.FormatInt(month64, 10)
		if s.Status == "Blocked" {
			wantY, wantM = "–", "–" // no reports for a Blocked service
		}
		if r.Cols["messagesYesterday"] != wantY || r.Cols["messagesMonth"] != wantM {
			t.Errorf("row %s: messages yesterday %s, this month %s; want %s, %s", s.Name, r.Cols["messagesYesterday"], r.Cols["messagesMonth"], wantY, wantM)
		}
	}
	checkCharts(t, b, "services")
	b.assertAbsent(t, hidden.Name, hidden.ServiceGuid)
	b.checkFits(t, "services", true)
	b.screenshot(t, "10-services")
	b.checkAccessibility(t, "services")

	// Into a service by keyboard: focus its link, press Enter.
	s := services[0]
	evalJS[bool](t, b, fmt.Sprintf(`document.querySelector('table[data-table=services] tr[data-key=%q] a[data-drill=service]').focus(), true`, s.ServiceGuid))
	b.do(t, chromedp.KeyEvent("\r"))
	b.waitReady(t, "service")
	days := b.table(t, "service-daily")
	span, _ := strconv.Atoi(strings.TrimSuffix(evalJS[string](t, b, `document.getElementById("range").value`), "d"))
	if span == 0 || len(days) != span || days[len(days)-1].Key != today.Format(time.DateOnly) {
		t.Fatalf("a service's last %d days: %d rows", span, len(days))
	}
	for _, r := range days {
		if want := strconv.FormatInt(messages[s.ServiceGuid][r.Key], 10); r.Cols["totalMessageCount"] != want {
			t.Errorf("%s on %s: %s messages, want %s", s.Name, r.Key, r.Cols["totalMessageCount"], want)
		}
		// A gauge is the last report before the day's end, 0 before any.
		day, _ := time.Parse(time.DateOnly, r.Key)
		var last gauge
		for _, g := range gauges[s.ServiceGuid] {
			if g.at.Before(day.AddDate(0, 0, 1)) && !g.at.Before(last.at) {
				last = g
			}
		}
		for col, want := range map[string]int64{"totalUserCount": last.total, "proUserCount": last.pro, "attachmentStorageUsage": last.storage} {
			if r.Cols[col] != strconv.FormatInt(want, 10) {
				t.Errorf("%s on %s: %s = %s, want %d", s.Name, r.Key, col, r.Cols[col], want)
			}
		}
	}
	checkCharts(t, b, "messages", "attachments", "storage", "users")
	// Every size in the table is in the one unit its header names.
	head := evalJS[string](t, b, `document.querySelector('table[data-table=service-daily] th:has(button[data-sort=attachmentStorageUsage])').textContent`)
	units := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	unit, ok := strings.CutPrefix(head, "Storage (")
	unit = strings.TrimSuffix(unit, ")")
	if size := units[unit]; !ok || size == 0 {
		t.Errorf("storage column %q names no unit", head)
	} else {
		shown := evalJS[[]string](t, b, `[...document.querySelectorAll('table[data-table=service-daily] td[data-col=attachmentStorageUsage]')].map(td => td.dataset.value + " " + td.textContent)`)
		for _, c := range shown {
			var raw, text float64
			fmt.Sscanf(c, "%g %g", &raw, &text)
			if math.Abs(raw/size-text) > 0.5 {
				t.Errorf("storage %s: shown as %g %s", c, text, unit)
			}
		}
	}
	if got := b.partial(t, "service-daily"); got[len(got)-1] != "in progress" || slices.Contains(got[:len(got)-1], "in progress") {
		t.Errorf("partial days of a service: %q", got)
	}
	if title := evalJS[string](t, b, `document.getElementById("drill-title").textContent`); !strings.Contains(title, s.Name) {
		t.Errorf("#drill-title = %q", title)
	}
	b.checkFits(t, "a service's days", true)
	b.screenshot(t, "11-service-days")
	b.checkAccessibility(t, "a service's days")
	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	b.checkFits(t, "a service's days on a phone", false)
	b.screenshot(t, "12-service-days-phone")
	b.act(t, "services", click("#nav-services"))
	b.checkFits(t, "services on a phone", false)
	b.do(t, chromedp.EmulateViewport(1400, 900))

	// Another partner's service, asked for by its id, is not found.
	b.do(t, chromedp.Navigate(base+"/?view=service&service="+hidden.ServiceGuid))
	b.poll(t, `!document.getElementById("load-error").hidden`)
	b.assertAbsent(t, hidden.Name)
}

// TestDashboardDemoOpensSignedIn: under serve --demo the page signs itself
// in as the demo viewer, with the demo partner's key for service usage.
// What usaged serve --demo seeds (cmd/usaged/servedemo.go): its
// organization's name and how many of its clients send traffic.
const (
	demoOrgName = "Demo Org"
	demoClients = 8
)

func TestDashboardDemoOpensSignedIn(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser against a usaged process")
	}
	b := newBrowser(t)
	base := startServe(t, t.TempDir(), uiAdmin, "--demo", "--demo-events-per-day", "500").base
	b.do(t, chromedp.Navigate(base+"/"))
	b.waitReady(t, "api")
	if org := evalJS[string](t, b, `document.getElementById("org-name").textContent`); org != demo.OrgName {
		t.Errorf("#org-name = %q, want %q", org, demo.OrgName)
	}
	if n := len(b.table(t, "clients")); n != demo.LocalClients {
		t.Errorf("%d clients, want the demo's %d", n, demo.LocalClients)
	}
	checkCharts(t, b, "requests", "clients")
	b.act(t, "services", click("#nav-services"))
	if n := len(b.table(t, "services")); n == 0 {
		t.Error("the demo partner's services are not listed")
	}
	// Without --demo the page hands out no credentials.
	plain := startServe(t, t.TempDir(), uiAdmin).base
	resp, err := http.Get(plain + "/ui/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sess map[string]any
	json.NewDecoder(resp.Body).Decode(&sess)
	if len(sess) != 1 || sess["demo"] != false {
		t.Errorf("/ui/session without --demo: %v", sess)
	}
}
