package notify

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Timeouts of a delivery request.
const (
	DialTimeout    = 5 * time.Second
	RequestTimeout = 10 * time.Second // the whole request, response body included
)

// ErrRefusedAddress is wrapped by a dial to an address webhooks may not
// reach.
var ErrRefusedAddress = errors.New("the address is not a public one")

// refusedPrefixes are the ranges a webhook may not reach unless private
// targets are allowed: this network, loopback, RFC 1918, shared address
// space (CGNAT), link-local, multicast, reserved and broadcast for IPv4;
// unspecified, loopback, unique local, link-local and multicast for IPv6.
// IPv4-mapped IPv6 addresses are unmapped before the check; the NAT64,
// local-use NAT64 and IPv4-compatible ranges are refused whole; 6to4 and
// Teredo addresses are refused when the IPv4 address they carry is (see
// embeddedIPv4).
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
	// NAT64 and IPv4-compatible forms could reach the ranges above.
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("::/96"),
}

// Transition ranges whose addresses carry an IPv4 address that a relay
// delivers to.
var (
	sixToFour = netip.MustParsePrefix("2002::/16") // the IPv4 address in bits 16 to 48
	teredo    = netip.MustParsePrefix("2001::/32") // the client's, inverted, in the last 32 bits
)

// Refused reports whether a webhook may not reach ip unless private
// targets are allowed.
func Refused(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if v4, ok := embeddedIPv4(ip); ok && Refused(v4) {
		return true
	}
	return !ip.IsValid()
}

// embeddedIPv4 returns the IPv4 address a 6to4 or Teredo address carries:
// a packet to it goes, through a relay, to that IPv4 address, which may be
// one that is refused.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case !ip.Is6():
		return netip.Addr{}, false
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case teredo.Contains(ip):
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}

// checkAddress is a net.Dialer's Control: it sees the address about to be
// connected to, after name resolution, so that a name resolving (or
// rebinding) to a refused address is refused whatever it said before.
func checkAddress(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook dial to %s: %w", address, ErrRefusedAddress)
	}
	if Refused(ap.Addr()) {
		return fmt.Errorf("webhook dial to %s: %w (loopback, private, link-local, shared, multicast and reserved addresses are refused unless the server allows private targets)", ap.Addr(), ErrRefusedAddress)
	}
	return nil
}

// NewClient returns the HTTP client deliveries are sent with: no proxy
// (which would dial for it, unchecked), no redirects followed (a 3xx is
// the answer), DialTimeout to connect, RequestTimeout in all. Unless
// allowPrivate, every connection's address is checked as it is dialled
// (see Refused).
func NewClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = checkAddress
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   DialTimeout,
		ResponseHeaderTimeout: RequestTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     t,
		Timeout:       RequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
