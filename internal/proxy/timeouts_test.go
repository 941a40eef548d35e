package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/proxy"
	"github.com/dirgate/dirgate/internal/testnet"
)

// timeoutEnv is a fake Podio answering with respond, and a frontend forwarding to it with o.
func timeoutEnv(t *testing.T, o proxy.Options, respond http.HandlerFunc, adjust func(net.Conn)) (*frontend, chan result) {
	t.Helper()
	up := httptest.NewServer(respond)
	t.Cleanup(up.Close)
	base, _ := url.Parse(up.URL + "/")
	o.Base = base
	f, err := proxy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	fe := &frontend{}
	fe.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := f.Forward(w, r, r.URL.EscapedPath(), staticTokens("t"))
		done <- result{res, err}
		if err != nil && !res.Written {
			status := http.StatusInternalServerError
			if pe, ok := errors.AsType[*proxy.Error](err); ok {
				status = pe.Status
			}
			http.Error(w, "dirgate", status)
		}
	}))
	if adjust != nil {
		fe.Listener = &testnet.AdjustingListener{Listener: fe.Listener, Adjust: adjust}
	}
	fe.Start()
	t.Cleanup(fe.Close)
	return fe, done
}

// waitResult waits for Forward to return (at most 30 s: the bound of a failing test).
func waitResult(t *testing.T, done chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Forward never returned")
		return result{}
	}
}

// TestAnswerTimeoutBoundsTheWaitForPodio: a Podio that never answers is given up after
// AnswerTimeout with 504 upstream_timeout.
func TestAnswerTimeoutBoundsTheWaitForPodio(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	fe, done := timeoutEnv(t, proxy.Options{AnswerTimeout: 200 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, nil)
	c := rawClient()
	c.Timeout = 30 * time.Second // the bound of a failing test
	res, _ := do(t, c, "GET", fe.URL+"/org/", nil, nil)
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", res.StatusCode)
	}
	r := waitResult(t, done)
	if pe, ok := errors.AsType[*proxy.Error](r.err); !ok || pe.Code != proxy.CodeUpstreamTimeout {
		t.Errorf("Forward error = %v, want %s", r.err, proxy.CodeUpstreamTimeout)
	}
}

// TestStreamOutlivesAnswerTimeout: once Podio's answer streams, AnswerTimeout no longer applies:
// a body that keeps moving arrives whole, however long it takes in all.
func TestStreamOutlivesAnswerTimeout(t *testing.T) {
	t.Parallel()
	const chunks = 10
	fe, done := timeoutEnv(t, proxy.Options{AnswerTimeout: 100 * time.Millisecond, StreamTimeout: 10 * time.Second},
		func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			for i := range chunks {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond) // Podio sending slowly: the point of the test
			}
		}, nil)
	res, body := do(t, rawClient(), "GET", fe.URL+"/file/1/raw", nil, nil)
	if res.StatusCode != http.StatusOK || strings.Count(string(body), "chunk ") != chunks {
		t.Fatalf("status %d, body %q; want all %d chunks", res.StatusCode, body, chunks)
	}
	if r := waitResult(t, done); r.err != nil {
		t.Errorf("Forward: %v", r.err)
	}
}

// TestStalledPodioStreamIsCut: a Podio that stops sending in the middle of a body is given up
// after StreamTimeout; the caller sees a broken answer, not a hung one.
func TestStalledPodioStreamIsCut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	fe, done := timeoutEnv(t, proxy.Options{StreamTimeout: 200 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "first chunk\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, nil)
	go func() {
		if res, err := rawClient().Get(fe.URL + "/file/1/raw"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}()
	r := waitResult(t, done)
	if r.err == nil || !r.res.Written {
		t.Fatalf("Forward = %+v, %v; want a failed copy after the answer was written", r.res, r.err)
	}
}

// TestStalledClientIsCut: a client that stops reading a large proxied answer is cut after
// StreamTimeout (the write deadline), instead of holding the handler forever: a blocked write
// does not see the request's context.
func TestStalledClientIsCut(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 8<<20)
	fe, done := timeoutEnv(t, proxy.Options{StreamTimeout: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, big)
	}, func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4 << 10)
		}
	})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(fe.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /file/1/raw HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReaderSize(c, 256).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// Stop reading. Forward must give up on its own.
	r := waitResult(t, done)
	if r.err == nil || !r.res.Written || r.res.Bytes >= int64(len(big)) {
		t.Fatalf("Forward = %+v, %v; want a failed copy", r.res, r.err)
	}
}
