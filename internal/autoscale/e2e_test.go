//go:build unix

package autoscale_test

// End-to-end tests of the autoscaler: a real master (internal/clustertest)
// whose autoscaler starts real `grappe worker` processes, built from this
// tree, and stops them again.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// testPolicy is min 1, max 4 workers of one slot, with thresholds short
// enough for a test.
func testPolicy(max int) autoscale.Policy {
	return autoscale.Policy{
		Min: 1, Max: max, SlotsPerWorker: 1,
		Wait: time.Second, Backlog: 500 * time.Millisecond, Idle: 2 * time.Second,
		UpCooldown: 2 * time.Second, DownCooldown: time.Second,
		MaxStartsPerMinute: 10, JoinTimeout: 45 * time.Second,
	}
}

func startCluster(t *testing.T, as master.AutoscaleConfig) *clustertest.Cluster {
	as.Interval = 200 * time.Millisecond
	as.StopTimeout = 15 * time.Second
	as.ShutdownTimeout = 8 * time.Second
	return clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		cfg.PlacementTimeout = time.Minute
		cfg.Autoscale = as
	}})
}

// liveWorkers are the workers the master lists that are not lost.
func liveWorkers(c *clustertest.Cluster) []api.Worker {
	var out []api.Worker
	for _, w := range c.Master.Workers(context.Background()) {
		if w.Status != api.WorkerLost {
			out = append(out, w)
		}
	}
	return out
}

// sleeper is a bash job of one second that prints its argument.
func sleeper(i int) *api.JobRequest {
	return &api.JobRequest{Language: "bash", Source: "sleep 1\necho \"job $1\"\n", Args: []string{strconv.Itoa(i)}}
}

// checkJob fails the test unless the job ran once and printed its number.
func checkJob(t *testing.T, j *api.Job, i int) {
	t.Helper()
	switch {
	case j.Status != api.StatusDone || j.Verdict != api.VerdictOK:
		t.Errorf("job %d: %s/%s %s", i, j.Status, j.Verdict, j.Error)
	case j.Attempts != 1:
		t.Errorf("job %d ran %d times", i, j.Attempts)
	case j.Run == nil || j.Run.Stdout != fmt.Sprintf("job %d\n", i):
		t.Errorf("job %d: output %+v", i, j.Run)
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// TestLocalScalesUpAndDown: with min 1 and max 4 workers of one slot, 40
// jobs of one second reach four workers and finish in well under half of
// one worker's 40 s; once idle the cluster returns to one worker, and no
// job is lost or run twice, including jobs that run while it scales down.
func TestLocalScalesUpAndDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grappe and runs worker processes")
	}
	bin := clustertest.BuildGrappe(t)
	c := startCluster(t, master.AutoscaleConfig{
		Provisioner: "local", Policy: testPolicy(4), WorkerBinary: bin,
		WorkerArgs: []string{"--catalogue", clustertest.OnlyLanguagesCatalogue(t, "bash"), "--insecure-no-sandbox", "--drain-timeout", "10s"},
	})
	ctx := context.Background()

	c.Eventually(60*time.Second, "the minimum worker auto-1 up", func() bool {
		ws := liveWorkers(c)
		return len(ws) == 1 && ws[0].Name == "auto-1" && ws[0].Status == api.WorkerUp && len(ws[0].Languages) > 0
	})
	if w := liveWorkers(c)[0]; w.StartedBy == nil || w.StartedBy.Provisioner != "local" || !strings.Contains(w.StartedBy.Reason, "minimum") {
		t.Fatalf("auto-1 started_by = %+v", w.StartedBy)
	}

	const n = 40
	start := time.Now()
	ids := make([]string, n)
	for i := range n {
		j, err := c.Client.Submit(ctx, sleeper(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = j.ID
	}
	submitted := time.Since(start)
	peak := 0
	done := make([]*api.Job, n)
	for i, id := range ids {
		for {
			if ws := liveWorkers(c); len(ws) > peak {
				peak = len(ws)
			}
			j, err := c.Client.Job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Terminal() {
				done[i] = j
				break
			}
			if time.Since(start) > 90*time.Second {
				t.Fatalf("job %d not finished after %s: %s", i, time.Since(start), j.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	workers := map[string]int{}
	firstNew := time.Time{}
	for i, j := range done {
		checkJob(t, j, i)
		workers[j.Worker]++
		if j.Worker != "auto-1" && j.StartedAt != nil && (firstNew.IsZero() || j.StartedAt.Before(firstNew)) {
			firstNew = *j.StartedAt
		}
	}
	t.Logf("%d jobs of 1 s on %d workers (peak %d listed) in %s (submitted in %s); jobs per worker %v",
		n, len(workers), peak, elapsed.Round(100*time.Millisecond), submitted.Round(time.Millisecond), workers)
	if len(workers) != 4 {
		t.Errorf("the jobs ran on %d workers, want 4: %v", len(workers), workers)
	}
	// One worker takes at least 40 s: well under that, the scale-up
	// did its work (the bound is loose: the machine may be loaded).
	if elapsed > 32*time.Second {
		t.Errorf("40 jobs took %s, want well under 40 s (one worker's time)", elapsed)
	}
	reportLatency(t, c, start, firstNew)

	// Jobs one at a time while the idle workers are drained and stopped.
	for i := n; i < n+8; i++ {
		j, err := c.Client.SubmitWait(ctx, sleeper(i), 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkJob(t, j, i)
	}
	st, err := c.Client.Autoscaler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, w := range st.Workers {
		pids = append(pids, w.PID)
	}
	c.Eventually(60*time.Second, "back to one worker", func() bool {
		st, err := c.Client.Autoscaler(ctx)
		ws := liveWorkers(c)
		return err == nil && len(ws) == 1 && len(st.Workers) == 1 && st.Actual == 1 && st.Desired == 1
	})
	st, _ = c.Client.Autoscaler(ctx)
	for _, pid := range pids {
		if pid != st.Workers[0].PID && alive(pid) {
			t.Errorf("worker process %d still running after its stop", pid)
		}
	}
	var drains, stops int
	for _, d := range st.Decisions {
		switch d.Action {
		case autoscale.ActDrain:
			drains++
		case autoscale.ActStop:
			stops++
		case autoscale.ActFail:
			t.Errorf("failed start: %+v", d)
		}
	}
	if drains < 3 || stops < 3 {
		t.Errorf("%d drains and %d stops for three workers removed", drains, stops)
	}
	logDecisions(t, st)
}

// reportLatency prints how long queue pressure took to become a job
// running on a new worker, and where the time went: the policy's
// thresholds, the worker process's start and join, its first job.
func reportLatency(t *testing.T, c *clustertest.Cluster, pressure, firstJob time.Time) {
	st, err := c.Client.Autoscaler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var decided time.Time
	for _, d := range st.Decisions {
		if d.Action == autoscale.ActStart && d.Worker != "auto-1" && (decided.IsZero() || d.Time.Before(decided)) {
			decided = d.Time
		}
	}
	var joined time.Time
	for _, w := range c.Master.Workers(context.Background()) {
		if w.Name != "auto-1" && w.StartedBy != nil && (joined.IsZero() || w.ConnectedAt.Before(joined)) {
			joined = w.ConnectedAt
		}
	}
	if decided.IsZero() || joined.IsZero() || firstJob.IsZero() {
		t.Errorf("no scale-up seen: decided %v, joined %v, first job %v", decided, joined, firstJob)
		return
	}
	ms := func(a, b time.Time) string { return b.Sub(a).Round(10 * time.Millisecond).String() }
	t.Logf("SCALE-UP LATENCY %s: pressure → start decision %s (backlog threshold 500ms, interval 200ms), "+
		"decision → first new worker connected %s, connected → a job running on it %s",
		ms(pressure, firstJob), ms(pressure, decided), ms(decided, joined), ms(joined, firstJob))
}

func logDecisions(t *testing.T, st *api.Autoscaler) {
	for _, d := range slices.Backward(st.Decisions) {
		t.Logf("decision %s %-7s %-7s %s", d.Time.Local().Format("15:04:05.000"), d.Action, d.Worker, d.Reason)
	}
}

// TestExecScalesWithScripts: the exec provisioner's start and stop
// commands are shell scripts that start a real worker in the background
// and stop it, as ssh or a cloud CLI would on another machine.
func TestExecScalesWithScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grappe and runs worker processes")
	}
	bin := clustertest.BuildGrappe(t)
	dir := t.TempDir()
	cat := clustertest.OnlyLanguagesCatalogue(t, "bash")
	start := filepath.Join(dir, "start.sh")
	stop := filepath.Join(dir, "stop.sh")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\nset -e\n"+body), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write(start, fmt.Sprintf(`
echo "$GRAPPE_WORKER_NAME" >> %[1]s/started
%[2]q worker --master "$GRAPPE_MASTER" --join-token "$GRAPPE_JOIN_TOKEN" --name "$GRAPPE_WORKER_NAME" \
	--max-jobs "$GRAPPE_MAX_JOBS" --data "$GRAPPE_WORKER_DIR/data" --catalogue %[3]q \
	--insecure-no-sandbox --drain-timeout 10s > "$GRAPPE_WORKER_DIR/worker.log" 2>&1 &
echo $! > "$GRAPPE_WORKER_DIR/pid"
echo "launched $GRAPPE_WORKER_NAME, pid $!"
`, dir, bin, cat))
	write(stop, fmt.Sprintf(`
pid=$(cat "$GRAPPE_WORKER_DIR/pid")
echo "$GRAPPE_WORKER_NAME" >> %[1]s/stopped
kill -TERM "$pid"
for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
kill -KILL "$pid"
`, dir))
	c := startCluster(t, master.AutoscaleConfig{Provisioner: "exec", Policy: testPolicy(2), StartCmd: start, StopCmd: stop})
	ctx := context.Background()
	c.Eventually(60*time.Second, "auto-1 up", func() bool {
		ws := liveWorkers(c)
		return len(ws) == 1 && ws[0].Status == api.WorkerUp && len(ws[0].Languages) > 0
	})

	const n = 8
	ids := make([]string, n)
	for i := range n {
		j, err := c.Client.Submit(ctx, sleeper(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = j.ID
	}
	seen := map[string]bool{}
	for i, id := range ids {
		j, err := c.Client.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkJob(t, j, i)
		seen[j.Worker] = true
	}
	if !seen["auto-2"] {
		t.Errorf("no job ran on the second worker: %v", seen)
	}
	c.Eventually(60*time.Second, "back to one worker", func() bool {
		st, err := c.Client.Autoscaler(ctx)
		return err == nil && len(liveWorkers(c)) == 1 && len(st.Workers) == 1
	})
	st, _ := c.Client.Autoscaler(ctx)
	logDecisions(t, st)
	// Whichever went idle first was stopped, by the stop script.
	kept := st.Workers[0].Name
	gone := map[string]string{"auto-1": "auto-2", "auto-2": "auto-1"}[kept]
	started, _ := os.ReadFile(filepath.Join(dir, "started"))
	stopped, _ := os.ReadFile(filepath.Join(dir, "stopped"))
	if string(started) != "auto-1\nauto-2\n" || string(stopped) != gone+"\n" {
		t.Errorf("started %q, stopped %q, kept %s", started, stopped, kept)
	}
	pid := func(name string) int {
		b, _ := os.ReadFile(filepath.Join(c.DataDir, "autoscale", name, "pid"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	if p := pid(gone); p == 0 || alive(p) {
		t.Errorf("%s's process %d still running after its stop", gone, p)
	}
	if p := pid(kept); !alive(p) {
		t.Errorf("%s's process %d is not running", kept, p)
	}
	if st.Provisioner != "exec" || liveWorkers(c)[0].StartedBy == nil {
		t.Errorf("status %+v", st)
	}
}
