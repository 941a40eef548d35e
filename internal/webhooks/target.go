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

// special is every block of IANA's IPv4 and IPv6 Special-Purpose Address Registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry, as of 2025), and the deprecated
// blocks of RFC 4291 and RFC 3879 the registries no longer list. All are refused, also those the
// registries mark globally reachable: they are anycast services (PCP, TURN, AMT, AS112 sinks,
// 6to4 relays), documentation, benchmarking or translation prefixes, and none of them is where a
// tenant's webhook receiver lives; NAT64's well-known prefix reaches private IPv4 space through
// the translator. Multicast comes from the multicast registries (netip.Addr.IsMulticast).
var special = []struct {
	prefix netip.Prefix
	name   string
}{
	// IPv4 Special-Purpose Address Registry.
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (RFC 791)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private-use (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (RFC 1122)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private-use (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.0.0/29"), "IPv4 service continuity prefix (RFC 7335)"},
	{netip.MustParsePrefix("192.0.0.8/32"), "IPv4 dummy address (RFC 7600)"},
	{netip.MustParsePrefix("192.0.0.9/32"), "Port Control Protocol anycast (RFC 7723)"},
	{netip.MustParsePrefix("192.0.0.10/32"), "TURN anycast (RFC 8155)"},
	{netip.MustParsePrefix("192.0.0.170/31"), "NAT64/DNS64 discovery (RFC 7050)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737)"},
	{netip.MustParsePrefix("192.31.196.0/24"), "AS112-v4 (RFC 7535)"},
	{netip.MustParsePrefix("192.52.193.0/24"), "AMT (RFC 7450)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "deprecated 6to4 relay anycast (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private-use (RFC 1918)"},
	{netip.MustParsePrefix("192.175.48.0/24"), "direct delegation AS112 service (RFC 7534)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast (RFC 919)"},
	// IPv6 Special-Purpose Address Registry. (IPv4-mapped addresses, ::ffff:0:0/96, are checked
	// as the IPv4 address they carry.)
	{netip.MustParsePrefix("::1/128"), "loopback (RFC 4291)"},
	{netip.MustParsePrefix("::/128"), "unspecified (RFC 4291)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "IPv4/IPv6 translation (RFC 6052)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("100:0:0:1::/64"), "dummy IPv6 prefix (RFC 9780)"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (RFC 2928)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (RFC 4380)"},
	{netip.MustParsePrefix("2001:1::1/128"), "Port Control Protocol anycast (RFC 7723)"},
	{netip.MustParsePrefix("2001:1::2/128"), "TURN anycast (RFC 8155)"},
	{netip.MustParsePrefix("2001:1::3/128"), "DNS-SD service registration anycast (RFC 9665)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking (RFC 5180)"},
	{netip.MustParsePrefix("2001:3::/32"), "AMT (RFC 7450)"},
	{netip.MustParsePrefix("2001:4:112::/48"), "AS112-v6 (RFC 7535)"},
	{netip.MustParsePrefix("2001:10::/28"), "deprecated ORCHID (RFC 4843)"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2 (RFC 7343)"},
	{netip.MustParsePrefix("2001:30::/28"), "drone remote ID (RFC 9374)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (RFC 3056)"},
	{netip.MustParsePrefix("2620:4f:8000::/48"), "direct delegation AS112 service (RFC 7534)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637)"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing SIDs (RFC 9602)"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (RFC 4291)"},
	// Deprecated, no longer in the registry, still routed to whatever a network makes of them.
	{netip.MustParsePrefix("::/96"), "deprecated IPv4-compatible (RFC 4291)"},
	{netip.MustParsePrefix("fec0::/10"), "deprecated site-local (RFC 3879)"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated (RFC 2765)"},
}

// refusal says why a is not a webhook target, or "" when it is one. The reason names the kind of
// address, never the address: callers may show it to the tenant.
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
	// The most specific block names it.
	best := -1
	for i, sp := range special {
		if sp.prefix.Contains(a) && (best < 0 || sp.prefix.Bits() > special[best].prefix.Bits()) {
			best = i
		}
	}
	if best >= 0 {
		return "special-purpose address: " + special[best].name
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
			return fmt.Errorf("%w: not a host and port", errRefusedTarget)
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: not an IP address", errRefusedTarget)
		}
		if why := refusal(a); why != "" {
			// Not the address: this reaches the tenant as the delivery's last error.
			return fmt.Errorf("%w: the host resolved to a %s; webhooks may not reach internal addresses", errRefusedTarget, why)
		}
		return nil
	}
}

// parseURL checks the form of a webhook URL: absolute https (or http if allowHTTP), a host, no
// credentials, no fragment.
func parseURL(raw string, allowHTTP bool) (*url.URL, error) {
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
		return nil, bad("the scheme must be https")
	case u.Scheme == "http" && !allowHTTP:
		return nil, bad(errPlainHTTP)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, bad("an absolute URL with a host is required")
	case u.User != nil:
		return nil, bad("credentials in the URL are not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, bad("a fragment is not allowed")
	}
	return u, nil
}

// errPlainHTTP is why an http URL is refused when the gateway delivers only over https.
const errPlainHTTP = "the scheme must be https: deliveries carry tenant data and are not sent in the clear (this gateway does not allow http targets)"

// checkHost refuses a host that is, or resolves to, an address refusal names.
func checkHost(ctx context.Context, r Resolver, host string) error {
	bad := func(reason string) error { return &InvalidError{Field: "url", Reason: reason} }
	if a, err := netip.ParseAddr(host); err == nil {
		if why := refusal(a); why != "" {
			return bad(fmt.Sprintf("the host is a %s; webhooks may not target internal addresses", why))
		}
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return bad(fmt.Sprintf("host %q does not resolve", host))
	}
	for _, a := range addrs {
		if why := refusal(a); why != "" {
			// Which address is not said: it would map the internal network for the caller.
			return bad(fmt.Sprintf("host %q resolves to a %s; webhooks may not target internal addresses", host, why))
		}
	}
	return nil
}
