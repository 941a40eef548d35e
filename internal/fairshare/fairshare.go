// Package fairshare counts what each tenant holds of one replica's workers, so that one tenant's
// backlog (big jobs, webhook endpoints that hang) cannot take all of them. It is per process on
// purpose: a cap per replica needs no Redis round trip, and N replicas give a tenant at most N
// times the cap.
package fairshare

import "sync"

// Slots is a per-tenant counter with a cap; the zero value is not usable, see New.
type Slots struct {
	mu   sync.Mutex
	max  int
	held map[string]int
}

// New returns Slots allowing limit per tenant (at least 1).
func New(limit int) *Slots { return &Slots{max: max(limit, 1), held: map[string]int{}} }

// Take claims a slot for tenant unless it holds the cap already; force claims one anyway. Every
// successful Take needs one Give.
func (s *Slots) Take(tenant string, force bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[tenant] >= s.max && !force {
		return false
	}
	s.held[tenant]++
	return true
}

// Give returns a slot of tenant.
func (s *Slots) Give(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[tenant]--; s.held[tenant] <= 0 {
		delete(s.held, tenant)
	}
}

// Held is how many slots tenant holds.
func (s *Slots) Held(tenant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[tenant]
}
