// Package membership plans and performs Podio workspace membership changes: declarative sync
// plans (add_only, mirror), offboarding plans, the last-admin guard, and the job executor that
// applies plans one write at a time (internal/jobs).
package membership
