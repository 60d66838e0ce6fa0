package master

import (
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
)

// TestNotListed: an attempt a worker's heartbeats leave out is taken back
// only after missedBeats heartbeats in a row over the worker timeout, and
// never from a worker whose heartbeats do not list every attempt.
func TestNotListed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const timeout = 2 * time.Second
	beat := time.Second
	held := func(ids ...string) []*clusterpb.AttemptRef {
		var out []*clusterpb.AttemptRef
		for _, id := range ids {
			out = append(out, &clusterpb.AttemptRef{JobId: id, Attempt: 1})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		listsHeld bool
		beats     [][]*clusterpb.AttemptRef
		want      string // the job dropped by the last beat, "" for none
	}{
		{"listed every time", true, [][]*clusterpb.AttemptRef{held("a"), held("a"), held("a"), held("a")}, ""},
		{"missing three beats over the timeout", true, [][]*clusterpb.AttemptRef{held(), held(), held()}, "a"},
		{"missing two beats", true, [][]*clusterpb.AttemptRef{held(), held()}, ""},
		{"listed again in between", true, [][]*clusterpb.AttemptRef{held(), held(), held("a"), held(), held()}, ""},
		{"an older worker", false, [][]*clusterpb.AttemptRef{held(), held(), held(), held(), held()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &workerEntry{listsHeld: tc.listsHeld, attempts: map[string]int{"a": 1}}
			var dropped map[string]int
			for i, hb := range tc.beats {
				dropped = w.notListed(hb, t0.Add(time.Duration(i)*beat), timeout)
				if len(dropped) > 0 && i < len(tc.beats)-1 {
					t.Fatalf("dropped %v at beat %d of %d", dropped, i+1, len(tc.beats))
				}
			}
			switch {
			case tc.want == "" && len(dropped) > 0:
				t.Fatalf("dropped %v, want nothing", dropped)
			case tc.want != "" && dropped[tc.want] != 1:
				t.Fatalf("dropped %v, want %s", dropped, tc.want)
			case tc.want != "" && w.attempts[tc.want] != 0:
				t.Fatalf("%s still held after it was dropped", tc.want)
			}
		})
	}
	// A list longer than any worker holds counts nothing: no miss, no
	// work on a rogue worker's huge list.
	w0 := &workerEntry{listsHeld: true, attempts: map[string]int{"a": 1}}
	huge := make([]*clusterpb.AttemptRef, maxListed+1)
	for i := range huge {
		huge[i] = &clusterpb.AttemptRef{JobId: "x", Attempt: 1}
	}
	for i := range 5 {
		if d := w0.notListed(huge, t0.Add(time.Duration(i)*beat), timeout); len(d) > 0 || len(w0.missing) > 0 {
			t.Fatalf("a huge list counted: dropped %v, missing %v", d, w0.missing)
		}
	}
	// Three misses within less than the timeout (fast heartbeats) are
	// not enough.
	w := &workerEntry{listsHeld: true, attempts: map[string]int{"a": 1}}
	for i := range 3 {
		if d := w.notListed(nil, t0.Add(time.Duration(i)*100*time.Millisecond), timeout); len(d) > 0 {
			t.Fatalf("dropped %v after %d fast beats", d, i+1)
		}
	}
}
