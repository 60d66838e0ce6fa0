package jobs_test

import (
	"errors"
	"testing"

	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

func batchOf(owner string, n int) jobs.Batch {
	b := jobs.Batch{Owner: owner}
	for range n {
		b.Jobs = append(b.Jobs, jobs.Submission{Language: "python", Request: []byte(`{"language":"python","source":"print(1)"}`)})
	}
	return b
}

// TestSubmitBatch: a batch's jobs are queued together and run like any
// other; a retry with its key finds it; one past the quota is refused
// whole; CancelBatch cancels what has not finished.
func TestSubmitBatch(t *testing.T) {
	h := newHarness(t, func(c *jobs.Config) { c.MaxQueuedPerUser = 5 })
	ctx := t.Context()
	b := batchOf("alice", 3)
	b.IdempotencyKey = "k1"
	b.Jobs[1].CallbackURL = "https://example.com/one"
	sb, sjs, err := h.core.SubmitBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(sjs) != 3 || len(sb.JobIDs) != 3 || sjs[0].Status != store.StatusQueued || sjs[0].MaxAttempts != jobs.DefaultMaxAttempts {
		t.Fatalf("SubmitBatch = %+v %v", sb, sjs)
	}
	if c, err := h.store.GetCallback(ctx, store.CallbackJob, sjs[1].ID); err != nil || c.URL != "https://example.com/one" {
		t.Errorf("job callback: %+v %v", c, err)
	}
	again, _, err := h.core.SubmitBatch(ctx, b)
	if err != nil || again.ID != sb.ID {
		t.Fatalf("retried batch: %+v %v, want %s", again, err, sb.ID)
	}
	other := b
	other.Owner = "bob"
	if ob, _, err := h.core.SubmitBatch(ctx, other); err != nil || ob.ID == sb.ID {
		t.Errorf("bob's batch with alice's key: %+v %v", ob, err)
	}
	if _, _, err := h.core.SubmitBatch(ctx, batchOf("alice", 3)); !errors.Is(err, jobs.ErrRateLimited) {
		t.Fatalf("batch past the quota: %v", err)
	}
	if _, _, err := h.core.SubmitBatch(ctx, batchOf("alice", 0)); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("empty batch: %v", err)
	}

	w := h.connect("w1", 1)
	h.dispatch()
	if _, err := h.finish(w, sjs[0].ID, 1); err != nil {
		t.Fatal(err)
	}
	h.dispatch() // the second starts
	_, cancelled, err := h.core.CancelBatch(ctx, sb.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cancelled[0].Status, cancelled[1].Status, cancelled[2].Status}
	if got[0] != store.StatusDone || got[1] != store.StatusCancelled || got[2] != store.StatusCancelled {
		t.Errorf("after CancelBatch: %v, want done, cancelled, cancelled", got)
	}
	if _, _, err := h.core.CancelBatch(ctx, "nope", "alice"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("CancelBatch(unknown): %v", err)
	}
}
