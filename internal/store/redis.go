package store

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says how to reach Redis: either URL (redis:// or rediss://, standalone) or Addrs
// (Sentinel when MasterName is set, else Cluster seeds; a single address without MasterName is a
// standalone server).
type RedisConfig struct {
	URL        string
	Addrs      []string
	MasterName string
	Username   string
	Password   string
	DB         int
	// DialTimeout, ReadTimeout and WriteTimeout default to 500ms: a gateway should fail fast when
	// Redis is unreachable rather than hold every request for seconds.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
}

// Default client timeouts (see RedisConfig).
const (
	DefaultDialTimeout  = 500 * time.Millisecond
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
)

// NewRedisClient builds a go-redis UniversalClient with short timeouts and request-context
// deadlines honoured (ContextTimeoutEnabled). Addrs takes precedence over URL.
func NewRedisClient(cfg RedisConfig) (redis.UniversalClient, error) {
	opts := &redis.UniversalOptions{
		Addrs:                 cfg.Addrs,
		MasterName:            cfg.MasterName,
		Username:              cfg.Username,
		Password:              cfg.Password,
		DB:                    cfg.DB,
		DialTimeout:           orDefault(cfg.DialTimeout, DefaultDialTimeout),
		ReadTimeout:           orDefault(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:          orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		ContextTimeoutEnabled: true,
		// One retry: go-redis defaults to three, which multiplies the time a request waits when
		// Redis is down.
		MaxRetries: 1,
		// One dial attempt per try: go-redis otherwise dials five times, 100 ms apart, before
		// giving up on a Redis that refuses connections, and every request would wait for it.
		DialerRetries: 1,
	}
	if len(cfg.Addrs) == 0 {
		if cfg.URL == "" {
			return nil, errors.New("store: redis: set a URL or addresses")
		}
		u, err := redis.ParseURL(cfg.URL)
		if err != nil {
			// ParseURL errors may quote the URL, which can carry a password.
			return nil, errors.New("store: redis: invalid URL (expected redis://[user:pass@]host:port/db or rediss://...)")
		}
		opts.Addrs = []string{u.Addr}
		opts.TLSConfig = u.TLSConfig
		opts.Protocol = u.Protocol
		if opts.Username == "" {
			opts.Username = u.Username
		}
		if opts.Password == "" {
			opts.Password = u.Password
		}
		if opts.DB == 0 {
			opts.DB = u.DB
		}
	}
	if opts.DB != 0 && len(opts.Addrs) > 1 && opts.MasterName == "" {
		return nil, fmt.Errorf("store: redis: Cluster (%d addresses) has no database %d; only 0", len(opts.Addrs), opts.DB)
	}
	return redis.NewUniversalClient(opts), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Unavailable reports whether err says Redis could not be reached or did not answer in time, as
// opposed to an answer about the data: callers answer 503 for it, and reads may fall back (Memo).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return false // an HTTP call (Podio) failed, not Redis
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
