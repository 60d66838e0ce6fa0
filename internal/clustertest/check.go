package clustertest

import (
	"testing"

	"github.com/grappe/grappe/api"
)

// Checks for what a test reads from the API. A test that dereferences a job
// an error came with, or the run of a job that never ran, panics: the whole
// test binary stops and the cause (the job's status and error) is lost.
// These fail the one test instead, saying what the job was.

// Checker holds the test that its checks fail. It exists so that a call
// answering (job, error) can be passed whole: Must(t).Finished(c.Wait(…)).
type Checker struct{ t testing.TB }

// Must returns the checks that fail t.
func Must(t testing.TB) Checker { return Checker{t} }

// Finished returns the job a wait answered (Client.Wait, SubmitWait), and
// fails the test when the call failed, answered no job, or answered one
// that is not finished yet.
func (c Checker) Finished(job *api.Job, err error) *api.Job {
	t := c.t
	t.Helper()
	switch {
	case err != nil:
		t.Fatalf("clustertest: waiting for a job: %v", err)
	case job == nil:
		t.Fatal("clustertest: waiting for a job: no job and no error")
	case !job.Terminal():
		t.Fatalf("clustertest: job %s is still %s after the wait (attempts %d, worker %q)", job.ID, job.Status, job.Attempts, job.Worker)
	}
	return job
}

// RunOf returns the job's run, and fails the test with what the job says
// instead (status, verdict, error, compiler output) when it has none: it
// failed, did not compile or never started.
func RunOf(t testing.TB, job *api.Job) *api.Run {
	t.Helper()
	if job == nil {
		t.Fatal("clustertest: no job, so no run")
	}
	if job.Run == nil {
		compile := ""
		if job.Compile != nil {
			compile = job.Compile.Stderr + job.Compile.Stdout
		}
		t.Fatalf("clustertest: job %s has no run: status %q verdict %q error %q attempts %d worker %q compile output %.500q",
			job.ID, job.Status, job.Verdict, job.Error, job.Attempts, job.Worker, compile)
	}
	return job.Run
}
