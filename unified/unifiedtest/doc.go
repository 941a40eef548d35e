// Package unifiedtest is the conformance suite every unified.Directory passes, in the style of
// dex's storage/conformance: an adapter's test builds a Fixture (how to make a Directory for a
// fully privileged account and, optionally, for a limited one, plus ids known to exist) and calls
// Run. The checks are about behaviour the API layer relies on (ids, order, uniqueness, sentinel
// errors, partial lists, role catalog, remote data), not about one provider's data.
package unifiedtest
