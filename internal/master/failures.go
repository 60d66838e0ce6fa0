package master

import (
	"time"

	"github.com/grappe/grappe/api"
)

// workerFailures is what a master saw of a worker failing the jobs it
// was given: results with status failed (the worker could not run the
// program: its sandbox, its toolchain) and attempts it gave back because
// its own machinery failed. A user's program that crashes is a verdict,
// not a failure of the worker. Kept in memory, since the worker
// connected: it is for the dashboard to point at a sick worker.
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

// describe fills w's failure fields; done counts the results recorded
// from the worker, failed ones included.
func (f *workerFailures) describe(w *api.Worker, done int64) {
	w.JobsFailed = f.failedResults + f.gaveBackInfra
	if ended := done + f.gaveBackInfra; ended > 0 {
		w.FailureRate = float64(w.JobsFailed) / float64(ended)
	}
	if f.lastError != "" {
		w.LastError = f.lastError
		at := f.lastErrorAt
		w.LastErrorAt = &at
	}
}
