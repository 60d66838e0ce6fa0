package httpapi

import (
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestParseJobQuery: the history's parameters read into a JobQuery, and
// each bad one refused with a 400 that names it.
func TestParseJobQuery(t *testing.T) {
	day := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query string
		want  JobQuery
	}{
		{"", JobQuery{Limit: 100}},
		{"limit=5&before=abc&status=done", JobQuery{Limit: 5, Before: "abc", Status: "done"}},
		{"language=cpp&verdict=wrong_answer&q=hello+world", JobQuery{Limit: 100, Language: "cpp", Verdict: "wrong_answer", Search: "hello world"}},
		{"since=2026-12-06&until=2026-12-06", JobQuery{Limit: 100, Since: day, Until: day.AddDate(0, 0, 1)}},
		{"since=2026-12-06T10:00:00%2B02:00", JobQuery{Limit: 100, Since: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)}},
		// Past what the store's nanoseconds hold (2262), or before 1970:
		// no bound where it would bound nothing, else the edge, never an
		// overflow into another date.
		{"until=9999-12-31", JobQuery{Limit: 100}},
		{"since=1900-01-01", JobQuery{Limit: 100}},
		{"since=9999-01-01", JobQuery{Limit: 100, Since: time.Unix(0, math.MaxInt64)}},
		{"until=1900-01-01", JobQuery{Limit: 100, Until: time.Unix(0, 0)}},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := parseJobQuery(q)
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if got.Limit != tc.want.Limit || got.Before != tc.want.Before || got.Status != tc.want.Status || got.Language != tc.want.Language ||
			got.Verdict != tc.want.Verdict || got.Search != tc.want.Search || !got.Since.Equal(tc.want.Since) || !got.Until.Equal(tc.want.Until) {
			t.Errorf("%q = %+v, want %+v", tc.query, got, tc.want)
		}
	}

	for _, tc := range []struct{ query, message string }{
		{"limit=0", "limit must be between 1 and 1000"},
		{"limit=1001", "limit must be between 1 and 1000"},
		{"limit=x", "limit must be between 1 and 1000"},
		{"status=finished", `unknown status "finished"`},
		{"verdict=accepted", `unknown verdict "accepted"`},
		{"language=C%2B%2B", "is not a language name"},
		{"language=" + strings.Repeat("a", 65), "is not a language name"},
		{"q=" + strings.Repeat("x", 201), "q is over 200 bytes"},
		{"before=" + strings.Repeat("x", 65), "before is not a job id"},
		{"since=last+week", `since: "last week" is neither a date (2006-01-02) nor an RFC 3339 time`},
		{"until=2026-13-01", "until:"},
		{"since=2026-12-07&until=2026-12-06", "since must be before until"},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := parseJobQuery(q)
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, tc.message) {
			t.Errorf("%q: %v, want a 400 with %q", tc.query, err, tc.message)
		}
	}
}
