package clustertest_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

func submitWait(t *testing.T, c *clustertest.Cluster, req api.JobRequest) *api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return clustertest.Must(t).Finished(c.Client.SubmitWait(ctx, &req, time.Minute))
}

func TestRoutingByLanguage(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "py", Slots: 2, Languages: []string{"python"}},
		{Name: "sh", Slots: 2, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("python")
	c.WaitLanguage("bash")
	for range 4 {
		if j := submitWait(t, c, api.JobRequest{Language: "python", Source: "print(1)"}); j.Worker != "py" || j.Verdict != api.VerdictOK {
			t.Fatalf("python job on %q, verdict %q", j.Worker, j.Verdict)
		}
		if j := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo 1"}); j.Worker != "sh" || j.Verdict != api.VerdictOK {
			t.Fatalf("bash job on %q, verdict %q", j.Worker, j.Verdict)
		}
	}
	// A known language that no connected worker runs waits, then fails
	// after the placement timeout (3 s in clustertest) naming the language.
	start := time.Now()
	j := submitWait(t, c, api.JobRequest{Language: "java", Source: "class A{}"})
	if j.Status != api.StatusFailed || !strings.Contains(j.Error, "java") {
		t.Fatalf("java job: status %q error %q, want failed naming java", j.Status, j.Error)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("failed after %v, before the placement timeout", waited)
	}
	// A version nobody has is not placeable either.
	j = submitWait(t, c, api.JobRequest{Language: "python", Version: "2.7", Source: "print 1"})
	if j.Status != api.StatusFailed || !strings.Contains(j.Error, "python 2.7") {
		t.Fatalf("python 2.7 job: status %q error %q", j.Status, j.Error)
	}
}

func TestLabelsRouting(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "plain", Slots: 2, Languages: []string{"bash"}},
		{Name: "gpu", Slots: 2, Languages: []string{"bash"}, Labels: map[string]string{"gpu": "yes"}},
	}})
	c.WaitLanguage("bash")
	for range 3 {
		j := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo", Labels: map[string]string{"gpu": "yes"}})
		if j.Worker != "gpu" {
			t.Fatalf("labelled job ran on %q", j.Worker)
		}
	}
}

// interval is when a job ran, as the master recorded it.
type interval struct{ start, end time.Time }

func maxOverlap(iv []interval) int {
	type ev struct {
		at    time.Time
		delta int
	}
	var evs []ev
	for _, i := range iv {
		evs = append(evs, ev{i.start, 1}, ev{i.end, -1})
	}
	sort.Slice(evs, func(a, b int) bool {
		if evs[a].at.Equal(evs[b].at) {
			return evs[a].delta < evs[b].delta // ends before starts
		}
		return evs[a].at.Before(evs[b].at)
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

// runBatch submits n jobs at once and waits for all of them.
func runBatch(t *testing.T, c *clustertest.Cluster, n int, req api.JobRequest) []*api.Job {
	t.Helper()
	jobs := make([]*api.Job, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := req
			j, err := c.Client.SubmitWait(ctx, &r, time.Minute)
			if err != nil {
				errs <- err
				return
			}
			jobs[i] = j
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}
	return jobs
}

func TestLoadBalancingAcrossWorkers(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "a", Slots: 1, Languages: []string{"bash"}},
		{Name: "b", Slots: 1, Languages: []string{"bash"}},
		{Name: "c", Slots: 1, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	start := time.Now()
	jobs := runBatch(t, c, 9, api.JobRequest{Language: "bash", Source: "sleep 1"})
	took := time.Since(start)
	per := map[string]int{}
	var ivs []interval
	for _, j := range jobs {
		if j.Verdict != api.VerdictOK {
			t.Fatalf("job %s: status %q verdict %q", j.ID, j.Status, j.Verdict)
		}
		per[j.Worker]++
		ivs = append(ivs, interval{*j.StartedAt, *j.FinishedAt})
	}
	t.Logf("9 one-second jobs on 3 one-slot workers took %v; per worker %v", took.Round(time.Millisecond), per)
	if len(per) != 3 {
		t.Fatalf("jobs ran on %v, want all three workers", per)
	}
	if took > 6*time.Second {
		t.Fatalf("took %v: the workers did not run in parallel (sequential would be 9s)", took)
	}
	if o := maxOverlap(ivs); o > 3 {
		t.Fatalf("%d jobs ran at once on 3 slots", o)
	}
}

func TestMaxJobsPerWorker(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w", Slots: 3, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	jobs := runBatch(t, c, 7, api.JobRequest{Language: "bash", Source: "sleep 0.5"})
	var ivs []interval
	for _, j := range jobs {
		if j.Verdict != api.VerdictOK {
			t.Fatalf("job %s: status %q verdict %q", j.ID, j.Status, j.Verdict)
		}
		ivs = append(ivs, interval{*j.StartedAt, *j.FinishedAt})
	}
	if o := maxOverlap(ivs); o != 3 {
		t.Fatalf("at most %d jobs ran at once, want exactly 3 (the worker's --max-jobs)", o)
	}
}

func TestManyClients(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 jobs; skipped with -short")
	}
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w1", Slots: 4, Languages: []string{"bash"}},
		{Name: "w2", Slots: 4, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	const clients, perClient = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	start := time.Now()
	for ci := range clients {
		wg.Go(func() {
			cl := c.NewClient(c.Token)
			defer cl.Close()
			for k := range perClient {
				want := fmt.Sprintf("client %d job %d", ci, k)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				j, err := cl.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: `echo "$1 $2"; cat`, Args: []string{"client", fmt.Sprint(ci)}, Stdin: fmt.Sprintf("job %d", k)}, 2*time.Minute)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if j.Status != api.StatusDone || j.Run == nil || j.Run.Stdout != fmt.Sprintf("client %d\njob %d", ci, k) {
					errs <- fmt.Errorf("%s: status %q run %+v", want, j.Status, j.Run)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d jobs from %d clients in %v", clients*perClient, clients, time.Since(start).Round(time.Millisecond))
	cl, err := c.Client.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cl.Jobs[api.StatusDone] != clients*perClient {
		t.Fatalf("cluster counts %v, want %d done", cl.Jobs, clients*perClient)
	}
}
