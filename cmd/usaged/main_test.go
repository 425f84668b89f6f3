package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/syncbuf"
)

func TestEnvFallback(t *testing.T) {
	t.Parallel()
	newFlags := func() (*flag.FlagSet, *string, *flagvalue.DayDuration, *flagvalue.List, *string, *int) {
		fs := flag.NewFlagSet("usaged serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		addr := fs.String("addr", "default", "listen address")
		win := flagvalue.DayDuration(time.Hour)
		fs.Var(&win, "dedupe-window", "window")
		var list flagvalue.List
		fs.Var(&list, "group-by", "dimensions")
		tok := fs.String("token", "", "token")
		n := fs.Int("batch", 1, "batch")
		env.Document("serve", fs)
		return fs, addr, &win, &list, tok, n
	}
	lookup := func(env map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}

	fs, addr, win, list, tok, n := newFlags()
	for name, want := range map[string]string{"addr": "[$USAGED_ADDR]", "dedupe-window": "[$USAGED_DEDUPE_WINDOW]",
		"group-by": "[$USAGED_GROUP_BY]", "token": "[$USAGED_TOKEN, $USAGED_ADMIN_TOKEN]"} {
		if u := fs.Lookup(name).Usage; !strings.HasSuffix(u, want) {
			t.Errorf("usage of --%s is %q, want it to end in %q", name, u, want)
		}
	}
	vars := map[string]string{"USAGED_ADDR": "10.0.0.1:80", "USAGED_DEDUPE_WINDOW": "2d", "USAGED_GROUP_BY": "UserId, HttpMethod",
		"USAGED_ADMIN_TOKEN": "admin", "USAGED_BATCH": "7"}
	if err := fs.Parse([]string{"--batch", "9"}); err != nil {
		t.Fatal(err)
	}
	if err := env.Apply("usaged", "serve", fs, lookup(vars)); err != nil {
		t.Fatal(err)
	}
	if *addr != "10.0.0.1:80" || time.Duration(*win) != 48*time.Hour || strings.Join(*list, "|") != "UserId|HttpMethod" || *tok != "admin" || *n != 9 {
		t.Fatalf("got addr %q, window %v, list %q, token %q, batch %d", *addr, time.Duration(*win), *list, *tok, *n)
	}

	// USAGED_TOKEN comes before USAGED_ADMIN_TOKEN; unset variables leave defaults.
	fs, addr, _, _, tok, _ = newFlags()
	fs.Parse(nil)
	if err := env.Apply("usaged", "serve", fs, lookup(map[string]string{"USAGED_TOKEN": "client", "USAGED_ADMIN_TOKEN": "admin"})); err != nil {
		t.Fatal(err)
	}
	if *tok != "client" || *addr != "default" {
		t.Fatalf("token %q, addr %q: want client, default", *tok, *addr)
	}

	// A bad value names its variable.
	fs, _, _, _, _, _ = newFlags()
	fs.Parse(nil)
	err := env.Apply("usaged", "serve", fs, lookup(map[string]string{"USAGED_BATCH": "many", "USAGED_DEDUPE_WINDOW": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "$USAGED_BATCH") || !strings.Contains(err.Error(), "$USAGED_DEDUPE_WINDOW") {
		t.Fatalf("applyEnv = %v, want errors naming both variables", err)
	}
}

// Flags of the same name mean different things in different commands, so
// only serve's and the shared ones read USAGED_<FLAG>; the others add the
// command. A bad value names its variable and what the flag wants.
func TestEnvPerCommand(t *testing.T) {
	t.Parallel()
	f := func(cmd []string, want ...string) {
		t.Helper()
		out := runCLI(t, nil, append([]string{"help"}, cmd...)...)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("usaged help %s does not name %s", strings.Join(cmd, " "), w)
			}
		}
	}
	f([]string{"query"}, "$USAGED_QUERY_FORMAT]", "$USAGED_QUERY_INTERVAL]", "$USAGED_SERVER]", "[$USAGED_TOKEN, $USAGED_ADMIN_TOKEN]")
	f([]string{"org", "list"}, "$USAGED_ORG_LIST_FORMAT]", "$USAGED_TIMEOUT]")
	f([]string{"import"}, "$USAGED_IMPORT_FORMAT]", "$USAGED_IMPORT_ORG]")
	f([]string{"serve"}, "$USAGED_DEDUPE_WINDOW]", "$USAGED_LOG_FORMAT]", "$USAGED_ADMIN_TOKEN]")
	f([]string{"proxy"}, "$USAGED_LOG_FORMAT]", "$USAGED_SHUTDOWN_TIMEOUT]")

	// query's table format is no longer forced on org list, whose formats
	// are text and json: org list reads its own variable.
	env := map[string]string{"USAGED_FORMAT": "table", "USAGED_QUERY_FORMAT": "xml"}
	_, err := tryCLI(t, env, "query", "--interval", "2026-01-01/2026-01-31")
	if err == nil || !strings.Contains(err.Error(), "$USAGED_QUERY_FORMAT") {
		t.Fatalf("query with $USAGED_QUERY_FORMAT=xml: %v", err)
	}
	_, err = tryCLI(t, env, "org", "list", "--server", "http://127.0.0.1:1", "--token", "t")
	if err == nil || strings.Contains(err.Error(), "FORMAT") {
		t.Fatalf("org list with $USAGED_FORMAT=table: %v, want a connection error, not one about a variable", err)
	}

	for env, want := range map[string]string{
		"USAGED_MAX_EVENTS":       `$USAGED_MAX_EVENTS="many" is not an integer (--max-events of usaged serve)`,
		"USAGED_SHUTDOWN_TIMEOUT": `$USAGED_SHUTDOWN_TIMEOUT="many" is not a duration such as 500ms, 30s, 5m or 2h (--shutdown-timeout of usaged serve)`,
		"USAGED_DEMO":             `$USAGED_DEMO="many" is not a boolean`,
		"USAGED_DEDUPE_WINDOW":    `$USAGED_DEDUPE_WINDOW (--dedupe-window of usaged serve): "many" is not a duration: want e.g. 35d`,
	} {
		_, err := tryCLI(t, map[string]string{env: "many"}, "serve", "--data", t.TempDir())
		var ue cmdline.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("serve with $%s=many: %v\nwant a usage error saying %s", env, err, want)
		}
	}
}

// usaged help lists every command on one line; usaged help CMD and
// usaged CMD -h print the same to stdout, explaining every flag with its
// variable.
func TestHelpCoversEveryFlag(t *testing.T) {
	t.Parallel()
	var overview bytes.Buffer
	if err := (&Main{LookupEnv: noEnv}).Run(t.Context(), []string{"help"}, &overview, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(overview.String(), "\n"); n > 60 {
		t.Errorf("usaged help is %d lines, want a short overview:\n%s", n, overview.String())
	}
	if !strings.Contains(overview.String(), "README") {
		t.Errorf("usaged help does not say where to read more:\n%s", overview.String())
	}
	c := &cli{stdout: io.Discard, stderr: io.Discard}
	for _, cmd := range c.commands() {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(cmd.Name) + ` +\S`).MatchString(overview.String()) {
			t.Errorf("usaged help does not list %s", cmd.Name)
		}
		args := strings.Fields(cmd.Name)
		var help, dashH, dashHErr bytes.Buffer
		if err := (&Main{LookupEnv: noEnv}).Run(t.Context(), append([]string{"help"}, args...), &help, io.Discard); err != nil {
			t.Fatalf("help %s: %v", cmd.Name, err)
		}
		if err := (&Main{LookupEnv: noEnv}).Run(t.Context(), append(args, "-h"), &dashH, &dashHErr); err != nil {
			t.Fatalf("%s -h: %v", cmd.Name, err)
		}
		if help.String() != dashH.String() || dashHErr.Len() > 0 {
			t.Errorf("usaged %s -h printed\n%s\nand on stderr %q; want what usaged help %s prints, on stdout:\n%s", cmd.Name, dashH.String(), dashHErr.String(), cmd.Name, help.String())
		}
		synopsis := "usage: usaged " + cmd.Name + " [flags]\n"
		if cmd.Args != "" {
			synopsis = "usage: usaged " + cmd.Name + " [flags] " + cmd.Args + "\n"
		}
		if !strings.HasPrefix(help.String(), synopsis) {
			t.Errorf("help %s does not start with %q:\n%s", cmd.Name, synopsis, help.String())
		}
		cmd.Flags.VisitAll(func(f *flag.Flag) {
			shown := regexp.MustCompile(`\n  -` + regexp.QuoteMeta(f.Name) + `[ \n]`).MatchString(help.String())
			if !shown || !strings.Contains(help.String(), "$"+env.Names(cmd.Name, f.Name)[0]) {
				t.Errorf("help %s does not explain --%s with its variable", cmd.Name, f.Name)
			}
		})
	}
	// A flag error still goes to stderr with the usage, and exits 2.
	var out, errOut bytes.Buffer
	err := (&Main{LookupEnv: noEnv}).Run(t.Context(), []string{"org", "list", "--no-such-flag"}, &out, &errOut)
	var ue cmdline.UsageError
	if !errors.As(err, &ue) || out.Len() > 0 || !strings.Contains(errOut.String(), "no-such-flag") || !strings.Contains(errOut.String(), "usage: usaged org list") {
		t.Fatalf("org list --no-such-flag: %v, stdout %q, stderr %q", err, out.String(), errOut.String())
	}
	err = (&Main{LookupEnv: noEnv}).Run(t.Context(), []string{"frobnicate"}, io.Discard, io.Discard)
	if !errors.As(err, &ue) {
		t.Fatalf("unknown command: %v, want a usage error", err)
	}
}

func noEnv(string) (string, bool) { return "", false }

// inProcessServer is `usaged serve` running in a goroutine of the test.
type inProcessServer struct {
	base   string
	stdout *syncbuf.Buffer
	stop   func() error // cancels the server and returns what Run returned
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

func mustServe(t *testing.T, args ...string) *inProcessServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcessServer{stdout: &syncbuf.Buffer{}}
	done := make(chan error, 1)
	go func() {
		done <- (&Main{LookupEnv: noEnv}).Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn"}, args...), s.stdout, io.Discard)
	}()
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended before listening: %v\n%s", err, s.stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not report its address:\n%s", s.stdout.String())
		}
	}
	resp, err := http.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
	}
	return s
}

// runCLI runs a client command against env and returns its stdout.
func runCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := tryCLI(t, env, args...)
	if err != nil {
		t.Fatalf("usaged %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func tryCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	err := m.Run(t.Context(), args, &out, &errOut)
	if err != nil {
		err = errors.Join(err, errors.New(errOut.String()))
	}
	return out.String(), err
}

func mustJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not the JSON expected (%v):\n%s", err, s)
	}
	return v
}

func totalRequests(t *testing.T, queryJSON string) int64 {
	t.Helper()
	res := mustJSON[struct {
		Results []struct {
			Requests int64 `json:"requests"`
		} `json:"results"`
	}](t, queryJSON)
	var n int64
	for _, r := range res.Results {
		n += r.Requests
	}
	return n
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	const token = "end-to-end-admin-token"
	data := t.TempDir()
	srv := mustServe(t, "--data", data, "--admin-token", token)
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}

	org := mustJSON[orgBody](t, runCLI(t, env, "org", "create", "--name", "End to end", "--format", "json"))
	if org.ID == "" || org.Name != "End to end" {
		t.Fatalf("org create gave %+v", org)
	}
	if out := runCLI(t, env, "org", "list"); !strings.Contains(out, org.ID) {
		t.Fatalf("org list does not show %s:\n%s", org.ID, out)
	}
	viewer := mustJSON[clientBody](t, runCLI(t, env, "client", "create", "--org", org.ID, "--name", "Viewer",
		"--permissions", "usage:organization:view", "--validity", "3600", "--format", "json"))
	if viewer.ID == "" || viewer.Secret == "" {
		t.Fatalf("client create gave %+v", viewer)
	}

	demoArgs := []string{"demo", "--org", org.ID, "--clients", "3", "--users", "5", "--templates", "20", "--days", "2",
		"--events-per-day", "400", "--batch", "150", "--concurrency", "2", "--format", "json"}
	first := mustJSON[demo.Summary](t, runCLI(t, env, demoArgs...))
	if first.Events == 0 || first.Accepted != first.Events || first.Rejected != 0 {
		t.Fatalf("demo: %+v", first)
	}
	// The same seed, sent again, is all duplicates (unless the hour turned
	// between the runs and moved the interval).
	second := mustJSON[demo.Summary](t, runCLI(t, env, demoArgs...))
	if second.Interval == first.Interval && (second.Accepted != 0 || second.Duplicates != first.Events) {
		t.Fatalf("second demo run: %+v, want only duplicates of the first's %d events", second, first.Events)
	}
	accepted := int64(first.Accepted + second.Accepted)

	if out := runCLI(t, env, "client", "list", "--org", org.ID); !strings.Contains(out, "Viewer") || !strings.Contains(out, "Acme CRM sync") {
		t.Fatalf("client list:\n%s", out)
	}

	// The viewer's client credentials get a token through /oauth/token; the
	// admin token in the environment does not get in their way.
	out := runCLI(t, env, "query", "--client-id", viewer.ID, "--client-secret", viewer.Secret, "--interval", second.Interval, "--format", "json")
	if got := totalRequests(t, out); got != accepted {
		t.Fatalf("query counts %d requests; demo had %d accepted\n%s", got, accepted, out)
	}
	asViewer := func(args ...string) []string {
		return append([]string{"query", "--client-id", viewer.ID, "--client-secret", viewer.Secret}, args...)
	}
	out = runCLI(t, env, asViewer("--interval", second.Interval, "--granularity", "Day", "--group-by", "HttpMethod", "--metrics", "Requests,Status429")...)
	if !strings.Contains(out, "METHOD") || !strings.Contains(out, "GET") || !strings.Contains(out, "TOTAL") || strings.Contains(out, "CLIENT") || strings.Contains(out, "2XX") {
		t.Fatalf("table query:\n%s", out)
	}
	// In a time zone, through the aggregate: the same total, local dates.
	out = runCLI(t, env, asViewer("--interval", second.Interval, "--granularity", "Day", "--time-zone", "Asia/Tokyo", "--format", "json")...)
	if got := totalRequests(t, out); got != accepted || !strings.Contains(out, "T00:00:00+09:00") {
		t.Fatalf("query in Asia/Tokyo counts %d requests (demo had %d accepted), or has no local midnight:\n%s", got, accepted, out)
	}
	if _, err := tryCLI(t, env, asViewer("--interval", second.Interval, "--time-zone", "Asia/Kolkata")...); err == nil || !strings.Contains(err.Error(), "whole hours") {
		t.Fatalf("query in Asia/Kolkata: %v, want the zone refused", err)
	}
	// Measures go through the aggregate too: the demo's events carry
	// durations and bytes; counts and bytes are totalled, durations not.
	out = runCLI(t, env, asViewer("--interval", second.Interval, "--metrics", "Requests,durationP95,durationAvg,responseBytes", "--format", "json")...)
	measured := mustJSON[struct {
		Results []struct {
			Requests      int64        `json:"requests"`
			DurationP95   *int64       `json:"durationP95"`
			DurationAvg   *json.Number `json:"durationAvg"`
			DurationMax   *int64       `json:"durationMax"`
			ResponseBytes *int64       `json:"responseBytes"`
		} `json:"results"`
	}](t, out)
	var total int64
	for _, r := range measured.Results {
		total += r.Requests
		if r.DurationP95 == nil || *r.DurationP95 <= 0 || r.DurationAvg == nil || r.ResponseBytes == nil || *r.ResponseBytes <= 0 || r.DurationMax != nil {
			t.Fatalf("query with measures: a row without the measures asked for, or with one not asked for:\n%s", out)
		}
	}
	if total != accepted {
		t.Fatalf("query with measures counts %d requests; demo had %d accepted\n%s", total, accepted, out)
	}
	out = runCLI(t, env, asViewer("--interval", second.Interval, "--metrics", "durationP95,requestBytes")...)
	if !strings.Contains(out, "P95 MS") || !strings.Contains(out, "REQUEST BYTES") || !strings.Contains(out, "TOTAL") || strings.Contains(out, "2XX") {
		t.Fatalf("table query with measures:\n%s", out)
	}
	out = runCLI(t, env, asViewer("--interval", second.Interval, "--format", "csv")...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) < 2 || lines[0] != "clientId,clientName,requests,status200,status300,status400,status500,status429" {
		t.Fatalf("csv query:\n%s", out)
	}

	// Server errors come back with their code and message.
	_, err := tryCLI(t, env, asViewer("--interval", "2026-02-01/2026-01-01")...)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code == "" || !strings.Contains(ae.Message, "after start") {
		t.Fatalf("bad interval: %v", err)
	}

	resp, err := http.Get(srv.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"usaged_store_disk_bytes", "usaged_store_l0_sublevels", "usaged_store_written_bytes_total", "process_resident_memory_bytes", "go_goroutines", "usaged_ingest_events_total"} {
		if !bytes.Contains(metrics, []byte("\n"+name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	rep := mustJSON[benchReport](t, runCLI(t, env, "bench", "ingest", "--org", org.ID, "--duration", "300ms", "--batch", "200", "--concurrency", "1", "--variety", "2", "--format", "json"))
	if rep.Accepted == 0 || rep.Accepted != rep.Events || rep.FailedBatches != 0 || rep.BatchP50Ms <= 0 || rep.ServerMaxRSSBytes == 0 {
		t.Fatalf("bench ingest: %+v", rep)
	}

	runCLI(t, env, "client", "delete", "--org", org.ID, "--id", viewer.ID)
	if _, err := tryCLI(t, env, "query", "--client-id", viewer.ID, "--client-secret", viewer.Secret, "--interval", second.Interval); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("query as a deleted client: %v, want 401", err)
	}

	if err := srv.stop(); err != nil {
		t.Fatalf("serve returned %v after cancellation", err)
	}
	// --demo refuses a data directory that holds other data.
	_, err = tryCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", data, "--admin-token", token, "--demo", "--log-format", "json")
	if err == nil || !strings.Contains(err.Error(), "fresh data directory") {
		t.Fatalf("serve --demo on a used data directory: %v", err)
	}
}

func TestServeDemo(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	srv := mustServe(t, "--data", data, "--demo", "--demo-events-per-day", "300")
	out := srv.stdout.String()
	re := regexp.MustCompile(`holds ([\d,]+) events from (\S+)\.\n[\s\S]*client id\s+(\S+)\n\s+client secret\s+(\S+)\n[\s\S]*curl -s -u`)
	m := re.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "admin token (generated now") {
		t.Fatalf("serve --demo printed:\n%s", out)
	}
	events, interval, id, secret := strings.ReplaceAll(m[1], ",", ""), m[2], m[3], m[4]
	q := runCLI(t, map[string]string{"USAGED_SERVER": srv.base}, "query", "--client-id", id, "--client-secret", secret, "--interval", interval, "--format", "json")
	if got := totalRequests(t, q); events == "0" || got == 0 || strings.TrimSpace(events) != jsonNumber(got) {
		t.Fatalf("demo organization counts %d requests; serve said %s events", got, events)
	}
	// Events the demo organization receives after its seed.
	api, err := (&remoteFlags{server: srv.base, token: clientToken(t, srv.base, id, secret), timeout: time.Minute}).client(true, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Format(time.RFC3339)
	var more []byte
	for i := range 3 {
		more = fmt.Appendf(more, `{"id":"after-seed-%d","time":%q,"clientId":"late","clientName":"Late","templateUri":"api/v2/users","httpMethod":"GET","status":200}`+"\n", i, at)
	}
	if res, err := api.PostEvents(t.Context(), more, false); err != nil || res.Accepted != 3 {
		t.Fatalf("posting 3 events: %+v %v", res, err)
	}
	// The viewer, whose credentials the dashboard hands to any browser,
	// sees the limits but may not create one.
	viewer := clientToken(t, srv.base, id, secret)
	if code, _, body := do("GET", srv.base+"/api/v2/usage/limits", viewer, "", nil); code != http.StatusOK {
		t.Fatalf("the viewer lists limits: %d %s", code, body)
	}
	limit := []byte(`{"name":"daily","metric":"requests","value":10,"window":{"type":"day"},"thresholds":[100]}`)
	if code, _, body := do("POST", srv.base+"/api/v2/usage/limits", viewer, "application/json", limit); code != http.StatusForbidden {
		t.Fatalf("the viewer creates a limit: %d %s, want 403", code, body)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	// A restart reuses the organization and shows the same credentials,
	// without seeding again or printing the admin token, and the counts the
	// store holds now.
	again := mustServe(t, "--data", data, "--demo")
	out = again.stdout.String()
	if !strings.Contains(out, id) || strings.Contains(out, "seeding") || strings.Contains(out, "admin token") {
		t.Fatalf("restart printed:\n%s", out)
	}
	m = re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("restart printed:\n%s", out)
	}
	q = runCLI(t, map[string]string{"USAGED_SERVER": again.base}, "query", "--client-id", id, "--client-secret", secret, "--interval", m[2], "--format", "json")
	now, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if seeded, _ := strconv.ParseInt(events, 10, 64); now != seeded+3 || totalRequests(t, q) != now {
		t.Fatalf("after 3 more events the restart says %s events (the seed's: %s); the query counts %d", m[1], events, totalRequests(t, q))
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
