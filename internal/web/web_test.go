package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

var testAssets = fstest.MapFS{
	"index.html":          {Data: []byte(`<!doctype html><script type="module" src="/assets/main-ABC.js"></script>`)},
	"favicon.svg":         {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
	"assets/main-ABC.js":  {Data: []byte(strings.Repeat("console.log('grappe');\n", 200))},
	"assets/main-ABC.css": {Data: []byte("body{margin:0}")},
}

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesFilesWithTypesAndCaching(t *testing.T) {
	h := Handler(Config{Assets: testAssets})
	for _, tc := range []struct {
		path, ctype, cache string
	}{
		{"/", "text/html; charset=utf-8", "no-cache"},
		{"/index.html", "text/html; charset=utf-8", "no-cache"},
		{"/favicon.svg", "image/svg+xml", "no-cache"},
		{"/assets/main-ABC.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/assets/main-ABC.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
	} {
		w := serve(t, h, "GET", tc.path, nil)
		if w.Code != 200 {
			t.Errorf("%s: status %d", tc.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := w.Header().Get("Cache-Control"); got != tc.cache {
			t.Errorf("%s: Cache-Control %q, want %q", tc.path, got, tc.cache)
		}
		if w.Header().Get("ETag") == "" {
			t.Errorf("%s: no ETag", tc.path)
		}
	}
}

func TestClientRoutesGetIndexButMissingFilesAre404(t *testing.T) {
	h := Handler(Config{Assets: testAssets})
	for _, p := range []string{"/jobs", "/jobs/0123abcd", "/dashboard", "/login?next=%2Fjobs", "/a/../jobs"} {
		w := serve(t, h, "GET", p, nil)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "main-ABC.js") || w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: %d %q (Cache-Control %q), want index.html, no-cache", p, w.Code, w.Body.String(), w.Header().Get("Cache-Control"))
		}
	}
	for _, p := range []string{"/assets/main-OLD.js", "/assets/nothing", "/robots.txt", "/favicon.ico"} {
		if w := serve(t, h, "GET", p, nil); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	if w := serve(t, h, "POST", "/", nil); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestGzipETagAndHead(t *testing.T) {
	h := Handler(Config{Assets: testAssets})
	js := "/assets/main-ABC.js"
	plain := serve(t, h, "GET", js, nil)
	if plain.Header().Get("Content-Encoding") != "" || plain.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("no Accept-Encoding: %v", plain.Header())
	}
	gz := serve(t, h, "GET", js, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if gz.Header().Get("Content-Encoding") != "gzip" || gz.Body.Len() >= plain.Body.Len() {
		t.Fatalf("gzip: %v, %d bytes vs %d", gz.Header(), gz.Body.Len(), plain.Body.Len())
	}
	if gz.Header().Get("ETag") == plain.Header().Get("ETag") {
		t.Errorf("gzip and plain share the ETag %s", gz.Header().Get("ETag"))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != plain.Body.String() {
		t.Fatal("gzip body does not decompress to the file")
	}
	if w := serve(t, h, "GET", js, map[string]string{"Accept-Encoding": "gzip;q=0"}); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}
	if w := serve(t, h, "GET", js, map[string]string{"If-None-Match": plain.Header().Get("ETag")}); w.Code != 304 {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
	if w := serve(t, h, "HEAD", "/", nil); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD /: %d with %d bytes", w.Code, w.Body.Len())
	}
	// Small files are not worth compressing.
	if w := serve(t, h, "GET", "/assets/main-ABC.css", map[string]string{"Accept-Encoding": "gzip"}); w.Header().Get("Content-Encoding") != "" {
		t.Error("a 14-byte file was gzipped")
	}
}

func TestNoIndexIsAnError(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Handler accepted a bundle without index.html")
		}
	}()
	Handler(Config{Assets: fstest.MapFS{"assets/x.js": {Data: []byte("x")}}})
}

// The committed bundle must be complete: index.html names a script and a
// stylesheet that the bundle holds, and loads nothing from elsewhere.
func TestEmbeddedBundle(t *testing.T) {
	h := Handler(Config{})
	w := serve(t, h, "GET", "/", nil)
	if w.Code != 200 {
		t.Fatalf("GET /: %d", w.Code)
	}
	page := w.Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d resources, want the icon, a stylesheet and a script:\n%s", len(refs), page)
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
			t.Errorf("index.html loads %q, not from the master", ref)
			continue
		}
		if w := serve(t, h, "GET", ref, nil); w.Code != 200 {
			t.Errorf("%s (named by index.html): %d", ref, w.Code)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") || strings.Contains(page, "<style") {
		t.Error("index.html has inline script or style, which the CSP blocks")
	}
}
