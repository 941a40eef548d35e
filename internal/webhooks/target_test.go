package webhooks

import (
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
		{"100.64.0.1", "reserved address"},
		{"0.1.2.3", "reserved address"},
		{"255.255.255.255", "reserved address"},
		{"64:ff9b::a00:1", "reserved address"},
	}
	for _, tc := range tests {
		if got := refusal(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("refusal(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
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

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, reason string // reason "" = accepted
	}{
		{"https://hooks.example.com/dirgate?k=v", ""},
		{"http://hooks.example.com:8080/x", ""},
		{"HTTPS://hooks.example.com/", ""},
		{"", "required"},
		{"ftp://hooks.example.com/", "http or https"},
		{"javascript:alert(1)", "http or https"},
		{"hooks.example.com/x", "http or https"},
		{"https:///path", "host"},
		{"https://user:pass@hooks.example.com/", "credentials"},
		{"https://hooks.example.com/#frag", "fragment"},
		{"https://hooks.example.com/" + strings.Repeat("a", maxURLLength), "longer"},
		{"http://[::1", "valid URL"},
	}
	for _, tc := range tests {
		_, err := parseURL(tc.raw)
		ie, _ := errors.AsType[*InvalidError](err)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("parseURL(%q): %v", tc.raw, err)
		case tc.reason != "" && (ie == nil || ie.Field != "url" || !strings.Contains(ie.Reason, tc.reason)):
			t.Errorf("parseURL(%q) = %v, want an invalid url saying %q", tc.raw, err, tc.reason)
		}
	}
}
