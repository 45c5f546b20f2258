// Package openapi embeds the OpenAPI (Swagger 2.0) description of the API that
// `make generate` writes into this directory from the swag annotations in
// internal/http. Do not edit swagger.json or swagger.yaml by hand.
package openapi

import "embed"

//go:embed swagger.json
var files embed.FS

// JSON returns the generated spec as JSON.
func JSON() []byte {
	b, err := files.ReadFile("swagger.json")
	if err != nil {
		panic("openapi: swagger.json is not embedded: " + err.Error()) // cannot happen: go:embed checked it at build time
	}
	return b
}
