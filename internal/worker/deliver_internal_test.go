package worker

import (
	"testing"

	"github.com/grappe/grappe/internal/clusterpb"
)

// A long session sends millions of results: what it remembers of them
// must shrink as the master acknowledges them.
func TestSentResultsAreForgottenOnceAcknowledged(t *testing.T) {
	w := &Worker{pending: map[attemptKey]*clusterpb.Result{}}
	sent := map[attemptKey]bool{}
	for i := range 1000 {
		k := attemptKey{id: "job", n: int32(i)}
		w.pending[k] = &clusterpb.Result{}
		sent[k] = true
		if i%2 == 0 {
			delete(w.pending, k) // acknowledged
		}
	}
	w.forgetAcknowledged(sent)
	if len(sent) != 500 {
		t.Fatalf("sent holds %d results, want the 500 still unacknowledged", len(sent))
	}
	for k := range sent {
		if _, ok := w.pending[k]; !ok {
			t.Fatalf("%v was acknowledged but is still remembered", k)
		}
	}
}
