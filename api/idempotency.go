package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/idempotency"
)

const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	// maxStoredAnswer bounds an answer kept for replay; a larger one is not kept (the key is
	// then released, and a retry runs again).
	maxStoredAnswer = 4 << 20
)

// validIdempotencyKey accepts up to 255 visible ASCII characters (a UUID is the usual choice).
var validIdempotencyKey = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// replayedHeaders are the response headers kept with an answer and sent again on replay.
var replayedHeaders = []string{echo.HeaderContentType, echo.HeaderLocation}

// idempotent makes a write route honour Idempotency-Key: the tenant's first request with a key
// runs and its answer is kept (Options.Idempotency, 24 h); a request with the same key, route,
// query and body gets that answer again (Idempotent-Replayed: true) without running; the same
// key with another request is refused (422), and one that arrives while the first still runs
// is told to retry (409 idempotency_in_progress); a new key beyond the tenant's limits
// (Options.Idempotency's MaxKeys, MaxBytes) is refused (429 too_many_idempotency_keys). 4xx
// answers are kept for a shorter time (ErrorRetention, 1 h). Server faults (5xx) and 408/429 answers are not
// kept: retrying them is the point of the key. Requests without the header run as usual.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key := req.Header.Get(headerIdempotencyKey)
		if key == "" {
			return next(c)
		}
		if !validIdempotencyKey.MatchString(key) {
			return newError(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
		}
		if s.idem == nil {
			return newError(http.StatusNotImplemented, "not_configured", "Idempotency-Key is not supported by this gateway's configuration")
		}
		body, err := readBody(req)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		fp := idempotency.Fingerprint([]byte(req.Method), []byte(req.URL.EscapedPath()), []byte(req.URL.Query().Encode()), canonicalJSON(body))
		claim, err := s.idem.Begin(req.Context(), tenantOf(c), key, fp)
		if err != nil {
			return err
		}
		switch claim.Outcome {
		case idempotency.Replay:
			return replay(c, claim.Response)
		case idempotency.InProgress:
			return &Error{Status: http.StatusConflict, Code: "idempotency_in_progress",
				Message: "a request with this Idempotency-Key is still running; retry shortly", RetryAfter: 1}
		case idempotency.Full:
			e := &Error{Status: http.StatusTooManyRequests, Code: "too_many_idempotency_keys",
				Message: "the tenant holds as many Idempotency-Key records as it may; send the request without a new key, or retry after the oldest is forgotten"}
			if !claim.RetryAt.IsZero() {
				e.RetryAfter = max(int(time.Until(claim.RetryAt).Seconds())+1, 1)
			}
			return e
		case idempotency.Mismatch:
			return newError(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used for another request (route, query or body); use a new key")
		}

		rec := &answerRecorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		if err := next(c); err != nil {
			// Write the error answer now, so that it is kept like any other.
			c.Error(err)
		}
		ctx := context.WithoutCancel(req.Context())
		status := c.Response().Status
		if !keepAnswer(status) || rec.overflow {
			if err := s.idem.Abandon(ctx, claim); err != nil {
				s.log.WarnContext(ctx, "idempotency: releasing a key failed; retries get 409 until its lease ends", "request_id", requestID(c), "err", err)
			}
			return nil
		}
		ans := idempotency.Response{Status: status, Header: http.Header{}, Body: rec.body.Bytes()}
		for _, h := range replayedHeaders {
			if v := c.Response().Header().Values(h); len(v) > 0 {
				ans.Header[h] = v
			}
		}
		if ok, err := s.idem.Complete(ctx, claim, ans); err != nil || !ok {
			s.log.WarnContext(ctx, "idempotency: the answer was not kept; a retry with this key runs again",
				"request_id", requestID(c), "lost_claim", !ok, "err", err)
		}
		return nil
	}
}

// keepAnswer says whether an answer is final for its key: not a server fault, a timeout or a
// rate limit, which a retry with the same key is meant to get past.
func keepAnswer(status int) bool {
	return status > 0 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

func replay(c echo.Context, r *idempotency.Response) error {
	h := c.Response().Header()
	for k, v := range r.Header {
		h[k] = v
	}
	h.Set(headerReplayed, "true")
	c.Response().WriteHeader(r.Status)
	_, err := c.Response().Write(r.Body)
	return err
}

// canonicalJSON re-encodes a JSON body with sorted object keys and no insignificant space, so
// that the same request sent twice by different encoders has one fingerprint; other bodies are
// taken as they are.
func canonicalJSON(body []byte) []byte {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if len(bytes.TrimSpace(body)) == 0 || d.Decode(&v) != nil || d.More() {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// answerRecorder copies what a handler writes, up to maxStoredAnswer.
type answerRecorder struct {
	http.ResponseWriter
	body     bytes.Buffer
	overflow bool
}

func (r *answerRecorder) Write(p []byte) (int, error) {
	if !r.overflow {
		if r.body.Len()+len(p) > maxStoredAnswer {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

func (r *answerRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
