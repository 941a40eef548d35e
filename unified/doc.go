// Package unified is dirgate's provider-neutral model: the user-directory schema callers see
// (User, Me, Organization, Workspace, Role), the role catalog, the Directory interface an adapter
// implements, and the sentinel errors every adapter and internal package reports through. It does
// no I/O; unified/unifiedtest holds the conformance suite every adapter passes.
package unified
