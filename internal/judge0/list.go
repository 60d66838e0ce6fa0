package judge0

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/grappe/grappe/internal/auth"
)

const (
	// defaultPerPage is Judge0's page size (Submission.per_page).
	defaultPerPage = 20
	// maxPerPage is the most jobs grappe's store lists at once.
	maxPerPage = 1000
	// maxOffset bounds the jobs a page may skip: far past any real count.
	maxOffset = 1 << 40
)

// pageMeta is Judge0's pagination object (will_paginate's numbers).
type pageMeta struct {
	CurrentPage int  `json:"current_page"`
	NextPage    *int `json:"next_page"`
	PrevPage    *int `json:"prev_page"`
	TotalPages  int  `json:"total_pages"`
	TotalCount  int  `json:"total_count"`
}

func newPageMeta(page, perPage, total int) pageMeta {
	m := pageMeta{CurrentPage: page, TotalPages: (total + perPage - 1) / perPage, TotalCount: total}
	if page < m.TotalPages {
		next := page + 1
		m.NextPage = &next
	}
	if page > 1 {
		prev := page - 1
		m.PrevPage = &prev
	}
	return m
}

// index is GET /submissions: the caller's own submissions (grappe jobs,
// whichever API submitted them), newest first, a page at a time. Judge0
// lists every submission of the instance to an authorized caller;
// grappe's callers see their own.
func (h *handler) index(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := authorized(r); err != nil {
		return err
	}
	fields, err := h.fields(r)
	if err != nil {
		return err
	}
	page, perPage := 1, defaultPerPage
	q := r.URL.Query()
	if q.Has("page") {
		page = rubyInt(q.Get("page"))
	}
	if q.Has("per_page") {
		perPage = rubyInt(q.Get("per_page"))
	}
	switch {
	case page <= 0:
		return badRequest(fmt.Sprintf("invalid page: %d", page))
	case perPage <= 0:
		// Judge0 takes 0 and then fails inside will_paginate.
		return badRequest(fmt.Sprintf("invalid per_page: %d", perPage))
	case perPage > maxPerPage:
		return badRequest(fmt.Sprintf("invalid per_page: %d (at most %d)", perPage, maxPerPage))
	}
	offset := maxOffset
	if page-1 < maxOffset/perPage {
		offset = (page - 1) * perPage
	}
	jobs, total, err := h.Backend.OwnJobs(r.Context(), p, offset, perPage)
	if err != nil {
		return err
	}
	b64 := queryBool(r, "base64_encoded")
	subs := make([]map[string]any, 0, len(jobs))
	for i := range jobs {
		// The token of a job submitted with redirect_stderr_to_stdout
		// has ".r" appended; the job does not record it, so the list
		// gives the plain id (which GET /submissions/{token} also takes).
		sub, err := render(&jobs[i], jobs[i].ID, false, b64, fields)
		if err != nil {
			return badRequest("some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter")
		}
		subs = append(subs, sub)
	}
	writeJSON(w, http.StatusOK, map[string]any{"submissions": subs, "meta": newPageMeta(page, perPage, total)})
	return nil
}

// destroy is DELETE /submissions/{token}. Judge0 deletes a finished
// submission only where the operator enabled it; grappe keeps every job
// (its store has no deletion, and a job is the user's record), so it
// answers as Judge0 does with enable_submission_delete false, which
// /config_info says.
func (h *handler) destroy(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := authorized(r); err != nil {
		return err
	}
	if _, err := h.fields(r); err != nil {
		return err
	}
	return badRequest("delete not allowed")
}

// authorized refuses a request without a token, which the operator's
// anonymous user runs: that user's submissions are every anonymous
// caller's, so it may not list them. Judge0 answers 403 too where these
// endpoints need X-Auth-User.
func authorized(r *http.Request) error {
	if strings.TrimSpace(r.Header.Get("Authorization")) != "" || strings.TrimSpace(r.Header.Get("X-Auth-Token")) != "" {
		return nil
	}
	return &httpError{status: http.StatusForbidden, body: map[string]any{
		"error": "this endpoint needs a token: without one, submissions run as the anonymous user, whose submissions are every anonymous caller's"}}
}

func badRequest(msg string) error {
	return &httpError{status: http.StatusBadRequest, body: map[string]any{"error": msg}}
}

// rubyInt reads a number as Ruby's String#to_i does: leading blanks, a
// sign, the digits that follow; anything else is 0. Past maxOffset it
// stops growing.
func rubyInt(s string) int {
	i := 0
	for i < len(s) && unicode.IsSpace(rune(s[i])) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	n := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n < maxOffset {
			n = n*10 + int(s[i]-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}
