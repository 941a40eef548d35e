// Package proxy is the Podio passthrough: it forwards exactly one caller request to the Podio API
// with the linked account's access token and streams Podio's answer back unchanged. It knows
// nothing about HTTP routing frameworks or dirgate's own authentication; the api package
// authenticates the caller, finds the account and calls Forward.
//
// # Paths
//
// Target decides, once and on the escaped path (as r.URL.EscapedPath() gives it), whether a path
// may be forwarded, because net/http cleans some paths and not others and Podio decodes what it
// receives. Refused with 400 invalid_path:
//
//   - a path that does not start with "/" or is longer than 2048 bytes;
//   - a character that must be percent-encoded (space, '?', '#', '\', control characters,
//     non-ASCII), or a malformed percent-encoding;
//   - at the path as received and at every further level of percent-decoding (so double and
//     triple encodings such as %252e are caught): control characters, '\', "//", "..", "."
//     segments, encoded '.', '/', '\' and control characters (%2e %2f %5c %00-%1f %7f), and a
//     colon in the first segment ("/http:", "/evil.com:443/x"), which reads as a scheme or host
//     to anything that reparses the path; decoded levels must also be valid UTF-8, which refuses
//     overlong forms such as %c0%ae.
//
// ".." is refused anywhere, not only as a whole segment, and "." also as "." followed by ";":
// no Podio path has either. The query is forwarded verbatim, but must be at most 8 KiB and have no
// control characters, spaces or '#'.
//
// The upstream URL is Options.Base with the caller's escaped path appended to Base's path (its
// escaping, including a trailing slash, is kept exactly: Podio paths are slash-aware) and the raw
// query. Scheme, host and port come only from Base; Target checks that before returning.
//
// # Headers
//
// The caller's headers are forwarded except hop-by-hop ones (Connection and every header it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), its credentials and cookies
// (Authorization, Cookie), what sits in front of dirgate said about the client (Host, Forwarded,
// X-Forwarded-*, X-Real-Ip), Expect and Content-Length. X-Request-Id is replaced by the one
// already set on the response writer, if any, so Podio-side logs can be correlated with dirgate's.
// Authorization is set to "OAuth2 <access token>".
//
// Podio's response headers are returned except hop-by-hop ones and those that would act on
// dirgate's origin in a browser (Set-Cookie, Strict-Transport-Security, Alt-Svc); a header the
// caller already set on the response writer is never replaced. Status and body are returned
// verbatim and streamed; Content-Length is kept when Podio sent it. Redirects are returned, not
// followed.
//
// # Bodies and token refresh
//
// A body with a Content-Length above Options.MaxBody is refused (413) without calling Podio.
// Bodies up to Options.ReplayBuffer are read into memory first, so that the call can be repeated:
// when Podio answers 401 with an expired token, Forward asks the TokenSource for a fresh token
// once and repeats the call once. Longer bodies stream through to Podio under the MaxBody limit
// (exceeding it aborts the call; 413 if nothing was written yet), and a 401 for them is passed
// through, as is a second 401.
//
// # Errors
//
// Problems dirgate answers itself are *Error values carrying the status and code for the answer;
// they are returned before anything is written to the caller. Errors from the TokenSource are
// returned wrapped, so the caller can map them. Once Podio has answered, its answer is the answer.
// No error text contains an access token: tokens are only ever placed in a request header.
package proxy
