package chaos

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/store/postgres/pgtest"
)

var (
	mastersJobs     = flag.Int("chaos.masters-jobs", 300, "TestChaosMasters: jobs to submit")
	masterKillEvery = flag.Duration("chaos.master-kill-every", 4*time.Second, "TestChaosMasters: pause between two kills of a master")
	masterDown      = flag.Duration("chaos.master-down", time.Second, "TestChaosMasters: how long a killed master stays down")
	submitRate      = flag.Float64("chaos.submit-rate", 10, "TestChaosMasters: jobs submitted per second, about what the cluster runs, so that the submissions meet the chaos (0: all at once)")
)

const (
	// chaosMasters and chaosWorkers size TestChaosMasters' cluster.
	chaosMasters, chaosWorkers = 3, 4
	// pgDown is how long PostgreSQL stays down when it is restarted.
	pgDown = 2 * time.Second
	// failoverWindow bounds the wait for a worker of a killed master to
	// connect to another: past it the worker is stuck, an error.
	failoverWindow = 30 * time.Second
	// maxWaitLag bounds the time from a job's end to the answer of its
	// wait: a sweep or a notification tells every master within a second,
	// a client's retries take a few more; the client's own recheck of a
	// silent stream, a minute, means a master never told it.
	maxWaitLag = 30 * time.Second
	// failoverTarget is issue 13's goal for p99 of kill → new job on
	// another master; measured and reported, not asserted (a loaded
	// machine misses it without any fault of the code).
	failoverTarget = 5 * time.Second
)

// TestChaosMasters is the chaos test of issue 13: three masters on one
// PostgreSQL database, four workers that know all three, jobs submitted
// to the three in turn. Every few seconds one master is killed with
// kill -9 and restarted a little later on the same ports and data;
// workers are killed and replaced as in TestChaos; once, PostgreSQL
// itself is restarted. Checked: every job done once with its output,
// every submission accepted once however often it was retried; measured:
// how long the workers of a killed master take to run jobs elsewhere.
func TestChaosMasters(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test builds the binary and runs real processes; skipped with -short")
	}
	start := time.Now()
	pg, url := postgresServer(t)
	c := newCluster(t, chaosMasters, url)
	for i := range c.masters {
		if err := c.startMaster(i); err != nil {
			t.Fatal(err)
		}
	}
	checkSharedIdentity(t, c)
	for range chaosWorkers {
		if _, err := c.startWorker(); err != nil {
			t.Fatal(err)
		}
	}
	waitWorkersListed(t, c, chaosWorkers)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	specs := mixedJobs(*mastersJobs, rand.New(rand.NewPCG(seed, 0)))
	sub, err := newSubmitter(c, fmt.Sprintf("chaos-%x", seed))
	if err != nil {
		t.Fatal(err)
	}

	ch := newMastersChaos(t, c, pg, seed)
	ch.start(ctx)
	ids := make([]string, len(specs))
	accepted := make(chan int, len(specs))
	var submitted time.Duration
	go func() {
		defer close(accepted) // after submitted is written: awaitAll's end orders the read
		submitAll(ctx, t, sub, specs, ids, accepted)
		submitted = time.Since(start)
	}()
	// PostgreSQL restarts once 40% of the jobs are done; the chaos ends
	// at 80%, so that the last ones finish on a quiet cluster.
	results, answered := awaitAll(ctx, t, c, ids, accepted, func(done int) {
		switch done {
		case len(ids) * 2 / 5:
			ch.restartPostgres()
		case len(ids) * 4 / 5:
			ch.end()
		}
	})
	ch.end()
	ch.wait()
	took := time.Since(start)
	if t.Failed() {
		t.FailNow() // a submission or a wait failed: the checks below would only repeat it
	}

	o := checkResults(t, specs, results)
	duplicated := checkOnce(t, c, results, ch.killedJustAfter)
	checkNoPanic(t, c)
	rows := checkAcceptedOnce(t, url, sub.keyBase, ids)
	retries, why := sub.retried()
	ch.check()
	lags := waitLag(t, results, answered)
	if len(lags) > 0 && lags[len(lags)-1] > maxWaitLag {
		t.Errorf("a wait answered %v after its job's end (over %v): a master did not tell its subscribers", lags[len(lags)-1].Round(time.Millisecond), maxWaitLag)
	}
	reconnect, newJob, stuck := failoverReport(t, c, ch.masterKills, ch.workerKills, failoverWindow, time.Now())
	for _, s := range stuck {
		t.Errorf("stuck worker: %s", s)
	}
	t.Logf("chaos with %d masters on PostgreSQL: %d jobs submitted in %v (%d rows in the database), %d submissions retried %v; %d masters killed, %d workers killed, PostgreSQL restarted %d time(s); lost %d, wrong output %d, duplicated results %d, re-run attempts %d; all finished in %v",
		chaosMasters, len(specs), submitted.Round(time.Millisecond), rows, retries, why, len(ch.masterKills), len(ch.workerKills), ch.pgRestarts,
		o.lost, o.wrong, duplicated, o.reruns, took.Round(time.Millisecond))
	t.Logf("waits: job's end → its wait answered: %s", spread(lags))
	t.Logf("failover, kill -9 of a master → its workers connected to another: %s", spread(reconnect))
	t.Logf("failover, kill -9 of a master → its workers run a new job on another: %s (target: p99 under %v)", spread(newJob), failoverTarget)
}

// postgresServer starts a throwaway PostgreSQL server and returns it with
// the URL of an empty database on it; the test skips only when no server
// can be had here.
func postgresServer(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	server, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrUnavailable) {
		t.Skipf("no PostgreSQL server here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
	return server, server.Database(t)
}

// checkSharedIdentity checks that every master took the cluster's
// identity from the database: the same CA and tokens in every data
// directory (the workers join with the first's join token, and connect
// to all).
func checkSharedIdentity(t *testing.T, c *cluster) {
	t.Helper()
	for _, f := range []string{"ca.pem", "join-token", "admin-token"} {
		first, err := os.ReadFile(filepath.Join(c.masters[0].data, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range c.masters[1:] {
			b, err := os.ReadFile(filepath.Join(m.data, f))
			if err != nil || !bytes.Equal(b, first) {
				t.Fatalf("%s of %s differs from %s's (%v)", f, m.id, c.masters[0].id, err)
			}
		}
	}
}

// waitWorkersListed waits until every master lists n workers up (the
// workers table the masters share).
func waitWorkersListed(t *testing.T, c *cluster, n int) {
	t.Helper()
	for i, m := range c.masters {
		cl, err := c.client(i)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for up := 0; up < n; {
			ws, err := cl.Workers(context.Background())
			up = 0
			for _, w := range ws {
				if w.Status == api.WorkerUp {
					up++
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s lists %d workers up, want %d (%v)", m.id, up, n, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		cl.Close()
	}
}

// submitAll submits every job from 8 goroutines, -chaos.submit-rate a
// second, writes their ids and sends the index of each accepted one to
// accepted.
func submitAll(ctx context.Context, t *testing.T, sub *submitter, specs []jobSpec, ids []string, accepted chan<- int) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				j, err := sub.submit(ctx, i, &specs[i].req)
				if err != nil {
					t.Errorf("a submission was never answered: %v", err)
					continue
				}
				ids[i] = j.ID
				accepted <- i
			}
		})
	}
	var tick <-chan time.Time
	if *submitRate > 0 {
		ticker := time.NewTicker(time.Duration(float64(time.Second) / *submitRate))
		defer ticker.Stop()
		tick = ticker.C
	}
	for i := range specs {
		if tick != nil {
			<-tick
		}
		next <- i
	}
	close(next)
	wg.Wait()
}

// awaitAll waits for every job accepted (its index comes from accepted)
// through any master (a client of all three), calling progress with the
// number finished after each. It returns the jobs, and when each wait
// returned.
func awaitAll(ctx context.Context, t *testing.T, c *cluster, ids []string, accepted <-chan int, progress func(done int)) ([]*api.Job, []time.Time) {
	t.Helper()
	cl, err := c.clientOf(c.masters)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	results := make([]*api.Job, len(ids))
	answered := make([]time.Time, len(ids))
	var mu sync.Mutex
	done := 0
	// A bounded number of waits at a time: each holds an event stream
	// on a master, and two cores serve the whole cluster.
	sem := make(chan struct{}, 200)
	var wg sync.WaitGroup
	for i := range accepted {
		id := ids[i]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			j, err := cl.Wait(ctx, id)
			if err != nil {
				t.Errorf("wait %s: %v", id, err)
				return
			}
			results[i], answered[i] = j, time.Now()
			mu.Lock()
			done++
			n := done
			mu.Unlock()
			progress(n)
		})
	}
	wg.Wait()
	return results, answered
}

// waitLag measures how late the waits heard of the jobs' ends: from a
// job's finish to the return of its wait. It logs the latest few.
func waitLag(t *testing.T, results []*api.Job, answered []time.Time) []time.Duration {
	t.Helper()
	type late struct {
		id  string
		lag time.Duration
	}
	var all []late
	for i, j := range results {
		if j == nil || j.FinishedAt == nil {
			continue
		}
		all = append(all, late{j.ID, answered[i].Sub(*j.FinishedAt)})
	}
	slices.SortFunc(all, func(a, b late) int { return cmp.Compare(a.lag, b.lag) })
	lags := make([]time.Duration, len(all))
	for i, l := range all {
		lags[i] = l.lag
	}
	for _, l := range all[max(0, len(all)-3):] {
		t.Logf("late wait: job %s heard of %v after its end", l.id, l.lag.Round(time.Millisecond))
	}
	return lags
}

// checkAcceptedOnce checks in the database that each submission made
// exactly one job, the one its answer named, and no other job exists:
// no retry was accepted twice. It returns the number of jobs.
func checkAcceptedOnce(t *testing.T, url, keyBase string, ids []string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to the database: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, idem_key FROM jobs`)
	if err != nil {
		t.Fatalf("read the jobs: %v", err)
	}
	byKey := map[string][]string{}
	n := 0
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		byKey[key] = append(byKey[key], id)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		key := fmt.Sprintf("%s-%d", keyBase, i)
		if got := byKey[key]; len(got) != 1 || got[0] != id {
			t.Errorf("submission %d (key %s): jobs %v in the database, answered %s", i, key, got, id)
		}
	}
	if n != len(ids) {
		t.Errorf("%d jobs in the database, %d submitted", n, len(ids))
	}
	return n
}
