package clustertest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/runner"
)

// cgroupGoneRunner fails as a worker's runner does once the sandbox's
// cgroup was removed under it, until repaired.
type cgroupGoneRunner struct {
	broken atomic.Bool
	ok     bigRunner
}

func (r *cgroupGoneRunner) Run(ctx context.Context, spec *runner.Spec, out runner.OutputFunc) (*runner.Result, error) {
	if r.broken.Load() {
		return nil, errors.New("runner: run python: sandbox: start command: join cgroup: no such device")
	}
	return r.ok.Run(ctx, spec, out)
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
	bad := &cgroupGoneRunner{}
	bad.broken.Store(true)
	var fixable atomic.Bool
	repair := func(context.Context) error {
		if !fixable.Load() {
			return errors.New("sandbox: recreate cgroup: permission denied")
		}
		bad.broken.Store(false)
		return nil
	}
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "bad", Slots: 1, Runner: bad, LanguageSource: fakePython,
		UnhealthyAfter: 1, Repair: repair, RepairBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "python", Source: "0"})
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
	// It takes no job: the one it gave back waits for another worker.
	time.Sleep(500 * time.Millisecond)
	if j, err := c.Client.Job(ctx, job.ID); err != nil || j.Status != api.StatusQueued || j.Attempts != 1 {
		t.Fatalf("the job while only an unhealthy worker is there: %+v %v", j, err)
	}

	c.AddWorker(clustertest.WorkerOptions{Name: "good", Slots: 1, Runner: bigRunner{}, LanguageSource: fakePython})
	final, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.StatusDone || final.Worker != "good" || final.Run == nil || final.Run.Stdout != "ok\n" {
		t.Fatalf("the job after its worker's sandbox broke: %+v", final)
	}
	b, _ := json.Marshal(final)
	for _, internal := range []string{"cgroup", "sandbox:", "runner:"} {
		if strings.Contains(string(b), internal) {
			t.Errorf("the job's owner sees %q: %s", internal, b)
		}
	}

	// Repaired, it is up again and runs jobs.
	fixable.Store(true)
	c.Eventually(10*time.Second, "bad up again", func() bool { return workerStatus(c, "bad") == api.WorkerUp })
	c.StopWorker("good")
	again := submitWait(t, c, api.JobRequest{Language: "python", Source: "0"})
	if again.Status != api.StatusDone || again.Worker != "bad" {
		t.Fatalf("a job on the repaired worker: %+v", again)
	}
}
