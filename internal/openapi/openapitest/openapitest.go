// Package openapitest checks HTTP exchanges against grappe's OpenAPI 3.1
// document (api/openapi.yaml) with a JSON Schema 2020-12 validator: the
// tests hold the server to the document (every route documented, every
// answer valid). Only tests import it, so the validator stays out of the
// binary.
package openapitest

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/openapi"
)

// docURL names the document for the schema compiler; nothing is fetched.
const docURL = "https://grappe.invalid/openapi.json"

// Errors of Check*.
var (
	// ErrUndocumented: the method and path, or the status, or the
	// content type, is not in the document.
	ErrUndocumented = errors.New("not in the OpenAPI document")
	// ErrInvalid: a body does not validate against its schema.
	ErrInvalid = errors.New("does not match the OpenAPI document")
)

// Document is a parsed OpenAPI document.
type Document struct {
	root     map[string]any
	ops      []*Operation
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer
}

// Operation is one method on one path of the document.
type Operation struct {
	Method string // upper case: "GET"
	Path   string // as written: "/api/v1/jobs/{id}"
	ID     string // operationId
	ptr    string // JSON pointer of the operation object
	re     *regexp.Regexp
}

// Load parses the document embedded in the api package.
func Load() (*Document, error) { return Parse(api.OpenAPIYAML()) }

// Parse reads a YAML (or JSON) OpenAPI document and compiles every schema
// it holds, so that a dangling $ref or a malformed schema is an error here.
func Parse(doc []byte) (*Document, error) {
	b, err := openapi.JSON(doc)
	if err != nil {
		return nil, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("openapitest: %w", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapitest: the document is not an object")
	}
	if ver, _ := root["openapi"].(string); !strings.HasPrefix(ver, "3.1.") {
		return nil, fmt.Errorf("openapitest: version %q, want 3.1.x", ver)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, v); err != nil {
		return nil, fmt.Errorf("openapitest: %w", err)
	}
	d := &Document{root: root, compiler: c, schemas: map[string]*jsonschema.Schema{}}
	if err := d.readOperations(); err != nil {
		return nil, err
	}
	if err := d.compileAll(); err != nil {
		return nil, err
	}
	return d, nil
}

// Operations lists the document's operations, by path then method.
func (d *Document) Operations() []*Operation { return slices.Clone(d.ops) }

func (d *Document) readOperations() error {
	paths, _ := d.root["paths"].(map[string]any)
	if len(paths) == 0 {
		return fmt.Errorf("openapitest: no paths")
	}
	ids := map[string]string{}
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(map[string]any)
		for _, m := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			o := &Operation{Method: strings.ToUpper(m), Path: p, ptr: "/paths/" + escape(p) + "/" + m, re: pathRegexp(p)}
			o.ID, _ = op["operationId"].(string)
			where := o.Method + " " + p
			if o.ID == "" {
				return fmt.Errorf("openapitest: %s has no operationId", where)
			}
			if other, dup := ids[o.ID]; dup {
				return fmt.Errorf("openapitest: operationId %s is both %s and %s", o.ID, other, where)
			}
			ids[o.ID] = where
			responses, _ := op["responses"].(map[string]any)
			// A WebSocket's success is its upgrade, 101.
			if !slices.ContainsFunc(sortedKeys(responses), func(s string) bool { return strings.HasPrefix(s, "2") || s == "101" }) {
				return fmt.Errorf("openapitest: %s has no 2xx (or 101) response", where)
			}
			d.ops = append(d.ops, o)
		}
	}
	return nil
}

// compileAll compiles every schema of a request or response body and
// every component schema.
func (d *Document) compileAll() error {
	var ptrs []string
	if comps, ok := d.root["components"].(map[string]any); ok {
		schemas, _ := comps["schemas"].(map[string]any)
		for _, name := range sortedKeys(schemas) {
			ptrs = append(ptrs, "/components/schemas/"+escape(name))
		}
	}
	for _, o := range d.ops {
		op := d.at(o.ptr).(map[string]any)
		if body, ok := op["requestBody"].(map[string]any); ok {
			content, _ := body["content"].(map[string]any)
			for _, ct := range sortedKeys(content) {
				ptrs = append(ptrs, o.ptr+"/requestBody/content/"+escape(ct)+"/schema")
			}
		}
		responses, _ := op["responses"].(map[string]any)
		for _, status := range sortedKeys(responses) {
			ptr, resp, err := d.deref(o.ptr+"/responses/"+escape(status), responses[status])
			if err != nil {
				return err
			}
			content, _ := resp["content"].(map[string]any)
			for _, ct := range sortedKeys(content) {
				ptrs = append(ptrs, ptr+"/content/"+escape(ct)+"/schema")
			}
		}
	}
	for _, p := range ptrs {
		if _, err := d.schema(p); err != nil {
			return err
		}
	}
	return nil
}

func (d *Document) schema(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	if d.at(ptr) == nil {
		return nil, fmt.Errorf("openapitest: no schema at %s", ptr)
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("openapitest: schema at %s: %w", ptr, err)
	}
	d.schemas[ptr] = s
	return s, nil
}

// Find returns the operation that serves method on a concrete path
// ("/api/v1/jobs/abc").
func (d *Document) Find(method, path string) (*Operation, bool) {
	for _, o := range d.ops {
		if o.Method == method && o.re.MatchString(path) {
			return o, true
		}
	}
	return nil, false
}

// CheckRequest validates a JSON request body sent to method and path.
func (d *Document) CheckRequest(method, path string, body []byte) error {
	o, ok := d.Find(method, path)
	if !ok {
		return fmt.Errorf("%s %s: %w", method, path, ErrUndocumented)
	}
	ptr := o.ptr + "/requestBody/content/application~1json/schema"
	if d.at(ptr) == nil {
		return fmt.Errorf("%s %s: a JSON request body: %w", method, o.Path, ErrUndocumented)
	}
	return d.validate(ptr, body, method+" "+o.Path+" request")
}

// CheckResponse validates an answer to method and path: its status and
// content type must be documented for the operation, and a JSON body must
// match the schema. It returns the operation.
func (d *Document) CheckResponse(method, path string, status int, contentType string, body []byte) (*Operation, error) {
	o, ok := d.Find(method, path)
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", method, path, ErrUndocumented)
	}
	where := fmt.Sprintf("%s %s %d", method, o.Path, status)
	responses, _ := d.at(o.ptr + "/responses").(map[string]any)
	key := strconv.Itoa(status)
	if _, ok := responses[key]; !ok {
		key = "default"
	}
	if _, ok := responses[key]; !ok {
		return o, fmt.Errorf("%s: the status: %w", where, ErrUndocumented)
	}
	ptr, resp, err := d.deref(o.ptr+"/responses/"+key, responses[key])
	if err != nil {
		return o, err
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			return o, fmt.Errorf("%s: a body where none is documented: %w", where, ErrInvalid)
		}
		return o, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return o, fmt.Errorf("%s: content type %q: %w", where, contentType, ErrInvalid)
	}
	if _, ok := content[mt]; !ok {
		return o, fmt.Errorf("%s: content type %s (documented: %v): %w", where, mt, sortedKeys(content), ErrUndocumented)
	}
	if mt != "application/json" {
		return o, nil
	}
	return o, d.validate(ptr+"/content/"+escape(mt)+"/schema", body, where)
}

// CheckSchema validates a JSON value against a component schema by name
// ("Event").
func (d *Document) CheckSchema(name string, body []byte) error {
	return d.validate("/components/schemas/"+escape(name), body, name)
}

func (d *Document) validate(ptr string, body []byte, where string) error {
	s, err := d.schema(ptr)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: the body is not JSON (%v): %w", where, err, ErrInvalid)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%s: %w: %v\nbody: %s", where, ErrInvalid, err, body)
	}
	return nil
}

// deref follows a local $ref of a response object.
func (d *Document) deref(ptr string, v any) (string, map[string]any, error) {
	for range 8 {
		m, ok := v.(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("openapitest: %s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return ptr, m, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return "", nil, fmt.Errorf("openapitest: %s: only local $refs are followed, not %s", ptr, ref)
		}
		ptr = ref[1:]
		if v = d.at(ptr); v == nil {
			return "", nil, fmt.Errorf("openapitest: %s: dangling $ref", ref)
		}
	}
	return "", nil, fmt.Errorf("openapitest: %s: $ref loop", ptr)
}

// at returns the value at a JSON pointer, or nil.
func (d *Document) at(ptr string) any {
	var v any = d.root
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		v = m[tok]
	}
	return v
}

// pathRegexp matches the concrete paths of a templated one: each {param}
// is one path segment.
func pathRegexp(p string) *regexp.Regexp {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			parts[i] = "[^/]+"
		} else {
			parts[i] = regexp.QuoteMeta(s)
		}
	}
	return regexp.MustCompile("^" + strings.Join(parts, "/") + "$")
}

func escape(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
