package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Client limits.
const (
	// DefaultTimeout bounds one delivery: connect, TLS, request and response.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes is how much of a response body is read; the rest is discarded
	// with the connection.
	MaxResponseBytes = 64 << 10
	// maxConnectTimeout bounds the TCP connect within the total timeout.
	maxConnectTimeout = 5 * time.Second
)

// ErrForbiddenAddress: a webhook's host resolved to an address in a range webhooks may
// not reach (loopback, private, link-local, CGNAT, multicast, unspecified and the like)
// and no allow-listed network contains it.
var ErrForbiddenAddress = errors.New("webhook address not allowed")

// forbidden lists the ranges a webhook may not reach unless allow-listed, beyond what
// netip.Addr's predicates cover. Every address is unmapped (::ffff:a.b.c.d → a.b.c.d)
// before it is checked, and the IPv6 forms that embed an IPv4 address are checked on
// that address too.
var forbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// AddressGuard decides which resolved addresses webhooks may reach.
type AddressGuard struct {
	// Allow names networks that may be reached although they are private (for example
	// 127.0.0.0/8 for local development).
	Allow []netip.Prefix
}

// Check returns nil when addr may be reached, else an error wrapping
// ErrForbiddenAddress.
func (g AddressGuard) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	for _, a := range candidates(addr) {
		if !isPublic(a) && !g.allowed(addr, a) {
			return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, addr, describe(a))
		}
	}
	return nil
}

func (g AddressGuard) allowed(orig, a netip.Addr) bool {
	for _, p := range g.Allow {
		if p.Contains(orig) || p.Contains(a) {
			return true
		}
	}
	return false
}

// candidates returns addr unmapped plus any IPv4 address embedded in an IPv6 form that
// routes to it (NAT64 well-known prefix, 6to4, IPv4-compatible).
func candidates(addr netip.Addr) []netip.Addr {
	addr = addr.Unmap()
	out := []netip.Addr{addr}
	if !addr.Is6() {
		return out
	}
	b := addr.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(addr), isCompat(b):
		out = append(out, netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case b[0] == 0x20 && b[1] == 0x02: // 6to4 2002:AABB:CCDD::/48
		out = append(out, netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return out
}

// isCompat reports the deprecated IPv4-compatible form ::a.b.c.d (not :: or ::1).
func isCompat(b [16]byte) bool {
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	return b[12]|b[13] != 0
}

func isPublic(a netip.Addr) bool {
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsUnspecified() {
		return false
	}
	for _, p := range forbidden {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func describe(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.IsUnspecified():
		return "unspecified"
	case netip.MustParsePrefix("100.64.0.0/10").Contains(a):
		return "carrier-grade NAT"
	}
	return "reserved"
}

// control runs after DNS resolution, on the address actually dialled, so a name that
// resolves to a public address when checked and a private one when used (DNS rebinding)
// cannot slip through.
func (g AddressGuard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
	}
	return g.Check(ap.Addr())
}

// ClientConfig configures NewClient.
type ClientConfig struct {
	// Timeout bounds a whole delivery (DefaultTimeout when 0).
	Timeout time.Duration
	// Guard decides which addresses may be dialled.
	Guard AddressGuard
	// MaxConnsPerHost bounds idle keep-alive connections per host (64 when 0).
	MaxConnsPerHost int
}

// NewClient returns the http.Client webhooks are delivered with: the address guard runs
// at dial time, redirects are never followed (the 3xx response is returned as is),
// proxies from the environment are ignored (the guard must see the real destination),
// the connect and total times are bounded, and connections are kept alive and pooled.
func NewClient(cfg ClientConfig) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = 64
	}
	dialer := &net.Dialer{
		Timeout:   min(cfg.Timeout, maxConnectTimeout),
		KeepAlive: 30 * time.Second,
		Control:   cfg.Guard.control,
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           4 * cfg.MaxConnsPerHost,
		MaxIdleConnsPerHost:    cfg.MaxConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    min(cfg.Timeout, 10*time.Second),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
