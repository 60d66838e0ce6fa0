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
