package master

import (
	"time"

	"github.com/grappe/grappe/api"
)

// workerFailures is what a master saw of a worker failing the jobs it
// was given: results with status failed (the worker could not run the
// program: its sandbox, its toolchain) and attempts it gave back because
// its own machinery failed. A user's program that crashes is a verdict,
// not a failure of the worker. Kept in memory since the worker
// connected, and written in its row of the workers table for the other
// masters: it is for the dashboard to point at a sick worker.
type workerFailures struct {
	failedResults int64 // results recorded with status failed
	gaveBackInfra int64 // attempts released for an infrastructure failure
	lastError     string
	lastErrorAt   time.Time
}

func (f *workerFailures) failed(reason string, at time.Time) {
	f.failedResults++
	f.note(reason, at)
}

func (f *workerFailures) gaveBack(reason string, at time.Time) {
	f.gaveBackInfra++
	f.note(reason, at)
}

func (f *workerFailures) note(reason string, at time.Time) {
	if reason == "" {
		reason = "(no reason given)"
	}
	f.lastError, f.lastErrorAt = clip(reason, maxHealthReason), at.UTC()
}

// total is the jobs that failed there.
func (f *workerFailures) total() int64 { return f.failedResults + f.gaveBackInfra }

// rate is total over every attempt the worker ended; done counts the
// results recorded from it, failed ones included.
func (f *workerFailures) rate(done int64) float64 {
	if ended := done + f.gaveBackInfra; ended > 0 {
		return float64(f.total()) / float64(ended)
	}
	return 0
}

// describe fills w's failure fields (the workers table carries them to
// the other masters: rowOf).
func (f *workerFailures) describe(w *api.Worker, done int64) {
	w.JobsFailed, w.FailureRate = f.total(), f.rate(done)
	w.LastError, w.LastErrorAt = f.lastError, timeOrNil(f.lastErrorAt)
}

// timeOrNil is t for the API, nil when unset.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
