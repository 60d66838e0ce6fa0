package store

import (
	"context"
	"time"
)

// History is what the master keeps of its own past for people to read:
// the audit log of the actions that change who may do what, and the
// cluster's activity samples behind the dashboard's charts. Both are
// append-mostly and small; a backend implements them beside Store.
type History interface {
	// AppendAudit records one entry; it sets e.Seq.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns the entries f selects, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
	// TrimAudit deletes the entries older than before and returns how
	// many.
	TrimAudit(ctx context.Context, before time.Time) (int, error)
	// AddStatsSample records one activity sample and deletes the samples
	// older than keepAfter, so the table stays a ring of bounded size.
	AddStatsSample(ctx context.Context, s *StatsSample, keepAfter time.Time) error
	// StatsSamples returns every master's samples taken at or after
	// since, oldest first.
	StatsSamples(ctx context.Context, since time.Time) ([]*StatsSample, error)
}

// AuditEntry is one recorded action: who did what to what, from where.
type AuditEntry struct {
	Seq    int64 // assigned by AppendAudit; a later entry has a greater Seq
	Time   time.Time
	Actor  string // the user who acted; empty for the master itself
	Action string // a dotted name: "user.add", "login.failed", "worker.drain", …
	Target string // what the action was on: a user, a token id, a worker
	Detail string
	Addr   string // the client's address, when it came through the API
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Actor string
	// Action matches an action exactly, or every action under it when it
	// ends with a dot ("user." matches "user.add" and "user.remove").
	Action string
	// Query matches entries whose actor, target or detail contains it.
	Query string
	Since time.Time
	// Before returns only entries with a smaller Seq (paging, newest
	// first: pass the last Seq of a page to get the next).
	Before int64
	Limit  int // default 100, at most 1000
}

// AuditLimit is the page size ListAudit uses for a zero or too large
// Limit.
func (f AuditFilter) AuditLimit() int {
	switch {
	case f.Limit <= 0:
		return 100
	case f.Limit > 1000:
		return 1000
	}
	return f.Limit
}

// StatsSample is the cluster's activity over one sampling interval, as
// one master saw it: the jobs submitted to it and finished through it,
// the queue and the running jobs (the store's counts, the same for every
// master) at the end, and the mean time the jobs it started had waited.
type StatsSample struct {
	Master      string
	Time        time.Time // the end of the interval
	Seconds     int       // the interval's length
	QueueDepth  int
	Running     int
	Submitted   int
	Completed   int
	QueueWaitMs float64
}
