// Package apptest runs usaged serve as a process for end-to-end tests: it
// builds the binary once per test binary, starts the server with flags on a
// free loopback port, waits until it listens and /healthz answers, and gives
// its base URL, its output and ways to stop or kill it.
package apptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Package is the import path of the usaged command.
const Package = "github.com/usaged/usaged/cmd/usaged"

// module is the path of the module Package is in.
const module = "github.com/usaged/usaged"

var build = sync.OnceValues(func() (string, error) {
	// The binary is built in usaged's own module, with its go.mod and
	// go.sum, also for tests of a module that requires it by a replace.
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %v", module, err)
	}
	dir, err := os.MkdirTemp("", "usaged-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "usaged")
	cmd := exec.Command("go", "build", "-o", bin, Package)
	cmd.Dir = strings.TrimSpace(string(root))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Binary returns the usaged binary, built on the first call of the test
// binary's run.
func Binary() (string, error) { return build() }

// MustBinary is Binary for a test, which fails if the build does.
func MustBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// serveArgs are the arguments every start begins with: a free port on
// loopback.
var serveArgs = []string{"serve", "--addr", "127.0.0.1:0"}

// Options of Start.
type Options struct {
	// Args follow "serve --addr 127.0.0.1:0"; a later --addr wins.
	Args []string
	// Wrap is a command that runs its arguments, such as prlimit lowering a
	// limit first; the binary and its arguments follow it.
	Wrap []string
	// Stderr receives the process's stderr (its log) as well as Stderr.
	Stderr io.Writer
	// Wait bounds the time to listen: --demo seeds before it listens.
	// Default 2 minutes.
	Wait time.Duration
}

// Server is a running usaged serve process.
type Server struct {
	Cmd *exec.Cmd
	URL string // http://127.0.0.1:port

	stdout, stderr output
	exited         chan struct{}
	err            error // of Wait, once exited is closed
}

// Start starts usaged serve with opts and returns it once it listens and
// /healthz answers 200. It fails tb if the process exits first or takes
// longer than opts.Wait, and kills the process when tb ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := MustBinary(tb)
	args := append(append(append(append([]string(nil), opts.Wrap...), bin), serveArgs...), opts.Args...)
	cmd := exec.Command(args[0], args[1:]...)
	s := &Server{Cmd: cmd, exited: make(chan struct{})}
	// The output clears its field once it has reported the address: wait
	// on the channel itself.
	listening := make(chan string, 1)
	s.stdout.listening = listening
	cmd.Stdout = &s.stdout
	cmd.Stderr = &s.stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&s.stderr, opts.Stderr)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() { cmd.Process.Kill(); <-s.exited })
	wait := opts.Wait
	if wait == 0 {
		wait = 2 * time.Minute
	}
	select {
	case s.URL = <-listening:
	case <-s.exited:
		tb.Fatalf("usaged serve exited before listening: %v; stderr:\n%s", s.err, s.Stderr())
	case <-time.After(wait):
		tb.Fatal("usaged serve did not report its address")
	}
	if err := s.healthy(wait); err != nil {
		tb.Fatalf("usaged serve listens at %s, but %v; stderr:\n%s", s.URL, err, s.Stderr())
	}
	return s
}

// healthy waits up to wait for /healthz to answer 200.
func (s *Server) healthy(wait time.Duration) error {
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(wait)
	for {
		resp, err := c.Get(s.URL + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz answers %d %q", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-s.exited:
			return fmt.Errorf("it exited: %v", s.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stdout returns what the process printed on stdout so far.
func (s *Server) Stdout() string { return s.stdout.String() }

// Stderr returns what the process wrote on stderr, its log, so far.
func (s *Server) Stderr() string { return s.stderr.String() }

// Exited is closed once the process has exited; Err then says how.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Err returns the process's exit error, once Exited is closed.
func (s *Server) Err() error {
	<-s.exited
	return s.err
}

// Stop sends sig and waits for the process to exit, returning its error.
func (s *Server) Stop(sig os.Signal) error {
	s.Cmd.Process.Signal(sig)
	return s.Err()
}

// Kill kills the process, as a crash would, and waits for it.
func (s *Server) Kill() { s.Stop(syscall.SIGKILL) }

// Post sends body to base+path with token as its bearer token and returns
// the status and the body of the answer.
func Post(base, token, path, contentType string, body []byte) (int, []byte, error) {
	resp, b, err := Send(http.MethodPost, base+path, token, contentType, body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// Send sends a request with a bearer token and a body of contentType, and
// returns the answer with its body read whole (and closed).
func Send(method, url, token, contentType string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// Run runs usaged serve with args until it listens, when it is stopped, or
// until it exits, within timeout. It returns everything the process wrote,
// stdout and stderr together, whether it listened, and its exit error.
func Run(tb testing.TB, timeout time.Duration, args ...string) (out string, listened bool, err error) {
	tb.Helper()
	bin := MustBinary(tb)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string(nil), serveArgs...), args...)...)
	w := &listenWatch{cancel: cancel}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Run()
	if !w.listened() && ctx.Err() != nil {
		tb.Fatalf("usaged serve %v neither listened nor failed within %s:\n%s", args, timeout, w.String())
	}
	return w.String(), w.listened(), err
}

// output collects a stream and, for stdout, reports the address of its
// "listening on" line once.
type output struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	line      []byte      // the unfinished last line
	listening chan string // nil: not watched
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.listening == nil {
		return len(p), nil
	}
	o.line = append(o.line, p...)
	for {
		i := bytes.IndexByte(o.line, '\n')
		if i < 0 {
			break
		}
		if _, addr, ok := strings.Cut(string(o.line[:i]), "listening on "); ok && o.listening != nil {
			o.listening <- strings.TrimSpace(addr)
			o.listening = nil
			o.line = nil
			break
		}
		o.line = o.line[i+1:]
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// listenWatch collects a process's output and cancels it once it listens.
type listenWatch struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel func()
}

func (w *listenWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte("listening on")) {
		w.cancel()
	}
	return len(p), nil
}

func (w *listenWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *listenWatch) listened() bool { return strings.Contains(w.String(), "listening on") }
