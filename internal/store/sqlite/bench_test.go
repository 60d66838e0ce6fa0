package sqlite

import (
	"bytes"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// BenchmarkJobLifecycle measures what the master writes for one job:
// CreateJob, StartAttempt, FinishAttempt, each committed. One op is one
// whole job, so jobs/s = 1e9 / ns/op. "serial" is one caller at a time;
// "parallel" has 16 callers per CPU, as the master's request and stream
// goroutines under load, all funnelled into the single write connection,
// where their transitions share commits (batch.go).
func BenchmarkJobLifecycle(b *testing.B) {
	request := bytes.Repeat([]byte("x"), 1024) // a small submission
	result := bytes.Repeat([]byte("y"), 1024)  // and its outcome
	// lifecycle reports failure with Error, not Fatal: it also runs on
	// RunParallel's goroutines, where FailNow is not allowed.
	w1 := store.WorkerRef{Name: "w1", Identity: "lineage-w1"}
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
	for _, sync := range []string{SyncNormal, SyncFull} {
		b.Run("sync="+sync+"/serial", func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "bench.db"), sync)
			defer s.Close()
			for i := 0; b.Loop(); i++ {
				lifecycle(b, s, "job-"+strconv.Itoa(i))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
		b.Run("sync="+sync+"/parallel", func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "bench.db"), sync)
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
}

// BenchmarkClaim measures the dispatch path of a master under load: a
// queue that stays about depth jobs long, and a claim of one job per
// freed slot (one offer, one free slot), then its finish. One op is one
// job: CreateJob, ClaimJobs, FinishAttempt. "start" is the same with
// StartAttempt naming the job, the cost of a placement made elsewhere.
func BenchmarkClaim(b *testing.B) {
	const depth = 32
	request := bytes.Repeat([]byte("x"), 1024)
	w1 := store.WorkerRef{Name: "w1", Identity: "lineage-w1"}
	offer := store.Offer{Worker: w1, Languages: map[string][]string{"python": {"3.12.1"}}, Free: 1, Slots: 4}
	create := func(b *testing.B, s *Store, i int) string {
		id := "job-" + strconv.Itoa(i)
		if err := s.CreateJob(b.Context(), &store.Job{
			ID: id, Owner: "bench", Language: "python", Status: store.StatusQueued,
			MaxAttempts: 3, CreatedAt: time.Now(), Request: request,
		}, 100000); err != nil {
			b.Fatal(err)
		}
		return id
	}
	for _, how := range []string{"claim", "start"} {
		b.Run(how, func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "bench.db"), SyncNormal)
			defer s.Close()
			var queue []string
			for i := range depth {
				queue = append(queue, create(b, s, -1-i))
			}
			for i := 0; b.Loop(); i++ {
				queue = append(queue, create(b, s, i))
				now := time.Now()
				var id string
				if how == "claim" {
					claims, err := s.ClaimJobs(b.Context(), store.ClaimRequest{
						Master: "m1", Placer: store.NewOfferList(offer), At: now, LeaseUntil: now.Add(time.Minute),
					})
					if err != nil || len(claims) != 1 {
						b.Fatalf("claim: %d, %v", len(claims), err)
					}
					id = claims[0].Job.ID
				} else {
					id = queue[0]
					if err := s.StartAttempt(b.Context(), id, 1, w1, now); err != nil {
						b.Fatal(err)
					}
				}
				queue = queue[1:]
				if _, err := s.FinishAttempt(b.Context(), id, 1, w1, store.Finish{Status: store.StatusDone, At: now}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
