package simfleet_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/bench"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/simfleet"
)

// TestFleet drives a real master (TLS, SQLite, the gRPC links) with a few
// hundred simulated workers and checks that every job ran exactly once, on
// one of them, and was recorded with the result it sent.
func TestFleet(t *testing.T) {
	workers, jobs := 300, 600
	if testing.Short() {
		workers, jobs = 100, 200
	}
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		// The machine running the tests is shared and loaded: a worker
		// must not be declared lost because the test process starved.
		cfg.HeartbeatInterval, cfg.WorkerTimeout = time.Second, 10*time.Second
		cfg.PlacementTimeout = 30 * time.Second
	}})
	f, err := simfleet.New(simfleet.Config{
		Master: c.Master.ClusterAddr(), JoinToken: c.Master.JoinToken(), CAPEM: c.Master.CAPEM(),
		Workers: workers, NamePrefix: "sim-", Slots: 2, RunTime: 2 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	select {
	case <-f.AllConnected():
	case <-time.After(45 * time.Second):
		t.Fatalf("the fleet did not connect: %+v", f.Stats())
	}
	c.Eventually(30*time.Second, fmt.Sprintf("the master lists %d workers up", workers), func() bool {
		cl, err := c.Client.Cluster(context.Background())
		return err == nil && cl.Workers[api.WorkerUp] == workers
	})
	t.Logf("%d workers connected in %s", workers, f.Stats().AllConnected.Round(time.Millisecond))

	var mu sync.Mutex
	var ids []string
	st := bench.Run(context.Background(), jobs, 32, func(ctx context.Context) error {
		j, err := c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "true"}, 30*time.Second)
		if err != nil {
			return err
		}
		if !j.Terminal() {
			if j, err = c.Client.Wait(ctx, j.ID); err != nil {
				return err
			}
		}
		mu.Lock()
		ids = append(ids, j.ID)
		mu.Unlock()
		return nil
	})
	if st.Errors > 0 {
		t.Fatalf("%d of %d jobs failed; the first: %v", st.Errors, st.N, st.FirstErr)
	}
	t.Logf("%d jobs: %.0f jobs/s, p50 %s, p99 %s", st.N, st.Throughput, st.P50, st.P99)

	used := map[string]bool{}
	for _, id := range ids {
		j, err := c.Client.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case j.Status != api.StatusDone || j.Verdict != api.VerdictOK:
			t.Errorf("job %s: %s %s %s", id, j.Status, j.Verdict, j.Error)
		case j.Attempts != 1:
			t.Errorf("job %s took %d attempts", id, j.Attempts)
		case !strings.HasPrefix(j.Worker, "sim-"):
			t.Errorf("job %s ran on %q", id, j.Worker)
		case j.Run == nil || j.Run.Stdout != "ok\n" || j.Run.ExitCode != 0:
			t.Errorf("job %s: run %+v", id, j.Run)
		}
		used[j.Worker] = true
	}
	// Every assignment answered and acknowledged once: none of the jobs
	// was placed twice, nor any result lost on the way.
	c.Eventually(10*time.Second, "every result acknowledged", func() bool {
		return f.Stats().Acked == int64(jobs)
	})
	s := f.Stats()
	if s.Assigned != int64(jobs) || s.Results != int64(jobs) || s.Reconnects != 0 || s.Errors != 0 || s.Cancelled != 0 {
		t.Errorf("fleet stats: %+v, want %d assigned, sent and acknowledged, no reconnection, no error", s, jobs)
	}
	cl, err := c.Client.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := cl.Workers[api.WorkerLost]; n != 0 {
		t.Errorf("%d simulated workers declared lost", n)
	}
	t.Logf("jobs spread over %d workers", len(used))
}

// TestFleetMasterRestart stops the master while the simulated workers run
// their attempts: they reconnect to the restarted master, announce what
// they hold in their hello, send the results (again) after the welcome,
// and every job ends done, in its first attempt.
func TestFleetMasterRestart(t *testing.T) {
	const workers, jobs = 20, 40
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		cfg.HeartbeatInterval, cfg.WorkerTimeout = 500*time.Millisecond, 10*time.Second
		cfg.PlacementTimeout = 30 * time.Second
	}})
	f, err := simfleet.New(simfleet.Config{
		Master: c.Master.ClusterAddr(), JoinToken: c.Master.JoinToken(), CAPEM: c.Master.CAPEM(),
		Workers: workers, Slots: 2, RunTime: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runDone
	})
	<-f.AllConnected()
	c.Eventually(30*time.Second, "the master lists the fleet up", func() bool {
		cl, err := c.Client.Cluster(context.Background())
		return err == nil && cl.Workers[api.WorkerUp] == workers
	})
	var ids []string
	for range jobs {
		j, err := c.Client.Submit(context.Background(), &api.JobRequest{Language: "bash", Source: "true"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	c.Eventually(10*time.Second, "every job assigned", func() bool { return f.Stats().Assigned == jobs })
	c.StopMaster()
	time.Sleep(2 * time.Second) // the fake runs end while the master is away
	c.RestartMaster()

	for _, id := range ids {
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		j, err := c.Client.Wait(wctx, id)
		wcancel()
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		if j.Status != api.StatusDone || j.Verdict != api.VerdictOK || j.Attempts != 1 || j.Run == nil || j.Run.Stdout != "ok\n" {
			t.Errorf("job %s: %s %s %q, %d attempts, run %+v", id, j.Status, j.Verdict, j.Error, j.Attempts, j.Run)
		}
	}
	c.Eventually(10*time.Second, "every result acknowledged", func() bool { return f.Stats().Acked == jobs })
	if s := f.Stats(); s.Reconnects < workers || s.Assigned != jobs {
		t.Errorf("fleet stats: %+v, want every worker reconnected and %d assigned", s, jobs)
	}
}
