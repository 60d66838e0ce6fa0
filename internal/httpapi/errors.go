package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// Error is an error with the HTTP status and code the client sees. The
// service returns it for everything that is the caller's fault; any other
// error is logged and answered as a bare 500 with no details.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in seconds, is sent as Retry-After with a 429 or 503.
	RetryAfter int
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common errors.
var (
	ErrNotFound = &Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: "not found"}
	ErrNoAuth   = &Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthorized, Message: "missing or invalid token"}
	// ErrExpired says why a known token no longer works, and what to do.
	ErrExpired  = &Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthorized, Message: "the token has expired: log in again (grappe login) or create a new token"}
	ErrNotAdmin = &Error{Status: http.StatusForbidden, Code: api.CodeForbidden, Message: "admin role required"}
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// statusOf maps a domain error's code to its HTTP status: the one place
// the job core's errors meet HTTP.
func statusOf(code string) int {
	switch code {
	case api.CodeInvalid, api.CodeUnknownLanguage:
		return http.StatusUnprocessableEntity
	case api.CodeBadRequest, api.CodeInvalidJSON:
		return http.StatusBadRequest
	case api.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case api.CodeUnauthorized:
		return http.StatusUnauthorized
	case api.CodeForbidden:
		return http.StatusForbidden
	case api.CodeNotFound:
		return http.StatusNotFound
	case api.CodeConflict:
		return http.StatusConflict
	case api.CodeRateLimited:
		return http.StatusTooManyRequests
	case api.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fromDomain turns a domain error (*jobs.Error) into the HTTP one.
func fromDomain(err error) (*Error, bool) {
	var be *jobs.BatchError
	if errors.As(err, &be) {
		// The job's refusal, with its place in the batch.
		e, ok := fromDomain(be.Err)
		if ok {
			e.Message = fmt.Sprintf("jobs[%d]: %s", be.Index, e.Message)
		}
		return e, ok
	}
	var je *jobs.Error
	if !errors.As(err, &je) {
		return nil, false
	}
	msg := je.Message
	if je.Field != "" {
		msg = je.Field + ": " + msg
	}
	return &Error{Status: statusOf(je.Code), Code: je.Code, Message: msg, RetryAfter: je.RetryAfter}, true
}

func writeError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	e, ok := fromDomain(err)
	if !ok && errors.Is(err, store.ErrUnavailable) {
		// The master lives and keeps its workers; its database will be
		// back. Nothing was written: the client may simply try again.
		log.Debug("request failed: the database is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		e, ok = &Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, RetryAfter: 2,
			Message: "the database is unavailable; try again in a few seconds"}, true
	}
	if !ok && !errors.As(err, &e) {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "internal error"}
	}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(max(e.RetryAfter, 1)))
	}
	writeJSON(w, e.Status, api.ErrorBody{Error: api.ErrorDetail{Code: e.Code, Message: e.Message}})
}
