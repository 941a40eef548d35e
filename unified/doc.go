// Package unified is dirgate's provider-neutral model: the sentinel errors every adapter and
// internal package reports through, and (in later issues) the unified user-directory schema and
// the interfaces an adapter implements. It does no I/O.
package unified
