package webhooks

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestRefusedAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string // "" = allowed
	}{
		{"93.184.216.34", ""},
		{"8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", "loopback address"},
		{"127.10.0.1", "loopback address"},
		{"::1", "loopback address"},
		{"::ffff:127.0.0.1", "loopback address"},
		{"10.0.0.1", "private address"},
		{"172.16.5.4", "private address"},
		{"192.168.1.1", "private address"},
		{"fd00::1", "private address"},
		{"169.254.169.254", "link-local address"},
		{"fe80::1", "link-local address"},
		{"0.0.0.0", "unspecified address"},
		{"::", "unspecified address"},
		{"224.0.0.1", "link-local address"},
		{"239.1.2.3", "multicast address"},
		{"ff02::1", "link-local address"},
		{"ff0e::1", "multicast address"},
		{"100.64.0.1", "special-purpose address: shared address space (RFC 6598)"},
		{"0.1.2.3", `special-purpose address: "this network" (RFC 791)`},
		{"255.255.255.255", "special-purpose address: limited broadcast (RFC 919)"},
		{"64:ff9b::a00:1", "special-purpose address: IPv4/IPv6 translation (RFC 6052)"},
		// The blocks the attack tried, and neighbours that are ordinary public addresses.
		{"2002:c0a8:101::1", "special-purpose address: 6to4 (RFC 3056)"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "special-purpose address: Teredo (RFC 4380)"},
		{"fec0::1", "special-purpose address: deprecated site-local (RFC 3879)"},
		{"::7f00:1", "special-purpose address: deprecated IPv4-compatible (RFC 4291)"},
		{"::a00:1", "special-purpose address: deprecated IPv4-compatible (RFC 4291)"},
		{"192.88.99.1", "special-purpose address: deprecated 6to4 relay anycast (RFC 7526)"},
		{"192.0.0.9", "special-purpose address: Port Control Protocol anycast (RFC 7723)"},
		{"2001:1::1", "special-purpose address: Port Control Protocol anycast (RFC 7723)"},
		{"3fff::1", "special-purpose address: documentation (RFC 9637)"},
		{"2003::1", ""},
		{"2001:200::1", ""},
		{"2001:4860:4860::8888", ""},
		{"192.88.100.1", ""},
		{"2620:4f:8001::1", ""},
	}
	for _, tc := range tests {
		if got := refusal(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("refusal(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// Every block of the table is refused from its first address to its last, and the addresses just
// outside a block are not refused because of it.
func TestSpecialPurposeBlocksRefused(t *testing.T) {
	t.Parallel()
	for _, sp := range special {
		first := sp.prefix.Masked().Addr()
		b := first.AsSlice()
		for i := sp.prefix.Bits(); i < first.BitLen(); i++ {
			b[i/8] |= 1 << (7 - i%8)
		}
		last, _ := netip.AddrFromSlice(b)
		for _, a := range []netip.Addr{first, last} {
			if refusal(a) == "" {
				t.Errorf("%s (in %s, %s) is not refused", a, sp.prefix, sp.name)
			}
		}
	}
	if len(special) < 45 {
		t.Errorf("the table has %d blocks; both IANA registries have more", len(special))
	}
}

// No reason names the address: a tenant must not learn what an internal host resolves to.
func TestRefusalsDoNotNameTheAddress(t *testing.T) {
	t.Parallel()
	err := dialControl(false)("tcp", "10.20.30.40:443", nil)
	if err == nil || strings.Contains(err.Error(), "10.20.30.40") {
		t.Errorf("dial refusal %v names the address", err)
	}
	r := fixedResolver{"intranet.example.com": {netip.MustParseAddr("10.20.30.40")}}
	err = checkHost(t.Context(), r, "intranet.example.com")
	if ie, ok := errors.AsType[*InvalidError](err); !ok || strings.Contains(ie.Reason, "10.20.30.40") || !strings.Contains(ie.Reason, "private") {
		t.Errorf("checkHost = %v; want a private-address refusal without the address", err)
	}
}

type fixedResolver map[string][]netip.Addr

func (r fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return r[host], nil
}

func TestDialControl(t *testing.T) {
	t.Parallel()
	strict, lax := dialControl(false), dialControl(true)
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "10.1.2.3:8080", "169.254.169.254:80"} {
		if err := strict("tcp", addr, nil); !errors.Is(err, errRefusedTarget) {
			t.Errorf("strict dial of %s: %v, want refused", addr, err)
		}
		if err := lax("tcp", addr, nil); err != nil {
			t.Errorf("dial of %s with private targets allowed: %v", addr, err)
		}
	}
	if err := strict("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

// Without allowHTTP only https is accepted.
func TestParseURLHTTPSOnly(t *testing.T) {
	t.Parallel()
	if _, err := parseURL("https://hooks.example.com/x", false); err != nil {
		t.Errorf("https refused: %v", err)
	}
	for _, raw := range []string{"http://hooks.example.com/x", "HTTP://hooks.example.com/x"} {
		if _, err := parseURL(raw, false); err == nil || !strings.Contains(err.Error(), "https") {
			t.Errorf("parseURL(%q) = %v, want refused for not being https", raw, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, reason string // reason "" = accepted
	}{
		{"https://hooks.example.com/dirgate?k=v", ""},
		{"http://hooks.example.com:8080/x", ""},
		{"HTTPS://hooks.example.com/", ""},
		{"", "required"},
		{"ftp://hooks.example.com/", "must be https"},
		{"javascript:alert(1)", "must be https"},
		{"hooks.example.com/x", "must be https"},
		{"https:///path", "host"},
		{"https://user:pass@hooks.example.com/", "credentials"},
		{"https://hooks.example.com/#frag", "fragment"},
		{"https://hooks.example.com/" + strings.Repeat("a", maxURLLength), "longer"},
		{"http://[::1", "valid URL"},
	}
	for _, tc := range tests {
		_, err := parseURL(tc.raw, true)
		ie, _ := errors.AsType[*InvalidError](err)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("parseURL(%q): %v", tc.raw, err)
		case tc.reason != "" && (ie == nil || ie.Field != "url" || !strings.Contains(ie.Reason, tc.reason)):
			t.Errorf("parseURL(%q) = %v, want an invalid url saying %q", tc.raw, err, tc.reason)
		}
	}
}
