package store

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrorHook returns a go-redis hook that reports every failed command, pipeline and dial to count
// with its kind: "timeout", "canceled", "network", "server" (an error reply) or "other". Answers
// that are not failures are not reported: redis.Nil (no such key) and NOSCRIPT (go-redis loads the
// script and retries). Add it with client.AddHook.
func ErrorHook(count func(kind string)) redis.Hook { return errorHook{count: count} }

type errorHook struct{ count func(kind string) }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		h.report(err)
		return c, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.report(err)
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			// A pipeline's error is its first failed command's; count each failed command.
			for _, c := range cmds {
				h.report(c.Err())
			}
			return nil
		}
		h.report(err)
		return err
	}
}

func (h errorHook) report(err error) {
	if kind := ErrorKind(err); kind != "" {
		h.count(kind)
	}
}

// ErrorKind classifies a go-redis error for metrics; "" when err is not a failure.
func ErrorKind(err error) string {
	if err == nil || errors.Is(err, redis.Nil) {
		return ""
	}
	if re, ok := errors.AsType[redis.Error](err); ok {
		if strings.HasPrefix(re.Error(), "NOSCRIPT") {
			return ""
		}
		return "server"
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return "network"
	}
	return "other"
}
