package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/grappe/grappe/internal/store"
)

func cancelQueued(t *testing.T, s store.Store, id string, when int) {
	t.Helper()
	if err := s.FinishQueued(t.Context(), id, store.Finish{Status: store.StatusCancelled, At: at(when)}); err != nil {
		t.Fatalf("FinishQueued(%q): %v", id, err)
	}
}

func newBatch(id, owner string, jobs ...string) *store.NewJobs {
	n := &store.NewJobs{Batch: &store.Batch{ID: id, Owner: owner, CreatedAt: at(0)}}
	for _, j := range jobs {
		n.Jobs = append(n.Jobs, newJob(j, owner, at(0)))
	}
	return n
}

func claimKeys(cs []*store.Callback) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind+":"+c.Target)
	}
	return out
}

// testBatch: a batch's jobs, its row and its callback are created
// together, read back in submission order; a conflict on any job creates
// nothing.
func testBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := newBatch("b1", "alice", "j3", "j1", "j2")
	n.Callbacks = []*store.Callback{{Kind: store.CallbackBatch, Target: "b1", Owner: "alice", URL: "https://example.com/hook", CreatedAt: at(0)}}
	if err := s.CreateJobs(ctx, n, 0); err != nil {
		t.Fatalf("CreateJobs: %v", err)
	}
	if n.Jobs[0].Seq == 0 || n.Jobs[2].Seq <= n.Jobs[0].Seq {
		t.Errorf("Seq not set in order: %d, %d", n.Jobs[0].Seq, n.Jobs[2].Seq)
	}
	b, jobs, err := s.GetBatch(ctx, "b1")
	if err != nil {
		t.Fatalf("GetBatch: %v", err)
	}
	if b.Owner != "alice" || !b.CreatedAt.Equal(at(0)) || !slices.Equal(b.JobIDs, []string{"j3", "j1", "j2"}) {
		t.Errorf("GetBatch = %+v", b)
	}
	if len(jobs) != 3 || jobs[0].ID != "j3" || jobs[0].Status != store.StatusQueued || string(jobs[0].Request) == "" {
		t.Errorf("GetBatch jobs = %v", claimKeysJobs(jobs))
	}
	c, err := s.GetCallback(ctx, store.CallbackBatch, "b1")
	if err != nil {
		t.Fatalf("GetCallback: %v", err)
	}
	if c.URL != "https://example.com/hook" || c.Owner != "alice" || !c.Pending() || c.Attempts != 0 {
		t.Errorf("GetCallback = %+v", c)
	}
	_, _, err = s.GetBatch(ctx, "nope")
	wantErr(t, "GetBatch(missing)", err, store.ErrNotFound)
	_, err = s.GetCallback(ctx, store.CallbackJob, "j1")
	wantErr(t, "GetCallback(none)", err, store.ErrNotFound)

	// j1 exists: the whole second batch is refused, its new jobs too.
	dup := newBatch("b2", "alice", "j4", "j1")
	err = s.CreateJobs(ctx, dup, 0)
	wantErr(t, "CreateJobs(duplicate job)", err, store.ErrConflict)
	if _, err := s.GetJob(ctx, "j4"); err == nil {
		t.Error("a refused batch left its first job")
	}
	_, _, err = s.GetBatch(ctx, "b2")
	wantErr(t, "GetBatch(refused)", err, store.ErrNotFound)

	// A job with a callback and no batch.
	one := &store.NewJobs{Jobs: []*store.Job{newJob("j5", "bob", at(1))},
		Callbacks: []*store.Callback{{Kind: store.CallbackJob, Target: "j5", Owner: "bob", URL: "http://h/", Format: "judge0"}}}
	if err := s.CreateJobs(ctx, one, 0); err != nil {
		t.Fatalf("CreateJobs(one): %v", err)
	}
	if c, err := s.GetCallback(ctx, store.CallbackJob, "j5"); err != nil || c.Format != "judge0" {
		t.Errorf("GetCallback(j5) = %+v, %v", c, err)
	}
}

func claimKeysJobs(jobs []*store.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.ID+":"+j.Status)
	}
	return out
}

// testBatchQuota: a batch that would take its owner past the quota is
// refused whole.
func testBatchQuota(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.CreateJob(ctx, newJob("a0", "alice", at(0)), 0); err != nil {
		t.Fatal(err)
	}
	err := s.CreateJobs(ctx, newBatch("b1", "alice", "a1", "a2", "a3"), 3)
	wantErr(t, "CreateJobs over the quota", err, store.ErrQuota)
	if n, _ := s.QueuedByOwner(ctx, "alice"); n != 1 {
		t.Errorf("queued after a refused batch = %d, want 1", n)
	}
	if err := s.CreateJobs(ctx, newBatch("b2", "alice", "a1", "a2"), 3); err != nil {
		t.Errorf("CreateJobs up to the quota: %v", err)
	}
}

// testCallbackDelivery: a callback is due once its job is finished (all of
// its batch's jobs for a batch), leased to one master at a time, retried
// when told, and recorded once delivered or given up.
func testCallbackDelivery(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := newBatch("b1", "alice", "j1", "j2")
	n.Callbacks = []*store.Callback{
		{Kind: store.CallbackJob, Target: "j1", Owner: "alice", URL: "http://a/"},
		{Kind: store.CallbackBatch, Target: "b1", Owner: "alice", URL: "http://b/"},
	}
	if err := s.CreateJobs(ctx, n, 0); err != nil {
		t.Fatal(err)
	}
	claim := func(master string, now, until int) []string {
		t.Helper()
		cs, err := s.ClaimCallbacks(ctx, master, at(now), at(until), 10)
		if err != nil {
			t.Fatalf("ClaimCallbacks(%s): %v", master, err)
		}
		for _, c := range cs {
			if c.Master != master || !c.LeaseUntil.Equal(at(until)) {
				t.Errorf("claimed %s:%s with lease %s until %v", c.Kind, c.Target, c.Master, c.LeaseUntil)
			}
		}
		return claimKeys(cs)
	}
	if got := claim("m1", 1, 10); len(got) != 0 {
		t.Fatalf("claimed %v before any job finished", got)
	}
	cancelQueued(t, s, "j1", 2)
	if got := claim("m1", 3, 10); !slices.Equal(got, []string{"job:j1"}) {
		t.Fatalf("claim after j1 finished = %v, want job:j1 alone (j2 still queued)", got)
	}
	if got := claim("m2", 4, 10); len(got) != 0 {
		t.Fatalf("m2 claimed %v under m1's lease", got)
	}
	err := s.RecordCallback(ctx, store.CallbackJob, "j1", "m2", store.CallbackAttempt{At: at(4), Delivered: true})
	wantErr(t, "RecordCallback by a master without the lease", err, store.ErrConflict)
	err = s.RecordCallback(ctx, store.CallbackJob, "nope", "m1", store.CallbackAttempt{At: at(4), Delivered: true})
	wantErr(t, "RecordCallback(missing)", err, store.ErrNotFound)

	// A failed attempt: retried at 20, not before.
	if err := s.RecordCallback(ctx, store.CallbackJob, "j1", "m1", store.CallbackAttempt{At: at(5), Status: 500, Error: "HTTP 500", Retry: at(20)}); err != nil {
		t.Fatalf("RecordCallback(retry): %v", err)
	}
	c, _ := s.GetCallback(ctx, store.CallbackJob, "j1")
	if c.Attempts != 1 || c.LastStatus != 500 || c.LastError != "HTTP 500" || !c.FirstAt.Equal(at(5)) || !c.NextAt.Equal(at(20)) || !c.Pending() {
		t.Errorf("after a failed attempt: %+v", c)
	}
	if got := claim("m2", 19, 30); len(got) != 0 {
		t.Fatalf("claimed %v before its retry time", got)
	}
	// A lease that ran out is taken over.
	if got := claim("m2", 20, 25); !slices.Equal(got, []string{"job:j1"}) {
		t.Fatalf("claim at the retry time = %v", got)
	}
	if got := claim("m1", 26, 40); !slices.Equal(got, []string{"job:j1"}) {
		t.Fatalf("claim after m2's lease ran out = %v", got)
	}
	err = s.RecordCallback(ctx, store.CallbackJob, "j1", "m2", store.CallbackAttempt{At: at(27), Delivered: true})
	wantErr(t, "RecordCallback by the master whose lease was taken over", err, store.ErrConflict)
	if err := s.RecordCallback(ctx, store.CallbackJob, "j1", "m1", store.CallbackAttempt{At: at(27), Status: 204, Delivered: true}); err != nil {
		t.Fatalf("RecordCallback(delivered): %v", err)
	}
	c, _ = s.GetCallback(ctx, store.CallbackJob, "j1")
	if c.Attempts != 2 || !c.DeliveredAt.Equal(at(27)) || c.Pending() || !c.FirstAt.Equal(at(5)) || c.LastStatus != 204 || c.LastError != "" {
		t.Errorf("after delivery: %+v", c)
	}
	if got := claim("m1", 100, 110); len(got) != 0 {
		t.Fatalf("claimed %v after delivery", got)
	}
	err = s.RecordCallback(ctx, store.CallbackJob, "j1", "m1", store.CallbackAttempt{At: at(28), Delivered: true})
	wantErr(t, "RecordCallback after delivery", err, store.ErrConflict)

	// The batch's is due once its last job finishes; a give-up ends it.
	cancelQueued(t, s, "j2", 30)
	if got := claim("m1", 31, 40); !slices.Equal(got, []string{"batch:b1"}) {
		t.Fatalf("claim after the batch finished = %v", got)
	}
	if err := s.RecordCallback(ctx, store.CallbackBatch, "b1", "m1", store.CallbackAttempt{At: at(32), Error: "connection refused"}); err != nil {
		t.Fatalf("RecordCallback(give up): %v", err)
	}
	c, _ = s.GetCallback(ctx, store.CallbackBatch, "b1")
	if !c.FailedAt.Equal(at(32)) || c.Pending() || c.LastError != "connection refused" {
		t.Errorf("after giving up: %+v", c)
	}
	if got := claim("m1", 100, 110); len(got) != 0 {
		t.Fatalf("claimed %v after giving up", got)
	}
}

// testSharedCallbackOnce: deliverers on both handles claim at once; every
// due callback is leased to exactly one of them.
func testSharedCallbackOnce(t *testing.T, s [2]store.Store) {
	const n, claimers = 120, 6
	ctx := t.Context()
	for i := range n {
		id := jobID(i)
		one := &store.NewJobs{Jobs: []*store.Job{newJob(id, "alice", at(i))},
			Callbacks: []*store.Callback{{Kind: store.CallbackJob, Target: id, Owner: "alice", URL: "http://h/"}}}
		if err := s[i%2].CreateJobs(ctx, one, 0); err != nil {
			t.Fatal(err)
		}
		cancelQueued(t, s[i%2], id, i)
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		dup     []string
	)
	errs := race(claimers, func(c int) error {
		master := fmt.Sprintf("m%d", c)
		for {
			cs, err := s[c%2].ClaimCallbacks(ctx, master, at(1000), at(2000), 7)
			if err != nil || len(cs) == 0 {
				return err
			}
			mu.Lock()
			for _, cb := range cs {
				if prev, ok := claimed[cb.Target]; ok {
					dup = append(dup, fmt.Sprintf("%s by %s and %s", cb.Target, prev, master))
				}
				claimed[cb.Target] = master
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("ClaimCallbacks: %v", err)
		}
	}
	for _, d := range dup {
		t.Error("leased twice: " + d)
	}
	if len(claimed) != n {
		t.Errorf("%d callbacks leased, want %d", len(claimed), n)
	}
}
