package worker

import (
	"context"
	"testing"
	"time"
)

// BenchmarkToolboxReady measures a worker's start on this machine, from
// PrepareToolbox (detection included) to its first language announced
// (first-ms) and to its last (all-ms), with the embedded catalogue and no
// sandbox: cold, with an empty data directory (every self-test compiles),
// and warm, on a data directory whose self-tests passed before (the
// self-test cache). Run it with -benchtime=3x: a cold start compiles Go's
// standard library.
//
//	go test -run '^$' -bench ToolboxReady -benchtime 3x ./internal/worker
func BenchmarkToolboxReady(b *testing.B) {
	start := func(b *testing.B, dir string) (first, all time.Duration, n int) {
		t0 := time.Now()
		tb, err := PrepareToolbox(context.Background(), ToolboxConfig{DataDir: dir, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		defer tb.Close()
		for first == 0 {
			if langs, _ := tb.Languages(); len(langs) > 0 {
				first = time.Since(t0)
				break
			}
			select {
			case <-tb.Changed():
			case <-tb.Tested():
				first = time.Since(t0)
			}
		}
		<-tb.Tested()
		langs, _ := tb.Languages()
		return first, time.Since(t0), len(langs)
	}
	report := func(b *testing.B, first, all time.Duration, n int) {
		b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "first-ms")
		b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "all-ms")
		b.ReportMetric(float64(n), "languages")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("cold", func(b *testing.B) {
		var first, all time.Duration
		n := 0
		for range b.N {
			f, a, k := start(b, b.TempDir())
			first, all, n = first+f, all+a, k
		}
		report(b, first, all, n)
	})
	b.Run("warm", func(b *testing.B) {
		dir := b.TempDir()
		start(b, dir)
		b.ResetTimer()
		var first, all time.Duration
		n := 0
		for range b.N {
			f, a, k := start(b, dir)
			first, all, n = first+f, all+a, k
		}
		report(b, first, all, n)
	})
}
