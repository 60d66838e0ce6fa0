// Package bench times a function run many times at a given concurrency and
// summarizes the latencies (throughput, percentiles). grappe bench uses it to
// put the cluster's end-to-end cost beside a bare local exec of the same
// program.
package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Stats summarizes one benchmark run. Latencies are those of the calls that
// succeeded; failed calls are only counted.
type Stats struct {
	N        int           // calls made
	Errors   int           // calls that returned an error
	FirstErr error         // the first error seen, to show why
	Elapsed  time.Duration // wall time of the whole run
	// Throughput is successful calls per second of Elapsed.
	Throughput         float64
	Min, Mean, Max     time.Duration
	P50, P90, P95, P99 time.Duration
}

// Run calls fn n times, at most concurrency at once, and returns the
// statistics. It stops starting new calls when ctx ends.
func Run(ctx context.Context, n, concurrency int, fn func(context.Context) error) Stats {
	concurrency = max(1, min(concurrency, n))
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, n)
		errs      int
		firstErr  error
		calls     int
	)
	next := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				t0 := time.Now()
				err := fn(ctx)
				d := time.Since(t0)
				mu.Lock()
				calls++
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for range n {
		select {
		case next <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	s := Summarize(latencies, time.Since(start))
	s.N, s.Errors, s.FirstErr = calls, errs, firstErr
	return s
}

// Summarize computes the statistics of successful latencies over a run that
// took elapsed. It sorts latencies in place.
func Summarize(latencies []time.Duration, elapsed time.Duration) Stats {
	slices.Sort(latencies)
	s := Stats{N: len(latencies), Elapsed: elapsed}
	if elapsed > 0 {
		s.Throughput = float64(len(latencies)) / elapsed.Seconds()
	}
	if len(latencies) == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range latencies {
		sum += d
	}
	s.Min, s.Max = latencies[0], latencies[len(latencies)-1]
	s.Mean = sum / time.Duration(len(latencies))
	s.P50 = Percentile(latencies, 50)
	s.P90 = Percentile(latencies, 90)
	s.P95 = Percentile(latencies, 95)
	s.P99 = Percentile(latencies, 99)
	return s
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the values
// are less than or equal to it. It is always one of the measured values,
// never an interpolation. Zero for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}
