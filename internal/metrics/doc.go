// Package metrics holds dirgate's Prometheus collectors and the one place their names, labels and
// buckets are decided. Collectors are registered on a registry the caller passes in (never the
// global default one), so tests build their own and replicas in one process do not collide.
//
// Label values are always bounded: route templates and normalized Podio operations, never raw
// paths, ids, tenants or accounts. Per-account state (quota, cooldowns) is aggregated.
//
// A nil *Metrics is valid and records nothing, so pieces built without metrics need no checks.
package metrics
