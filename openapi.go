// Package dirgate holds what belongs to the whole project rather than to one package: the
// embedded OpenAPI contract, served at /openapi.yaml and used by the tests to validate real
// responses.
package dirgate

import _ "embed"

// OpenAPI is openapi.yaml, the public HTTP contract.
//
//go:embed openapi.yaml
var OpenAPI []byte
