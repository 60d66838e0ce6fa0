package clustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/jobspec"
)

// jobOutputBytes is every output byte a finished job carries (as the API
// shows it).
func jobOutputBytes(j *api.Job) int {
	n := 0
	if j.Compile != nil {
		n += len(j.Compile.Stdout) + len(j.Compile.Stderr)
	}
	for _, tr := range j.Tests {
		n += len(tr.Stdout) + len(tr.Stderr)
	}
	if len(j.Tests) == 0 && j.Run != nil {
		n += len(j.Run.Stdout) + len(j.Run.Stderr)
	}
	return n
}

// TestOutputBudgetEndToEnd is issue 11's first attack through a real
// cluster: 40 tests each writing 1 MiB to stdout and 1 MiB to stderr made
// an 80 MiB result that no worker could deliver. The job now ends with
// output_limit within its budget, and the worker takes the next job.
func TestOutputBudgetEndToEnd(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	req := api.JobRequest{
		Language: "bash",
		Source:   "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2",
		Limits:   api.Limits{OutputKB: 2048, WallMs: 30000},
	}
	for range 40 {
		req.Tests = append(req.Tests, api.TestCase{})
	}
	job := submitWait(t, c, req)
	if job.Status != api.StatusDone || job.Verdict != api.VerdictOutputLimit {
		t.Fatalf("job %s %s (%s), want done with output_limit", job.Status, job.Verdict, job.Error)
	}
	if n := jobOutputBytes(job); n > jobspec.DefaultTotalOutputKB<<10 {
		t.Errorf("the job carries %d output bytes, over the budget %d", n, jobspec.DefaultTotalOutputKB<<10)
	}
	if len(job.Tests) >= 40 {
		t.Errorf("all %d tests ran past the budget", len(job.Tests))
	}
	// A job's own, smaller budget.
	req.Limits.TotalOutputKB = 1024
	job = submitWait(t, c, req)
	if job.Verdict != api.VerdictOutputLimit || jobOutputBytes(job) > 1024<<10 {
		t.Errorf("total_output_kb 1024: %s with %d bytes", job.Verdict, jobOutputBytes(job))
	}
	// The worker is fine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next, err := c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo next"}, time.Minute)
	if err != nil || next.Verdict != api.VerdictOK {
		t.Fatalf("next job: %+v %v", next, err)
	}
}
