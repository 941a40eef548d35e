// Package creds hands out Podio access tokens for integrated accounts and refreshes them exactly
// once across all gateway replicas.
//
// A Manager's TokenSource loads the account's credentials from the store and refreshes them
// proactively when less than Options.Margin of the access token is left, or when Podio answers
// 401 expired_token (the podio client then calls Refresh and retries once).
//
// A refresh is coordinated at two levels: callers in one process share one in-flight refresh per
// account, and replicas share a Redis lock per account. Whoever takes the lock re-reads the
// stored credentials first, because another replica may have refreshed while it waited; only if
// the stored token is still the stale one does it call Podio. The new credentials are written
// with a compare-and-set on the credential version read under the lock, so a replica whose lock
// expired while Podio was slow can never overwrite a newer, rotated refresh token. The rotated
// refresh token is stored before the new access token is handed out.
//
// When Podio refuses the refresh token (invalid_grant), the Manager re-reads once, since another
// replica may have rotated it meanwhile; if the stored token is unchanged the account is marked
// needs_reauth and calls fail with unified.ErrNeedsReauth until the account is linked again
// (store.Reauthorize).
//
// No token value is ever logged or put into an error.
package creds
