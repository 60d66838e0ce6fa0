package runner

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// resultBytes is every output byte a result carries.
func resultBytes(res *Result) int64 {
	var n int64
	if c := res.Compile; c != nil {
		n += int64(len(c.Stdout) + len(c.Stderr))
	}
	for _, ex := range res.Tests {
		n += int64(len(ex.Stdout) + len(ex.Stderr))
	}
	if len(res.Tests) == 0 && res.Run != nil {
		n += int64(len(res.Run.Stdout) + len(res.Run.Stderr))
	}
	return n
}

// manyTests is a job of n tests, each writing size bytes to stdout and
// size to stderr.
func manyTests(n int, size int64) *Spec {
	prog := fmt.Sprintf("head -c %d /dev/zero; head -c %d /dev/zero >&2\n", size, size)
	spec := &Spec{
		Language: "bash",
		Files:    src(prog),
		Limits:   Limits{OutputBytes: 64 << 20, Wall: 60 * time.Second},
	}
	for range n {
		spec.Tests = append(spec.Tests, Test{})
	}
	return spec
}

// TestOutputBudget is issue 11's first attack: 40 tests each writing
// 1 MiB to stdout and 1 MiB to stderr made an 80 MiB result, past what
// the transport can carry. The whole job now stops at its budget, and
// live output stops there too.
func TestOutputBudget(t *testing.T) {
	t.Parallel()
	r := need(t, "bash")
	var streamed atomic.Int64
	res, err := r.Run(context.Background(), manyTests(40, 1<<20), func(_ int, _ string, data []byte) {
		streamed.Add(int64(len(data)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictOutputLimit {
		t.Errorf("verdict %q, want %q", res.Verdict, VerdictOutputLimit)
	}
	if n := resultBytes(res); n > DefaultTotalOutputBytes {
		t.Errorf("result holds %d output bytes, over the budget %d", n, DefaultTotalOutputBytes)
	}
	if n := streamed.Load(); n > DefaultTotalOutputBytes {
		t.Errorf("streamed %d output bytes, over the budget %d", n, DefaultTotalOutputBytes)
	}
	if len(res.Tests) >= 40 {
		t.Errorf("all %d tests ran; the job should stop at its budget", len(res.Tests))
	}
	if res.Run == nil || res.Run.Verdict != VerdictOutputLimit || !res.Run.OutputTruncated {
		t.Errorf("Run = %+v, want the test that hit the budget", res.Run)
	}
}

// TestOutputBudgetOwnLimit: a job's own total_output_kb, smaller than the
// default, is what it gets; within it, every test runs.
func TestOutputBudgetOwnLimit(t *testing.T) {
	t.Parallel()
	r := need(t, "bash")
	spec := manyTests(4, 1000)
	spec.Limits.TotalOutputBytes = 8000
	res := mustRun(t, r, spec)
	wantVerdict(t, res, VerdictOK)
	spec.Limits.TotalOutputBytes = 7999
	res = mustRun(t, r, spec)
	wantVerdict(t, res, VerdictOutputLimit)
	if n := resultBytes(res); n != 7999 {
		t.Errorf("result holds %d output bytes, want the whole budget 7999", n)
	}
}

// TestOutputBudgetWorkerMemory is the second half of the attack: 8 tests
// × 48 MiB with a small memory limit grew the worker to 2.3 GB, because
// output is buffered in the worker, outside the job's cgroup. The
// worker's heap must not grow by more than the budget and some slack. Not
// parallel, so that no other test's allocations blur the figure.
func TestOutputBudgetWorkerMemory(t *testing.T) {
	r := need(t, "bash")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	res, err := r.Run(context.Background(), manyTests(8, 48<<20), nil)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if res.Verdict != VerdictOutputLimit {
		t.Errorf("verdict %q, want %q", res.Verdict, VerdictOutputLimit)
	}
	if n := resultBytes(res); n > DefaultTotalOutputBytes {
		t.Errorf("result holds %d output bytes, over the budget %d", n, DefaultTotalOutputBytes)
	}
	const slack = 16 << 20
	t.Logf("heap in use grew by %d KiB at its peak, %d KiB allocated, %d output bytes kept",
		(int64(peak.Load())-int64(before.HeapInuse))>>10, (after.TotalAlloc-before.TotalAlloc)>>10, resultBytes(res))
	if grew := int64(peak.Load()) - int64(before.HeapInuse); grew > DefaultTotalOutputBytes+slack {
		t.Errorf("heap in use grew by %d MiB, over the budget + slack (%d MiB)", grew>>20, (DefaultTotalOutputBytes+slack)>>20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*DefaultTotalOutputBytes+slack {
		t.Errorf("allocated %d MiB for a job with an output budget of %d MiB", alloc>>20, DefaultTotalOutputBytes>>20)
	}
}
