package redistest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// ClosedAddr returns a loopback host:port where nothing listens: a Redis that is down.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Blackhole returns a loopback host:port that accepts connections and never answers: a Redis
// that hangs.
func Blackhole(t testing.TB) string {
	t.Helper()
	p := NewProxy(t, "")
	p.SetBlackout(true)
	return p.Addr()
}

// Proxy forwards TCP connections to a Redis, or, while blacked out, accepts them and never
// answers. Tests use it to make a real Redis hang and come back.
type Proxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	blackout bool
	conns    []net.Conn
}

// NewProxy listens on a loopback port and forwards to target (host:port); it closes with the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBlackout switches mode, dropping existing connections so that pooled ones follow it.
func (p *Proxy) SetBlackout(on bool) {
	p.mu.Lock()
	p.blackout = on
	p.mu.Unlock()
	p.closeAll()
}

func (p *Proxy) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, conn)
		black := p.blackout
		p.mu.Unlock()
		if black {
			continue // hold it open, never answer
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = conn.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, conn); _ = up.Close() }()
		go func() { _, _ = io.Copy(conn, up); _ = conn.Close() }()
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
