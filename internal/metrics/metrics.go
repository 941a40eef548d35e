package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the gateway's collectors. Build it with New; the zero of *Metrics (nil) records
// nothing.
type Metrics struct {
	gatherer prometheus.Gatherer

	requests        *prometheus.HistogramVec
	upstreamCalls   *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	cacheLookups    *prometheus.CounterVec
	refreshes       *prometheus.CounterVec
	quotaRefusals   *prometheus.CounterVec
	quotaCooldowns  prometheus.Counter
	quotaRemaining  *prometheus.HistogramVec
	jobsSubmitted   *prometheus.CounterVec
	jobsFinished    *prometheus.CounterVec
	jobsRunning     prometheus.Gauge
	webhookAttempts *prometheus.CounterVec
	redisErrors     *prometheus.CounterVec

	// operations are the upstream operations seen, up to maxOperations: proxied calls name any
	// path, and a label per path would grow without bound.
	mu         sync.Mutex
	operations map[string]bool
}

// maxOperations bounds the distinct operation label values; later ones count as "other".
const maxOperations = 300

// latencyBuckets span a cache hit (well under a millisecond) to a slow Podio crawl.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// remainingBuckets describe Podio's X-Rate-Limit-Remaining (limits of 250 and 1000 an hour).
var remainingBuckets = []float64{0, 10, 25, 50, 100, 250, 500, 1000, 5000}

// New registers the collectors on reg and returns them. reg must also be a prometheus.Gatherer
// (a *prometheus.Registry is) for Handler to serve it. With goRuntime, the Go runtime and process
// collectors are registered too.
func New(reg *prometheus.Registry, goRuntime bool) *Metrics {
	m := &Metrics{
		gatherer: reg, operations: map[string]bool{},
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dirgate_http_request_duration_seconds", Help: "Latency of the gateway's HTTP answers by route template, method and status.",
			Buckets: latencyBuckets,
		}, []string{"route", "method", "status"}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_upstream_requests_total",
			Help: `Podio calls by normalized operation ("GET /org/{id}/member/") and status (HTTP code, "error", "budget_refused", "circuit_open").`,
		}, []string{"operation", "status"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dirgate_upstream_request_duration_seconds", Help: "Latency of Podio calls (retries included) by normalized operation.",
			Buckets: latencyBuckets,
		}, []string{"operation"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_cache_lookups_total", Help: "Directory reads by cache state: HIT, MISS or STALE.",
		}, []string{"state"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_token_refreshes_total", Help: "Podio access-token refreshes by outcome: success, failure, invalid_grant.",
		}, []string{"outcome"}),
		quotaRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_quota_refusals_total", Help: "Podio calls the shared budget refused, by class, priority and reason (budget or cooldown).",
		}, []string{"class", "priority", "reason"}),
		quotaCooldowns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dirgate_quota_cooldowns_total", Help: "Cooldowns started after Podio answered 420.",
		}),
		quotaRemaining: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dirgate_quota_remaining", Help: "Podio's X-Rate-Limit-Remaining as observed on each call, by class (aggregated over accounts).",
			Buckets: remainingBuckets,
		}, []string{"class"}),
		jobsSubmitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_jobs_submitted_total", Help: "Membership jobs submitted, by type.",
		}, []string{"type"}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_jobs_finished_total", Help: "Membership jobs finished, by type and final status.",
		}, []string{"type", "status"}),
		jobsRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dirgate_jobs_running", Help: "Membership jobs this replica is running now.",
		}),
		webhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome: delivered, retrying, failed.",
		}, []string{"outcome"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dirgate_redis_errors_total", Help: "Redis command and connection errors by kind: timeout, network, server, other.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.requests, m.upstreamCalls, m.upstreamLatency, m.cacheLookups, m.refreshes, m.quotaRefusals,
		m.quotaCooldowns, m.quotaRemaining, m.jobsSubmitted, m.jobsFinished, m.jobsRunning, m.webhookAttempts, m.redisErrors)
	if goRuntime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// Request records one answered HTTP request. route is the template ("/integrated-accounts/:id"),
// never the raw path; method and status are mapped onto closed sets (Method, Status) here, so no
// caller can add a series by sending something new.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, Method(method), Status(status)).Observe(d.Seconds())
}

// UpstreamCall records one Podio call: operation is a normalized "METHOD /path/{id}/" and status
// the HTTP code or why no answer came.
func (m *Metrics) UpstreamCall(operation, status string, d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if !m.operations[operation] {
		if len(m.operations) >= maxOperations {
			operation = "other"
		} else {
			m.operations[operation] = true
		}
	}
	m.mu.Unlock()
	m.upstreamCalls.WithLabelValues(operation, status).Inc()
	m.upstreamLatency.WithLabelValues(operation).Observe(d.Seconds())
}

// CacheLookup records the cache state a directory read was served with.
func (m *Metrics) CacheLookup(state string) {
	if m == nil {
		return
	}
	m.cacheLookups.WithLabelValues(state).Inc()
}

// Refresh records a token refresh's outcome.
func (m *Metrics) Refresh(outcome string) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(outcome).Inc()
}

// QuotaRefused records a call the budget refused; reason is "budget" or "cooldown".
func (m *Metrics) QuotaRefused(class, priority, reason string) {
	if m == nil {
		return
	}
	m.quotaRefusals.WithLabelValues(class, priority, reason).Inc()
}

// QuotaCooldown records a cooldown started after a 420.
func (m *Metrics) QuotaCooldown() {
	if m == nil {
		return
	}
	m.quotaCooldowns.Inc()
}

// QuotaRemaining records Podio's remaining count for a call of class.
func (m *Metrics) QuotaRemaining(class string, remaining int) {
	if m == nil {
		return
	}
	m.quotaRemaining.WithLabelValues(class).Observe(float64(remaining))
}

// JobSubmitted records a submitted job of type typ.
func (m *Metrics) JobSubmitted(typ string) {
	if m == nil {
		return
	}
	m.jobsSubmitted.WithLabelValues(typ).Inc()
}

// JobFinished records a job's final status.
func (m *Metrics) JobFinished(typ, status string) {
	if m == nil {
		return
	}
	m.jobsFinished.WithLabelValues(typ, status).Inc()
}

// JobRunning moves the running-jobs gauge by delta (+1 when a run starts, -1 when it ends).
func (m *Metrics) JobRunning(delta int) {
	if m == nil {
		return
	}
	m.jobsRunning.Add(float64(delta))
}

// WebhookAttempt records a delivery attempt's outcome.
func (m *Metrics) WebhookAttempt(outcome string) {
	if m == nil {
		return
	}
	m.webhookAttempts.WithLabelValues(outcome).Inc()
}

// RedisError records a Redis error of kind.
func (m *Metrics) RedisError(kind string) {
	if m == nil {
		return
	}
	m.redisErrors.WithLabelValues(kind).Inc()
}
