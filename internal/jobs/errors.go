package jobs

import (
	"errors"
	"fmt"

	"github.com/grappe/grappe/api"
)

// Error codes: the API's (api.Code*), so that the HTTP adapter maps a
// code to a status and passes the code on unchanged.
const (
	CodeInvalid         = api.CodeInvalid
	CodeUnknownLanguage = api.CodeUnknownLanguage
	CodeForbidden       = api.CodeForbidden
	CodeNotFound        = api.CodeNotFound
	CodeConflict        = api.CodeConflict
	CodeRateLimited     = api.CodeRateLimited
	CodeUnavailable     = api.CodeUnavailable
)

// Error is a domain error: what the caller did wrong or what the cluster
// cannot do now, with the API's code, the field at fault if any, and a
// message for a person. The core returns it for everything that is not a
// fault of its own; transports map Code to their status (httpapi alone
// knows HTTP).
type Error struct {
	Code    string
	Field   string // the request field at fault, if one is
	Message string
	// RetryAfter, in seconds, suggests when to try again (rate_limited,
	// unavailable).
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for any error of that code,
// whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Field == "" && t.Message == "" && t.Code == e.Code
}

// Sentinels callers branch on (errors.Is); each matches every *Error of
// its code. Their messages are empty: return a NotFound, not ErrNotFound,
// for a person to read.
var (
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrConflict    = &Error{Code: CodeConflict}
	ErrRateLimited = &Error{Code: CodeRateLimited}
	ErrUnavailable = &Error{Code: CodeUnavailable}
)

// NotFound is the not_found answer: the same for a job that does not
// exist and for one the caller may not see, so that ids leak nothing.
var NotFound = &Error{Code: CodeNotFound, Message: "not found"}

// ErrStale is what a worker's report on an attempt it no longer holds gets
// (a late result, a release of a rescued attempt): the report is dropped.
var ErrStale = &Error{Code: CodeConflict, Message: "the attempt is not held by this worker"}

// Errorf builds an *Error with a code and a message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// BatchError refuses a batch for one of its jobs: Index is the job's
// place in the batch (from 0), Err the refusal of that job alone.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("jobs[%d]: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }
