package clustertest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/runner"
	"github.com/grappe/grappe/internal/worker"
)

// bigRunner pretends to run a job whose program writes as many MiB to
// stdout as its source says ("70" → 70 MiB), as a job with many test
// cases and large output limits can. gate, if not nil, holds each run
// until it is closed; started, if not nil, hears of each run as it begins.
type bigRunner struct {
	gate    chan struct{}
	started chan struct{}
}

func (b bigRunner) Run(ctx context.Context, spec *runner.Spec, _ runner.OutputFunc) (*runner.Result, error) {
	if b.started != nil {
		select {
		case b.started <- struct{}{}:
		default:
		}
	}
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var mib int
	for _, c := range strings.TrimSpace(string(spec.Files[0].Content)) {
		mib = mib*10 + int(c-'0')
	}
	out := []byte("ok\n")
	if mib > 0 {
		out = []byte(strings.Repeat("x", mib<<20))
	}
	return &runner.Result{Verdict: "accepted", Version: "3", Run: &runner.Exec{Verdict: "accepted", Stdout: out}}, nil
}

var fakePython = worker.StaticLanguages{{Name: "python", Version: "3"}}

// A result over gRPC's 64 MiB message cap used to fail every send and
// every hello after it: the worker was lost, and so was the next one.
func TestHugeResultFailsItsJobAndTheWorkerStaysUp(t *testing.T) {
	// The subject is the size, not liveness: a generous worker timeout
	// keeps a loaded test machine (-race, parallel packages) from losing
	// the worker while 70 MiB are encoded and cross the link.
	c := clustertest.Start(t, clustertest.Options{
		Master: func(cfg *master.Config) { cfg.WorkerTimeout = 15 * time.Second },
		Workers: []clustertest.WorkerOptions{
			{Name: "big", Slots: 1, Runner: bigRunner{}, LanguageSource: fakePython},
		},
	})
	huge := submitWait(t, c, api.JobRequest{Language: "python", Source: "70"})
	if huge.Status != api.StatusFailed || !strings.Contains(huge.Error, "the result was too large to deliver: ") ||
		!strings.HasSuffix(huge.Error, "the limit is 64 MiB") || huge.Attempts != 1 {
		t.Fatalf("a 70 MiB result: status %s, attempts %d, error %q", huge.Status, huge.Attempts, huge.Error)
	}
	if s := workerStatus(c, "big"); s != api.WorkerUp {
		t.Fatalf("worker is %s after a huge result", s)
	}
	// A result over the piece size but under the cap arrives whole.
	mid := submitWait(t, c, api.JobRequest{Language: "python", Source: "3"})
	if mid.Status != api.StatusDone || mid.Run == nil || len(mid.Run.Stdout) != 3<<20 {
		t.Fatalf("a 3 MiB result: status %s, error %q", mid.Status, mid.Error)
	}
	next := submitWait(t, c, api.JobRequest{Language: "python", Source: "0"})
	if next.Status != api.StatusDone || next.Run.Stdout != "ok\n" || next.Worker != "big" {
		t.Fatalf("the next job: %+v", next)
	}
}

// A result finished while the worker was cut off is named in its hello
// and follows in pieces; the master must not re-queue the attempt
// meanwhile, nor take a hello bigger than a message.
func TestResultFinishedWhileDisconnectedIsDeliveredOnce(t *testing.T) {
	gate, started := make(chan struct{}), make(chan struct{}, 1)
	// The cut stalls the result's stream (its flow-control window runs
	// out), so the worker notices only by its keepalive (10s + 5s): the
	// master must wait longer before it declares it lost.
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.WorkerTimeout = 30 * time.Second }})
	c.AddWorker(clustertest.WorkerOptions{Name: "cut", Slots: 1, Runner: bigRunner{gate: gate, started: started}, LanguageSource: fakePython, Proxied: true})
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "python", Source: "20"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, job.ID)
	// Running in the store is not yet running on the worker: the
	// assignment is sent after the commit. Cut the link only once the
	// worker has the job, or the cut may drop the assignment itself.
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the worker never started the job")
	}
	c.Partition("cut", true)
	close(gate) // the result is ready while the link is down
	time.Sleep(500 * time.Millisecond)
	c.Partition("cut", false)
	final, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.StatusDone || final.Attempts != 1 || final.Run == nil || len(final.Run.Stdout) != 20<<20 {
		t.Fatalf("after the reconnection: status %s attempts %d error %q", final.Status, final.Attempts, final.Error)
	}
}

// The attack of issue 11, through the real runner: 40 test cases each
// writing 1 MiB to stdout and 1 MiB to stderr, over gRPC's 64 MiB cap. It
// used to take every worker down in turn. Whatever the runner keeps of it
// (the output budget may cut it), the job ends after one attempt, the
// worker stays up and the next job runs.
func TestHostileHugeResult(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	req := api.JobRequest{
		Language: "bash",
		Source:   "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2",
		Limits:   api.Limits{OutputKB: 2048, WallMs: 20000, CPUMs: 20000},
	}
	for range 40 {
		req.Tests = append(req.Tests, api.TestCase{})
	}
	j := submitWait(t, c, req)
	switch {
	case j.Attempts != 1:
		t.Fatalf("%d attempts: the result took its worker down (%s: %s)", j.Attempts, j.Status, j.Error)
	case j.Status == api.StatusFailed && !strings.Contains(j.Error, "the result was too large to deliver"):
		t.Fatalf("failed: %q", j.Error)
	case j.Status != api.StatusFailed && j.Status != api.StatusDone:
		t.Fatalf("status %s", j.Status)
	}
	t.Logf("the huge result: %s after %d attempt, %q", j.Status, j.Attempts, j.Error)
	if s := workerStatus(c, "w"); s != api.WorkerUp {
		t.Fatalf("worker %s after the huge result", s)
	}
	next := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo next"})
	if next.Status != api.StatusDone || next.Run == nil || next.Run.Stdout != "next\n" {
		t.Fatalf("the next job: %s %q", next.Status, next.Error)
	}
}
