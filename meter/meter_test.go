package meter_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/syncbuf"
	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/route"
	"github.com/usaged/usaged/usage"
)

// memSink keeps events in memory.
type memSink struct {
	mu  sync.Mutex
	evs []usage.Event
}

func (s *memSink) Add(ev usage.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
}

func (s *memSink) events() []usage.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

// mustHeaders returns the attributor of every test: trusted gateway headers.
func mustHeaders(tb testing.TB) *attrib.Headers {
	tb.Helper()
	h, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org", Client: "X-Client", ClientName: "X-Client-Name", User: "X-User"})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// mustMatcher returns the route table of the tests.
func mustMatcher(tb testing.TB) *route.Matcher {
	tb.Helper()
	m, err := route.New([]string{"/api/v2/users/{userId}", "/stream", "/upgrade", "/echo"}, route.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// mustMeter returns a Meter recording into a fresh memSink; edit, when not
// nil, changes the configuration first. The Meter is closed at cleanup;
// tests close it themselves before reading the sink.
func mustMeter(tb testing.TB, edit func(*meter.Config)) (*meter.Meter, *memSink) {
	tb.Helper()
	sink := &memSink{}
	cfg := meter.Config{
		Templates:  meter.Paths(mustMatcher(tb)),
		Attributor: mustHeaders(tb),
		Sink:       sink,
		Platform:   "test",
		Logger:     slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := meter.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m, sink
}

// identify sets the gateway headers of a request by client-1 of org-1 for
// user.
func identify(r *http.Request, user string) {
	r.Header.Set("X-Org", "org-1")
	r.Header.Set("X-Client", "client-1")
	r.Header.Set("X-Client-Name", "Client One")
	r.Header.Set("X-User", user)
}

// quietServer starts h on 127.0.0.1 with the server's own log discarded (a
// panicking handler would fill the test output); log, when not nil,
// receives it instead.
func quietServer(tb testing.TB, h http.Handler, logTo io.Writer) *httptest.Server {
	tb.Helper()
	if logTo == nil {
		logTo = io.Discard
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(logTo, "", 0)
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

// only returns the single event of sink, failing when there is not exactly one.
func only(tb testing.TB, sink *memSink) usage.Event {
	tb.Helper()
	evs := sink.events()
	if len(evs) != 1 {
		tb.Fatalf("recorded %d events, want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

func TestStatusAndBytes(t *testing.T) {
	f := func(name string, h http.HandlerFunc, reqBody string, wantStatus int, wantReq, wantResp int64) {
		t.Helper()
		m, sink := mustMeter(t, nil)
		srv := quietServer(t, m.Middleware(h), nil)
		var body io.Reader
		if reqBody != "" {
			body = strings.NewReader(reqBody)
		}
		req, _ := http.NewRequest("POST", srv.URL+"/api/v2/users/42", body)
		identify(req, "u-1")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Errorf("%s: client got status %d, want %d", name, resp.StatusCode, wantStatus)
		}
		if int64(len(got)) != wantResp {
			t.Errorf("%s: client got %d bytes, want %d", name, len(got), wantResp)
		}
		srv.Close()
		m.Close()
		ev := only(t, sink)
		if ev.Status != wantStatus || ev.RequestBytes != wantReq || ev.ResponseBytes != wantResp {
			t.Errorf("%s: recorded status %d, %d bytes in, %d out; want %d, %d, %d",
				name, ev.Status, ev.RequestBytes, ev.ResponseBytes, wantStatus, wantReq, wantResp)
		}
		if ev.TemplateURI != "api/v2/users/{userId}" || ev.HTTPMethod != "POST" {
			t.Errorf("%s: recorded %s %s, want POST api/v2/users/{userId}", name, ev.HTTPMethod, ev.TemplateURI)
		}
	}

	f("nothing written", func(w http.ResponseWriter, r *http.Request) {}, "", 200, 0, 0)
	f("204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, "", 204, 0, 0)
	f("404 and a body", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, "not here")
	}, "", 404, 0, 8)
	f("write without WriteHeader", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, "", 200, 0, 5)
	f("WriteHeader twice", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(202)
		w.WriteHeader(500) // superfluous: the client gets 202
	}, "", 202, 0, 0)
	f("101 after a final status", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.WriteHeader(http.StatusSwitchingProtocols) // superfluous as well
	}, "", 200, 0, 0)
	f("request body read", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}, "hello world", 200, 11, 2)
	f("request body not read", func(w http.ResponseWriter, r *http.Request) {}, "hello world", 200, 0, 0)
	f("103 Early Hints, then 200", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "ok")
	}, "", 200, 0, 2)
	f("103 Early Hints, then 201", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
	}, "", 201, 0, 0)

	// io.Copy from a file takes the ReadFrom path of the ResponseWriter.
	file := filepath.Join(t.TempDir(), "payload")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if err := os.WriteFile(file, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	f("io.Copy of a file", func(w http.ResponseWriter, r *http.Request) {
		fh, err := os.Open(file)
		if err != nil {
			t.Error(err)
			return
		}
		defer fh.Close()
		io.Copy(w, fh)
	}, "", 200, 0, int64(len(payload)))
}

// readFromWriter is a ResponseWriter with a ReadFrom of its own, as
// net/http's is (where ReadFrom sends files with sendfile).
type readFromWriter struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(struct{ io.Writer }{w.ResponseRecorder}, r)
}

// io.Copy to the middleware's writer must reach the ReadFrom of the writer
// it wraps, or net/http's sendfile path is lost.
func TestReadFromReachesTheWrappedWriter(t *testing.T) {
	m, sink := mustMeter(t, nil)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A LimitedReader has no WriteTo: io.Copy uses w's ReadFrom.
		io.Copy(w, io.LimitReader(strings.NewReader("some file contents"), 9))
	}))
	w := &readFromWriter{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
	identify(r, "u-1")
	h.ServeHTTP(w, r)
	m.Close()
	if !w.readFrom {
		t.Error("the wrapped writer's ReadFrom was not called")
	}
	if got := w.Body.String(); got != "some file" {
		t.Errorf("body %q, want %q", got, "some file")
	}
	if ev := only(t, sink); ev.Status != 200 || ev.ResponseBytes != 9 {
		t.Errorf("recorded status %d, %d bytes; want 200, 9", ev.Status, ev.ResponseBytes)
	}
}

func TestPanicRecordedAs500AndPassedOn(t *testing.T) {
	m, sink := mustMeter(t, nil)
	var serverLog syncbuf.Buffer
	srv := quietServer(t, m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})), &serverLog)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v2/users/42", nil)
	identify(req, "u-1")
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close() // the server resets the connection; no response is expected
	}
	srv.Close() // waits for the connection to be done, after the server logged the panic
	m.Close()
	if ev := only(t, sink); ev.Status != 500 {
		t.Errorf("recorded status %d, want 500", ev.Status)
	}
	if !strings.Contains(serverLog.String(), "panic serving") || !strings.Contains(serverLog.String(), "boom") {
		t.Errorf("the panic did not reach the server; its log: %q", serverLog.String())
	}
}

func TestServerSentEventsStream(t *testing.T) {
	m, sink := mustMeter(t, nil)
	next := make(chan struct{})
	const events = 3
	srv := quietServer(t, m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush: %v", err)
				return
			}
			// The client must have the event before the handler goes on:
			// without a flush that reaches it, this waits forever.
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})), nil)
	req, _ := http.NewRequest("GET", srv.URL+"/stream", nil)
	identify(req, "u-1")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	var total int64
	for i := range events {
		want := fmt.Sprintf("data: %d\n", i)
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("event %d: read %q, %v; want %q", i, line, err, want)
		}
		blank, _ := br.ReadString('\n')
		total += int64(len(line) + len(blank))
		next <- struct{}{}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("after the events: %q", rest)
	}
	resp.Body.Close()
	srv.Close()
	m.Close()
	if ev := only(t, sink); ev.Status != 200 || ev.TemplateURI != "stream" || ev.ResponseBytes != total {
		t.Errorf("recorded %+v, want status 200, template stream, %d bytes", ev, total)
	}
}

func TestHijackRecordedAs101(t *testing.T) {
	m, sink := mustMeter(t, nil)
	// A hijacked connection is not waited for by the server's Close: the
	// test waits for the middleware itself to return, which is when it
	// records.
	served := make(chan struct{})
	inner := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString(line)
		brw.Flush()
	}))
	srv := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		inner.ServeHTTP(w, r)
	}), nil)
	req, _ := http.NewRequest("GET", srv.URL+"/upgrade", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	identify(req, "u-1")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	conn := resp.Body.(io.ReadWriteCloser)
	io.WriteString(conn, "ping\n")
	if line, err := bufio.NewReader(conn).ReadString('\n'); line != "ping\n" {
		t.Errorf("echo: %q, %v", line, err)
	}
	conn.Close()
	<-served
	srv.Close()
	m.Close()
	if ev := only(t, sink); ev.Status != 101 || ev.TemplateURI != "upgrade" {
		t.Errorf("recorded status %d, template %q; want 101, upgrade", ev.Status, ev.TemplateURI)
	}
}

// byUser indexes events by their user, which the tests set to a label of
// the request: attribution runs concurrently, so events come in any order.
func byUser(tb testing.TB, evs []usage.Event) map[string]usage.Event {
	tb.Helper()
	out := map[string]usage.Event{}
	for _, ev := range evs {
		if _, dup := out[ev.UserID]; dup {
			tb.Errorf("two events of user %q", ev.UserID)
		}
		out[ev.UserID] = ev
	}
	return out
}

func TestPathsTemplates(t *testing.T) {
	m, sink := mustMeter(t, nil) // mustMeter uses meter.Paths
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for user, path := range map[string]string{"a": "/api/v2/users/42", "b": "/api/v2/users/42/", "c": "/api/v2/other", "d": "/"} {
		r := httptest.NewRequest("GET", path, nil)
		identify(r, user)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	m.Close()
	got := byUser(t, sink.events())
	for user, want := range map[string]string{"a": "api/v2/users/{userId}", "b": "api/v2/users/{userId}", "c": route.DefaultCatchAll, "d": route.DefaultCatchAll} {
		if got[user].TemplateURI != want {
			t.Errorf("request %s: template %q, want %q", user, got[user].TemplateURI, want)
		}
	}
}

func TestServeMuxPatterns(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/users/{userId}", ok)
	mux.HandleFunc("POST /api/v2/users", ok)
	mux.HandleFunc("/health", ok)
	mux.HandleFunc("example.com/x/{id}", ok)
	fallback := meter.TemplateFunc(func(r *http.Request) string { return "unrouted" })
	m, sink := mustMeter(t, func(c *meter.Config) { c.Templates = meter.ServeMuxPatterns(fallback) })
	srv := quietServer(t, m.Middleware(mux), nil)

	type want struct {
		template string
		status   int
	}
	cases := map[string]struct {
		method, host, path string
		want
	}{
		"get user":      {"GET", "", "/api/v2/users/8f1c", want{"api/v2/users/{userId}", 200}},
		"add user":      {"POST", "", "/api/v2/users", want{"api/v2/users", 200}},
		"health":        {"GET", "", "/health", want{"health", 200}},
		"host pattern":  {"GET", "example.com", "/x/9", want{"x/{id}", 200}},
		"other host":    {"GET", "", "/x/9", want{"unrouted", 404}},
		"not routed":    {"GET", "", "/nowhere/7", want{"unrouted", 404}},
		"wrong method":  {"DELETE", "", "/api/v2/users", want{"unrouted", 405}},
		"health by PUT": {"PUT", "", "/health", want{"health", 200}},
	}
	for user, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		if c.host != "" {
			req.Host = c.host
		}
		identify(req, user)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	srv.Close()
	m.Close()
	got := byUser(t, sink.events())
	for user, c := range cases {
		if ev := got[user]; ev.TemplateURI != c.template || ev.Status != c.status || ev.HTTPMethod != c.method {
			t.Errorf("%s: recorded %s %q %d, want %s %q %d", user, ev.HTTPMethod, ev.TemplateURI, ev.Status, c.method, c.template, c.status)
		}
	}
}

func TestAttribution(t *testing.T) {
	serve := func(m *meter.Meter, header map[string]string) {
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	t.Run("identified", func(t *testing.T) {
		m, sink := mustMeter(t, nil)
		serve(m, map[string]string{"X-Org": "org-1", "X-Client": "client-1", "X-Client-Name": "Client One", "X-User": "user-1"})
		serve(m, map[string]string{"X-Org": "org-2", "X-Client": "client-2"})
		m.Close()
		evs := sink.events()
		slices.SortFunc(evs, func(a, b usage.Event) int { return strings.Compare(a.OrganizationID, b.OrganizationID) })
		type who struct{ org, client, name, user string }
		var got []who
		for _, ev := range evs {
			got = append(got, who{ev.OrganizationID, ev.ClientID, ev.ClientName, ev.UserID})
		}
		want := []who{{"org-1", "client-1", "Client One", "user-1"}, {"org-2", "client-2", "", ""}}
		if !slices.Equal(got, want) {
			t.Errorf("recorded %+v, want %+v", got, want)
		}
		if st := m.Stats(); st != (meter.Stats{Recorded: 2}) {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("unidentified", func(t *testing.T) {
		m, sink := mustMeter(t, nil)
		serve(m, nil)
		serve(m, map[string]string{"X-Org": "org-1"}) // no client: not an identity
		m.Close()
		if evs := sink.events(); len(evs) != 0 {
			t.Errorf("recorded %+v", evs)
		}
		if st := m.Stats(); st != (meter.Stats{Unidentified: 2}) {
			t.Errorf("stats %+v, want 2 unidentified", st)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		m, sink := mustMeter(t, func(c *meter.Config) { c.Anonymous, c.AnonymousOrganization = "anon", "org-anon" })
		serve(m, nil)
		serve(m, map[string]string{"X-Org": "org-1", "X-Client": "client-1"})
		m.Close()
		evs := sink.events()
		slices.SortFunc(evs, func(a, b usage.Event) int { return strings.Compare(a.OrganizationID, b.OrganizationID) })
		if len(evs) != 2 || evs[0].OrganizationID != "org-1" || evs[0].ClientID != "client-1" ||
			evs[1].OrganizationID != "org-anon" || evs[1].ClientID != "anon" || evs[1].ClientName != "anon" || evs[1].UserID != "" {
			t.Errorf("recorded %+v", evs)
		}
		if st := m.Stats(); st != (meter.Stats{Recorded: 2, Anonymous: 1}) {
			t.Errorf("stats %+v, want 2 recorded, 1 anonymous", st)
		}
	})
}

// flaky is an Attributor whose source is unreachable for its first calls.
type flaky struct {
	failures int64 // calls that fail
	calls    atomic.Int64
	next     attrib.Attributor // asked once the failures are over
}

func (a *flaky) Attribute(ctx context.Context, r *http.Request) (attrib.Identity, bool, error) {
	if a.calls.Add(1) <= a.failures {
		return attrib.Identity{}, false, errors.New("identity provider unreachable")
	}
	return a.next.Attribute(ctx, r)
}

// waitFor polls cond until it holds; the deadline only keeps a broken
// build from hanging.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("still waiting for %s", what)
		}
	}
}

func TestAttributionRetried(t *testing.T) {
	const requests, failures = 5, 12
	who := &flaky{failures: failures, next: mustHeaders(t)}
	m, sink := mustMeter(t, func(c *meter.Config) { c.Attributor, c.RetryEvery = who, 10*time.Millisecond })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range requests {
		r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
		identify(r, fmt.Sprint("u-", i))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	waitFor(t, "every request to be recorded", func() bool { return m.Stats().Recorded == requests })
	m.Close()
	got := byUser(t, sink.events())
	if len(got) != requests {
		t.Errorf("recorded %d events, want %d", len(got), requests)
	}
	for i := range requests {
		if ev := got[fmt.Sprint("u-", i)]; ev.OrganizationID != "org-1" || ev.ClientID != "client-1" {
			t.Errorf("request %d: recorded %+v", i, ev)
		}
	}
	if st := m.Stats(); st != (meter.Stats{Recorded: requests, AttribErrors: failures}) {
		t.Errorf("stats %+v, want %d recorded, %d attribution errors", st, requests, failures)
	}
}

// steppingClock is a clock that moves on a millisecond every time it is
// read.
func steppingClock() func() time.Time {
	var ms atomic.Int64
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(ms.Add(1)) * time.Millisecond) }
}

func TestAttributionGivesUpAfterRetryFor(t *testing.T) {
	who := &flaky{failures: 1 << 62, next: mustHeaders(t)}
	m, sink := mustMeter(t, func(c *meter.Config) {
		c.Attributor, c.RetryFor, c.RetryEvery, c.Now = who, time.Nanosecond, 10*time.Millisecond, steppingClock()
	})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
	identify(r, "u-1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	m.Close()
	if evs := sink.events(); len(evs) != 0 {
		t.Errorf("recorded %+v", evs)
	}
	if st := m.Stats(); st != (meter.Stats{Unidentified: 1, AttribErrors: 1}) {
		t.Errorf("stats %+v, want 1 unidentified after 1 attribution error", st)
	}
}

// blockingFirst is an Attributor whose first call waits for release and
// then fails; later calls are answered by next.
type blockingFirst struct {
	started, release chan struct{}
	calls            atomic.Int64
	next             attrib.Attributor
}

func (a *blockingFirst) Attribute(ctx context.Context, r *http.Request) (attrib.Identity, bool, error) {
	if a.calls.Add(1) == 1 {
		close(a.started)
		<-a.release
		return attrib.Identity{}, false, errors.New("identity provider unreachable")
	}
	return a.next.Attribute(ctx, r)
}

// A request whose attribution fails while Close runs still gets its last
// attempt: Close must not stop the retries before the workers are done.
func TestCloseRetriesWhatFailsDuringClose(t *testing.T) {
	who := &blockingFirst{started: make(chan struct{}), release: make(chan struct{}), next: mustHeaders(t)}
	m, sink := mustMeter(t, func(c *meter.Config) { c.Attributor = who })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/api/v2/users/1", nil)
	identify(r, "u-1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	<-who.started
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	// Give Close time to get as far as it can while the worker is busy; the
	// outcome must not depend on how far that is.
	time.Sleep(50 * time.Millisecond)
	close(who.release)
	<-closed
	if ev := only(t, sink); ev.ClientID != "client-1" {
		t.Errorf("recorded %+v", ev)
	}
	if st := m.Stats(); st != (meter.Stats{Recorded: 1, AttribErrors: 1}) {
		t.Errorf("stats %+v, want 1 recorded after 1 attribution error", st)
	}
}

func TestEventIDsTimesAndPlatform(t *testing.T) {
	const requests = 50
	m, sink := mustMeter(t, func(c *meter.Config) { c.Platform = "my-platform" })
	srv := quietServer(t, m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})), nil)
	before := time.Now()
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v2/users/1", nil)
			identify(req, fmt.Sprint("u-", i))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	after := time.Now()
	srv.Close()
	m.Close()
	evs := sink.events()
	if len(evs) != requests {
		t.Fatalf("recorded %d events, want %d", len(evs), requests)
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		if ev.ID == "" || ids[ev.ID] {
			t.Errorf("event id %q is empty or repeated", ev.ID)
		}
		ids[ev.ID] = true
		if ev.Time.Location() != time.UTC {
			t.Errorf("event time %v is not in UTC", ev.Time)
		}
		if ev.Time.Before(before.Round(0)) || ev.Time.After(after.Round(0)) {
			t.Errorf("event time %v is not within the requests (%v to %v)", ev.Time, before, after)
		}
		if ev.DurationMs < 0 || time.Duration(ev.DurationMs)*time.Millisecond > after.Sub(before) {
			t.Errorf("duration %d ms is negative or longer than the requests", ev.DurationMs)
		}
		if ev.Platform != "my-platform" {
			t.Errorf("platform %q, want my-platform", ev.Platform)
		}
		if len(ev.ID) > usage.MaxEventIDLen {
			t.Errorf("event id %q is longer than usaged accepts", ev.ID)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := meter.Config{Anonymous: "anon"}.Validate()
	if err == nil {
		t.Fatal("an empty Config is valid")
	}
	for _, want := range []string{"Templates", "Attributor", "Sink", "AnonymousOrganization"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if _, err := meter.New(meter.Config{}); err == nil {
		t.Error("New accepted an empty Config")
	}
	ok := meter.Config{Templates: meter.Paths(mustMatcher(t)), Attributor: mustHeaders(t), Sink: &memSink{}}
	if err := ok.Validate(); err != nil {
		t.Errorf("a complete Config: %v", err)
	}
}

// mustProxy returns a metering proxy to upstream, served on 127.0.0.1.
func mustProxy(tb testing.TB, m *meter.Meter, upstream string, preserveHost bool) *httptest.Server {
	tb.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := meter.NewProxy(m, meter.ProxyConfig{Upstream: u, PreserveHost: preserveHost, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return quietServer(tb, h, nil)
}

func TestProxyStreamsBothWays(t *testing.T) {
	gotFirst := make(chan string, 1) // the upstream read the first request line
	readFirst := make(chan struct{}) // the client read the first response line
	upstream := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		line, _ := br.ReadString('\n')
		gotFirst <- line
		rest, _ := io.ReadAll(br) // the client sends the rest once the first line arrived
		w.Header().Set("X-Got", strings.TrimSpace(line)+","+strings.TrimSpace(string(rest)))
		io.WriteString(w, "pong 1\n")
		http.NewResponseController(w).Flush()
		select {
		case <-readFirst:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "pong 2\n")
	}), nil)
	m, sink := mustMeter(t, nil)
	proxy := mustProxy(t, m, upstream.URL, false)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", proxy.URL+"/echo", pr)
	identify(req, "u-1")
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := proxy.Client().Do(req)
		done <- result{resp, err}
	}()
	io.WriteString(pw, "ping 1\n")
	if line := <-gotFirst; line != "ping 1\n" {
		t.Errorf("upstream read %q first", line)
	}
	io.WriteString(pw, "ping 2\n")
	pw.Close()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	br := bufio.NewReader(res.resp.Body)
	if line, err := br.ReadString('\n'); line != "pong 1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(readFirst)
	rest, _ := io.ReadAll(br)
	res.resp.Body.Close()
	if string(rest) != "pong 2\n" || res.resp.Header.Get("X-Got") != "ping 1,ping 2" {
		t.Errorf("rest %q, upstream got %q", rest, res.resp.Header.Get("X-Got"))
	}
	proxy.Close()
	m.Close()
	ev := only(t, sink)
	if ev.Status != 200 || ev.TemplateURI != "echo" || ev.HTTPMethod != "POST" || ev.RequestBytes != 14 || ev.ResponseBytes != 14 || ev.ClientID != "client-1" {
		t.Errorf("recorded %+v", ev)
	}
}

func TestProxyHeaders(t *testing.T) {
	type seen struct{ host, xff, proto, fwdHost string }
	got := make(chan seen, 1)
	upstream := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host")}
	}), nil)
	upHost := strings.TrimPrefix(upstream.URL, "http://")
	for _, preserve := range []bool{false, true} {
		m, sink := mustMeter(t, nil)
		proxy := mustProxy(t, m, upstream.URL, preserve)
		req, _ := http.NewRequest("GET", proxy.URL+"/api/v2/users/1", nil)
		req.Host = "api.example.com"
		identify(req, "u-1")
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		s := <-got
		wantHost := upHost
		if preserve {
			wantHost = "api.example.com"
		}
		if s != (seen{wantHost, "127.0.0.1", "http", "api.example.com"}) {
			t.Errorf("PreserveHost %v: upstream saw host %q, X-Forwarded-For %q, -Proto %q, -Host %q; want host %q",
				preserve, s.host, s.xff, s.proto, s.fwdHost, wantHost)
		}
		proxy.Close()
		m.Close()
		if ev := only(t, sink); ev.Status != 200 || ev.TemplateURI != "api/v2/users/{userId}" {
			t.Errorf("recorded %+v", ev)
		}
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	upstream := httptest.NewServer(http.NotFoundHandler())
	down := upstream.URL
	upstream.Close() // nothing listens there now
	m, sink := mustMeter(t, nil)
	proxy := mustProxy(t, m, down, false)
	req, _ := http.NewRequest("GET", proxy.URL+"/api/v2/users/1", nil)
	identify(req, "u-1")
	resp, err := proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	proxy.Close()
	m.Close()
	if ev := only(t, sink); ev.Status != http.StatusBadGateway {
		t.Errorf("recorded status %d, want 502", ev.Status)
	}
}

func TestNewProxyRefusesARelativeUpstream(t *testing.T) {
	m, _ := mustMeter(t, nil)
	for _, up := range []*url.URL{nil, {Path: "/api"}, {Host: "127.0.0.1:9000"}} {
		if _, err := meter.NewProxy(m, meter.ProxyConfig{Upstream: up}); err == nil {
			t.Errorf("upstream %v accepted", up)
		}
	}
}
