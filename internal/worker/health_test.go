package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/runner"
)

// brokenRunner fails as a worker whose sandbox lost its cgroup does, or
// with a bad spec when the job's stdin says "bad".
type brokenRunner struct{ broken atomic.Bool }

func (b *brokenRunner) Run(_ context.Context, spec *runner.Spec, _ runner.OutputFunc) (*runner.Result, error) {
	if string(spec.Stdin) == "bad" {
		return nil, fmt.Errorf("%w: file name %q: starts with a dash", runner.ErrBadSpec, "-x.c")
	}
	if b.broken.Load() {
		return nil, errors.New("runner: run python: sandbox: start command: join cgroup: no such device")
	}
	return &runner.Result{Verdict: "accepted"}, nil
}

func assign(job string, stdin string) *clusterpb.Assign {
	return &clusterpb.Assign{Attempt: &clusterpb.AttemptRef{JobId: job, Attempt: 1}, Spec: &clusterpb.JobSpec{Language: "python", Stdin: []byte(stdin)}}
}

func next(t *testing.T, out chan *clusterpb.WorkerMessage) *clusterpb.WorkerMessage {
	t.Helper()
	select {
	case m := <-out:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent")
		return nil
	}
}

func TestInfrastructureFailureGivesTheAttemptBack(t *testing.T) {
	w := newTestWorker()
	rn := &brokenRunner{}
	rn.broken.Store(true)
	w.cfg.Runner, w.cfg.UnhealthyAfter = rn, 2
	w.repairWake = make(chan struct{}, 1)
	out := make(chan *clusterpb.WorkerMessage, 16)
	w.out = out

	for i, job := range []string{"j1", "j2"} {
		w.start(assign(job, ""))
		hb := next(t, out).GetHeartbeat()
		rel := next(t, out).GetRelease()
		if hb == nil || rel == nil {
			t.Fatalf("job %s: want a heartbeat then a release", job)
		}
		if !rel.Infrastructure || rel.Attempt.GetJobId() != job || strings.Contains(rel.Reason, "cgroup") {
			t.Errorf("release %v: want infrastructure, without internals", rel)
		}
		if hb.Health.GetInfraFailures() != int64(i+1) || hb.Health.GetUnhealthy() != (i == 1) {
			t.Errorf("after %d failures: health %v", i+1, hb.Health)
		}
	}
	if !strings.Contains(w.health.reason, "join cgroup") {
		t.Errorf("reason %q: operators should see the error", w.health.reason)
	}
	w.mu.Lock()
	np := len(w.pending)
	w.mu.Unlock()
	if np != 0 {
		t.Error("a failed attempt left a result to send")
	}

	// Unhealthy, it takes no job: an assignment in flight goes back.
	w.start(assign("j3", ""))
	if rel := next(t, out).GetRelease(); rel == nil || rel.Attempt.GetJobId() != "j3" {
		t.Fatalf("an unhealthy worker started a job")
	}

	// Repaired, it says so at once and runs jobs again.
	repaired := make(chan struct{})
	w.cfg.Repair = func(context.Context) error { rn.broken.Store(false); close(repaired); return nil }
	w.cfg.RepairBackoff = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.repairLoop(ctx)
	<-repaired
	if hb := next(t, out).GetHeartbeat(); hb == nil || hb.Health.GetUnhealthy() || hb.Health.GetInfraFailures() != 2 {
		t.Fatalf("after repair: %v", hb)
	}
	w.start(assign("j4", ""))
	w.wg.Wait()
	w.mu.Lock()
	_, ok := w.pending[attemptKey{"j4", 1}]
	w.mu.Unlock()
	if !ok {
		t.Fatal("the repaired worker did not run its job")
	}
}

func TestBadSpecIsTheJobsFailure(t *testing.T) {
	w := newTestWorker()
	w.cfg.Runner, w.cfg.UnhealthyAfter = &brokenRunner{}, 1
	w.start(assign("j1", "bad"))
	w.wg.Wait()
	w.mu.Lock()
	r := w.pending[attemptKey{"j1", 1}]
	w.mu.Unlock()
	if r == nil || !strings.Contains(r.Error, "-x.c") {
		t.Fatalf("result %v: want the job failed with its own error", r)
	}
	if w.isUnhealthy() || w.health.failures != 0 {
		t.Error("a bad job counted as an infrastructure failure")
	}
}
