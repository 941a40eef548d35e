// Package api is dirgate's HTTP surface and the only package that imports echo: routes,
// middleware, handlers, and the one mapping from errors to HTTP answers.
//
// Every error leaves through Server.handleError as
//
//	{"error": {"code": "...", "message": "...", "request_id": "...", "retry_after": n?, "remote": {...}?}}
//
// with the request id also in X-Request-Id. Handlers return errors; they never write error bodies.
package api
