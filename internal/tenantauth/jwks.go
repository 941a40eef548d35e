package tenantauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// JWKS fetch settings: a JWK Set URL is read again every JWKSRefresh, and at most every
// JWKSUnknownKID when a token names a kid it does not hold (a key the provider just rotated in).
const (
	JWKSRefresh    = time.Hour
	JWKSUnknownKID = 5 * time.Minute
	jwksTimeout    = 10 * time.Second
)

// ReadJWKS reads a JWK Set document (RFC 7517), as identity providers publish them.
func ReadJWKS(raw []byte) (keyfunc.Keyfunc, error) {
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("tenantauth: JWK Set: %w", err)
	}
	keys, err := kf.Storage().KeyReadAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("tenantauth: JWK Set: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("tenantauth: JWK Set holds no key")
	}
	return kf, nil
}

// NewJWKS fetches the JWK Set at rawURL and keeps it fresh until ctx ends. The URL must be https
// (http only on a loopback host, for tests and local identity providers); redirects are not
// followed and no proxy is used; a first fetch that fails is an error, later failures are logged
// and the last keys stay in use.
func NewJWKS(ctx context.Context, rawURL string, log *slog.Logger) (keyfunc.Keyfunc, error) {
	if err := checkJWKSURL(rawURL); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{
		Timeout:   jwksTimeout,
		Transport: &http.Transport{Proxy: nil, TLSHandshakeTimeout: jwksTimeout, ResponseHeaderTimeout: jwksTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the JWK Set URL redirected; give the final URL")
		},
	}
	fail := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{rawURL}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               jwksTimeout,
		NoErrorReturnFirstHTTPReq: &fail,
		RefreshInterval:           JWKSRefresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(JWKSUnknownKID), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				log.WarnContext(ctx, "refreshing the JWK Set failed; the last keys stay in use", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("tenantauth: JWK Set URL: %w", err)
	}
	return kf, nil
}

func checkJWKSURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("tenantauth: JWK Set URL must be an absolute https URL without credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return errors.New("tenantauth: JWK Set URL must use https (http only on a loopback host)")
}
