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
	f("::169.254.169.254", true)
	f("::8.8.8.8", true) // IPv4-compatible: deprecated, refused whole
	f("::ffff:192.168.0.1", true)
	f("::ffff:8.8.8.8", false)
	// NAT64, well-known and local-use: refused whole, whatever they carry.
	f("64:ff9b::a00:1", true)
	f("64:ff9b::7f00:1", true)
	f("64:ff9b::a9fe:a9fe", true)
	f("64:ff9b::808:808", true)
	f("64:ff9b:1::a00:1", true)
	// 6to4: the IPv4 address in bits 16 to 48.
	f("2002:7f00:1::1", true)            // 127.0.0.1
	f("2002:a00:1::", true)              // 10.0.0.1
	f("2002:a9fe:a9fe::1", true)         // 169.254.169.254
	f("2002:c0a8:101:1::1", true)        // 192.168.1.1
	f("2002:6440:1::1", true)            // 100.64.0.1
	f("2002::1", true)                   // 0.0.0.0
	f("2002:808:808::1", false)          // 8.8.8.8
	f("2002:5db8:d70e:1:2:3:4:5", false) // 93.184.215.14
	// Teredo: the client's IPv4 address, inverted, in the last 32 bits.
	f("2001:0:4136:e378:8000:63bf:80ff:fffe", true)  // 127.0.0.1
	f("2001:0:4136:e378:8000:63bf:f5ff:fffe", true)  // 10.0.0.1
	f("2001:0:4136:e378:8000:63bf:5601:5601", true)  // 169.254.169.254
	f("2001:0:4136:e378:8000:63bf:3f57:fefe", true)  // 192.168.1.1
	f("2001:0:4136:e378:8000:63bf:f7f7:f7f7", false) // 8.8.8.8
	f("2001:db8::1", false)                          // not Teredo: 2001::/32 only
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
