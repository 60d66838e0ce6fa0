package clustertest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// waitRunningOn waits until the job runs and returns its worker.
func waitRunning(t *testing.T, c *clustertest.Cluster, id string) *api.Job {
	t.Helper()
	var j *api.Job
	c.Eventually(20*time.Second, "job "+id+" running", func() bool {
		var err error
		j, err = c.Client.Job(context.Background(), id)
		return err == nil && j.Status == api.StatusRunning
	})
	return j
}

// waitOutput waits for the first output of job id, which proves that its
// worker has the job.
func waitOutput(t *testing.T, c *clustertest.Cluster, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errOutput := errors.New("output seen")
	err := c.Client.Events(ctx, id, func(ev api.Event) error {
		if ev.Type == "output" {
			return errOutput
		}
		return nil
	})
	if !errors.Is(err, errOutput) {
		t.Fatalf("no output from job %s: %v", id, err)
	}
}

func TestLostWorkerJobRunsElsewhere(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "doomed", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	c.WaitLanguage("bash")
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 1; echo survived"})
	if err != nil {
		t.Fatal(err)
	}
	if j := waitRunning(t, c, job.ID); j.Worker != "doomed" || j.Attempts != 1 {
		t.Fatalf("first attempt: %+v", j)
	}
	c.AddWorker(clustertest.WorkerOptions{Name: "heir", Slots: 1, Languages: []string{"bash"}})
	killed := time.Now()
	c.KillWorker("doomed")
	final := clustertest.Must(t).Finished(c.Client.Wait(ctx, job.ID))
	if final.Status != api.StatusDone || clustertest.RunOf(t, final).Stdout != "survived\n" || final.Worker != "heir" || final.Attempts != 2 {
		t.Fatalf("after the loss: status %q worker %q attempts %d run %+v", final.Status, final.Worker, final.Attempts, final.Run)
	}
	t.Logf("job finished on the heir %v after its first worker vanished (worker timeout 2s)", time.Since(killed).Round(time.Millisecond))
	for _, w := range c.Master.Workers(ctx) {
		if w.Name == "doomed" && w.Status != api.WorkerLost {
			t.Fatalf("vanished worker has status %q, want lost", w.Status)
		}
	}
}

func TestMaxAttemptsThenFail(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "w1", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	c.WaitLanguage("bash")
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 30", MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, job.ID)
	// w2 joins before w1 dies: added after, it could come later than the
	// placement timeout (3 s here) once w1 is lost, because KillWorker
	// returns only when w1 has finished shutting down.
	c.AddWorker(clustertest.WorkerOptions{Name: "w2", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	c.KillWorker("w1")
	c.Eventually(20*time.Second, "second attempt on w2", func() bool {
		j, err := c.Client.Job(ctx, job.ID)
		return err == nil && j.Status == api.StatusRunning && j.Worker == "w2" && j.Attempts == 2
	})
	c.KillWorker("w2")
	final, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.StatusFailed || final.Attempts != 2 || !strings.Contains(final.Error, "worker lost") || !strings.Contains(final.Error, "2 attempts") {
		t.Fatalf("final: status %q attempts %d error %q", final.Status, final.Attempts, final.Error)
	}
}

func TestPartitionedWorkerIsLostAndItsLateResultIgnored(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "island", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	c.WaitLanguage("bash")
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 1.5; echo $RANDOM"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, job.ID)
	cut := time.Now()
	c.Partition("island", true)
	c.AddWorker(clustertest.WorkerOptions{Name: "mainland", Slots: 1, Languages: []string{"bash"}})
	final, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	detected := time.Since(cut)
	if final.Worker != "mainland" || final.Attempts != 2 || final.Status != api.StatusDone {
		t.Fatalf("after the partition: %+v", final)
	}
	// Heal: the island reconnects; its stale attempt is abandoned and its
	// result, if it sends one, changes nothing.
	c.Partition("island", false)
	c.Eventually(20*time.Second, "island back up", func() bool {
		for _, w := range c.Master.Workers(ctx) {
			if w.Name == "island" && w.Status == api.WorkerUp {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	again, err := c.Client.Job(ctx, job.ID)
	if err != nil || again.Worker != "mainland" || again.Attempts != 2 || clustertest.RunOf(t, again).Stdout != clustertest.RunOf(t, final).Stdout || !again.FinishedAt.Equal(*final.FinishedAt) {
		t.Fatalf("the recorded result changed after the island came back: %+v → %+v (%v)", final, again, err)
	}
	t.Logf("partition detected and the job re-run, done %v after the cut", detected.Round(time.Millisecond))
}

func TestMasterRestartReadoptsRunningJobs(t *testing.T) {
	// Placement timeout: as in TestMasterRestartKeepsQueuedJobs, the
	// reconnection after the restart may be slow under load.
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 2, Languages: []string{"bash"}}},
		Master: func(cfg *master.Config) { cfg.PlacementTimeout = 60 * time.Second }})
	c.WaitLanguage("bash")
	ctx := context.Background()
	running, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 2; echo once >> counter; cat counter"})
	if err != nil {
		t.Fatal(err)
	}
	// Once the worker runs it (running in the store precedes the
	// assignment's arrival: an attempt the worker never got is rightly
	// run again).
	waitOutput(t, c, running.ID)
	c.StopMaster()
	c.RestartMaster()
	// Jobs accepted right after the restart run too.
	queued, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo after"})
	if err != nil {
		t.Fatal(err)
	}
	final := clustertest.Must(t).Finished(c.Client.Wait(ctx, running.ID))
	if final.Status != api.StatusDone || final.Attempts != 1 || clustertest.RunOf(t, final).Stdout != "started\nonce\n" {
		t.Fatalf("the running job after a master restart: status %q attempts %d run %+v (want re-adopted, not re-run)", final.Status, final.Attempts, final.Run)
	}
	if j, err := c.Client.Wait(ctx, queued.ID); err != nil || j.Run == nil || j.Run.Stdout != "after\n" {
		t.Fatalf("job submitted after the restart: %+v %v", j, err)
	}
}

func TestMasterRestartKeepsQueuedJobs(t *testing.T) {
	// The worker joins after the restart: under load its start may take
	// longer than the harness's 3 s placement timeout, which this test is
	// not about.
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.PlacementTimeout = 60 * time.Second }})
	ctx := context.Background()
	var ids []string
	for range 5 {
		j, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo kept"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	c.StopMaster()
	c.RestartMaster()
	c.AddWorker(clustertest.WorkerOptions{Name: "late", Slots: 2, Languages: []string{"bash"}})
	for _, id := range ids {
		j := clustertest.Must(t).Finished(c.Client.Wait(ctx, id))
		if j.Status != api.StatusDone || clustertest.RunOf(t, j).Stdout != "kept\n" || j.Attempts != 1 {
			t.Fatalf("queued job %s after a restart: %+v", id, j)
		}
	}
}

func TestWorkerReconnectAfterBlipReadopts(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.WorkerTimeout = 10 * time.Second }})
	c.AddWorker(clustertest.WorkerOptions{Name: "blip", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	c.WaitLanguage("bash")
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 2; echo fine"})
	if err != nil {
		t.Fatal(err)
	}
	// Running in the store is not yet running on the worker (the
	// assignment is sent after the commit, and a cut could drop it): cut
	// only once the program's first output has come back.
	waitOutput(t, c, job.ID)
	// A short cut: the bytes dropped break the TLS session, the worker
	// reconnects well within the worker timeout and re-announces the job.
	c.Partition("blip", true)
	time.Sleep(300 * time.Millisecond)
	c.Partition("blip", false)
	final := clustertest.Must(t).Finished(c.Client.Wait(ctx, job.ID))
	if final.Status != api.StatusDone || final.Attempts != 1 || final.Worker != "blip" || clustertest.RunOf(t, final).Stdout != "started\nfine\n" {
		t.Fatalf("after a blip: %+v", final)
	}
}

func TestDrainFromAPI(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "a", Slots: 2, Languages: []string{"bash"}},
		{Name: "b", Slots: 2, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	long, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 1; echo long", Labels: nil})
	if err != nil {
		t.Fatal(err)
	}
	first := waitRunning(t, c, long.ID).Worker
	w, err := c.Client.Drain(ctx, first)
	if err != nil || w.Status != api.WorkerDraining {
		t.Fatalf("drain: %+v %v", w, err)
	}
	// New jobs avoid the draining worker; its running job finishes there.
	for range 4 {
		j := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo x"})
		if j.Worker == first {
			t.Fatalf("a job went to the draining worker %s", first)
		}
	}
	if j, err := c.Client.Wait(ctx, long.ID); err != nil || j.Worker != first || j.Status != api.StatusDone {
		t.Fatalf("the draining worker's job: %+v %v", j, err)
	}
	// A heartbeat must not undo an admin's drain.
	time.Sleep(500 * time.Millisecond)
	for _, w := range c.Master.Workers(ctx) {
		if w.Name == first && w.Status != api.WorkerDraining {
			t.Fatalf("worker %s is %q after heartbeats, want draining", first, w.Status)
		}
	}
	if w, err := c.Client.Undrain(ctx, first); err != nil || w.Status != api.WorkerUp {
		t.Fatalf("undrain: %+v %v", w, err)
	}
	if _, err := c.Client.Drain(ctx, "no-such-worker"); err == nil {
		t.Fatal("draining an unknown worker succeeded")
	}
}

func TestWorkerShutdownDrains(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "leaving", Slots: 2, Languages: []string{"bash"}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	// clustertest gives workers a 2 s drain timeout: a 1 s job finishes
	// where it is, a 4 s job is handed back and runs elsewhere.
	short, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 1; echo short"})
	if err != nil {
		t.Fatal(err)
	}
	long, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 4 & wait; echo long", Limits: api.Limits{WallMs: 60000}})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, short.ID)
	waitRunning(t, c, long.ID)
	stopped := make(chan struct{})
	go func() { c.StopWorker("leaving"); close(stopped) }()
	// While draining it takes nothing new.
	c.Eventually(5*time.Second, "leaving draining", func() bool { return workerStatus(c, "leaving") == api.WorkerDraining })
	<-stopped
	j, err := c.Client.Wait(ctx, short.ID)
	if err != nil || j.Status != api.StatusDone || j.Worker != "leaving" || j.Attempts != 1 {
		t.Fatalf("short job across the drain: %+v %v", j, err)
	}
	lj, err := c.Client.Job(ctx, long.ID)
	if err != nil || lj.Status != api.StatusQueued || lj.Attempts != 1 {
		t.Fatalf("long job after the drain timeout: %+v %v, want handed back to the queue", lj, err)
	}
	c.AddWorker(clustertest.WorkerOptions{Name: "staying", Slots: 1, Languages: []string{"bash"}})
	if lj = clustertest.Must(t).Finished(c.Client.Wait(ctx, long.ID)); lj.Worker != "staying" || lj.Attempts != 2 || clustertest.RunOf(t, lj).Stdout != "long\n" {
		t.Fatalf("long job after the hand-back: %+v", lj)
	}
}
