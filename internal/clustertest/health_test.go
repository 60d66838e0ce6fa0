package clustertest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/runner"
	"github.com/grappe/grappe/internal/sandbox"
	"github.com/grappe/grappe/internal/worker"
)

// cgroupSandbox is a sandbox whose cgroup was removed under it: every
// command fails to start, as a worker's did in issue 11, until Repair
// recreates it. Repair fails while the test says it cannot work yet.
type cgroupSandbox struct {
	sandbox.Plain
	broken, fixable atomic.Bool
	repairs         atomic.Int32
}

func (s *cgroupSandbox) Exec(ctx context.Context, cmd *sandbox.Cmd) (*sandbox.Outcome, error) {
	if s.broken.Load() {
		return nil, fmt.Errorf("sandbox: start command: join cgroup: %w", syscall.ENODEV)
	}
	return s.Plain.Exec(ctx, cmd)
}

func (s *cgroupSandbox) Repair(context.Context) error {
	s.repairs.Add(1)
	if !s.fixable.Load() {
		return errors.New("sandbox: recreate cgroup: permission denied")
	}
	s.broken.Store(false)
	return nil
}

// brokenWorkerRunner is a real runner for bash over sb.
func brokenWorkerRunner(t *testing.T, sb sandbox.Sandbox) (*runner.Runner, worker.StaticLanguages) {
	t.Helper()
	cat, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	e, _ := cat.Lookup("bash")
	tc, err := lang.DetectEntry(context.Background(), e)
	if err != nil {
		t.Skipf("no bash: %v", err)
	}
	dir := t.TempDir()
	r, err := runner.New(runner.Config{
		Catalogue: cat, Toolchains: []lang.Toolchain{tc}, Sandbox: sb,
		WorkRoot: filepath.Join(dir, "work"), CacheDir: filepath.Join(dir, "cache"), ToolCacheDir: filepath.Join(dir, "toolcache"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, worker.StaticLanguages{{Name: "bash", Version: tc.Version}}
}

func workerNamed(t *testing.T, c *clustertest.Cluster, name string) api.Worker {
	t.Helper()
	for _, w := range c.Master.Workers(context.Background()) {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no worker %s", name)
	return api.Worker{}
}

func metricsText(t *testing.T, c *clustertest.Cluster) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.Master.CAPEM())
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, c.Master.URL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A worker whose sandbox broke used to fail every job it got with its
// internals in the error, and stayed "up". Now it gives the attempts back,
// turns unhealthy, takes no job, and comes back once repaired; the job
// runs elsewhere and its owner sees nothing of it.
func TestBrokenSandboxMakesTheWorkerUnhealthyAndTheJobRunsElsewhere(t *testing.T) {
	sb := &cgroupSandbox{}
	sb.broken.Store(true)
	r, langs := brokenWorkerRunner(t, sb)
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "bad", Slots: 1, Runner: r, LanguageSource: langs,
		Repair: sb.Repair, RepairBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo fine"})
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(10*time.Second, "bad unhealthy", func() bool { return workerStatus(c, "bad") == api.WorkerUnhealthy })
	w := workerNamed(t, c, "bad")
	if w.InfraFailures < 1 || !strings.Contains(w.Health, "join cgroup") {
		t.Errorf("unhealthy worker: infra_failures %d, health %q; operators need both", w.InfraFailures, w.Health)
	}
	// The jobs it gave back count as its failures, with their error.
	if w.JobsFailed < 1 || w.FailureRate != 1 || w.LastError == "" || w.LastErrorAt == nil {
		t.Errorf("unhealthy worker: jobs_failed %d, failure_rate %v, last_error %q at %v", w.JobsFailed, w.FailureRate, w.LastError, w.LastErrorAt)
	}
	m := metricsText(t, c)
	for _, want := range []string{`grappe_workers{status="unhealthy"} 1`, `grappe_worker_infra_failures_total{worker="bad"} `} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// It takes no job and keeps trying to repair itself: the job it gave
	// back waits for another worker.
	c.Eventually(5*time.Second, "repairs tried", func() bool { return sb.repairs.Load() >= 2 })
	if j, err := c.Client.Job(ctx, job.ID); err != nil || j.Status != api.StatusQueued || j.Attempts != 1 {
		t.Fatalf("the job while only an unhealthy worker is there: %+v %v", j, err)
	}

	c.AddWorker(clustertest.WorkerOptions{Name: "good", Slots: 1, Languages: []string{"bash"}})
	c.WaitLanguage("bash")
	final, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.StatusDone || final.Worker != "good" || final.Run == nil || final.Run.Stdout != "fine\n" {
		t.Fatalf("the job after its worker's sandbox broke: %+v", final)
	}
	b, _ := json.Marshal(final)
	for _, internal := range []string{"cgroup", "sandbox:", "runner:"} {
		if strings.Contains(string(b), internal) {
			t.Errorf("the job's owner sees %q: %s", internal, b)
		}
	}

	// Repaired, it is up again and runs jobs.
	sb.fixable.Store(true)
	c.Eventually(10*time.Second, "bad up again", func() bool { return workerStatus(c, "bad") == api.WorkerUp })
	c.StopWorker("good")
	again := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo again"})
	if again.Status != api.StatusDone || again.Worker != "bad" || again.Run.Stdout != "again\n" {
		t.Fatalf("a job on the repaired worker: %+v", again)
	}
}

// removeCgroupTree kills the processes in the cgroup dir and below and
// removes it, deepest first: what an operator's rm, or a neighbour running
// an older grappe, did to a worker's base cgroup in issue 11.
func removeCgroupTree(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(t, filepath.Join(dir, e.Name()))
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// The kernel counts a killed process until it is reaped.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			t.Fatalf("remove cgroup %s: %v", dir, err)
		}
	}
}

// The same attack as above on a real sandbox: a worker's base cgroup (in
// every hierarchy, with cgroup v1) is removed from under it. The jobs it
// gets fail to start; it gives them back, so each finishes on the other
// worker with nothing of the worker's internals; it reports itself
// unhealthy with its infrastructure failures; and it repairs itself as
// grappe worker does (the sandbox's Repair, then the quick self-tests)
// and runs jobs again.
func TestRemovedCgroupMakesTheWorkerUnhealthyUntilItRepairsItself(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test breaks a real sandbox's cgroups")
	}
	if kind := clustertest.SharedToolbox(t).Sandbox; kind == "none" {
		t.Skipf("the jobs here run without a sandbox (kind %q): no cgroup to remove", kind)
	}
	c := clustertest.Start(t, clustertest.Options{})
	bad := c.AddWorker(clustertest.WorkerOptions{Name: "bad", Slots: 1, Languages: []string{"bash"},
		OwnSandbox: true, RepairBackoff: 2 * time.Second})
	c.AddWorker(clustertest.WorkerOptions{Name: "good", Slots: 1, Languages: []string{"bash"}})
	c.WaitLanguage("bash")
	c.Eventually(time.Minute, "bash on bad", func() bool { return len(workerNamed(t, c, "bad").Languages) > 0 })

	bases := bad.Sandbox().BaseCgroups()
	if len(bases) == 0 {
		t.Fatal("the worker's sandbox has no base cgroup")
	}
	for _, d := range bases {
		removeCgroupTree(t, d)
	}

	// What operators see, through GET /api/v1/workers, while it lasts:
	// the worker repairs itself RepairBackoff after its first failure.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sawUnhealthy := make(chan api.Worker, 1)
	go func() {
		for ctx.Err() == nil {
			ws, _ := c.Client.Workers(ctx)
			for _, w := range ws {
				if w.Name == "bad" && w.Status == api.WorkerUnhealthy && w.InfraFailures > 0 {
					sawUnhealthy <- w
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Jobs in pairs, one per worker's slot, until the broken worker has
	// had (and given back) one; every job finishes on the good worker.
	givenBack := 0
	for round := 0; round < 4 && givenBack == 0; round++ {
		var ids []string
		for i := range 2 {
			j, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: fmt.Sprintf("echo job %d", i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		for i, id := range ids {
			final, err := c.Client.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if final.Status != api.StatusDone || final.Worker != "good" || final.Run == nil || final.Run.Stdout != fmt.Sprintf("job %d\n", i) {
				t.Fatalf("a job while bad's cgroup is gone: %+v", final)
			}
			if final.Attempts > 1 {
				givenBack++
			}
			b, _ := json.Marshal(final)
			for _, internal := range []string{"cgroup", "sandbox:", "runner:", "no such"} {
				if strings.Contains(string(b), internal) {
					t.Errorf("the job's owner sees %q: %s", internal, b)
				}
			}
		}
	}
	if givenBack == 0 {
		t.Fatal("no job was placed on the broken worker")
	}
	select {
	case w := <-sawUnhealthy:
		t.Logf("bad while broken: status %s, infra_failures %d, health %q", w.Status, w.InfraFailures, w.Health)
	case <-time.After(10 * time.Second):
		t.Fatalf("bad never unhealthy with infra_failures > 0 in GET /api/v1/workers: %+v", workerNamed(t, c, "bad"))
	}

	// It repairs itself: its cgroups are back, and it runs a job.
	c.Eventually(30*time.Second, "bad up again", func() bool { return workerStatus(c, "bad") == api.WorkerUp })
	for _, d := range bases {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("base cgroup after repair: %v", err)
		}
	}
	c.StopWorker("good")
	again := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo again"})
	if again.Status != api.StatusDone || again.Worker != "bad" || again.Run == nil || again.Run.Stdout != "again\n" {
		t.Fatalf("a job on the repaired worker: %+v", again)
	}
	if w := workerNamed(t, c, "bad"); w.Status != api.WorkerUp || w.InfraFailures < 1 {
		t.Errorf("the repaired worker: %+v", w)
	}
}
