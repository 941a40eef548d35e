package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/dirgate/dirgate/internal/config"
)

// runServe implements "dirgate serve": production mode, configured from DIRGATE_* variables.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Runs the gateway. Configuration comes from the environment:\n\n"+varsHelp(), stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(os.Environ())
	if err != nil {
		return usageError{fmt.Errorf("configuration: %w", err)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("refusing to start with this configuration:\n%w", err)}
	}
	log := newLogger(stderr, cfg.LogLevel)
	rc, err := redisClient(cfg)
	if err != nil {
		return err
	}
	gw, err := buildGateway(cfg, rc, log)
	if err != nil {
		rc.Close()
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on DIRGATE_ADDR %s: %w", cfg.Addr, err)
	}
	var proxyLn net.Listener
	if cfg.ProxyAddr != "" {
		if proxyLn, err = net.Listen("tcp", cfg.ProxyAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on DIRGATE_PROXY_ADDR %s: %w", cfg.ProxyAddr, err)
		}
	}
	log.Info("dirgate serving", "addr", ln.Addr().String(), "config", cfg.Redacted())
	if cfg.AllowPrivateHooks {
		log.Warn("DIRGATE_WEBHOOK_ALLOW_PRIVATE is true: webhooks may target loopback, private and link-local addresses")
	}
	if cfg.AllowHTTPHooks {
		log.Warn("DIRGATE_WEBHOOK_ALLOW_HTTP is true: webhook deliveries may go over plain http")
	}
	fmt.Fprintf(stdout, "dirgate listening on %s\n", ln.Addr())
	if proxyLn != nil {
		fmt.Fprintf(stdout, "dirgate root proxy listening on %s\n", proxyLn.Addr())
	}
	err = serveAll(ctx, gw, ln, proxyLn, cfg.ShutdownTimeout, limitsFrom(cfg))
	log.Info("dirgate stopped")
	return err
}

// varsHelp renders the configuration variables for --help.
func varsHelp() string {
	var b strings.Builder
	for _, v := range config.Vars() {
		def := v.Default
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(&b, "  %-32s %s [default %s]\n", v.Name, v.Doc, def)
	}
	return b.String()
}
