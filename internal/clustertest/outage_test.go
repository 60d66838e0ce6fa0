package clustertest_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// TestMasterOutlivesItsDatabase: the master's PostgreSQL goes away (every
// connection cut, new ones refused, as when the server stops) while a job
// runs. The API answers 503 with Retry-After and a plain message, not
// 500; the worker stays linked; the job's result, which arrives during
// the outage, is recorded once the database is back, on its first
// attempt; and new jobs run again.
func TestMasterOutlivesItsDatabase(t *testing.T) {
	// The test server listens on a Unix socket: the master reaches it
	// through a TCP proxy the test can cut.
	u, err := url.Parse(postgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	socket := filepath.Join(q.Get("host"), ".s.PGSQL."+q.Get("port"))
	proxy, err := clustertest.NewUnixProxy(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	q.Del("host")
	q.Del("port")
	u.Host, u.RawQuery = proxy.Addr(), q.Encode()
	c := clustertest.Start(t, clustertest.Options{
		Master:  func(cfg *master.Config) { cfg.Database = u.String() },
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2, Languages: []string{"bash"}}},
	})
	ctx := context.Background()
	c.WaitLanguage("bash")
	connectedAt := workerConnectedAt(t, c, "w1")

	j, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo started; sleep 2; echo finished"})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, c, j.ID)

	proxy.Retarget(filepath.Join(t.TempDir(), "gone")) // the database is gone
	// One try: the answer is 503 (the client retries 5xx answers until
	// its context ends, and returns the last).
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = c.Client.Submit(short, &api.JobRequest{Language: "bash", Source: "echo refused"})
	cancel()
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.Code != api.CodeUnavailable ||
		!strings.Contains(apiErr.Message, "database is unavailable") {
		t.Fatalf("submit during the outage: %v, want 503 unavailable saying the database is", err)
	}
	// A client that keeps trying gets through once the database is back.
	during := make(chan *api.Job, 1)
	go func() {
		j, err := c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo during"}, 30*time.Second)
		if err != nil {
			t.Errorf("a submission retried through the outage: %v", err)
		}
		during <- j
	}()
	time.Sleep(2 * time.Second) // the job ends on the worker meanwhile; its result cannot be recorded

	proxy.Retarget(socket) // the database is back
	done := waitJob(t, c, j.ID, "the job's result recorded after the outage", func(j *api.Job) bool {
		return j.Status != api.StatusQueued && j.Status != api.StatusRunning
	})
	if done.Status != api.StatusDone || done.Attempts != 1 || done.Run == nil || !strings.Contains(done.Run.Stdout, "finished") {
		t.Fatalf("job: %s, attempts %d, error %q, run %+v; want done on its first attempt", done.Status, done.Attempts, done.Error, done.Run)
	}
	if at := workerConnectedAt(t, c, "w1"); !at.Equal(connectedAt) {
		t.Fatalf("the worker reconnected (connected at %s, then %s): the master dropped its link", connectedAt, at)
	}
	if j := <-during; j == nil || j.Status != api.StatusDone || strings.TrimSpace(j.Run.Stdout) != "during" {
		t.Fatalf("the job submitted during the outage: %+v", j)
	}
}

func workerConnectedAt(t *testing.T, c *clustertest.Cluster, name string) time.Time {
	t.Helper()
	for _, w := range c.Master.Workers(context.Background()) {
		if w.Name == name && w.Status == api.WorkerUp {
			return w.ConnectedAt
		}
	}
	t.Fatalf("worker %s is not up", name)
	return time.Time{}
}
