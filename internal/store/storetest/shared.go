package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/grappe/grappe/internal/store"
)

// RunShared runs the group of tests with two handles on one database, the
// way two masters share it: every race here is between the handles, so a
// backend whose exclusion lives in one process (a mutex, a single
// connection) fails it. open must return two new handles on the same new,
// empty database; the suite closes both.
func RunShared(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	t.Helper()
	both := func(t *testing.T) [2]store.Store {
		t.Helper()
		a, b := open(t)
		t.Cleanup(func() {
			for _, s := range []store.Store{a, b} {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
		return [2]store.Store{a, b}
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, [2]store.Store)
	}{
		{"SeeEachOther", testSharedSeeEachOther},
		{"NoDoubleClaim", testSharedNoDoubleClaim},
		{"RescueOnce", testSharedRescueOnce},
		{"FinishRacingCancel", testSharedFinishRacingCancel},
		{"QuotaUnderConcurrentSubmits", testSharedQuota},
		{"OneSecretUnderConcurrentPuts", testSharedSecrets},
		{"OneLeader", testSharedOneLeader},
		{"CallbackLeasedOnce", testSharedCallbackOnce},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, both(t)) })
	}
}

// A job submitted through one handle is claimed through the other, and
// its result is read back through the first.
func testSharedSeeEachOther(t *testing.T, s [2]store.Store) {
	j := newJob(jobID(1), "alice", at(0))
	j.Version = ""
	mustCreate(t, s[0], j)
	claims := mustClaim(t, s[1], claimReq(offer("w1", 1, nil)))
	if len(claims) != 1 {
		t.Fatalf("the other handle claimed %v", claimedIDs(claims))
	}
	mustFinish(t, s[1], j.ID, 1, "w1", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(11)})
	if got := mustGet(t, s[0], j.ID); got.Status != store.StatusDone || got.Master != "m1" {
		t.Errorf("through the first handle: status %q master %q, want done m1", got.Status, got.Master)
	}
}

// Many claimers on both handles, each for workers of its own: every job
// is claimed exactly once, and by the worker the claim says.
func testSharedNoDoubleClaim(t *testing.T, s [2]store.Store) {
	const jobs, claimers = 240, 8
	for i := range jobs {
		j := newJob(jobID(i), fmt.Sprintf("user-%d", i%5), at(i))
		j.Version = ""
		mustCreate(t, s[i%2], j)
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{} // job → worker
		dup     []string
	)
	errs := race(claimers, func(c int) error {
		h := s[c%2]
		for round := 0; ; round++ {
			worker := fmt.Sprintf("w%d-%d", c, round)
			r := claimReq(offer(worker, 3, nil))
			r.Master = fmt.Sprintf("m%d", c%2)
			cs, err := h.ClaimJobs(t.Context(), r)
			if err != nil {
				return err
			}
			if len(cs) == 0 {
				return nil
			}
			mu.Lock()
			for _, cl := range cs {
				if prev, ok := claimed[cl.Job.ID]; ok {
					dup = append(dup, fmt.Sprintf("%s by %s and %s", cl.Job.ID, prev, worker))
				}
				claimed[cl.Job.ID] = worker
				if cl.Job.Worker != worker || cl.Job.Attempts != 1 {
					dup = append(dup, fmt.Sprintf("%s: stored worker %q attempt %d, claimed for %s", cl.Job.ID, cl.Job.Worker, cl.Job.Attempts, worker))
				}
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("ClaimJobs: %v", err)
		}
	}
	for _, d := range dup {
		t.Error("claimed twice: " + d)
	}
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, worker := range claimed {
		if got := mustGet(t, s[0], id); got.Worker != worker || got.Status != store.StatusRunning {
			t.Errorf("%s: stored %q on %q, want running on %q", id, got.Status, got.Worker, worker)
		}
	}
}

// Rescuers on both handles: every expired attempt comes back once.
func testSharedRescueOnce(t *testing.T, s [2]store.Store) {
	const jobs = 60
	for i := range jobs {
		j := newJob(jobID(i), "alice", at(0))
		j.Version = ""
		mustCreate(t, s[0], j)
	}
	if claims := mustClaim(t, s[1], claimReq(offer("w1", jobs, nil))); len(claims) != jobs {
		t.Fatalf("claimed %d, want %d", len(claims), jobs)
	}
	var (
		mu      sync.Mutex
		rescued = map[string]int{}
	)
	errs := race(6, func(i int) error {
		for {
			js, err := s[i%2].RescueExpired(t.Context(), at(41), "worker lost", 7)
			if err != nil || len(js) == 0 {
				return err
			}
			mu.Lock()
			for _, j := range js {
				rescued[j.ID]++
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("RescueExpired: %v", err)
		}
	}
	if len(rescued) != jobs {
		t.Errorf("%d jobs rescued, want %d", len(rescued), jobs)
	}
	for id, n := range rescued {
		if n != 1 {
			t.Errorf("%s rescued %d times", id, n)
		}
		if got := mustGet(t, s[0], id); got.Status != store.StatusQueued || got.Attempts != 1 {
			t.Errorf("%s: status %q attempts %d, want queued 1", id, got.Status, got.Attempts)
		}
	}
	if n, err := s[1].QueuedByOwner(t.Context(), "alice"); err != nil || n != jobs {
		t.Errorf("QueuedByOwner = %d, %v; want %d", n, err, jobs)
	}
}

// A worker's result through one handle (the master holding its link) and
// a cancel through the other (the master the client asked): one wins.
func testSharedFinishRacingCancel(t *testing.T, s [2]store.Store) {
	const jobs = 40
	for i := range jobs {
		j := newJob(jobID(i), "alice", at(0))
		j.Version = ""
		mustCreate(t, s[0], j)
	}
	if claims := mustClaim(t, s[0], claimReq(offer("w1", jobs, nil))); len(claims) != jobs {
		t.Fatalf("claimed %d, want %d", len(claims), jobs)
	}
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			id := jobID(i)
			fs := []store.Finish{
				{Status: store.StatusDone, Verdict: "ok", Result: []byte(`{"run":{}}`), At: at(20)},
				{Status: store.StatusCancelled, Error: "cancelled by alice", At: at(20)},
			}
			errs := race(2, func(k int) error {
				_, err := s[k].FinishAttempt(t.Context(), id, 1, ref("w1"), fs[k])
				return err
			})
			won := winner(t, id, errs)
			if got := mustGet(t, s[1-won], id); got.Status != fs[won].Status {
				t.Errorf("%s: stored %q, but %q won", id, got.Status, fs[won].Status)
			}
		})
	}
	wg.Wait()
}

// Submissions of one owner through both handles at once never overshoot
// the quota.
func testSharedQuota(t *testing.T, s [2]store.Store) {
	const quota, submits = 10, 40
	errs := race(submits, func(i int) error {
		return s[i%2].CreateJob(t.Context(), newJob(jobID(i), "alice", at(0)), quota)
	})
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, store.ErrQuota):
			t.Errorf("submit %d: %v, want nil or ErrQuota", i, err)
		}
	}
	if accepted != quota {
		t.Errorf("%d submissions accepted, want the quota, %d", accepted, quota)
	}
	for _, h := range s {
		if n, err := h.QueuedByOwner(t.Context(), "alice"); err != nil || n != quota {
			t.Errorf("QueuedByOwner = %d, %v; want %d", n, err, quota)
		}
	}
}

// Two masters starting together on a new database each put their own
// CA: both get the same one back, whoever wrote first.
func testSharedSecrets(t *testing.T, s [2]store.Store) {
	for i := range 20 {
		name := fmt.Sprintf("secret-%d", i)
		var got [2][]byte
		var wg sync.WaitGroup
		for h := range 2 {
			wg.Go(func() {
				v, err := s[h].PutSecret(t.Context(), name, []byte(fmt.Sprintf("from handle %d", h)))
				if err != nil {
					t.Errorf("PutSecret through handle %d: %v", h, err)
				}
				got[h] = v
			})
		}
		wg.Wait()
		if string(got[0]) != string(got[1]) || len(got[0]) == 0 {
			t.Fatalf("%s: the handles got %q and %q, want one value", name, got[0], got[1])
		}
	}
}
