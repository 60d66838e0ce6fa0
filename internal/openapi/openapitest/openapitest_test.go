package openapitest

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/openapi"
)

// The document is a valid OpenAPI 3.1 document: it validates against the
// OpenAPI Initiative's schema of 3.1 documents (testdata), and Parse
// compiled every schema in it against JSON Schema 2020-12.
func TestDocumentIsOpenAPI31(t *testing.T) {
	oas, err := os.ReadFile("testdata/oas-3.1-schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(doc []byte) error {
		schemaJSON, err := openapi.JSON(oas)
		if err != nil {
			t.Fatal(err)
		}
		schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource("oas-3.1.json", schema); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile("oas-3.1.json")
		if err != nil {
			t.Fatal(err)
		}
		docJSON, err := openapi.JSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(docJSON))
		if err != nil {
			t.Fatal(err)
		}
		return s.Validate(v)
	}
	if err := validate(api.OpenAPIYAML()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI 3.1 document: %v", err)
	}
	if _, err := Load(); err != nil {
		t.Fatal(err)
	}
	// The check has teeth: a parameter in the path must be required.
	broken := strings.Replace(string(api.OpenAPIYAML()), "      in: path\n      required: true\n", "      in: path\n", 1)
	if broken == string(api.OpenAPIYAML()) {
		t.Fatal("no path parameter to break")
	}
	if err := validate([]byte(broken)); err == nil {
		t.Error("a path parameter that is not required passed")
	}
}

func TestParseRefusesBrokenDocuments(t *testing.T) {
	good := string(api.OpenAPIYAML())
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"dangling ref", "{$ref: '#/components/schemas/JobList'}", "{$ref: '#/components/schemas/NoSuchList'}", "NoSuchList"},
		{"bad schema", "pattern: '^[0-9]+:[0-9]+$'", "pattern: '^[0-9+:('", "pattern"},
		{"duplicate operationId", "operationId: listJobs", "operationId: submitJob", "operationId submitJob"},
		{"version", "openapi: 3.1.0", "openapi: 3.0.3", "3.1"},
		{"unquoted timestamp", "summary: Liveness of the master", "summary: 2026-01-02", "timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the document has no %q", tc.old)
			}
			_, err := Parse([]byte(strings.Replace(good, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestCheckResponse(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	job := `{"id":"j1","owner":"alice","language":"c","version":"","status":"queued","attempts":0,"max_attempts":3,"priority":0,"created_at":"2026-01-02T03:04:05Z"}`
	for _, tc := range []struct {
		method, path string
		status       int
		ct, body     string
		err          error
	}{
		{"GET", "/api/v1/jobs/j1", 200, "application/json", job, nil},
		{"GET", "/api/v1/jobs/j1", 200, "application/json", strings.Replace(job, `"priority":0`, `"priority":0,"bogus":1`, 1), ErrInvalid},
		{"GET", "/api/v1/jobs/j1", 200, "application/json", strings.Replace(job, `"status":"queued"`, `"status":"sleeping"`, 1), ErrInvalid},
		{"GET", "/api/v1/jobs/j1", 200, "application/json", strings.Replace(job, `"2026-01-02T03:04:05Z"`, `"yesterday"`, 1), ErrInvalid},
		{"GET", "/api/v1/jobs/j1", 200, "application/json", `{"id":"j1"}`, ErrInvalid},
		{"GET", "/api/v1/jobs/j1", 200, "text/html", job, ErrUndocumented},
		{"GET", "/api/v1/jobs/j1", 418, "application/json", job, ErrUndocumented},
		{"GET", "/api/v1/jobs/j1", 404, "application/json", `{"error":{"code":"not_found","message":"not found"}}`, nil},
		{"GET", "/api/v1/jobs/j1", 404, "application/json", `{"error":"not found"}`, ErrInvalid},
		{"GET", "/api/v1/nothing", 200, "application/json", `{}`, ErrUndocumented},
		{"DELETE", "/api/v1/users/bob", 204, "", "", nil},
		{"DELETE", "/api/v1/users/bob", 204, "", "{}", ErrInvalid},
		{"GET", "/healthz", 200, "application/json; charset=utf-8", `{"status":"ok"}`, nil},
	} {
		op, err := d.CheckResponse(tc.method, tc.path, tc.status, tc.ct, []byte(tc.body))
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%s %s %d %s: %v, want %v", tc.method, tc.path, tc.status, tc.body, err, tc.err)
		}
		if err == nil && op == nil {
			t.Errorf("%s %s: no operation", tc.method, tc.path)
		}
	}
	if err := d.CheckSchema("Event", []byte(`{"type":"output","stream":"stdout","data":"hi","attempt":1,"offset":0}`)); err != nil {
		t.Error(err)
	}
	if err := d.CheckSchema("Event", []byte(`{"type":"output","stream":"stdin","data":"hi"}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("an output event on stdin: %v", err)
	}
	if err := d.CheckRequest("POST", "/api/v1/jobs", []byte(`{"language":"c","source":"x","limits":{"cpu_ms":5}}`)); err != nil {
		t.Error(err)
	}
	if err := d.CheckRequest("POST", "/api/v1/jobs", []byte(`{"language":"c","limit":{}}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a misspelt field: %v", err)
	}
}
