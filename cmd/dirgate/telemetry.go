package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/metrics"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/upstream"
)

// telemetry is what the gateway reports through: metrics always, traces when configured.
type telemetry struct {
	metrics *metrics.Metrics
	// tracer is nil when OTEL_EXPORTER_OTLP_ENDPOINT is unset: nothing is traced, and no
	// exporter runs.
	tracer     trace.TracerProvider
	propagator propagation.TextMapPropagator
	// shutdown flushes and stops the exporter; never nil.
	shutdown func(context.Context) error
}

// newTelemetry builds the metrics registry and, when cfg names an OTLP endpoint, a tracer provider
// exporting to it over OTLP/HTTP (the exporter reads the other OTEL_EXPORTER_OTLP_* variables:
// headers, timeout, TLS).
func newTelemetry(cfg config.Config) (*telemetry, error) {
	t := &telemetry{
		metrics:    metrics.New(prometheus.NewRegistry(), true),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		shutdown:   func(context.Context) error { return nil },
	}
	if cfg.OTLPEndpoint == "" {
		return t, nil
	}
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		// The error may quote the endpoint; it is an address, but say only which variable.
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: building the OTLP exporter failed")
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("dirgate"))))
	t.tracer, t.shutdown = tp, tp.Shutdown
	return t, nil
}

// instrumentRedis makes rc count its errors and, when tracing, trace its commands.
func (t *telemetry) instrumentRedis(rc redis.UniversalClient) error {
	rc.AddHook(store.ErrorHook(t.metrics.RedisError))
	if t.tracer == nil {
		return nil
	}
	if err := redisotel.InstrumentTracing(rc, redisotel.WithTracerProvider(t.tracer), redisotel.WithDBStatement(false)); err != nil {
		return fmt.Errorf("tracing Redis: %w", err)
	}
	return nil
}

// podioTransport wraps rt in an otelhttp transport when tracing: one client span per Podio call,
// and the call carries traceparent. Without tracing it is rt itself.
func (t *telemetry) podioTransport(rt http.RoundTripper) http.RoundTripper {
	if t.tracer == nil {
		return rt
	}
	return upstream.Traced(rt, t.tracer, t.propagator)
}

// close flushes the spans still buffered, for at most 5 s.
func (t *telemetry) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.shutdown(ctx)
}
