package notify

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestRefused(t *testing.T) {
	f := func(addr string, refused bool) {
		t.Helper()
		if got := Refused(netip.MustParseAddr(addr)); got != refused {
			t.Errorf("Refused(%s) = %v, want %v", addr, got, refused)
		}
	}
	// Public addresses pass.
	f("93.184.215.14", false)
	f("8.8.8.8", false)
	f("2606:4700:4700::1111", false)
	f("100.63.255.255", false)
	f("100.128.0.0", false)
	f("172.15.255.255", false)
	f("172.32.0.0", false)
	// Everything else is refused.
	f("0.0.0.0", true)
	f("127.0.0.1", true)
	f("127.255.255.254", true)
	f("10.1.2.3", true)
	f("172.16.0.1", true)
	f("172.31.255.255", true)
	f("192.168.1.1", true)
	f("100.64.0.1", true)
	f("100.127.255.255", true)
	f("169.254.169.254", true) // cloud metadata
	f("224.0.0.1", true)
	f("255.255.255.255", true)
	f("::", true)
	f("::1", true)
	f("fc00::1", true)
	f("fd12:3456::1", true)
	f("fe80::1", true)
	f("ff02::1", true)
	f("::ffff:127.0.0.1", true)
	f("::ffff:10.0.0.1", true)
	f("::ffff:169.254.169.254", true)
	f("::127.0.0.1", true)
	f("64:ff9b::a00:1", true)
}

// TestDialRefusesLoopbackName sends to "localhost", which resolves to a
// loopback address: refused when the connection is dialled, unless private
// targets are allowed.
func TestDialRefusesLoopbackName(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	for _, u := range []string{url, srv.URL} {
		resp, err := NewClient(false).Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("POST %s without private targets: %s, want refused", u, resp.Status)
		}
		if !errors.Is(err, ErrRefusedAddress) {
			t.Fatalf("POST %s: %v, want ErrRefusedAddress", u, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the receiver got %d requests", hits)
	}
	resp, err := NewClient(true).Post(url, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST %s with private targets allowed: %v", url, err)
	}
	resp.Body.Close()
	if hits != 1 {
		t.Fatalf("the receiver got %d requests, want 1", hits)
	}
}

func TestNoRedirects(t *testing.T) {
	var followed bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			followed = true
			return
		}
		http.Redirect(w, r, "/next", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	resp, err := NewClient(true).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || followed {
		t.Fatalf("status %d, followed %v; want the 307 itself", resp.StatusCode, followed)
	}
}
