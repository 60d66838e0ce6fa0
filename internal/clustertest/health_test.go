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
	"path/filepath"
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
