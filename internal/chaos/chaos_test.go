package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

var (
	jobsFlag    = flag.Int("chaos.jobs", 150, "jobs to submit")
	workersFlag = flag.Int("chaos.workers", 3, "workers alive at any time")
	killEvery   = flag.Duration("chaos.kill-every", 3*time.Second, "pause between two worker kills")
	keepLogs    = flag.String("chaos.logs", "", "copy the processes' logs into this directory at the end")
)

// jobSpec is one generated job and the output it must produce.
type jobSpec struct {
	req  api.JobRequest
	want string
}

// mixedJobs makes n jobs of bash, python and C, from instant to about a
// second and a half long, each with an output that proves it ran its own
// input.
func mixedJobs(n int, r *rand.Rand) []jobSpec {
	out := make([]jobSpec, n)
	for i := range out {
		a, b := r.IntN(1000), r.IntN(1000)
		sleep := []string{"0", "0", "0.2", "0.5", "1.5"}[r.IntN(5)]
		want := fmt.Sprintf("%d\n", a*b+i)
		switch i % 3 {
		case 0:
			out[i] = jobSpec{api.JobRequest{Language: "bash",
				Source: fmt.Sprintf("sleep %s\necho $(( %d * %d + %d ))", sleep, a, b, i)}, want}
		case 1:
			out[i] = jobSpec{api.JobRequest{Language: "python",
				Source: fmt.Sprintf("import time\ntime.sleep(%s)\nprint(%d * %d + int(input()))", sleep, a, b), Stdin: fmt.Sprint(i)}, want}
		default:
			out[i] = jobSpec{api.JobRequest{Language: "c",
				Source: fmt.Sprintf("#include <stdio.h>\n#include <unistd.h>\nint main(int c, char **v){ usleep((useconds_t)(%s * 1e6)); printf(\"%%d\\n\", %d * %d + atoi(v[1])); return 0; }\nint atoi(const char*);",
					sleep, a, b), Args: []string{fmt.Sprint(i)}}, want}
		}
		out[i].req.MaxAttempts = 10
	}
	return out
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test builds the binary and runs real processes; skipped with -short")
	}
	start := time.Now()
	c := newCluster(t, 1, "")
	if err := c.startMaster(0); err != nil {
		t.Fatal(err)
	}
	for range *workersFlag {
		if _, err := c.startWorker(); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := c.client(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	specs := mixedJobs(*jobsFlag, r)

	// Submit from 8 clients; the SDK retries through the master's restart
	// with an idempotency key, so a submission is never doubled.
	ids := make([]string, len(specs))
	var wg sync.WaitGroup
	next := make(chan int)
	var submitErr error
	var errMu sync.Mutex
	for range 8 {
		wg.Go(func() {
			for i := range next {
				j, err := cl.Submit(ctx, &specs[i].req)
				if err != nil {
					errMu.Lock()
					submitErr = fmt.Errorf("submit %d: %w", i, err)
					errMu.Unlock()
					continue
				}
				ids[i] = j.ID
			}
		})
	}

	// Chaos: kill -9 a random worker every few seconds and start a new
	// one; once, kill -9 the master and restart it.
	chaosDone := make(chan struct{})
	// The waiters end the chaos once most jobs are done, so the last ones
	// finish on a quiet cluster.
	var stopChaos atomic.Bool
	kills := map[string]time.Time{}
	go func() {
		defer close(chaosDone)
		masterKilled := false
		for round := 0; ; round++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(*killEvery):
			}
			if stopChaos.Load() {
				return
			}
			if !masterKilled && round == 2 {
				masterKilled = true
				t.Logf("kill -9 master")
				c.killMaster(0)
				time.Sleep(500 * time.Millisecond)
				if err := c.startMaster(0); err != nil {
					t.Error(err)
					return
				}
				continue
			}
			at := time.Now()
			victim, err := killRandomWorker(c, r)
			t.Logf("kill -9 %s", victim)
			kills[victim] = at
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()

	for i := range specs {
		next <- i
	}
	close(next)
	wg.Wait()
	if submitErr != nil {
		t.Fatal(submitErr)
	}
	submitted := time.Since(start)

	// Wait for every job; keep the chaos going until two thirds are done.
	results := make([]*api.Job, len(ids))
	var done sync.WaitGroup
	var finished sync.Mutex
	nDone := 0
	for i, id := range ids {
		done.Go(func() {
			j, err := cl.Wait(ctx, id)
			if err != nil {
				t.Errorf("wait %s: %v", id, err)
				return
			}
			results[i] = j
			finished.Lock()
			nDone++
			if nDone == len(ids)*2/3 {
				stopChaos.Store(true)
			}
			finished.Unlock()
		})
	}
	done.Wait()
	stopChaos.Store(true)
	<-chaosDone
	took := time.Since(start)

	// Every job is terminal and correct, ran once, and no process
	// panicked.
	o := checkResults(t, specs, results)
	lost, wrong, reruns := o.lost, o.wrong, o.reruns
	duplicated := checkOnce(t, c, results, nil)
	checkNoPanic(t, c)
	// Detection: from each kill to the master's "worker lost" line.
	detect := detectionTimes(c, kills)

	median := time.Duration(0)
	if len(detect) > 0 {
		median = detect[len(detect)/2]
	}
	t.Logf("chaos: %d jobs submitted in %v, %d workers killed, master killed once; lost %d, wrong output %d, duplicated results %d, re-run attempts %d; dead worker detected in %v (median of %d, worker timeout 2s); all finished in %v",
		len(specs), submitted.Round(time.Millisecond), len(kills), lost, wrong, duplicated, reruns, median.Round(time.Millisecond), len(detect), took.Round(time.Millisecond))
}
