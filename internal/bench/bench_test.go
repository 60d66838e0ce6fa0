package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"two p50", ms(1, 2), 50, 1 * time.Millisecond},
		{"two p51", ms(1, 2), 51, 2 * time.Millisecond},
		{"five p50", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"hundred p50", hundred, 50, 50 * time.Millisecond},
		{"hundred p95", hundred, 95, 95 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"hundred p100", hundred, 100, 100 * time.Millisecond},
		{"hundred tiny p", hundred, 0.001, 1 * time.Millisecond},
		{"ten p95", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 95, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(ms(4, 1, 3, 2), 2*time.Second)
	if s.Min != time.Millisecond || s.Max != 4*time.Millisecond {
		t.Errorf("min/max = %v/%v", s.Min, s.Max)
	}
	if s.Mean != 2500*time.Microsecond {
		t.Errorf("mean = %v", s.Mean)
	}
	if s.P50 != 2*time.Millisecond || s.P99 != 4*time.Millisecond {
		t.Errorf("p50/p99 = %v/%v", s.P50, s.P99)
	}
	if s.Throughput != 2 {
		t.Errorf("throughput = %v, want 2/s", s.Throughput)
	}
	if z := Summarize(nil, 0); z.Throughput != 0 || z.P50 != 0 {
		t.Errorf("empty: %+v", z)
	}
}

func TestRun(t *testing.T) {
	var running, peak, calls atomic.Int32
	boom := errors.New("boom")
	s := Run(context.Background(), 50, 4, func(ctx context.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		if calls.Add(1)%10 == 0 {
			return boom
		}
		return nil
	})
	if s.N != 50 || s.Errors != 5 || !errors.Is(s.FirstErr, boom) {
		t.Errorf("N=%d errors=%d first=%v", s.N, s.Errors, s.FirstErr)
	}
	if peak.Load() > 4 {
		t.Errorf("concurrency reached %d, want at most 4", peak.Load())
	}
	if s.P50 < time.Millisecond || s.Throughput <= 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	s := Run(ctx, 1000, 2, func(context.Context) error {
		if calls.Add(1) == 10 {
			cancel()
		}
		return nil
	})
	if s.N >= 1000 || s.N < 10 {
		t.Errorf("N = %d after a cancel at 10", s.N)
	}
}
