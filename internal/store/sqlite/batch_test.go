package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// TestGroupCommitRaces sends racing transitions through the committer at
// once, so that they share transactions: a statement that fails (a
// duplicate id, a lost compare-and-set) must fail alone, and every winner
// must be stored.
func TestGroupCommitRaces(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"), SyncNormal)
	defer s.Close()
	ctx := t.Context()
	const jobs, racers = 40, 4
	var created, started, finished atomic.Int64
	var wg sync.WaitGroup
	for i := range jobs {
		id := fmt.Sprintf("job-%d", i)
		for r := range racers {
			racer := store.WorkerRef{Name: fmt.Sprintf("w%d", r), Identity: fmt.Sprintf("lineage-%d", r)}
			wg.Go(func() {
				err := s.CreateJob(ctx, &store.Job{ID: id, Owner: "u", Language: "c", MaxAttempts: 1, CreatedAt: time.Now()}, 0)
				switch {
				case err == nil:
					created.Add(1)
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("create %s: %v", id, err)
				}
				// Every racer tries to start and finish the attempt (only
				// the one that started it can finish it); the create may
				// not be committed yet, so retry until found.
				for {
					err = s.StartAttempt(ctx, id, 1, racer, time.Now())
					if !errors.Is(err, store.ErrNotFound) {
						break
					}
					time.Sleep(time.Millisecond)
				}
				switch {
				case err == nil:
					started.Add(1)
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("start %s: %v", id, err)
				}
				_, err = s.FinishAttempt(ctx, id, 1, racer, store.Finish{Status: store.StatusDone, Verdict: "ok", At: time.Now()})
				switch {
				case err == nil:
					finished.Add(1)
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("finish %s: %v", id, err)
				}
			})
		}
	}
	wg.Wait()
	if created.Load() != jobs || started.Load() != jobs || finished.Load() != jobs {
		t.Fatalf("created %d, started %d, finished %d; want %d of each", created.Load(), started.Load(), finished.Load(), jobs)
	}
	for i := range jobs {
		j, err := s.GetJob(ctx, fmt.Sprintf("job-%d", i))
		if err != nil || j.Status != store.StatusDone || j.Attempts != 1 {
			t.Fatalf("job %d: %+v %v", i, j, err)
		}
	}
}

// TestWriteAfterClose: a write after Close fails instead of hanging.
func TestWriteAfterClose(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), SyncNormal)
	s.Close()
	done := make(chan error, 1)
	go func() {
		done <- s.CreateJob(t.Context(), &store.Job{ID: "late", Owner: "u", Language: "c", MaxAttempts: 1}, 0)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a write after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write after Close hangs")
	}
}
