// Package web serves grappe's browser UI: the editor, the job history and
// the cluster dashboard. It is a single-page application written in
// TypeScript under ui/, bundled by esbuild into dist/ (committed, so that
// `go build` alone works; `make web` rebuilds it) and embedded in the
// binary. The UI talks to the REST API of internal/httpapi with the web
// session cookie; this package only serves files.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var embedded embed.FS

// Config configures the handler.
type Config struct {
	// Assets replaces the embedded bundle (a directory holding index.html
	// and assets/), for tests or to try a UI build without recompiling.
	Assets fs.FS
}

// file is one asset held in memory, with its gzip form when that is
// worth sending.
type file struct {
	body  []byte
	gz    []byte
	ctype string
	etag  string
	cache string
}

type handler struct {
	files map[string]*file // by URL path: "/assets/main-XYZ.js"
	index *file
}

// Handler returns the UI's handler. It serves every path it is given:
// files of the bundle by name, and index.html for any other path without
// a file extension, so that the UI's own routes (/jobs/ID, /dashboard)
// survive a reload. It panics if the bundle has no index.html, which is a
// build error.
func Handler(cfg Config) http.Handler {
	assets := cfg.Assets
	if assets == nil {
		sub, err := fs.Sub(embedded, "dist")
		if err != nil {
			panic(err)
		}
		assets = sub
	}
	h, err := load(assets)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return h
}

// load reads the whole bundle once: it is small (under a megabyte), and
// holding it in memory lets each answer carry a strong ETag and a
// pre-compressed body without per-request work.
func load(assets fs.FS) (*handler, error) {
	h := &handler{files: map[string]*file{}}
	err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &file{
			body:  body,
			ctype: contentType(p),
			etag:  `"` + hex.EncodeToString(sum[:12]) + `"`,
			// Files under assets/ are named after their content hash by
			// the build: a new build makes new names, so they can be
			// cached for good. Everything else (index.html, the icon)
			// keeps its name across builds and must be revalidated.
			cache: "no-cache",
		}
		if strings.HasPrefix(p, "assets/") {
			f.cache = "public, max-age=31536000, immutable"
		}
		if compressible(f.ctype) && len(body) > 1024 {
			f.gz = gzipped(body)
		}
		h.files["/"+p] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.index = h.files["/index.html"]; h.index == nil {
		return nil, fmt.Errorf("the UI bundle has no index.html (run make web)")
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	f := h.files[p]
	if f == nil {
		// A path that names a file (has an extension) or lies under
		// /assets/ and is not in the bundle is a real 404: answering
		// index.html would hand HTML to a <script> tag, or make an old
		// cached page load a chunk of a newer build as HTML.
		if path.Ext(p) != "" || strings.HasPrefix(p, "/assets/") {
			w.Header().Set("Cache-Control", "no-cache")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		f = h.index
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", f.cache)
	hd.Set("ETag", f.etag)
	body := f.body
	if f.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		// Ranges would apply to the compressed bytes; only browsers
		// resuming a download send them, so they get the plain file.
		if acceptsGzip(r) && r.Header.Get("Range") == "" {
			hd.Set("Content-Encoding", "gzip")
			// Each encoding is its own representation, with its own ETag.
			hd.Set("ETag", strings.TrimSuffix(f.etag, `"`)+`-gz"`)
			body = f.gz
		}
	}
	// ServeContent answers If-None-Match with 304, HEAD without a body,
	// and Range requests.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "image/svg") || strings.Contains(ctype, "json")
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (and does not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
