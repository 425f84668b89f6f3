package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// quickly is how long a call may take to fail when the server is gone: the
// connect timeout of these tests and then some, far below a hang.
const (
	testConnectTimeout = 500 * time.Millisecond
	quickly            = 5 * time.Second
)

// wantUnavailable checks that err is of kind usage.KindUnavailable, with a
// retry delay, and came within quickly of start.
func wantUnavailable(t *testing.T, what string, start time.Time, err error) {
	t.Helper()
	if took := time.Since(start); took > quickly {
		t.Errorf("%s took %v to fail, want under %v", what, took, quickly)
	}
	if usage.KindOf(err) != usage.KindUnavailable || usage.RetryAfterOf(err) <= 0 {
		t.Errorf("%s: %v (kind %v, retry after %v), want kind unavailable with a retry delay", what, err, usage.KindOf(err), usage.RetryAfterOf(err))
	}
}

// TestUnreachableServer opens a store on a port nobody listens on, and on one
// that accepts connections and never answers: both fail quickly as
// unavailable.
func TestUnreachableServer(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	for name, addr := range map[string]string{"closed port": closedAddr, "silent server": silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			s, err := Open(t.Context(), Config{URL: "postgres://usaged@" + addr + "/usaged?sslmode=disable", ConnectTimeout: testConnectTimeout})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded without a server")
			}
			wantUnavailable(t, "Open", start, err)
		})
	}
}

// proxy forwards TCP connections to a server until stopped, standing for a
// server that goes away and comes back.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

// track records conns to close at stop; false when stopped already.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// stop closes the listener and every connection, as a server that dies.
func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestServerGoesAway uses a store whose server goes away: every call fails
// quickly as unavailable, none panics, and calls succeed again once the
// server is back.
func TestServerGoesAway(t *testing.T) {
	dbURL, schema := testSchema(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, "127.0.0.1:0", u.Host)
	u.Host = p.ln.Addr().String()
	s, err := Open(t.Context(), Config{URL: u.String(), Schema: schema, MaxConns: 2, ConnectTimeout: testConnectTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	org := usage.Organization{ID: "o1", Name: "one"}
	if err := s.PutOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	e := storetest.SampleExecution("e1")
	rows := storetest.MakeRows(3)
	e.RowCount = len(rows)
	if err := s.FinishExecution(ctx, e, rows); err != nil {
		t.Fatal(err)
	}

	p.stop()
	calls := map[string]func() error{
		"Organization":     func() error { _, err := s.Organization(ctx, org.ID); return err },
		"PutOrganization":  func() error { return s.PutOrganization(ctx, org) },
		"Clients":          func() error { _, err := s.Clients(ctx, org.ID); return err },
		"Services":         func() error { _, err := s.Services(ctx); return err },
		"DeleteAPIKey":     func() error { return s.DeleteAPIKey(ctx, [32]byte{1}) },
		"Execution":        func() error { _, err := s.Execution(ctx, e.ID); return err },
		"ExecutionRows":    func() error { _, err := s.ExecutionRows(ctx, e.ID, 0, 10); return err },
		"FinishExecution":  func() error { return s.FinishExecution(ctx, e, rows) },
		"ExecutionsBy":     func() error { return s.ExecutionsBy(ctx, func(usage.Execution) bool { return true }) },
		"DeleteExecution":  func() error { return s.DeleteExecution(ctx, "missing") },
		"PutExecution (2)": func() error { return s.PutExecution(ctx, e) },
	}
	for name, call := range calls {
		start := time.Now()
		wantUnavailable(t, name+" with the server gone", start, call())
	}

	// The server is back at the same address: the pool connects anew.
	startProxy(t, u.Host, p.target)
	deadline := time.Now().Add(quickly)
	for {
		got, err := s.Organization(ctx, org.ID)
		if err == nil {
			if got != org {
				t.Fatalf("Organization after the server came back = %+v, want %+v", got, org)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Organization after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkRowsBack(t, s, e.ID, rows)

	// Calls after Close fail as unavailable too, saying why.
	s.Close()
	_, err = s.Organization(ctx, org.ID)
	if usage.KindOf(err) != usage.KindUnavailable || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Organization after Close: %v, want kind unavailable saying the store is closed", err)
	}
}

func checkRowsBack(t *testing.T, s *Store, id string, want []usage.Row) {
	t.Helper()
	got, err := s.ExecutionRows(t.Context(), id, 0, len(want)+1)
	if err != nil || len(got) != len(want) {
		t.Fatalf("ExecutionRows after the server came back: %d rows, %v; want %d", len(got), err, len(want))
	}
}

// TestCallerCancellation keeps the caller's own cancellation as it is: it is
// not the server's unavailability.
func TestCallerCancellation(t *testing.T) {
	dbURL, schema := testSchema(t)
	s := mustOpen(t, dbURL, schema)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Organization(ctx, "o1")
	if !errors.Is(err, context.Canceled) || usage.KindOf(err) == usage.KindUnavailable {
		t.Fatalf("Organization with a cancelled context: %v (kind %v), want context.Canceled", err, usage.KindOf(err))
	}
}

// TestUnstorableStrings puts strings PostgreSQL cannot hold: the error is the
// caller's (usage.KindInvalid), not the server's.
func TestUnstorableStrings(t *testing.T) {
	dbURL, schema := testSchema(t)
	s := mustOpen(t, dbURL, schema)
	ctx := t.Context()
	err := s.PutOrganization(ctx, usage.Organization{ID: "o1", Name: "a\x00b"})
	if usage.KindOf(err) != usage.KindInvalid {
		t.Errorf("PutOrganization with a NUL byte in its name: %v, want kind invalid", err)
	}
	e := storetest.SampleExecution("e1")
	e.Name = "a\x00b"
	if err := s.PutExecution(ctx, e); usage.KindOf(err) != usage.KindInvalid {
		t.Errorf("PutExecution with a NUL byte in its name: %v, want kind invalid", err)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(c Config, wants ...string) {
		t.Helper()
		err := c.Validate()
		if len(wants) == 0 {
			if err != nil {
				t.Fatalf("Validate(%+v) = %v, want nil", c, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("Validate(%+v) = nil, want an error naming %q", c, wants)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("Validate(%+v) = %v, want it to name %q", c, err, w)
			}
		}
	}
	f(Config{URL: "postgres://usaged@localhost:5432/usaged"})
	f(Config{URL: "host=localhost user=usaged", Schema: "tenant a", MaxConns: 3, ConnectTimeout: time.Second})
	f(Config{}, "a URL is required")
	f(Config{URL: "postgres://usaged@localhost:5432/usaged?connect_timeout=x"}, "cannot be parsed")
	f(Config{URL: " ", MaxConns: -1, ConnectTimeout: -time.Second}, "a URL is required", "MaxConns", "ConnectTimeout")
}

// A connection pgx closed under a call, which TestServerGoesAway meets only
// when the proxy's stop lands in the middle of one, is the server gone.
func TestClassifyConnClosed(t *testing.T) {
	err := classify(t.Context(), fmt.Errorf("copy chunks: %w", pgconn.ErrConnClosed))
	var e *usage.Error
	if !errors.As(err, &e) || e.Kind != usage.KindUnavailable || e.RetryAfter == 0 {
		t.Fatalf("classify(conn closed) = %v, want kind unavailable with a retry delay", err)
	}
}
