package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
)

// JobQuery selects the jobs of GET /api/v1/jobs: the history's filters and
// its cursor. Zero fields do not filter.
type JobQuery struct {
	Status, Language, Verdict string
	// Since and Until bound the creation time: Since <= created < Until.
	Since, Until time.Time
	// Search keeps the jobs whose id or submission contains it.
	Search string
	// Before is the cursor: only jobs older than this job id.
	Before string
	Limit  int
}

const (
	maxSearchBytes = 200
	maxListLimit   = 1000
)

var languageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+#._-]{0,63}$`)

// parseJobQuery reads and checks the query parameters of GET
// /api/v1/jobs; each refusal names the parameter and what it accepts.
func parseJobQuery(q url.Values) (JobQuery, error) {
	jq := JobQuery{Limit: 100, Status: q.Get("status"), Language: q.Get("language"),
		Verdict: q.Get("verdict"), Search: q.Get("q"), Before: q.Get("before")}
	bad := func(format string, args ...any) (JobQuery, error) {
		return JobQuery{}, Errorf(http.StatusBadRequest, api.CodeBadRequest, format, args...)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return bad("limit must be between 1 and %d", maxListLimit)
		}
		jq.Limit = n
	}
	switch jq.Status {
	case "", api.StatusQueued, api.StatusRunning, api.StatusDone, api.StatusCancelled, api.StatusFailed:
	default:
		return bad("unknown status %q", jq.Status)
	}
	switch jq.Verdict {
	case "", api.VerdictOK, api.VerdictWrongAnswer, api.VerdictCompileError, api.VerdictRuntimeError,
		api.VerdictTimeLimit, api.VerdictMemoryLimit, api.VerdictOutputLimit:
	default:
		return bad("unknown verdict %q", jq.Verdict)
	}
	if jq.Language != "" && !languageName.MatchString(jq.Language) {
		return bad("language %q is not a language name", jq.Language)
	}
	if len(jq.Search) > maxSearchBytes {
		return bad("q is over %d bytes", maxSearchBytes)
	}
	if len(jq.Before) > 64 {
		return bad("before is not a job id")
	}
	var err error
	if jq.Since, err = parseWhen(q.Get("since"), false); err != nil {
		return bad("since: %v", err)
	}
	if jq.Until, err = parseWhen(q.Get("until"), true); err != nil {
		return bad("until: %v", err)
	}
	if !jq.Since.IsZero() && !jq.Until.IsZero() && !jq.Since.Before(jq.Until) {
		return bad("since must be before until")
	}
	return jq, nil
}

// parseWhen reads an RFC 3339 time or a date (YYYY-MM-DD, UTC). A date as
// the end of a window includes its whole day: until=2026-12-06 stops at
// the start of the 7th.
func parseWhen(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		if t, err = time.Parse(time.DateOnly, v); err != nil {
			return time.Time{}, fmt.Errorf("%q is neither a date (2006-01-02) nor an RFC 3339 time", v)
		}
		if end {
			t = t.AddDate(0, 0, 1)
		}
	}
	return clampWhen(t, end), nil
}

// The store keeps times as nanoseconds since 1970 in 64 bits: what it can
// hold ends in 2262.
var (
	firstStorable = time.Unix(0, 0)
	lastStorable  = time.Unix(0, math.MaxInt64)
)

// clampWhen brings a bound into what the store can compare: an until past
// the last storable time bounds nothing, a since before 1970 neither, and
// the others stay where they select what they meant (nothing, if need
// be), instead of overflowing into another date.
func clampWhen(t time.Time, end bool) time.Time {
	switch {
	case end && !t.Before(lastStorable), !end && !t.After(firstStorable):
		return time.Time{}
	case t.Before(firstStorable):
		return firstStorable
	case t.After(lastStorable):
		return lastStorable
	}
	return t
}

func (s *server) listJobs(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	jq, err := parseJobQuery(r.URL.Query())
	if err != nil {
		return err
	}
	jobs, err := s.Service.Jobs(r.Context(), p, jq)
	if err != nil {
		return err
	}
	list := api.JobList{Jobs: jobs}
	if list.Jobs == nil {
		list.Jobs = []api.Job{}
	}
	// A full page may have a next one; an empty next page is the cheap
	// way to find out, rather than a count over the whole history.
	if len(jobs) == jq.Limit {
		list.Next = jobs[len(jobs)-1].ID
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}
