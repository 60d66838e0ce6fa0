package clustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// TestWaitHearsTheEndOfAJobRescuedElsewhere: a worker of master a dies
// while it runs a job that a client waits for through a; another master,
// b, rescues the attempt when its lease expires (b sweeps twenty times as
// often as a, so it is nearly always first), and the job runs again on
// b's worker. The wait through a must hear of the end within a sweep or
// two, although a still remembers the job as its dead worker's (found by
// TestChaosMasters: such waits took the client's one-minute recheck).
func TestWaitHearsTheEndOfAJobRescuedElsewhere(t *testing.T) {
	a := clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) {
		c.HeartbeatInterval = 2 * time.Second // a sweep every second
		c.WorkerTimeout = 4 * time.Second
	}})
	b := a.AddMasterWith("b", func(c *master.Config) { c.HeartbeatInterval = 100 * time.Millisecond })
	a.AddWorker(clustertest.WorkerOptions{Name: "doomed", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	ctx := context.Background()
	j, err := a.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 3; echo done"})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, a, j.ID) // doomed runs it

	type answer struct {
		job *api.Job
		err error
	}
	waited := make(chan answer, 1)
	waitCtx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	go func() {
		final, err := a.Client.Wait(waitCtx, j.ID)
		waited <- answer{final, err}
	}()
	b.AddWorker(clustertest.WorkerOptions{Name: "heir", Slots: 1, Languages: []string{"bash"}})
	a.KillWorker("doomed")

	done := waitJob(t, b, j.ID, "the job done on the heir", func(j *api.Job) bool { return j.Status == api.StatusDone })
	if done.Worker != "heir" || done.Attempts != 2 {
		t.Fatalf("job: worker %q, attempts %d; want the heir's second attempt", done.Worker, done.Attempts)
	}
	select {
	case got := <-waited:
		if got.err != nil || got.job.Status != api.StatusDone {
			t.Fatalf("wait through a: %+v, %v", got.job, got.err)
		}
		t.Logf("the wait through a heard of the end %v after it", time.Since(*done.FinishedAt).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("the wait through a has not heard of the end %v after it: a still takes the job for its dead worker's", time.Since(*done.FinishedAt).Round(time.Millisecond))
	}
}
