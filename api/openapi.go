package api

import (
	"bytes"
	_ "embed"
)

// openAPIYAML is the OpenAPI 3.1 document of the REST API, written by
// hand beside the types it describes.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIYAML returns the OpenAPI 3.1 document of grappe's REST API
// (api/openapi.yaml); the master serves it as JSON at
// GET /api/v1/openapi.json.
func OpenAPIYAML() []byte { return bytes.Clone(openAPIYAML) }
