// Package openapi reads grappe's OpenAPI 3.1 document, api/openapi.yaml,
// which is written in YAML for people and served as JSON for programs
// (GET /api/v1/openapi.json). openapitest holds the server to it.
package openapi

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// JSON converts an OpenAPI document written in YAML to JSON.
func JSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	v, err := jsonValue(v)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return json.Marshal(v)
}

// jsonValue turns what YAML decoded into what JSON encodes: YAML allows
// keys that are not strings (an unquoted 200) and timestamps.
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			e, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			v[k] = e
		}
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			switch k.(type) {
			case string, int, bool:
			default:
				return nil, fmt.Errorf("map key %v (%T) is not a string", k, k)
			}
			e, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = e
		}
		return out, nil
	case []any:
		for i, e := range v {
			e, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			v[i] = e
		}
		return v, nil
	case time.Time:
		return nil, fmt.Errorf("unquoted timestamp %v: quote it", v)
	}
	return v, nil
}
