// Package openapi embeds the OpenAPI 3.1 description of the API that `make generate`
// writes into this directory: swag reads the annotations in internal/http, and
// openapi/gen turns its Swagger 2.0 output into openapi.json (decision 0013). Do not
// edit openapi.json by hand.
package openapi

import "embed"

//go:embed openapi.json
var files embed.FS

// JSON returns the generated spec as JSON.
func JSON() []byte {
	b, err := files.ReadFile("openapi.json")
	if err != nil {
		panic("openapi: openapi.json is not embedded: " + err.Error()) // cannot happen: go:embed checked it at build time
	}
	return b
}
