package postgres

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// The SQLite backend's benchmarks (sqlite/bench_test.go), on the test
// server: it runs with fsync off, so they measure the statements and the
// round trips over the unix socket, not the disk.

// BenchmarkJobLifecycle measures what the master writes for one job:
// CreateJob (under a quota), StartAttempt, FinishAttempt. One op is one
// whole job. "parallel" has 16 callers per CPU.
func BenchmarkJobLifecycle(b *testing.B) {
	request := bytes.Repeat([]byte("x"), 1024)
	result := bytes.Repeat([]byte("y"), 1024)
	w1 := store.WorkerRef{Name: "w1", Identity: "lineage-w1"}
	// lifecycle reports failure with Error, not Fatal: it also runs on
	// RunParallel's goroutines, where FailNow is not allowed.
	lifecycle := func(b *testing.B, s *Store, id string) {
		ctx := b.Context()
		now := time.Now()
		err := s.CreateJob(ctx, &store.Job{
			ID: id, Owner: "bench", Language: "python", Status: store.StatusQueued,
			MaxAttempts: 3, CreatedAt: now, Request: request,
		}, 10000)
		if err == nil {
			err = s.StartAttempt(ctx, id, 1, w1, now)
		}
		if err == nil {
			_, err = s.FinishAttempt(ctx, id, 1, w1, store.Finish{
				Status: store.StatusDone, Verdict: "ok", Version: "3.12", Result: result, At: now,
			})
		}
		if err != nil {
			b.Error(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		s := openTest(b, newDatabase(b))
		defer s.Close()
		for i := 0; b.Loop(); i++ {
			lifecycle(b, s, "job-"+strconv.Itoa(i))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	})
	b.Run("parallel", func(b *testing.B) {
		s := openTest(b, newDatabase(b))
		defer s.Close()
		var n atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				lifecycle(b, s, "job-"+strconv.FormatInt(n.Add(1), 10))
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
	})
}

// BenchmarkClaim measures the dispatch path under load: a queue that
// stays about 32 jobs long and a claim of one job per freed slot, then its
// finish. One op is one job: CreateJob, ClaimJobs, FinishAttempt.
func BenchmarkClaim(b *testing.B) {
	const depth = 32
	request := bytes.Repeat([]byte("x"), 1024)
	w1 := store.WorkerRef{Name: "w1", Identity: "lineage-w1"}
	offer := store.Offer{Worker: w1, Languages: map[string][]string{"python": {"3.12.1"}}, Free: 1, Slots: 4}
	s := openTest(b, newDatabase(b))
	defer s.Close()
	create := func(i int) {
		if err := s.CreateJob(b.Context(), &store.Job{
			ID: "job-" + strconv.Itoa(i), Owner: "bench", Language: "python", Status: store.StatusQueued,
			MaxAttempts: 3, CreatedAt: time.Now(), Request: request,
		}, 100000); err != nil {
			b.Fatal(err)
		}
	}
	for i := range depth {
		create(-1 - i)
	}
	for i := 0; b.Loop(); i++ {
		create(i)
		now := time.Now()
		claims, err := s.ClaimJobs(b.Context(), store.ClaimRequest{
			Master: "m1", Placer: store.NewOfferList(offer), At: now, LeaseUntil: now.Add(time.Minute),
		})
		if err != nil || len(claims) != 1 {
			b.Fatalf("claim: %d, %v", len(claims), err)
		}
		if _, err := s.FinishAttempt(b.Context(), claims[0].Job.ID, 1, w1, store.Finish{Status: store.StatusDone, At: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
