package clustertest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// stillTesting is a worker's languages while its python self-test runs,
// until pass is called.
type stillTesting struct {
	mu      sync.Mutex
	passed  bool
	gen     uint64
	changed chan struct{}
}

func (s *stillTesting) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

var python3 = []*clusterpb.Language{{Name: "python", Version: "3"}}

func (s *stillTesting) Languages() ([]*clusterpb.Language, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.passed {
		return python3, s.gen
	}
	return nil, s.gen
}

func (s *stillTesting) Testing() []*clusterpb.Language {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.passed {
		return nil
	}
	return python3
}

func (s *stillTesting) pass() {
	s.mu.Lock()
	s.passed = true
	s.gen++
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
}

// A job for a language that the only worker is still self-testing waits
// for it, past its placement timeout, and runs as soon as the language is
// announced: the worker does not wait for its next heartbeat to say so.
func TestJobWaitsForALanguageStillSelfTesting(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		cfg.PlacementTimeout = time.Second
		cfg.HeartbeatInterval, cfg.WorkerTimeout = 10*time.Second, time.Minute
	}})
	langs := &stillTesting{}
	c.AddWorker(clustertest.WorkerOptions{Name: "young", Slots: 1, Runner: bigRunner{}, LanguageSource: langs})
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "python", Source: "0"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the placement timeout and two sweeps
	if j, err := c.Client.Job(ctx, job.ID); err != nil || j.Status != api.StatusQueued {
		t.Fatalf("while python is being tested: %+v, %v; want it queued", j, err)
	}
	langs.pass()
	c.Eventually(3*time.Second, "the job to run well before the next heartbeat", func() bool {
		j, err := c.Client.Job(ctx, job.ID)
		return err == nil && j.Status == api.StatusDone && j.Worker == "young"
	})
}
