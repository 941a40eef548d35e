package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/tenantauth"
	"github.com/dirgate/dirgate/internal/testnet"
)

// The listener limits are tested on real TCP listeners with the gateway serveHTTP serves in
// production: what they protect against (a client that idles, trickles or stops reading) happens
// below net/http's handler API.

// limitedGateway is a gateway served by serveHTTP on a loopback listener.
type limitedGateway struct {
	addr  string
	logs  *syncBuffer
	token string
}

// startLimited serves a gateway over ds with lim; conn, when not nil, adjusts each accepted
// connection (the CSV test shrinks its send buffer, so that a client that stops reading blocks the
// server within a few KiB instead of megabytes of kernel buffers).
func startLimited(t *testing.T, lim serverLimits, stream time.Duration, ds *podiosim.Dataset, conn func(net.Conn)) *limitedGateway {
	t.Helper()
	rdb := redistest.New(t)
	sim := httptest.NewServer(podiosim.New(podiosim.Config{Dataset: ds}))
	t.Cleanup(sim.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conn != nil {
		ln = &testnet.AdjustingListener{Listener: ln, Adjust: conn}
	}
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL, cfg.RedisPrefix = redistest.URL(), rdb.Prefix
	cfg.PublicURL = "http://" + ln.Addr().String()
	cfg.JWTSecret, cfg.EncryptionKeys = devJWTSecret, devEncryptionKey
	cfg.PodioClientID, cfg.PodioClientSecret = "demo-client", "demo-secret"
	cfg.PodioAPIURL, cfg.PodioAuthURL = sim.URL+"/", sim.URL+"/"
	cfg.AllowPasswordGrant = true
	cfg.HTTPStreamTimeout = stream
	// Patient Redis: these tests are about the listener, not a slow Redis under -race.
	cfg.RedisTimeout, cfg.CacheTimeout = 2*time.Second, time.Second
	rc, err := redisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	gw, err := buildGateway(cfg, rc, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveHTTP(ctx, ln, gw.api, nil, time.Second, lim) }()
	t.Cleanup(func() {
		cancel()
		<-served
		gw.Close()
	})
	m, err := tenantauth.NewMinter([]byte(devJWTSecret), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Mint("tenant-limits", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &limitedGateway{addr: ln.Addr().String(), logs: logs, token: tok}
}

// link links the demo admin with the password grant and returns the account id.
func (g *limitedGateway) link(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.addr+"/integrated-accounts",
		strings.NewReader(`{"grant_type":"password","username":"admin@demo.example","password":"demo"}`))
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var a struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("linking: %d %v", res.StatusCode, err)
	}
	return a.ID
}

// waitLog waits until the gateway's log matches re (at most 30 s: a bound on a failing test, not
// a measurement).
func (g *limitedGateway) waitLog(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if re.MatchString(g.logs.String()) {
			return
		}
	}
	t.Fatalf("the gateway never logged %v; log:\n%s", re, g.logs.String())
}

// TestIdleConnectionIsClosed: a keep-alive connection that sends nothing after its answer is
// closed by the server once the idle timeout passes.
func TestIdleConnectionIsClosed(t *testing.T) {
	lim := defaultLimits()
	lim.Idle, lim.Read = 200*time.Millisecond, time.Hour // only the idle timeout can end it
	g := startLimited(t, lim, time.Second, nil, nil)
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("healthz: %d, close %v; want a kept-alive 200", res.StatusCode, res.Close)
	}
	// Idle now. The server must end the connection: the next read sees EOF (the 30 s deadline
	// only stops a test whose server never closes).
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection was not closed by the server: read = %v", err)
	}
}

// TestTrickledBodyIsCut: a client that sends its JSON body one byte at a time is cut once the
// read timeout passes: it gets 408, the handler that was reading the body returns (its request is
// logged), and the connection is closed.
func TestTrickledBodyIsCut(t *testing.T) {
	lim := defaultLimits()
	lim.Read, lim.Idle = 500*time.Millisecond, time.Hour
	g := startLimited(t, lim, time.Second, nil, nil)
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"redirect_uri":"https://app.example/linked","app_name":"Trickle"}`
	head := fmt.Sprintf("POST /link-tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", g.token, len(body))
	if _, err := io.WriteString(c, head+body[:1]); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// One byte every 50 ms, well inside any per-read timeout: only a deadline on the whole
		// request stops it.
		for i := 1; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"request_timeout"`) {
		t.Fatalf("trickled body: %d %s; want 408 request_timeout", res.StatusCode, b)
	}
	if strings.Contains(string(b), "127.0.0.1") {
		t.Errorf("the answer names an address: %s", b)
	}
	// The handler returned: the request was logged with its 408.
	g.waitLog(t, regexp.MustCompile(`"msg":"request".*"route":"/link-tokens","status":408`))
}

// TestStalledCSVReaderIsCut: a client that asks for a large CSV export and stops reading is cut
// once the stream timeout passes, instead of holding the handler and its connection forever (a
// blocked write does not see the request's context).
func TestStalledCSVReaderIsCut(t *testing.T) {
	lim := defaultLimits()
	lim.Write = time.Hour // only the stream timeout can end it
	smallBuffers := func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4 << 10)
		}
	}
	g := startLimited(t, lim, 300*time.Millisecond, podiosim.Large(podiosim.LargeOptions{People: 3000, Spaces: 10}), smallBuffers)
	account := g.link(t)

	// A small receive buffer too: the server's writes block after a few KiB.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
	}}
	c, err := d.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := fmt.Sprintf("GET /unified/user-directory/users?integrated_account_id=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/csv\r\n\r\n", account, g.token)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	// Read the status line and the first bytes, then stop reading.
	br := bufio.NewReaderSize(c, 512)
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("CSV export: %q %v", line, err)
	}
	g.waitLog(t, regexp.MustCompile(`"msg":"users CSV aborted mid-stream"`))
	// The server gave up: the rest of what reaches us ends without the chunked terminator.
	rest, _ := io.ReadAll(br)
	if strings.HasSuffix(string(rest), "0\r\n\r\n") {
		t.Errorf("the CSV answer ended normally (%d bytes); want it cut", len(rest))
	}
}

// TestOversizedHeadersAnswer431: a request line or headers over DIRGATE_HTTP_MAX_HEADER_BYTES
// never reach the gateway: net/http answers 431. A made-up 200 KiB method is one of them.
func TestOversizedHeadersAnswer431(t *testing.T) {
	g := startLimited(t, defaultLimits(), time.Second, nil, nil)
	for name, req := range map[string]string{
		"header": "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n",
		"method": strings.Repeat("M", 200<<10) + " /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			go io.WriteString(c, req) // the server may answer and close before reading it all
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("status %d, want 431", res.StatusCode)
			}
		})
	}
	// A normal request on the same listener is served.
	res, err := http.Get("http://" + g.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("healthz = %d", res.StatusCode)
	}
}
