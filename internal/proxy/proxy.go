package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dirgate/dirgate/adapters/podio"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBody      = 10 << 20
	DefaultReplayBuffer = 1 << 20
)

// maxErrorPeek is how much of a 401 body is read to decide whether the token expired; the same cap
// podio.CheckResponse uses.
const maxErrorPeek = 64 << 10

// Error codes of *Error.
const (
	// CodeInvalidPath: the path or query may not be forwarded (400).
	CodeInvalidPath = "invalid_path"
	// CodeMethodNotAllowed: the method is not forwarded, e.g. TRACE, which would echo the
	// Authorization header back to the caller (405).
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeBodyTooLarge: the request body exceeds Options.MaxBody (413).
	CodeBodyTooLarge = "body_too_large"
	// CodeInvalidBody: reading the caller's request body failed, e.g. it ended before its
	// Content-Length (400).
	CodeInvalidBody = "invalid_body"
	// CodeUpstreamUnavailable: Podio could not be reached or the connection failed before it
	// answered (502).
	CodeUpstreamUnavailable = "upstream_unavailable"
	// CodeUpstreamTimeout: Podio did not answer before the request's deadline or a transport
	// timeout (504).
	CodeUpstreamTimeout = "upstream_timeout"
	// CodeRequestTimeout: the caller did not send its body before the listener's read deadline
	// (408).
	CodeRequestTimeout = "request_timeout"
)

// Error is a problem dirgate answers itself, before anything was written to the caller. Status and
// Code are meant for the answer; Message is a sentence for people that never quotes the caller's
// input or a token. Err is the cause, for logs only.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

// Error describes the problem, with the cause when there is one.
func (e *Error) Error() string {
	msg := "proxy: " + e.Code + ": " + e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause, so that errors.Is(err, context.Canceled) and similar work.
func (e *Error) Unwrap() error { return e.Err }

// Options configures a Forwarder.
type Options struct {
	// Base is the Podio API base, e.g. https://api.podio.com/ or http://127.0.0.1:8081/podio/.
	// Required. A missing trailing slash on its path is added; it must be an absolute http or
	// https URL without user info, query or fragment.
	Base *url.URL
	// Client sends the calls. nil means a client on a clone of http.DefaultTransport with
	// transparent gzip turned off (so that Podio's encoding and Content-Length pass through). A
	// given client is copied and its copy never follows redirects and has no cookie jar: a jar
	// would carry one account's Podio cookies into another account's calls.
	Client *http.Client
	// MaxBody is the request body limit; 0 means DefaultMaxBody (10 MiB).
	MaxBody int64
	// ReplayBuffer: bodies up to this size are buffered so that the call can be repeated after a
	// token refresh; 0 means DefaultReplayBuffer (1 MiB). It is capped at MaxBody.
	ReplayBuffer int64
	// AnswerTimeout bounds a call until Podio's status and headers are written to the caller
	// (reading the request body, getting a token, Podio's answer, a refresh and repeat); 0 means
	// none beyond the request's context. Once the answer streams, StreamTimeout applies instead, so
	// a long download that keeps moving is not cut.
	AnswerTimeout time.Duration
	// StreamTimeout bounds each chunk of an answer's body: Podio sending it and the caller taking
	// it (the write deadline of the caller's connection). 0 means no bound.
	StreamTimeout time.Duration
}

// Forwarder forwards one caller request to Podio and streams the answer back. It holds no
// per-request state and is safe for concurrent use.
type Forwarder struct {
	base        *url.URL
	baseEscaped string
	client      *http.Client
	maxBody     int64
	replay      int64
	answerTO    time.Duration
	streamTO    time.Duration
}

// New returns a Forwarder for o.
func New(o Options) (*Forwarder, error) {
	if o.Base == nil {
		return nil, errors.New("proxy: Options.Base is required")
	}
	base := *o.Base
	switch {
	case base.Scheme != "http" && base.Scheme != "https":
		return nil, fmt.Errorf("proxy: base URL scheme %q is not http or https", base.Scheme)
	case base.Host == "" || base.Opaque != "":
		return nil, errors.New("proxy: base URL is not absolute")
	case base.User != nil:
		// A credential in the URL would end up in error messages and logs.
		return nil, errors.New("proxy: base URL must not contain user info")
	case base.RawQuery != "" || base.ForceQuery || base.Fragment != "" || base.RawFragment != "":
		return nil, errors.New("proxy: base URL must not have a query or fragment")
	case o.MaxBody < 0 || o.ReplayBuffer < 0:
		return nil, errors.New("proxy: MaxBody and ReplayBuffer must not be negative")
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}
	f := &Forwarder{
		base:        &base,
		baseEscaped: base.EscapedPath(),
		maxBody:     o.MaxBody,
		replay:      o.ReplayBuffer,
		answerTO:    o.AnswerTimeout,
		streamTO:    o.StreamTimeout,
	}
	if f.maxBody == 0 {
		f.maxBody = DefaultMaxBody
	}
	if f.replay == 0 {
		f.replay = DefaultReplayBuffer
	}
	f.replay = min(f.replay, f.maxBody)
	if o.Client != nil {
		c := *o.Client
		f.client = &c
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableCompression = true
		f.client = &http.Client{Transport: t}
	}
	f.client.Jar = nil
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return f, nil
}

// Result describes what Forward did.
type Result struct {
	// Status is the status written to w (0 if nothing was written).
	Status int
	// Upstream is the number of calls made to Podio (0, 1 or 2).
	Upstream int
	// Bytes is the number of response body bytes copied to w.
	Bytes int64
	// Written reports whether the status and headers were written to w.
	Written bool
}

// Forward sends r's method, body and allowed headers to Target(escapedPath, r.URL.RawQuery) with
// "Authorization: OAuth2 <token>" from tokens, and writes Podio's answer to w. Before anything is
// written it returns *Error for problems dirgate answers itself (400 bad path, 405 method, 413 body
// too large, 400 unreadable body, 502 Podio unreachable, 504 timeout/ctx deadline); token-source
// errors are returned as they are (wrapped) so the caller can map them (e.g.
// unified.ErrNeedsReauth). Once Podio answered, its status/headers/body are written and Forward
// returns a Result (errors while copying the body are returned with Result.Written=true for logging
// only; the caller may then abort the connection with panic(http.ErrAbortHandler) so that the
// client sees a truncated answer as an error).
//
// When Podio answers 401 because the token expired (see podio.Error.IsExpiredToken), Forward calls
// tokens.Refresh once and repeats the call once, provided the request body was buffered (see
// Options.ReplayBuffer) or there is none; otherwise, and for a second 401, the 401 is passed
// through. Redirects are passed through, never followed. The request's context bounds everything.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, escapedPath string, tokens podio.TokenSource) (Result, error) {
	var res Result
	if tokens == nil {
		return res, errors.New("proxy: nil token source")
	}
	target, err := f.Target(escapedPath, r.URL.RawQuery)
	if err != nil {
		return res, err
	}
	if !forwardedMethod(r.Method) {
		return res, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: "the method is not forwarded to Podio"}
	}
	// Every call until the answer starts streaming is bounded by AnswerTimeout; the stream's
	// chunks by StreamTimeout. A deadline on ctx itself would cut the stream too, so the bound is
	// a cancellation whose cause is context.DeadlineExceeded.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	if f.answerTO > 0 {
		answer := time.AfterFunc(f.answerTO, func() { cancel(context.DeadlineExceeded) })
		defer answer.Stop()
		ctx = context.WithValue(ctx, answerTimerKey{}, answer)
	}
	body, err := f.requestBody(r)
	if err != nil {
		return res, err
	}
	tok, err := tokens.Token(ctx)
	if err != nil {
		return res, timedOut(ctx, fmt.Errorf("proxy: getting access token: %w", err))
	}
	if tok == nil || tok.AccessToken == "" {
		return res, errors.New("proxy: token source returned no access token")
	}
	header := requestHeader(r.Header, w.Header().Get("X-Request-Id"))

	res.Upstream = 1
	resp, err := f.send(ctx, r.Method, target, header, body, tok.AccessToken)
	if err != nil {
		return res, timedOut(ctx, err)
	}
	if resp.StatusCode == http.StatusUnauthorized && body.replayable() && expiredToken(resp) {
		discard(resp)
		fresh, err := tokens.Refresh(ctx, tok)
		if err != nil {
			return res, timedOut(ctx, fmt.Errorf("proxy: refreshing expired access token: %w", err))
		}
		if fresh == nil || fresh.AccessToken == "" {
			return res, errors.New("proxy: token refresh returned no access token")
		}
		res.Upstream = 2
		if resp, err = f.send(ctx, r.Method, target, header, body, fresh.AccessToken); err != nil {
			return res, timedOut(ctx, err)
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 {
		// net/http answers 1xx other than 101 itself, and Upgrade is never forwarded, so this is
		// a broken upstream; written to w it would be an interim answer followed by a 200.
		return res, &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable,
			Message: "Podio sent an unexpected answer", Err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	if t, ok := ctx.Value(answerTimerKey{}).(*time.Timer); ok && !t.Stop() {
		return res, timedOut(ctx, context.Cause(ctx))
	}
	return writeResponse(w, r.Method, resp, res, f.streamTO, func() { cancel(errStreamStalled) })
}

// answerTimerKey holds the AnswerTimeout timer in a call's context.
type answerTimerKey struct{}

// errStreamStalled ends a proxied answer whose next chunk did not come or go within StreamTimeout.
var errStreamStalled = errors.New("proxy: the answer stalled")

// timedOut turns the failure of a call whose AnswerTimeout passed into the timeout answer.
func timedOut(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout, Message: "Podio did not answer in time", Err: err}
	}
	return err
}

// forwardedMethod reports whether method is one Podio's REST API uses. TRACE and CONNECT are not
// forwarded: a TRACE answer would echo the Podio token to the caller.
func forwardedMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// send makes one call to Podio and maps transport failures to *Error.
func (f *Forwarder) send(ctx context.Context, method string, target *url.URL, header http.Header, body *requestBody, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: "the call to Podio could not be built", Err: err}
	}
	u := *target
	req.URL = &u // exactly what Target built, without a parse round trip
	req.Header = header.Clone()
	req.Header.Set("Authorization", "OAuth2 "+token)
	req.Body, req.ContentLength, req.GetBody = body.open()

	resp, err := f.client.Do(req)
	if err != nil {
		return nil, body.upstreamError(err)
	}
	return resp, nil
}

// expiredToken reports whether a 401 answer says the access token expired. It uses the podio
// package's reading of the error body, so that the client and the proxy agree on when to refresh,
// and leaves resp.Body readable from the start.
func expiredToken(resp *http.Response) bool {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorPeek))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	peek := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(data))}
	e, ok := errors.AsType[*podio.Error](podio.CheckResponse(peek))
	return ok && e.IsExpiredToken()
}

// discard reads a little of an answer that is not passed on, so that the connection can be reused,
// and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorPeek))
	_ = resp.Body.Close()
}

// writeResponse copies Podio's status, headers and body to w; each chunk of the body must come
// from Podio and go to the caller within stream (0: no bound), else stall is called (it cancels the
// call) and the copy fails.
func writeResponse(w http.ResponseWriter, method string, resp *http.Response, res Result, stream time.Duration, stall func()) (Result, error) {
	h := w.Header()
	copyResponseHeader(h, resp.Header)
	if _, ok := h["Content-Type"]; !ok {
		// Without this net/http would sniff and add a Content-Type Podio did not send.
		h["Content-Type"] = nil
	}
	w.WriteHeader(resp.StatusCode)
	res.Status, res.Written = resp.StatusCode, true
	if method == http.MethodHead || !bodyAllowed(resp.StatusCode) {
		return res, nil
	}
	// An answer of unknown length may be a stream; pass every piece on at once, as
	// httputil.ReverseProxy does. With a known length, net/http's buffering is fine.
	n, err := copyBody(w, resp.Body, resp.ContentLength < 0, stream, stall)
	res.Bytes = n
	return res, err
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func copyBody(w http.ResponseWriter, src io.Reader, flush bool, stream time.Duration, stall func()) (int64, error) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	var n int64
	var watch *time.Timer
	if stream > 0 {
		// Podio's side: a chunk that does not arrive in time cancels the call, which ends Read.
		watch = time.AfterFunc(stream, stall)
		defer watch.Stop()
	}
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if stream > 0 {
				// The caller's side: a client that stops reading is cut when the deadline passes.
				watch.Reset(stream)
				if err := rc.SetWriteDeadline(time.Now().Add(stream)); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return n, fmt.Errorf("proxy: extending the write deadline: %w", err)
				}
			}
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr == nil && nw < nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, fmt.Errorf("proxy: writing the response body: %w", werr)
			}
			if flush {
				if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return n, fmt.Errorf("proxy: flushing the response body: %w", err)
				}
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("proxy: reading Podio's response body: %w", rerr)
		}
	}
}

// requestBody is the caller's body as it is sent upstream: nothing, a buffered copy that can be
// sent twice, or a stream under the MaxBody limit that can be sent once.
type requestBody struct {
	buf    []byte       // buffered body; nil with stream == nil means no body
	stream *limitedBody // set when the body is streamed
	length int64        // Content-Length of a streamed body, -1 if unknown
	used   bool         // the stream has been handed to a request
}

// requestBody reads as much of r's body as decides how it is sent: bodies up to the replay buffer
// are buffered (so a refresh can repeat the call), longer ones stream through the MaxBody limit.
func (f *Forwarder) requestBody(r *http.Request) (*requestBody, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return &requestBody{}, nil
	}
	if r.ContentLength > f.maxBody {
		return nil, tooLarge(nil)
	}
	if r.ContentLength > f.replay {
		return &requestBody{stream: &limitedBody{r: r.Body, left: f.maxBody}, length: r.ContentLength}, nil
	}
	// Known length within the replay buffer, or unknown: read one byte more than the buffer holds
	// to learn which side of it the body is on.
	var b bytes.Buffer
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength) + 1)
	}
	if _, err := b.ReadFrom(io.LimitReader(r.Body, f.replay+1)); err != nil {
		return nil, bodyReadError(err)
	}
	switch {
	case int64(b.Len()) <= f.replay:
		return &requestBody{buf: b.Bytes()}, nil
	case int64(b.Len()) > f.maxBody:
		return nil, tooLarge(nil)
	}
	rest := io.MultiReader(bytes.NewReader(b.Bytes()), r.Body)
	return &requestBody{stream: &limitedBody{r: rest, left: f.maxBody}, length: -1}, nil
}

// replayable reports whether the body can be sent a second time.
func (b *requestBody) replayable() bool { return b.stream == nil }

// open returns what a request needs for the body.
func (b *requestBody) open() (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
	if b.stream != nil {
		if b.used {
			// Forward never sends a stream twice; make a bug visible rather than send a torn body.
			return io.NopCloser(errReader{errors.New("proxy: streamed body already sent")}), b.length, nil
		}
		b.used = true
		return io.NopCloser(b.stream), b.length, nil
	}
	if len(b.buf) == 0 {
		return http.NoBody, 0, func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	getBody := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.buf)), nil }
	rc, _ := getBody()
	return rc, int64(len(b.buf)), getBody
}

// upstreamError maps a failed call to *Error. A failure caused by the caller's body (too large,
// or unreadable) is the caller's problem, not Podio's.
func (b *requestBody) upstreamError(err error) error {
	if b.stream != nil {
		if over, rerr := b.stream.state(); over {
			return tooLarge(err)
		} else if rerr != nil {
			return bodyReadError(rerr)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout, Message: "Podio did not answer in time", Err: err}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout, Message: "Podio did not answer in time", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: "Podio could not be reached", Err: err}
}

func tooLarge(err error) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: "the request body is too large", Err: err}
}

func bodyReadError(err error) *Error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		// The caller's own limit (e.g. a body-limit middleware) was hit.
		return tooLarge(err)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		// The listener's read deadline: the caller trickled its body.
		return &Error{Status: http.StatusRequestTimeout, Code: CodeRequestTimeout, Message: "the request body did not arrive in time", Err: err}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidBody, Message: "the request body could not be read", Err: err}
}

// errTooLarge is what a streamed body returns to the transport once MaxBody is exceeded, which
// aborts the upstream call.
var errTooLarge = errors.New("proxy: request body too large")

// limitedBody passes a streamed body to the transport, up to a limit, and remembers why it
// stopped: the transport reads it on its own goroutine and its error may not say.
type limitedBody struct {
	r    io.Reader
	left int64 // bytes still allowed; only the reading goroutine touches it

	mu   sync.Mutex // guards over and err, which are read after the call failed
	over bool
	err  error // the caller's body failed (not EOF)
}

// Read is called by the transport's goroutine only. The lock is not held across the read of the
// caller's body, so that state never waits for a slow client.
func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n, l.left = int(l.left), -1
		l.mu.Lock()
		l.over = true
		l.mu.Unlock()
		return n, errTooLarge
	}
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
	}
	return n, err
}

func (l *limitedBody) state() (over bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.over, l.err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// hopByHop reports the headers that describe one connection, not the message (RFC 9110 §7.6.1,
// and the legacy ones httputil.ReverseProxy removes); forwarding them broke other gateways. ck is
// canonical.
func hopByHop(ck string) bool {
	switch ck {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(ck, "Proxy-")
}

// notForwarded reports request headers that belong to the caller's hop to dirgate: its credentials
// and cookies, and what proxies in front of dirgate said about the client. Expect is answered by
// dirgate's own server; Content-Length is set from the body actually sent.
func notForwarded(ck string) bool {
	switch ck {
	case "Authorization", "Cookie", "Cookie2", "Host", "Forwarded", "X-Real-Ip", "X-Request-Id",
		"Expect", "Content-Length",
		// Podio documents no Idempotency-Key, and with one net/http replays a POST on a reused
		// connection even after it was written: it would make a write that may have reached
		// Podio go out twice.
		"Idempotency-Key", "X-Idempotency-Key":
		return true
	}
	return strings.HasPrefix(ck, "X-Forwarded-")
}

// notReturned reports response headers that would act on dirgate's origin in a browser rather than
// on Podio's: cookies (the caller's cookies are not forwarded either), HSTS and Alt-Svc.
func notReturned(ck string) bool {
	switch ck {
	case "Set-Cookie", "Set-Cookie2", "Strict-Transport-Security", "Alt-Svc":
		return true
	}
	return false
}

// connectionTokens are the headers named in Connection, which are hop-by-hop too.
func connectionTokens(h http.Header) map[string]bool {
	var named map[string]bool
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) != "Connection" {
			continue
		}
		for _, v := range vs {
			for tok := range strings.SplitSeq(v, ",") {
				if tok = strings.TrimSpace(tok); tok != "" {
					if named == nil {
						named = map[string]bool{}
					}
					named[textproto.CanonicalMIMEHeaderKey(tok)] = true
				}
			}
		}
	}
	return named
}

// requestHeader is the header sent to Podio: the caller's, less hop-by-hop and dirgate-side
// headers, with dirgate's request id. Keys are compared canonically because a header built by hand
// may not be.
func requestHeader(in http.Header, requestID string) http.Header {
	named := connectionTokens(in)
	out := make(http.Header, len(in)+2)
	for k, vs := range in {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop(ck) || notForwarded(ck) || named[ck] {
			continue
		}
		out[ck] = append(out[ck], vs...)
	}
	if requestID != "" {
		out.Set("X-Request-Id", requestID)
	}
	return out
}

// copyResponseHeader adds Podio's headers to dst, less hop-by-hop ones, without replacing any
// header the caller already set (its X-Request-Id, say).
func copyResponseHeader(dst, src http.Header) {
	named := connectionTokens(src)
	for k, vs := range src {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop(ck) || notReturned(ck) || named[ck] {
			continue
		}
		if _, set := dst[ck]; set {
			continue
		}
		dst[ck] = append([]string(nil), vs...)
	}
}
