package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestMachineMemory(t *testing.T) {
	if total, from := machineMemory(); total == 0 || from == "" {
		t.Fatalf("machineMemory() = %d, %q", total, from)
	}
}

func TestConnectionBudget(t *testing.T) {
	f := func(want int, fdLimit uint64, n int, lowered bool) {
		t.Helper()
		if gotN, gotLowered := connectionBudget(want, fdLimit); gotN != n || gotLowered != lowered {
			t.Fatalf("connectionBudget(%d, %d) = %d, %v; want %d, %v", want, fdLimit, gotN, gotLowered, n, lowered)
		}
	}
	f(10_000, 1<<20, 10_000, false)
	f(10_000, 20_000, 10_000, false)
	f(10_000, 10_000, 10_000-1024, true)
	f(10_000, 1024, 512, true)
	f(10_000, 512, 256, true)
	f(100, 512, 100, false)
	f(10, 1, 1, true)
}

// TestConnLimiter drives a connLimiter of two connections with a real
// http.Server: idle connections make room for new ones at once, and busy
// ones make a new connection wait until one of them ends.
func TestConnLimiter(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newConnLimiter(tcp, 2, slog.New(slog.DiscardHandler))
	release := make(chan struct{})
	var busy atomic.Int64
	srv := &http.Server{ConnState: ln.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			busy.Add(1)
			<-release
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	addr := tcp.Addr().String()

	// get sends one request on a new connection, which stays open.
	get := func(path string, timeout time.Duration) (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(timeout))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return c, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return c, nil
	}
	for i := range 10 {
		if _, err := get("/", 10*time.Second); err != nil {
			t.Fatalf("connection %d, the others idle: %v", i, err)
		}
	}
	if n := ln.Open(); n > 2 {
		t.Fatalf("%d connections open, limit 2", n)
	}
	if ln.idleClosed.Load() < 8 {
		t.Fatalf("%d idle connections closed to admit 10", ln.idleClosed.Load())
	}

	// Two busy connections: a third waits until one ends.
	slow := make(chan error, 2)
	for range 2 {
		go func() { _, err := get("/slow", time.Minute); slow <- err }()
	}
	for busy.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := get("/", 300*time.Millisecond); err == nil {
		t.Fatal("a third connection was served while two were busy at a limit of 2")
	}
	close(release)
	for range 2 {
		if err := <-slow; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := get("/", 10*time.Second); err != nil {
		t.Fatalf("after the busy connections ended: %v", err)
	}
}
