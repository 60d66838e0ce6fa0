package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/openapi"
	"github.com/grappe/grappe/internal/openapi/openapitest"
)

// documented says which registered paths api/openapi.yaml must describe:
// grappe's own API, not the Piston and Judge0 APIs nor the web UI.
func documented(path string) bool {
	return strings.HasPrefix(path, "/api/v1/") || path == "/healthz" || path == "/metrics"
}

// Every endpoint the server registers is in the OpenAPI document, and
// every operation of the document is registered: a new route without its
// documentation fails here. The routes come from the mux registrations
// themselves (Routes), with every optional part of the API switched on.
func TestOpenAPIRoutes(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Users:   (*auth.Authenticator)(nil), // the user endpoints are registered only with one
		Metrics: http.NotFoundHandler(),     // /metrics only with one
		Web:     http.NotFoundHandler(),
		Logger:  slog.New(slog.DiscardHandler),
	}
	served := map[string]bool{}
	for _, pattern := range Routes(cfg) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			// A handler mounted under a prefix serves an API of its own
			// (Piston, Judge0, the web UI); grappe's endpoints name
			// their method.
			if documented(pattern) && pattern != "/api/" {
				t.Errorf("%q is registered without a method: register each endpoint with its method", pattern)
			}
			continue
		}
		if !documented(path) {
			continue
		}
		served[method+" "+path] = true
		if _, ok := doc.Find(method, strings.NewReplacer("{", "", "}", "").Replace(path)); !ok {
			t.Errorf("%s is served but not in api/openapi.yaml", pattern)
		}
	}
	for _, op := range doc.Operations() {
		if !served[op.Method+" "+op.Path] {
			t.Errorf("%s %s (%s) is in api/openapi.yaml but not served", op.Method, op.Path, op.ID)
		}
	}
	if len(served) < 25 {
		t.Errorf("only %d routes found: %v", len(served), served)
	}
}

// The document is served as JSON, unauthenticated, cacheable.
func TestOpenAPIServed(t *testing.T) {
	h := New(Config{Logger: slog.New(slog.DiscardHandler)})
	get := func(etag string) *http.Response {
		r := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	resp := get("")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET /api/v1/openapi.json: %d %v", resp.StatusCode, resp.Header)
	}
	want, err := openapi.JSON(api.OpenAPIYAML())
	if err != nil || !bytes.Equal(body, want) {
		t.Fatalf("served document differs from api/openapi.yaml (%v)", err)
	}
	if _, err := openapitest.Parse(body); err != nil {
		t.Fatalf("the served JSON does not parse back: %v", err)
	}
	if !slices.Contains(strings.Split(resp.Header.Get("Cache-Control"), ", "), "public") {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if again := get(resp.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", again.StatusCode)
	}
}
