// Package testnet holds network helpers for tests.
package testnet

import "net"

// AdjustingListener calls Adjust on every connection it accepts (a test shrinks its buffers, or
// wraps it to count what it carries).
type AdjustingListener struct {
	net.Listener
	Adjust func(net.Conn)
}

// Accept accepts a connection and adjusts it.
func (l *AdjustingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.Adjust(c)
	}
	return c, err
}
