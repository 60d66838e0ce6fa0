package clustertest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/store/postgres/pgtest"
)

// Two masters on one database (issue 12: the database is the truth). A
// job accepted by one master runs on a worker that only the other holds,
// and the first sees its result; a cancel through the first stops the
// attempt on the second's worker. These hold on SQLite now; PostgreSQL
// (several machines) adds notifications for speed, not for correctness.

// waitJob polls c's API until the job satisfies done.
func waitJob(t *testing.T, c *clustertest.Cluster, id, what string, done func(*api.Job) bool) *api.Job {
	t.Helper()
	var j *api.Job
	c.Eventually(20*time.Second, what, func() bool {
		var err error
		j, err = c.Client.Job(context.Background(), id)
		return err == nil && done(j)
	})
	return j
}

func TestSecondMasterRunsTheFirstsJobs(t *testing.T) {
	secondMasterRunsTheFirstsJobs(t, clustertest.Options{})
}

// TestTwoMastersOnPostgreSQL: the same, with the masters' store on one
// PostgreSQL database (a throwaway server this test starts).
func TestTwoMastersOnPostgreSQL(t *testing.T) {
	url := postgresDatabase(t)
	secondMasterRunsTheFirstsJobs(t, clustertest.Options{Master: func(c *master.Config) { c.Database = url }})
}

// TestMastersNotifyEachOther: on PostgreSQL the masters hear of each
// other's commits: a job accepted by a master with no workers is started
// at once by the one that has them (not at its next dispatch tick, a
// second), and ?wait on the first hears of its end at once.
func TestMastersNotifyEachOther(t *testing.T) {
	url := postgresDatabase(t)
	a := clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) {
		c.Database = url
		c.HeartbeatInterval = 2 * time.Second // a sweep (the polling) every second
		c.WorkerTimeout = 10 * time.Second
	}})
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wn", Slots: 1, Languages: []string{"bash"}})
	ctx := context.Background()
	a.Eventually(10*time.Second, "a lists wn", func() bool {
		for _, w := range a.Master.Workers(ctx) {
			if w.Name == "wn" && w.Status == api.WorkerUp {
				return true
			}
		}
		return false
	})
	const n = 10
	start := time.Now()
	for i := range n {
		j, err := a.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "true"}, 30*time.Second)
		if err != nil || j.Status != api.StatusDone {
			t.Fatalf("job %d through a: %+v %v", i, j, err)
		}
	}
	per := time.Since(start) / n
	t.Logf("%d jobs one after another through a, run by b's worker: %v each", n, per.Round(time.Millisecond))
	// Polling alone: half the dispatch tick plus half the sweep period,
	// about a second per job.
	if per > 600*time.Millisecond {
		t.Fatalf("%v a job: the masters did not hear of each other's commits", per)
	}
}

// postgresDatabase starts a throwaway PostgreSQL server and returns the
// URL of an empty database on it; the test skips without one.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	server, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrUnavailable) {
		t.Skipf("no PostgreSQL server here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
	return server.Database(t)
}

// TestMastersShareOneIdentity: a master with a data directory of its own
// joins a cluster through its database and takes the cluster's CA and
// tokens; a worker joining it is trusted by the other master; a join
// token rotated through one is the other's within seconds; a data
// directory of another cluster is refused.
func TestMastersShareOneIdentity(t *testing.T) {
	url := postgresDatabase(t)
	opts := clustertest.Options{Master: func(c *master.Config) { c.Database = url }}
	a := clustertest.Start(t, opts)
	b := a.AddMasterOwnData("b")
	for _, f := range []string{"ca.pem", "ca-key.pem", "admin-token", "join-token", "metrics-token"} {
		fa, err1 := os.ReadFile(filepath.Join(a.DataDir, f))
		fb, err2 := os.ReadFile(filepath.Join(b.DataDir, f))
		if err1 != nil || err2 != nil || !bytes.Equal(fa, fb) {
			t.Fatalf("%s: a's and b's differ (%v, %v)", f, err1, err2)
		}
	}
	ctx := context.Background()
	// Joined through b, with b's join token: its certificate is a's too.
	b.AddWorker(clustertest.WorkerOptions{Name: "wi", Slots: 1, Languages: []string{"bash"}})
	j, err := a.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo shared"}, 30*time.Second)
	if err != nil || j.Status != api.StatusDone || j.Worker != "wi" {
		t.Fatalf("job through a on b's worker: %+v %v", j, err)
	}
	tok, err := a.Client.RotateJoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Eventually(10*time.Second, "the rotated join token on b", func() bool { return b.Master.JoinToken() == tok })

	// Another cluster's data directory is refused.
	other := clustertest.Start(t, clustertest.Options{})
	cfg := master.Config{DataDir: other.DataDir, Database: url, MasterID: "intruder", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"}
	if m, err := master.New(cfg); err == nil {
		m.Close()
		t.Fatal("a master with another cluster's data directory started")
	} else if !strings.Contains(err.Error(), "another cluster's identity") {
		t.Fatalf("another cluster's data directory: %v", err)
	}
}

func secondMasterRunsTheFirstsJobs(t *testing.T, opts clustertest.Options) {
	a := clustertest.Start(t, opts)
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wb", Slots: 1, Languages: []string{"bash"}})
	ctx := context.Background()

	// a shows b's worker (the workers table), and so does not fail a bash
	// job at its placement timeout.
	a.Eventually(10*time.Second, "a lists wb", func() bool {
		for _, w := range a.Master.Workers(ctx) {
			if w.Name == "wb" && w.Status == api.WorkerUp {
				return true
			}
		}
		return false
	})
	// ?wait on a hears of the end b recorded (within a sweep), not at
	// the end of its wait.
	began := time.Now()
	done, err := a.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo from-a"}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Fatalf("?wait on a answered after %s: it did not hear of the end", took)
	}
	if done.Status != api.StatusDone || done.Worker != "wb" || done.Run == nil || strings.TrimSpace(done.Run.Stdout) != "from-a" || done.Attempts != 1 {
		t.Fatalf("job through a: %s on worker %q, attempts %d, run %+v; want done once on wb", done.Status, done.Worker, done.Attempts, done.Run)
	}

	// A cancel through a reaches b's worker: its one slot frees at once
	// instead of after the 60 s program.
	long, err := a.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 60",
		Limits: api.Limits{WallMs: 60000}})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, a, long.ID, "the long job running", func(j *api.Job) bool { return j.Status == api.StatusRunning })
	if j, err := a.Client.Cancel(ctx, long.ID); err != nil || j.Status != api.StatusCancelled {
		t.Fatalf("cancel through a: %+v %v", j, err)
	}
	start := time.Now()
	next, err := a.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo next"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, a, next.ID, "the next job done on the freed slot", func(j *api.Job) bool { return j.Status == api.StatusDone })
	took := time.Since(start)
	t.Logf("the next job ran %s after the cancel", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Fatalf("the slot freed %s after the cancel: the worker was not told", took)
	}
	if final, _ := a.Client.Job(ctx, long.ID); final.Status != api.StatusCancelled {
		t.Fatalf("cancelled job: %s", final.Status)
	}
}

// TestWorkerMovesToAnotherMaster: the master holding a worker dies; the
// worker reconnects to another master of the same database and
// re-announces its running attempt, which that master adopts from the
// store: the job finishes once, on its first attempt, and its result is
// recorded through the second master.
func TestWorkerMovesToAnotherMaster(t *testing.T) {
	a := clustertest.Start(t, clustertest.Options{})
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wm", Slots: 1, Languages: []string{"bash"}, Proxied: true})
	ctx := context.Background()
	j, err := b.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 2; echo finished"})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, b, j.ID) // the worker runs it
	b.Redirect("wm", a)
	b.StopMaster()
	a.Eventually(10*time.Second, "wm up on a", func() bool {
		for _, w := range a.Master.Workers(ctx) {
			if w.Name == "wm" && w.Status == api.WorkerUp {
				return true
			}
		}
		return false
	})
	done := waitJob(t, a, j.ID, "the job finished through a", func(j *api.Job) bool {
		return j.Status != api.StatusQueued && j.Status != api.StatusRunning
	})
	if done.Status != api.StatusDone || done.Attempts != 1 || done.Run == nil ||
		!strings.Contains(done.Run.Stdout, "started") || !strings.Contains(done.Run.Stdout, "finished") {
		t.Fatalf("job: %s, attempts %d, error %q, run %+v; want done on its first attempt", done.Status, done.Attempts, done.Error, done.Run)
	}
}

// TestDrainThroughAnotherMaster: an admin drains, through one master, a
// worker another master holds; it takes no new job until undrained.
func TestDrainThroughAnotherMaster(t *testing.T) {
	a := clustertest.Start(t, clustertest.Options{})
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wd", Slots: 1, Languages: []string{"bash"}})
	ctx := context.Background()
	status := func(c *clustertest.Cluster) string {
		for _, w := range c.Master.Workers(ctx) {
			if w.Name == "wd" {
				return w.Status
			}
		}
		return ""
	}
	a.Eventually(10*time.Second, "a lists wd", func() bool { return status(a) == api.WorkerUp })
	if _, err := a.Client.Drain(ctx, "wd"); err != nil {
		t.Fatalf("drain through a: %v", err)
	}
	b.Eventually(10*time.Second, "wd draining on b", func() bool { return status(b) == api.WorkerDraining })
	a.Eventually(10*time.Second, "wd draining on a", func() bool { return status(a) == api.WorkerDraining })
	j, err := a.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo drained"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if got, _ := a.Client.Job(ctx, j.ID); got.Status != api.StatusQueued {
		t.Fatalf("a job ran on a drained worker: %s", got.Status)
	}
	if _, err := a.Client.Undrain(ctx, "wd"); err != nil {
		t.Fatalf("undrain through a: %v", err)
	}
	waitJob(t, a, j.ID, "the job done once wd is undrained", func(j *api.Job) bool { return j.Status == api.StatusDone })
	if _, err := a.Client.Drain(ctx, "nobody"); err == nil {
		t.Fatal("drain of an unknown worker succeeded")
	}
}

// TestWorkerFailsOverToTheNextMaster: a worker given two masters' addresses
// (grappe worker --master b,a) runs a job through b; b is killed; the
// worker moves to a within seconds, a adopts the running attempt, the job
// ends on its first attempt, and new jobs run through a, also for a client
// given both masters' addresses, b's first.
func TestWorkerFailsOverToTheNextMaster(t *testing.T) {
	a := clustertest.Start(t, clustertest.Options{})
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wf", Slots: 2, Languages: []string{"bash"}, OtherMasters: []string{a.Master.ClusterAddr()}})
	ctx := context.Background()
	j, err := b.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 2; echo finished"})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, b, j.ID)
	killed := time.Now()
	b.StopMaster()
	// Its result can only be recorded through a: b is gone.
	done := waitJob(t, a, j.ID, "the running job finished through a", func(j *api.Job) bool {
		return j.Status != api.StatusQueued && j.Status != api.StatusRunning
	})
	t.Logf("the job's result was recorded through a %s after b was killed (the program had about 2 s left)", time.Since(killed).Round(time.Millisecond))
	if done.Status != api.StatusDone || done.Attempts != 1 || done.Run == nil || !strings.Contains(done.Run.Stdout, "finished") {
		t.Fatalf("job: %s, attempts %d, error %q; want done on its first attempt", done.Status, done.Attempts, done.Error)
	}
	// A client given both masters (GRAPPE_ADDR=b,a) goes to a.
	both, err := client.New(client.Config{Addr: b.Master.URL() + "," + a.Master.URL(), Token: a.Token, CAPEM: a.Master.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()
	next, err := both.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo next"}, 30*time.Second)
	if err != nil || next.Status != api.StatusDone || next.Worker != "wf" {
		t.Fatalf("a new job through a: %+v %v", next, err)
	}
}
