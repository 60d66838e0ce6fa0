package master

import (
	"math"
	"testing"
)

// Output events are positioned by the worker's numbers, and a worker that
// lies about them (backwards, negative, absurdly far) cannot make a job's
// stream go back or overflow: the master's own count stands in.
func TestOutputOffsets(t *testing.T) {
	b := newBroker()
	ch, cancel := b.subscribe("j", true)
	defer cancel()
	for _, c := range []struct {
		data   string
		offset int64
		want   int64
	}{
		{"ab", 0, 0},
		{"cd", 2, 2},
		{"ef", 10, 10},            // chunks dropped in between: a gap
		{"gh", 3, 12},             // backwards
		{"ij", -5, 14},            // negative
		{"kl", math.MaxInt64, 16}, // absurd
		{"mn", 18, 18},
	} {
		b.output("j", 1, "stdout", []byte(c.data), c.offset)
		ev := <-ch
		if ev.Offset != c.want || ev.Attempt != 1 || ev.Data != c.data {
			t.Fatalf("chunk %q sent at %d: event at %d (attempt %d, %q), want %d", c.data, c.offset, ev.Offset, ev.Attempt, ev.Data, c.want)
		}
	}
}
