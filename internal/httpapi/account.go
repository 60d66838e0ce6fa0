package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// What the web UI's first use, settings and admin pages need beyond the
// user endpoints: a session from a sign-in link or an API token, the
// caller's account and quotas, the audit log, the charts' history.

// AuditLog records and lists the audit log; the store is the real one.
type AuditLog interface {
	AppendAudit(ctx context.Context, e *store.AuditEntry) error
	ListAudit(ctx context.Context, f store.AuditFilter) ([]*store.AuditEntry, error)
}

// StatsHistory is the cluster's activity over a longer past than
// Service.Stats, kept in the store: points of step, oldest first.
type StatsHistory interface {
	StatsHistory(ctx context.Context, since time.Time, step time.Duration) (*api.Stats, error)
}

// auditTimeout bounds the write of an audit entry, which outlives the
// request that caused it (a client gone must not erase its trace).
const auditTimeout = 5 * time.Second

// audit logs an action and records it in the audit log, if there is one.
// A failure to record is logged, not the request's: the action is done.
func (s *server) audit(r *http.Request, actor, action, target, detail string) {
	s.Logger.Info("audit", "audit", true, "action", action, "by", actor, "target", target, "detail", detail, "addr", r.RemoteAddr)
	if s.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	e := &store.AuditEntry{Time: time.Now().UTC(), Actor: actor, Action: action, Target: target, Detail: detail, Addr: clientIP(r)}
	if err := s.Audit.AppendAudit(ctx, e); err != nil {
		s.Logger.Error("record audit entry", "action", action, "err", err)
	}
}

// createTokenSession exchanges a sign-in link's secret or an API token for
// a session, like a password login: throttled, and audited.
func (s *server) createTokenSession(w http.ResponseWriter, r *http.Request) {
	if err := s.tokenSession(w, r); err != nil {
		writeError(w, s.Logger, r, err)
	}
}

func (s *server) tokenSession(w http.ResponseWriter, r *http.Request) error {
	var req api.TokenSessionRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if ok, wait := s.loginByAddr.allow(clientIP(r)); !ok {
		return tooMany("login attempts from this address", wait)
	}
	if req.Token == "" {
		return Errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "token is required")
	}
	p, token, _, link, err := s.Users.SessionFrom(r.Context(), req.Token, sessionMaxAge)
	via := map[bool]string{true: "a sign-in link", false: "an API token"}[link]
	switch {
	case errors.Is(err, auth.ErrLinkUsed):
		s.audit(r, "", "login.failed", "", "a sign-in link used again or expired")
		return Errorf(http.StatusUnauthorized, api.CodeUnauthorized, "this sign-in link was used already or has expired; `grappe up` prints a new one when it starts")
	case errors.Is(err, auth.ErrUnauthenticated):
		s.audit(r, "", "login.failed", "", "web, with a revoked, expired or unknown token")
		return Errorf(http.StatusUnauthorized, api.CodeUnauthorized, "this token is not valid (revoked, expired, or a sign-in link used already)")
	case err != nil:
		return err
	}
	s.audit(r, p.User, "login", p.User, "web, with "+via)
	csrf := newCSRF()
	setCookie(w, sessionCookie, token, true, sessionMaxAge)
	setCookie(w, csrfCookie, csrf, false, sessionMaxAge)
	writeJSON(w, http.StatusOK, api.Session{Username: p.User, Role: p.Role, CSRFToken: csrf})
	return nil
}

// account describes the caller: role, quotas, limits, jobs now.
func (s *server) account(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	counts, err := s.Service.OwnerJobs(r.Context())
	if err != nil {
		return err
	}
	n := counts[p.User]
	writeJSON(w, http.StatusOK, api.Account{
		Username: p.User, Role: p.Role,
		MaxQueuedJobs: s.MaxQueuedPerUser, RequestsPerSecond: s.Limits.PerUser, Burst: s.Limits.Burst,
		DefaultLimits: s.Compat.DefaultLimits, MaxLimits: s.Compat.MaxLimits,
		JobsQueued: n.Queued, JobsRunning: n.Running, JobsTotal: n.Total,
	})
	return nil
}

// listAudit serves the audit log, newest first, a page at a time:
// ?actor=, ?action= (a trailing dot for a family: user.), ?q= (in actor,
// target and detail), ?since= (RFC 3339), ?before= (a seq), ?limit=.
func (s *server) listAudit(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if s.Audit == nil {
		return Errorf(http.StatusNotFound, api.CodeNotFound, "this master keeps no audit log")
	}
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Query: q.Get("q"), Limit: 100}
	for _, v := range []string{f.Actor, f.Action, f.Query} {
		if len(v) > 200 {
			return Errorf(http.StatusBadRequest, api.CodeBadRequest, "a filter is at most 200 bytes")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return Errorf(http.StatusBadRequest, api.CodeBadRequest, "limit must be between 1 and 1000")
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return Errorf(http.StatusBadRequest, api.CodeBadRequest, "before must be the seq of an entry (a positive number)")
		}
		f.Before = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return Errorf(http.StatusBadRequest, api.CodeBadRequest, "since must be a time such as 2026-01-02T15:04:05Z")
		}
		f.Since = t
	}
	entries, err := s.Audit.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := api.AuditList{Entries: make([]api.AuditEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, api.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, Addr: e.Addr})
	}
	if len(entries) == f.Limit {
		out.NextBefore = entries[len(entries)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// History reaches back at most this far, in at most this many points.
const (
	maxHistory       = 24 * time.Hour
	maxHistoryPoints = 360
	minHistoryStep   = 15 * time.Second
)

// statsHistory serves ?minutes=N (default 60) of the cluster's activity,
// at a step that keeps it under maxHistoryPoints.
func (s *server) statsHistory(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if s.History == nil {
		return Errorf(http.StatusNotFound, api.CodeNotFound, "this master keeps no history")
	}
	span := time.Hour
	if v := r.URL.Query().Get("minutes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || time.Duration(n)*time.Minute > maxHistory {
			return Errorf(http.StatusBadRequest, api.CodeBadRequest, "minutes must be between 1 and %d", int(maxHistory/time.Minute))
		}
		span = time.Duration(n) * time.Minute
	}
	step := max(minHistoryStep, (span / maxHistoryPoints).Round(minHistoryStep))
	st, err := s.History.StatsHistory(r.Context(), time.Now().Add(-span), step)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
