package master

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Store failures. A master whose database is unavailable (PostgreSQL
// down, restarting, out of connections: store.ErrUnavailable) keeps
// running: its worker links stay up, the API answers 503, every periodic
// write is tried again at its next period, and results are kept until
// they can be recorded (unrecorded.go). What must not happen is a log of
// a thousand identical errors a second: the outage is logged when it
// begins, at most every outageLogEvery while it lasts, and when it ends.

// outageLogEvery bounds the warnings of one outage.
const outageLogEvery = 10 * time.Second

type outage struct {
	mu         sync.Mutex
	since      time.Time // zero while the database answers
	lastLogged time.Time
	suppressed int
}

// logStoreErr logs a failed store call: at INFO the one a link that ended
// (a reconnecting worker, a shutdown) cancelled, which is expected, and
// what it was for is sent or done again; through the outage tracker an
// unavailable database; at ERROR anything else.
func (m *Master) logStoreErr(what string, err error, args ...any) {
	switch {
	case errors.Is(err, context.Canceled):
		m.log.Info(what+": the link ended first", append(args, "err", err)...)
	case errors.Is(err, store.ErrUnavailable):
		m.storeUnavailable(what, err, args...)
	default:
		m.log.Error(what, append(args, "err", err)...)
	}
}

func (m *Master) storeUnavailable(what string, err error, args ...any) {
	now := time.Now()
	o := &m.outage
	o.mu.Lock()
	first := o.since.IsZero()
	if first {
		o.since = now
	}
	logIt := first || now.Sub(o.lastLogged) >= outageLogEvery
	suppressed := o.suppressed
	if logIt {
		o.lastLogged, o.suppressed = now, 0
	} else {
		o.suppressed++
	}
	since := o.since
	o.mu.Unlock()
	if !logIt {
		m.log.Debug(what, append(args, "err", err)...)
		return
	}
	msg := "the database is unavailable; the master keeps its workers and answers 503 until it is back"
	if !first {
		msg = "the database is still unavailable"
	}
	m.log.Warn(msg, append(args, "during", what, "for", now.Sub(since).Round(time.Second),
		"similar_errors", suppressed, "err", err)...)
}

// storeAnswered notes a successful periodic store write: it ends an
// outage.
func (m *Master) storeAnswered() {
	o := &m.outage
	o.mu.Lock()
	since := o.since
	o.since, o.suppressed = time.Time{}, 0
	o.mu.Unlock()
	if !since.IsZero() {
		m.log.Info("the database is reachable again", "after", time.Since(since).Round(time.Millisecond))
	}
}
