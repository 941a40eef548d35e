// Package podiosim is an in-memory simulator of the parts of the Podio REST API that the dirgate
// gateway uses: OAuth (authorize page and token endpoint), users (including changes to one's own
// profile and settings), organizations, org members, spaces and space members, with Podio's error bodies, rate limits and trailing-slash routing.
// It stands in for api.podio.com in tests, benchmarks and dev mode, so it follows
// podio-api.md (the project's verified reference, in shared/ beside the repository) as closely as that document allows. It is deliberately independent of
// the Podio client (adapters/podio): both are separate readings of the same document.
//
// A *Server is an http.Handler. Mount it at the root or under a prefix with http.StripPrefix; it
// never builds absolute URLs of its own (the authorize form posts to a relative action).
//
// # Routing
//
// Paths are matched exactly on the escaped path, segment by segment; a trailing slash is
// significant ("/org/1/member" is a 404, "/org/1/member/" the member list). With
// Config.StrictSlashes false (the default) "/user" and "/org" are also accepted, because several
// official SDKs call them without the slash. Unknown paths answer 404 "not_found"; known paths with
// another method answer 405 "method_not_allowed" with an Allow header. Id placeholders only bind
// segments that start with a digit (so "/space/1/member/v2" is a 404); "12x" gives 400
// "invalid_value".
//
// # Errors
//
// Every Podio-route error has the body of podio-api.md §9.1 (error, error_description,
// error_detail null, error_parameters {}, error_propagate false, request {url, query_string,
// method}). The error strings used:
//
//	not_found              404 unknown path or object
//	method_not_allowed     405 known path, other method
//	invalid_value          400 bad input: role, id, limit, offset, sort_by, sort_desc, member_type, body,
//	                       unknown/read-only/ill-typed profile field, locale, timezone
//	invalid_token          401 missing or unknown access token
//	unauthorized           401 expired access token (error_description "expired_token",
//	                       WWW-Authenticate: Bearer realm="podio", error="expired_token")
//	forbidden              403 permission denied; error_description says why
//	rate_limit             420 quota exhausted or forced by a fault
//	invalid_request        400 token endpoint: missing parameter or bad JSON
//	invalid_client         401 token endpoint: unknown client_id or wrong client_secret
//	invalid_grant          400 token endpoint: bad/expired/reused code, refresh token, password, app token
//	unsupported_grant_type 400 token endpoint
//	server_error           500 injected fault
//	bad_gateway            502 injected fault
//	unavailable            503 injected fault
//	gateway_timeout        504 injected fault
//
// # Authentication and quota
//
// API routes take "Authorization: OAuth2 <token>", "Authorization: Bearer <token>" or the legacy
// oauth_token query/form parameter. Tokens minted by the app grant act as the app: every
// user-directory route answers 403 "forbidden" for them. Quota is counted per (user or app,
// client_id) in fixed one-hour windows that start at the first counted call, in two classes
// (general, and the routes listed in Config.RateLimitedRoutes). A 420 is not counted. Token and
// authorize endpoints and /_sim/ are never counted against quota. Faults are evaluated after
// routing and before authentication.
//
// # Decisions where podio-api.md is UNCONFIRMED
//
//   - state is echoed on authorize redirects (omitted when empty); only response_type=code is served.
//   - Refresh tokens rotate (Config.DisableRefreshRotation turns that off); ref.type is "app" for the app grant.
//   - Success statuses: add member 200 {}; update/end space membership and end org membership 204 (Config knobs).
//   - Org member list: limit defaults to and is capped at MaxPageSize (100); v2 space members: default 100, capped.
//     limit < 1 or offset < 0 is 400 invalid_value. sort_desc accepts 0/1 and true/false.
//   - member_type "premium" = active employees; "guest" = active externals with no space membership in the
//     org (org list); the v2 space list models no guests (always empty).
//   - GET /org/{org_id}/member/{user_id} and .../mail/{mail}: org admins, or the member themself; else 403.
//   - GET /contact/user/{user_id}: only people sharing an org with the caller (else 403).
//   - GET /org/{org_id}/all_spaces/: "name" is null where the admin is not an active member.
//   - Invitees have a minimal profile (profile_id, user_id, type, name = their mail, avatar null, mail);
//     they are not listed by space member v1, nor v2 unless Config.InvitedInSpaceMembersV2.
//   - GET /space/{space_id}/member/{user_id}: "ended_on" is present and null.
//   - end_member_info: to_promote lists the members who will become admin (their current role shown);
//     to_remove and to_delete list the leaving user's memberships (each embedding "space"). A space is
//     deleted when the leaving user is its only active member (invitees do not count); otherwise, if the
//     user was its only active admin, the earliest-started remaining active member (regular preferred
//     over light, then lowest user id) is promoted. The last org admin cannot be removed (403).
//   - Space reads: active members, or active org members for open spaces; else 403. Adding members needs an
//     active regular/admin space membership; changing roles and removing others needs space admin.
//   - A forced 420 (fault) says "Please wait 60 seconds"; X-Rate-Limit-Remaining is 0 on every 420.
//   - PUT /user/ (not in podio-api.md; no developers.podio.com page was found; the official Ruby
//     client's User.update calls it with account attributes) takes {locale?, timezone?} only: any
//     other member (mail, password changes) is 400. locale must look like en_GB (which locales Podio
//     accepts is unknown); timezone must be an IANA zone name. Success is 204 (UpdateUserStatus).
//   - PUT /user/profile/ (Podio's "Update profile") and PUT /user/profile/{key} {"value": ...}:
//     the editable fields are name (required), title, location, phone, address, url, skill, im
//     (arrays; a single string is taken as a one-element array) and about, organization,
//     department, zip, city, state, country, skype, linkedin, twitter (strings); null clears a field.
//     Other contact fields (mail, avatar, ids, ...) are 400 "cannot be updated", unknown keys 400.
//     A refused call changes nothing. Success is 204 (UpdateProfileStatus). Profiles always carry
//     title, phone and location arrays; the other editable fields only when set.
//   - Request ids are "sim-" plus a sequence number; datetimes are UTC "YYYY-MM-DD HH:MM:SS".
//
// # Control API
//
// /_sim/ serves JSON without authentication: routes, state, calls, faults, clock/advance, quota,
// and out-of-band changes to people, spaces and orgs (README.md lists every endpoint). It is never
// counted, faulted or rate limited.
package podiosim
