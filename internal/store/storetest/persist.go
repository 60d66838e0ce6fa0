package storetest

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/grappe/grappe/internal/store"
)

// testSurvivesReopen writes jobs in every state, a user and a token, closes
// the store and checks a new one on the same path sees all of it and keeps
// working: the master restarting must lose no accepted job.
func testSurvivesReopen(t *testing.T, open func(t *testing.T, path string) store.Store) {
	path := filepath.Join(t.TempDir(), "grappe.db")
	var cur store.Store
	t.Cleanup(func() { // only if a Fatal skipped the explicit Close
		if cur != nil {
			cur.Close()
		}
	})
	reopen := func() store.Store {
		t.Helper()
		if cur != nil {
			if err := cur.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		cur = open(t, path)
		return cur
	}

	s := reopen()
	queued := newJob(jobID(1), "alice", at(1))
	queued.Labels = map[string]string{"zone": "eu"}
	running := newJob(jobID(2), "alice", at(2))
	done := newJob(jobID(3), "bob", at(3))
	for _, j := range []*store.Job{queued, running, done} {
		mustCreate(t, s, j)
	}
	mustStart(t, s, running.ID, 1, "w1", at(10))
	mustStart(t, s, done.ID, 1, "w2", at(11))
	mustFinish(t, s, done.ID, 1, "w2", store.Finish{
		Status: store.StatusDone, Verdict: "ok", Version: "3.12", Result: []byte(`{"run":{}}`), At: at(12),
	})
	user := &store.User{Name: "alice", Role: "admin", PasswordHash: "h", CreatedAt: at(0)}
	mustPutUser(t, s, user)
	tok := newToken("t1", "alice", 1)
	mustCreateToken(t, s, tok)
	before := map[string]*store.Job{}
	for _, id := range []string{queued.ID, running.ID, done.ID} {
		before[id] = mustGet(t, s, id)
	}

	s = reopen()
	for id, want := range before {
		checkJob(t, mustGet(t, s, id), want)
	}
	unfinished, err := s.Unfinished(t.Context())
	if err != nil {
		t.Fatalf("Unfinished after reopen: %v", err)
	}
	if want := []string{queued.ID, running.ID}; !slices.Equal(ids(unfinished), want) {
		t.Errorf("Unfinished after reopen = %v, want %v", ids(unfinished), want)
	}
	gotUser, err := s.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser after reopen: %v", err)
	}
	checkUser(t, gotUser, user)
	gotTok, err := s.TokenByHash(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("TokenByHash after reopen: %v", err)
	}
	checkToken(t, gotTok, tok)

	// Work goes on where it stopped: the running attempt can finish, the
	// finished one still cannot, and new jobs list as newest.
	mustFinish(t, s, running.ID, 1, "w1", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(20)})
	wantErr(t, "FinishAttempt of a job finished before reopen",
		finishErr(s.FinishAttempt(t.Context(), done.ID, 1, ref("w2"), store.Finish{Status: store.StatusFailed, At: at(20)})),
		store.ErrConflict)
	mustCreate(t, s, newJob(jobID(4), "alice", at(21)))

	s = reopen()
	jobs, err := s.ListJobs(t.Context(), store.ListFilter{})
	if err != nil {
		t.Fatalf("ListJobs after second reopen: %v", err)
	}
	if want := []string{jobID(4), jobID(3), jobID(2), jobID(1)}; !slices.Equal(ids(jobs), want) {
		t.Errorf("ListJobs after second reopen = %v, want %v", ids(jobs), want)
	}
	if got := mustGet(t, s, running.ID); got.Status != store.StatusDone {
		t.Errorf("job finished before the second reopen is %q, want done", got.Status)
	}
	if err := cur.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	cur = nil
}
