package clustertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

	// A job accepted and run through b, followed through a's event
	// stream: a neither accepted nor holds it, and hears of its end
	// because it said it watches it (polling alone: ten sweeps, 10 s).
	// Each job runs long enough for a's stream to be open before it ends.
	start = time.Now()
	for i := range n {
		j, err := b.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 0.3"})
		if err != nil {
			t.Fatalf("job %d through b: %v", i, err)
		}
		if j, err = a.Client.Wait(ctx, j.ID); err != nil || j.Status != api.StatusDone {
			t.Fatalf("job %d through b, waited on a: %+v %v", i, j, err)
		}
	}
	per = time.Since(start) / n
	t.Logf("%d jobs of 0.3 s through b, each followed on a: %v each", n, per.Round(time.Millisecond))
	if per > 900*time.Millisecond {
		t.Fatalf("%v a job: a did not hear of the ends of jobs it watches", per)
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

// TestRevocationsReachEveryMaster: on PostgreSQL a revocation through one
// master takes effect on the others at once. A worker linked to master b
// whose identity is revoked through a loses its link (it would otherwise
// keep it until it reconnected; this one holds the join token and joins
// again as a new identity); an API token that b trusts from its
// cache stops working on b as soon as it is revoked through a, not ten
// seconds later.
func TestRevocationsReachEveryMaster(t *testing.T) {
	url := postgresDatabase(t)
	a := clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) { c.Database = url }})
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wr", Slots: 1, Languages: []string{"bash"}})
	ctx := context.Background()
	b.Eventually(10*time.Second, "wr up on b", func() bool { return workerStatus(b, "wr") == api.WorkerUp })

	dana := addUser(t, a, "dana", "user")
	tok, err := dana.CreateToken(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	onB := b.NewClient(tok.Token)
	defer onB.Close()
	if _, err := onB.Jobs(ctx, "", 1); err != nil { // b now trusts it from its cache
		t.Fatalf("the token on b: %v", err)
	}
	if err := dana.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	b.Eventually(3*time.Second, "the revoked token refused by b", func() bool {
		_, err := onB.Jobs(ctx, "", 1)
		return client.IsUnauthorized(err)
	})
	t.Logf("token revoked through a, refused by b after %s", time.Since(began).Round(time.Millisecond))

	// The worker holds the join token: it joins again at once, under a
	// new lineage, on a new link. The old link must be closed for that.
	before := workerConnectedAt(t, b, "wr")
	if err := a.Client.RevokeWorker(ctx, "wr"); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	b.Eventually(3*time.Second, "the revoked worker's link closed by b", func() bool {
		for _, w := range b.Master.Workers(ctx) {
			if w.Name == "wr" && w.ConnectedAt.After(before) {
				return true
			}
		}
		return false
	})
	t.Logf("worker revoked through a, its link on b replaced after %s", time.Since(began).Round(time.Millisecond))
}

// TestThreeMastersFourWorkers: three masters on one PostgreSQL, each with
// its own data directory, and four workers spread over them. Jobs are
// submitted round-robin through the three and awaited with ?wait through
// another: every one is done once, with its own output; a job running on
// a worker of one master is cancelled through a master that does not
// hold that worker.
func TestThreeMastersFourWorkers(t *testing.T) {
	url := postgresDatabase(t)
	a := clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) { c.Database = url }})
	masters := []*clustertest.Cluster{a, a.AddMasterOwnData("b"), a.AddMasterOwnData("c")}
	for i := range 4 {
		masters[i%3].AddWorker(clustertest.WorkerOptions{Name: fmt.Sprint("w", i), Slots: 2, Languages: []string{"bash"}})
	}
	ctx := context.Background()
	for _, m := range masters {
		m.Eventually(15*time.Second, "four workers up", func() bool {
			up := 0
			for _, w := range m.Master.Workers(ctx) {
				if w.Status == api.WorkerUp {
					up++
				}
			}
			return up == 4
		})
	}

	const n = 60
	type result struct {
		i   int
		job *api.Job
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			j, err := masters[i%3].Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: fmt.Sprintf("echo job-%d", i)})
			if err == nil {
				j, err = masters[(i+1)%3].Client.Wait(ctx, j.ID) // through another master
			}
			results <- result{i, j, err}
		})
	}
	wg.Wait()
	close(results)
	ranOn := map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("job %d: %v", r.i, r.err)
		}
		j := r.job
		if j.Status != api.StatusDone || j.Attempts != 1 || j.Run == nil || strings.TrimSpace(j.Run.Stdout) != fmt.Sprintf("job-%d", r.i) {
			t.Fatalf("job %d: %s, attempts %d, run %+v; want done once with its own output", r.i, j.Status, j.Attempts, j.Run)
		}
		ranOn[j.Worker]++
	}
	t.Logf("jobs per worker: %v", ranOn)
	if len(ranOn) < 3 {
		t.Errorf("the jobs ran on %d workers (%v): placement did not use the cluster", len(ranOn), ranOn)
	}

	// A cancel through a master that does not hold the job's worker.
	long, err := a.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 60", Limits: api.Limits{WallMs: 60000}})
	if err != nil {
		t.Fatal(err)
	}
	running := waitJob(t, a, long.ID, "the long job running", func(j *api.Job) bool { return j.Status == api.StatusRunning })
	holder := masters[workerIndex(running.Worker)%3] // w_i is linked to master i%3
	other := masters[(workerIndex(running.Worker)%3+1)%3]
	runs := func(n int) func() bool {
		return func() bool {
			for _, w := range holder.Master.Workers(ctx) {
				if w.Name == running.Worker && w.Status == api.WorkerUp && w.Running == n {
					return true
				}
			}
			return false
		}
	}
	holder.Eventually(5*time.Second, "the long job on its worker", runs(1))
	began := time.Now()
	if j, err := other.Client.Cancel(ctx, long.ID); err != nil || j.Status != api.StatusCancelled {
		t.Fatalf("cancel through a master that does not hold %s: %+v %v", running.Worker, j, err)
	}
	// The holding master stops it on the worker: the slot is free.
	holder.Eventually(10*time.Second, "the cancelled attempt's slot free", runs(0))
	t.Logf("cancel through another master: the slot was free after %s", time.Since(began).Round(time.Millisecond))
}

func workerIndex(name string) int {
	var i int
	fmt.Sscanf(name, "w%d", &i)
	return i
}
