package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// The core's domain errors become HTTP answers here and nowhere else.
func TestDomainErrors(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		code, msg  string
		retryAfter string
	}{
		{jobs.NotFound, 404, api.CodeNotFound, "not found", ""},
		{fmt.Errorf("master: %w", jobs.Errorf(jobs.CodeInvalid, "language is required")), 422, api.CodeInvalid, "language is required", ""},
		{&jobs.Error{Code: jobs.CodeInvalid, Field: "limits.cpu_ms", Message: "above the maximum"}, 422, api.CodeInvalid, "limits.cpu_ms: above the maximum", ""},
		{jobs.Errorf(jobs.CodeUnknownLanguage, "unknown language %q", "cobol"), 422, api.CodeUnknownLanguage, `unknown language "cobol"`, ""},
		{&jobs.Error{Code: jobs.CodeRateLimited, RetryAfter: 5, Message: "too many"}, 429, api.CodeRateLimited, "too many", "5"},
		{&jobs.Error{Code: jobs.CodeUnavailable, Message: "try again"}, 503, api.CodeUnavailable, "try again", "1"},
		{jobs.ErrStale, 409, api.CodeConflict, jobs.ErrStale.Message, ""},
		{fmt.Errorf("disk on fire"), 500, api.CodeInternal, "internal error", ""},
		{fmt.Errorf("auth: token lookup: %w", fmt.Errorf("dial tcp: connection refused (%w)", store.ErrUnavailable)), 503, api.CodeUnavailable, "the database is unavailable; try again in a few seconds", "2"},
	} {
		rec := httptest.NewRecorder()
		writeError(rec, slog.New(slog.DiscardHandler), httptest.NewRequest(http.MethodGet, "/x", nil), tc.err)
		var body api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q: %v", tc.err, rec.Body, err)
		}
		if rec.Code != tc.status || body.Error.Code != tc.code || body.Error.Message != tc.msg || rec.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d %+v Retry-After %q; want %d %s %q %q", tc.err, rec.Code, body.Error,
				rec.Header().Get("Retry-After"), tc.status, tc.code, tc.msg, tc.retryAfter)
		}
	}
}
