package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/grappe/grappe/internal/store"
)

// step is something done to job id: a setup step or the call under test.
type step func(t *testing.T, s store.Store, id string) error

func start(attempt int, worker string) step {
	return func(t *testing.T, s store.Store, id string) error {
		return s.StartAttempt(t.Context(), id, attempt, ref(worker), at(10+attempt))
	}
}

// requeue and finish act as w1, the worker every refusal case starts
// its first attempt on; requeueBy and finishBy as any worker.
func requeue(attempt int) step { return requeueBy(attempt, ref("w1")) }

func requeueBy(attempt int, w store.WorkerRef) step {
	return func(t *testing.T, s store.Store, id string) error {
		return s.RequeueAttempt(t.Context(), id, attempt, w, store.Requeue{Reason: fmt.Sprintf("attempt %d: worker lost", attempt)})
	}
}

func finish(attempt int, status string) step { return finishBy(attempt, ref("w1"), status) }

func finishBy(attempt int, w store.WorkerRef, status string) step {
	return func(t *testing.T, s store.Store, id string) error {
		_, err := s.FinishAttempt(t.Context(), id, attempt, w, store.Finish{
			Status: status, Verdict: "ok", Version: "late", Result: []byte(`{"late":true}`), At: at(50),
		})
		return err
	}
}

func finishQueued(status string) step {
	return func(t *testing.T, s store.Store, id string) error {
		return s.FinishQueued(t.Context(), id, store.Finish{
			Status: status, Error: "cancelled", Result: []byte(`{"late":true}`), At: at(50),
		})
	}
}

// steps lists setup steps, applied in order to a fresh queued job.
func steps(ss ...step) []step { return ss }

// refusal is a transition that must fail and leave the job untouched.
type refusal struct {
	name  string
	setup []step // from a fresh queued job
	call  step
	want  error // the sentinel wanted; nil means any error
}

// runRefusals runs each case on its own job, then the call on a job that
// does not exist, which must be ErrNotFound.
func runRefusals(t *testing.T, s store.Store, call step, cases []refusal) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := jobID(i + 1)
			mustCreate(t, s, newJob(id, "alice", at(0)))
			for k, st := range tc.setup {
				if err := st(t, s, id); err != nil {
					t.Fatalf("setup step %d: %v", k, err)
				}
			}
			before := mustGet(t, s, id)
			err := tc.call(t, s, id)
			switch {
			case err == nil:
				t.Errorf("no error, want %v", describe(tc.want))
			case tc.want != nil:
				wantErr(t, "call", err, tc.want)
			}
			checkJob(t, mustGet(t, s, id), before)
		})
	}
	t.Run("missing job", func(t *testing.T) {
		wantErr(t, "call on a missing job", call(t, s, "no-such-job"), store.ErrNotFound)
	})
}

func describe(err error) string {
	if err == nil {
		return "an error"
	}
	return err.Error()
}

func testStartAttempt(t *testing.T, s store.Store) {
	want := newJob(jobID(1), "alice", at(0))
	mustCreate(t, s, want)
	mustStart(t, s, want.ID, 1, "w1", at(5))
	want.Status, want.Attempts, want.Worker, want.StartedAt = store.StatusRunning, 1, "w1", at(5)
	want.WorkerIdentity = ref("w1").Identity
	checkJob(t, mustGet(t, s, want.ID), want)
}

func testStartAttemptConflicts(t *testing.T, s store.Store) {
	runRefusals(t, s, start(1, "w9"), []refusal{
		{"attempt skips ahead", nil, start(2, "w9"), store.ErrConflict},
		{"attempt zero", nil, start(0, "w9"), store.ErrConflict},
		{"negative attempt", nil, start(-1, "w9"), store.ErrConflict},
		{"already running this attempt", steps(start(1, "w1")), start(1, "w9"), store.ErrConflict},
		{"already running, next attempt", steps(start(1, "w1")), start(2, "w9"), store.ErrConflict},
		{"re-queued, old attempt number", steps(start(1, "w1"), requeue(1)), start(1, "w9"), store.ErrConflict},
		{"re-queued, skips ahead", steps(start(1, "w1"), requeue(1)), start(3, "w9"), store.ErrConflict},
		{"done", steps(start(1, "w1"), finish(1, store.StatusDone)), start(2, "w9"), store.ErrConflict},
		{"cancelled while queued", steps(finishQueued(store.StatusCancelled)), start(1, "w9"), store.ErrConflict},
	})
}

func testRequeueAttempt(t *testing.T, s store.Store) {
	want := newJob(jobID(1), "alice", at(0))
	mustCreate(t, s, want)
	mustStart(t, s, want.ID, 1, "w1", at(5))
	if err := s.RequeueAttempt(t.Context(), want.ID, 1, ref("w1"), store.Requeue{Reason: "worker w1 lost"}); err != nil {
		t.Fatalf("RequeueAttempt: %v", err)
	}
	// Back in the queue; the attempt count and the last worker stay.
	want.Attempts, want.Worker, want.StartedAt, want.Error = 1, "w1", at(5), "worker w1 lost"
	want.WorkerIdentity = ref("w1").Identity
	checkJob(t, mustGet(t, s, want.ID), want)

	// The next attempt runs elsewhere; StartedAt keeps the first start.
	mustStart(t, s, want.ID, 2, "w2", at(9))
	got := mustGet(t, s, want.ID)
	if got.Status != store.StatusRunning || got.Attempts != 2 || got.Worker != "w2" {
		t.Errorf("after restart: status %q attempts %d worker %q, want running 2 w2", got.Status, got.Attempts, got.Worker)
	}
	checkTime(t, "StartedAt after restart", got.StartedAt, at(5))

	mustFinish(t, s, want.ID, 2, "w2", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(12)})
	if got := mustGet(t, s, want.ID); got.Status != store.StatusDone || got.Attempts != 2 {
		t.Errorf("after finishing attempt 2: status %q attempts %d, want done 2", got.Status, got.Attempts)
	}
}

func testRequeueAttemptConflicts(t *testing.T, s store.Store) {
	runRefusals(t, s, requeue(1), []refusal{
		{"never started", nil, requeue(1), store.ErrConflict},
		{"attempt zero of a queued job", nil, requeue(0), store.ErrConflict},
		{"other attempt running", steps(start(1, "w1")), requeue(2), store.ErrConflict},
		{"already re-queued", steps(start(1, "w1"), requeue(1)), requeue(1), store.ErrConflict},
		{"stale attempt", steps(start(1, "w1"), requeue(1), start(2, "w2")), requeue(1), store.ErrConflict},
		{"done", steps(start(1, "w1"), finish(1, store.StatusDone)), requeue(1), store.ErrConflict},
		{"cancelled", steps(finishQueued(store.StatusCancelled)), requeue(0), store.ErrConflict},
	})
}

func testFinishAttempt(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name        string
		f           store.Finish
		wantVersion string
	}{
		{"done with toolchain version",
			store.Finish{Status: store.StatusDone, Verdict: "ok", Version: "3.12.1", Result: []byte(`{"run":{"stdout":"1\n"}}`), At: at(8)},
			"3.12.1"},
		{"failed keeps the requested version",
			store.Finish{Status: store.StatusFailed, Error: "sandbox setup failed", At: at(8)},
			">=3.10"},
		{"cancelled while running",
			store.Finish{Status: store.StatusCancelled, Error: "cancelled by alice", Result: []byte(`{}`), At: at(8)},
			">=3.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := newJob("job-"+tc.f.Status, "alice", at(0))
			mustCreate(t, s, want)
			mustStart(t, s, want.ID, 1, "w1", at(5))
			returned := mustFinish(t, s, want.ID, 1, "w1", tc.f)
			want.Status, want.Verdict, want.Error = tc.f.Status, tc.f.Verdict, tc.f.Error
			want.Version, want.Result = tc.wantVersion, tc.f.Result
			want.Attempts, want.Worker, want.StartedAt, want.FinishedAt = 1, "w1", at(5), at(8)
			want.WorkerIdentity = ref("w1").Identity
			checkJob(t, mustGet(t, s, want.ID), want)
			// The job FinishAttempt returns is the one stored.
			checkJob(t, returned, want)
		})
	}
}

func testFinishAttemptExactlyOnce(t *testing.T, s store.Store) {
	id := jobID(1)
	mustCreate(t, s, newJob(id, "alice", at(0)))
	mustStart(t, s, id, 1, "w1", at(5))
	mustFinish(t, s, id, 1, "w1", store.Finish{Status: store.StatusDone, Verdict: "ok", Result: []byte(`{"first":true}`), At: at(8)})
	want := mustGet(t, s, id)

	// The worker's result arrives twice (a retried send, a reconnect).
	for _, f := range []store.Finish{
		{Status: store.StatusDone, Verdict: "ok", Result: []byte(`{"first":true}`), At: at(9)},
		{Status: store.StatusDone, Verdict: "wrong_answer", Result: []byte(`{"second":true}`), At: at(9)},
		{Status: store.StatusFailed, Error: "late failure", At: at(9)},
	} {
		j, err := s.FinishAttempt(t.Context(), id, 1, ref("w1"), f)
		wantErr(t, "second FinishAttempt", err, store.ErrConflict)
		if j != nil {
			t.Errorf("a refused FinishAttempt returned a job: %+v", j)
		}
	}
	checkJob(t, mustGet(t, s, id), want)
}

func testFinishAttemptStale(t *testing.T, s store.Store) {
	id := jobID(1)
	mustCreate(t, s, newJob(id, "alice", at(0)))
	mustStart(t, s, id, 1, "w1", at(5))
	if err := s.RequeueAttempt(t.Context(), id, 1, ref("w1"), store.Requeue{Reason: "w1 lost"}); err != nil {
		t.Fatalf("RequeueAttempt: %v", err)
	}
	// w1 was not dead after all: its result comes while the job waits...
	stale := store.Finish{Status: store.StatusDone, Verdict: "ok", Result: []byte(`{"from":"w1"}`), At: at(7)}
	wantErr(t, "stale FinishAttempt while re-queued", finishErr(s.FinishAttempt(t.Context(), id, 1, ref("w1"), stale)), store.ErrConflict)
	// ...and while attempt 2 runs.
	mustStart(t, s, id, 2, "w2", at(8))
	running := mustGet(t, s, id)
	wantErr(t, "stale FinishAttempt while attempt 2 runs", finishErr(s.FinishAttempt(t.Context(), id, 1, ref("w1"), stale)), store.ErrConflict)
	checkJob(t, mustGet(t, s, id), running)

	mustFinish(t, s, id, 2, "w2", store.Finish{Status: store.StatusDone, Verdict: "ok", Result: []byte(`{"from":"w2"}`), At: at(9)})
	done := mustGet(t, s, id)
	wantErr(t, "stale FinishAttempt after attempt 2 finished", finishErr(s.FinishAttempt(t.Context(), id, 1, ref("w1"), stale)), store.ErrConflict)
	checkJob(t, mustGet(t, s, id), done)
	if string(done.Result) != `{"from":"w2"}` || done.Worker != "w2" {
		t.Errorf("recorded result %s from %q, want attempt 2's from w2", done.Result, done.Worker)
	}
}

func testFinishAttemptConflicts(t *testing.T, s store.Store) {
	runRefusals(t, s, finish(1, store.StatusDone), []refusal{
		{"queued", nil, finish(1, store.StatusDone), store.ErrConflict},
		{"queued, attempt zero", nil, finish(0, store.StatusDone), store.ErrConflict},
		{"other attempt running", steps(start(1, "w1")), finish(2, store.StatusDone), store.ErrConflict},
		{"cancelled", steps(finishQueued(store.StatusCancelled)), finish(0, store.StatusDone), store.ErrConflict},
		// Not terminal: no "finish" may put a job back in play.
		{"status running", steps(start(1, "w1")), finish(1, store.StatusRunning), nil},
		{"status queued", steps(start(1, "w1")), finish(1, store.StatusQueued), nil},
		{"status empty", steps(start(1, "w1")), finish(1, ""), nil},
		{"status unknown", steps(start(1, "w1")), finish(1, "exploded"), nil},
	})
}

func testFinishQueued(t *testing.T, s store.Store) {
	// A cancel before the job ever ran.
	want := newJob(jobID(1), "alice", at(0))
	mustCreate(t, s, want)
	f := store.Finish{Status: store.StatusCancelled, Error: "cancelled by alice", At: at(3)}
	if err := s.FinishQueued(t.Context(), want.ID, f); err != nil {
		t.Fatalf("FinishQueued: %v", err)
	}
	want.Status, want.Error, want.FinishedAt = store.StatusCancelled, f.Error, at(3)
	checkJob(t, mustGet(t, s, want.ID), want)

	// Out of attempts while waiting in the queue: attempts and the last
	// worker are kept for the record.
	want = newJob(jobID(2), "alice", at(0))
	mustCreate(t, s, want)
	mustStart(t, s, want.ID, 1, "w1", at(5))
	if err := s.RequeueAttempt(t.Context(), want.ID, 1, ref("w1"), store.Requeue{Reason: "w1 lost"}); err != nil {
		t.Fatalf("RequeueAttempt: %v", err)
	}
	f = store.Finish{Status: store.StatusFailed, Error: "no worker runs python", Result: []byte(`{"x":1}`), At: at(7)}
	if err := s.FinishQueued(t.Context(), want.ID, f); err != nil {
		t.Fatalf("FinishQueued: %v", err)
	}
	want.Status, want.Error, want.Result = store.StatusFailed, f.Error, f.Result
	want.Attempts, want.Worker, want.StartedAt, want.FinishedAt = 1, "w1", at(5), at(7)
	want.WorkerIdentity = ref("w1").Identity
	checkJob(t, mustGet(t, s, want.ID), want)
}

func testFinishQueuedConflicts(t *testing.T, s store.Store) {
	runRefusals(t, s, finishQueued(store.StatusCancelled), []refusal{
		{"running", steps(start(1, "w1")), finishQueued(store.StatusCancelled), store.ErrConflict},
		{"done", steps(start(1, "w1"), finish(1, store.StatusDone)), finishQueued(store.StatusCancelled), store.ErrConflict},
		{"cancelled twice", steps(finishQueued(store.StatusCancelled)), finishQueued(store.StatusCancelled), store.ErrConflict},
		{"failed", steps(finishQueued(store.StatusFailed)), finishQueued(store.StatusCancelled), store.ErrConflict},
		{"status running", nil, finishQueued(store.StatusRunning), nil},
		{"status queued", nil, finishQueued(store.StatusQueued), nil},
		{"status empty", nil, finishQueued(""), nil},
	})
}

// race runs fn(i) for i in [0, n) in n goroutines released together, and
// returns their errors by i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			errs[i] = fn(i)
		})
	}
	close(gate)
	wg.Wait()
	return errs
}

// winner checks that exactly one error is nil and every other is
// ErrConflict, and returns the winner's index.
func winner(t *testing.T, what string, errs []error) int {
	t.Helper()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("%s: callers %d and %d both succeeded", what, won, i)
		case err == nil:
			won = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("%s: caller %d: %v, want ErrConflict", what, i, err)
		}
	}
	if won < 0 {
		t.Fatalf("%s: no caller succeeded", what)
	}
	return won
}

func testConcurrentFinish(t *testing.T, s store.Store) {
	const n = 50
	id := jobID(1)
	mustCreate(t, s, newJob(id, "alice", at(0)))
	mustStart(t, s, id, 1, "w1", at(5))
	result := func(i int) []byte { return fmt.Appendf(nil, `{"sender":%d}`, i) }
	errs := race(n, func(i int) error {
		_, err := s.FinishAttempt(t.Context(), id, 1, ref("w1"), store.Finish{
			Status: store.StatusDone, Verdict: "ok", Result: result(i), At: at(10 + i),
		})
		return err
	})
	w := winner(t, "FinishAttempt", errs)
	got := mustGet(t, s, id)
	if string(got.Result) != string(result(w)) {
		t.Errorf("recorded result %s, want the winner's %s", got.Result, result(w))
	}
	checkTime(t, "FinishedAt", got.FinishedAt, at(10+w))
}

func testConcurrentStart(t *testing.T, s store.Store) {
	const n = 50
	id := jobID(1)
	mustCreate(t, s, newJob(id, "alice", at(0)))
	worker := func(i int) string { return fmt.Sprintf("w%d", i) }
	errs := race(n, func(i int) error {
		return s.StartAttempt(t.Context(), id, 1, ref(worker(i)), at(5))
	})
	w := winner(t, "StartAttempt", errs)
	if got := mustGet(t, s, id); got.Worker != worker(w) || got.Attempts != 1 {
		t.Errorf("job runs attempt %d on %q, want attempt 1 on the winner %q", got.Attempts, got.Worker, worker(w))
	}
}

// intruder is a worker that must never move w1's attempts: another
// name, or w1's name under another identity (a re-join after a revoke,
// or a join-token join that should have been refused).
func intruders() []store.WorkerRef {
	return []store.WorkerRef{ref("w9"), {Name: "w1", Identity: "lineage-other"}}
}

func testAttemptOwnership(t *testing.T, s store.Store) {
	var cases []refusal
	for _, w := range intruders() {
		who := w.Name + "/" + w.Identity
		cases = append(cases,
			refusal{"finish by " + who, steps(start(1, "w1")), finishBy(1, w, store.StatusDone), store.ErrConflict},
			refusal{"requeue by " + who, steps(start(1, "w1")), requeueBy(1, w), store.ErrConflict},
			// The attack of issue 11: w1 got attempt 1, gave it back, and
			// reports on attempt 2, which runs on w2.
			refusal{"finish of the next attempt by " + who, steps(start(1, "w1"), requeue(1), start(2, "w2")), finishBy(2, w, store.StatusDone), store.ErrConflict},
		)
	}
	cases = append(cases,
		refusal{"finish of the next attempt by the first worker", steps(start(1, "w1"), requeue(1), start(2, "w2")), finish(2, store.StatusDone), store.ErrConflict},
		refusal{"requeue of the next attempt by the first worker", steps(start(1, "w1"), requeue(1), start(2, "w2")), requeue(2), store.ErrConflict},
	)
	runRefusals(t, s, finish(1, store.StatusDone), cases)
}

func testReleasedAttempts(t *testing.T, s store.Store) {
	id := jobID(1)
	mustCreate(t, s, newJob(id, "alice", at(0)))
	give := func(attempt int, w string, released bool) {
		t.Helper()
		mustStart(t, s, id, attempt, w, at(attempt))
		if err := s.RequeueAttempt(t.Context(), id, attempt, ref(w), store.Requeue{Reason: "given back", Released: released}); err != nil {
			t.Fatalf("RequeueAttempt %d: %v", attempt, err)
		}
	}
	give(1, "w1", true)  // a worker shutting down
	give(2, "w2", false) // a lost worker: counts
	give(3, "w1", true)
	got := mustGet(t, s, id)
	if got.Attempts != 3 || got.Released != 2 || got.Status != store.StatusQueued {
		t.Fatalf("after three attempts, two released: attempts %d released %d status %s, want 3 2 queued",
			got.Attempts, got.Released, got.Status)
	}
	// A refused requeue counts nothing.
	mustStart(t, s, id, 4, "w2", at(4))
	err := s.RequeueAttempt(t.Context(), id, 4, ref("w1"), store.Requeue{Reason: "forged", Released: true})
	wantErr(t, "release by another worker", err, store.ErrConflict)
	if got := mustGet(t, s, id); got.Released != 2 || got.Status != store.StatusRunning {
		t.Errorf("after a refused release: released %d status %s, want 2 running", got.Released, got.Status)
	}
	// Released survives the finish.
	j := mustFinish(t, s, id, 4, "w2", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(9)})
	if j.Released != 2 || j.Attempts != 4 || j.WorkerIdentity != ref("w2").Identity {
		t.Errorf("finished job: released %d attempts %d identity %q", j.Released, j.Attempts, j.WorkerIdentity)
	}
}

func testIncompleteWorkerRef(t *testing.T, s store.Store) {
	id := jobID(1)
	mustCreate(t, s, newJob(id, "alice", at(0)))
	if err := s.StartAttempt(t.Context(), id, 1, store.WorkerRef{Name: "w1"}, at(1)); err == nil {
		t.Error("StartAttempt without an identity succeeded")
	}
	mustStart(t, s, id, 1, "w1", at(1))
	if _, err := s.FinishAttempt(t.Context(), id, 1, store.WorkerRef{Name: "w1"}, store.Finish{Status: store.StatusDone, At: at(2)}); err == nil {
		t.Error("FinishAttempt without an identity succeeded")
	}
	if err := s.RequeueAttempt(t.Context(), id, 1, store.WorkerRef{Identity: ref("w1").Identity}, store.Requeue{Reason: "x"}); err == nil {
		t.Error("RequeueAttempt without a name succeeded")
	}
	if got := mustGet(t, s, id); got.Status != store.StatusRunning {
		t.Errorf("status %s, want running", got.Status)
	}
}
