package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// maxURLLength bounds a webhook URL.
const maxURLLength = 2048

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// reserved are ranges outside the ones netip names that no public receiver uses.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT, cloud internals)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: reaches IPv4 addresses, private ones too
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:10::/28"),    // deprecated ORCHID
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
}

// refusal says why a is not a webhook target, or "" when it is one.
func refusal(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "invalid address"
	case a.IsLoopback():
		return "loopback address"
	case a.IsPrivate():
		return "private address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local address"
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast address"
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return "reserved address"
		}
	}
	return ""
}

// errRefusedTarget marks a connection the delivery dialer refused.
var errRefusedTarget = errors.New("webhooks: target address refused")

// dialControl is a net.Dialer Control function: it runs with the address actually being dialed,
// after DNS resolution, so a name that resolves (or re-resolves) to an internal address is refused
// here even though it passed the check at creation.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %q", errRefusedTarget, address)
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %q", errRefusedTarget, host)
		}
		if why := refusal(a); why != "" {
			return fmt.Errorf("%w: %s is a %s; webhooks may not reach internal addresses", errRefusedTarget, a, why)
		}
		return nil
	}
}

// parseURL checks the form of a webhook URL: absolute http(s), a host, no credentials, no fragment.
func parseURL(raw string) (*url.URL, error) {
	bad := func(reason string) error { return &InvalidError{Field: "url", Reason: reason} }
	if raw == "" {
		return nil, bad("url is required")
	}
	if len(raw) > maxURLLength {
		return nil, bad(fmt.Sprintf("longer than %d characters", maxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, bad("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, bad("an absolute URL with a host is required")
	case u.User != nil:
		return nil, bad("credentials in the URL are not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, bad("a fragment is not allowed")
	}
	return u, nil
}

// checkHost refuses a host that is, or resolves to, an address refusal names.
func checkHost(ctx context.Context, r Resolver, host string) error {
	bad := func(reason string) error { return &InvalidError{Field: "url", Reason: reason} }
	if a, err := netip.ParseAddr(host); err == nil {
		if why := refusal(a); why != "" {
			return bad(fmt.Sprintf("%s is a %s; webhooks may not target internal addresses", a, why))
		}
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return bad(fmt.Sprintf("host %q does not resolve", host))
	}
	for _, a := range addrs {
		if why := refusal(a); why != "" {
			return bad(fmt.Sprintf("host %q resolves to %s, a %s; webhooks may not target internal addresses", host, a.Unmap(), why))
		}
	}
	return nil
}
