package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/openapi"
)

// openapi serves the API's OpenAPI document as JSON, converted once from
// api/openapi.yaml. Anyone may read it: it describes the API, not the
// cluster. Clients revalidate it with its ETag.
func (s *server) openapi() http.HandlerFunc {
	doc, err := openapi.JSON(api.OpenAPIYAML())
	if err != nil {
		s.Logger.Error("the embedded OpenAPI document does not convert to JSON", "err", err)
	}
	sum := sha256.Sum256(doc)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			writeError(w, s.Logger, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(doc))
	}
}
