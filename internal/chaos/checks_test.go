package chaos

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

// The checks and measures the chaos tests share.

// outcome counts what went wrong with the jobs of a run.
type outcome struct {
	lost, wrong, reruns int
}

// checkResults checks that every job is done with its own output, and
// counts the attempts run again.
func checkResults(t *testing.T, specs []jobSpec, results []*api.Job) outcome {
	t.Helper()
	var o outcome
	for i, j := range results {
		switch {
		case j == nil:
			o.lost++
		case j.Status != api.StatusDone:
			t.Errorf("job %s (%s): status %q error %q", j.ID, specs[i].req.Language, j.Status, j.Error)
			o.lost++
		case j.Run == nil || j.Run.Stdout != specs[i].want:
			t.Errorf("job %s: output %+v, want %q", j.ID, j.Run, specs[i].want)
			o.wrong++
		}
		if j != nil {
			o.reruns += j.Attempts - 1
		}
	}
	return o
}

// checkOnce checks, from the processes' logs, that every job has exactly
// one recorded result (whichever master recorded it) and that no job was
// started more often than its attempts say (an attempt re-adopted after a
// restart or by another master is not started again). It returns the
// number of jobs with more than one result.
//
// unlogged, when not nil, excuses a job with no "result recorded" line:
// it reports whether the master that recorded it may have been killed
// between its commit and its log line (the job's state, checked by
// checkResults, is the truth; the log only counts).
func checkOnce(t *testing.T, c *cluster, results []*api.Job, unlogged func(*api.Job) bool) (duplicated int) {
	t.Helper()
	recorded := map[string]int{}
	for _, m := range c.logLines(regexp.MustCompile(`msg="result recorded" job=(\w+) attempt=(\d+)`)) {
		recorded[m[1]]++
	}
	// A result whose commit landed while the master lost its database
	// connection (a PostgreSQL restart) is an error there, kept and
	// recorded again, and then found already recorded: its own first
	// commit, the only one its worker's attempt could make (the store's
	// compare-and-set is on the worker and its identity).
	landedUnseen := map[string]bool{}
	for _, m := range c.logLines(regexp.MustCompile(`msg="stale or duplicate result ignored" job=(\w+)`)) {
		landedUnseen[m[1]] = true
	}
	starts := map[string]map[string]int{}
	for _, m := range c.logLines(regexp.MustCompile(`msg="attempt started" worker=\S+ job=(\w+) attempt=(\d+)`)) {
		if starts[m[1]] == nil {
			starts[m[1]] = map[string]int{}
		}
		starts[m[1]][m[2]]++
	}
	for _, j := range results {
		if j == nil {
			continue
		}
		switch {
		case recorded[j.ID] == 0 && unlogged != nil && unlogged(j):
			t.Logf("job %s: no recorded result in the logs; a master was killed just after its end (%s)", j.ID, j.FinishedAt.Format("15:04:05.000"))
		case recorded[j.ID] == 0 && landedUnseen[j.ID]:
			t.Logf("job %s: its result's commit landed unseen (the database connection lost), then found recorded", j.ID)
		case recorded[j.ID] != 1:
			t.Errorf("job %s: %d recorded results", j.ID, recorded[j.ID])
			if recorded[j.ID] > 1 {
				duplicated++
			}
		}
		for attempt, n := range starts[j.ID] {
			if n > 1 {
				t.Errorf("job %s: attempt %s started %d times", j.ID, attempt, n)
			}
		}
		if len(starts[j.ID]) > j.Attempts {
			t.Errorf("job %s: %d attempts started, %d recorded", j.ID, len(starts[j.ID]), j.Attempts)
		}
	}
	return duplicated
}

// checkNoPanic checks that no process log has a panic or a data race.
func checkNoPanic(t *testing.T, c *cluster) {
	t.Helper()
	for _, path := range c.logPaths() {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "panic:") || strings.Contains(string(b), "DATA RACE") {
			t.Errorf("%s has a panic", filepath.Base(path))
		}
	}
}

// detectionTimes measures, for each worker killed (kills: name → when),
// the time until a master logged it lost.
func detectionTimes(c *cluster, kills map[string]time.Time) []time.Duration {
	var detect []time.Duration
	lostRe := regexp.MustCompile(`time=(\S+) level=WARN msg="worker lost" worker=(\w+)`)
	for _, m := range c.logLines(lostRe) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		if k, ok := kills[m[2]]; ok && at.After(k) {
			detect = append(detect, at.Sub(k))
		}
	}
	slices.Sort(detect)
	return detect
}

// killRandomWorker kills a random worker with kill -9, starts a new one,
// and returns the name of the one killed.
func killRandomWorker(c *cluster, r *rand.Rand) (string, error) {
	c.mu.Lock()
	names := make([]string, 0, len(c.workers))
	for n := range c.workers {
		names = append(names, n)
	}
	slices.Sort(names)
	victim := names[r.IntN(len(names))]
	p := c.workers[victim]
	delete(c.workers, victim)
	c.mu.Unlock()
	p.kill9()
	_, err := c.startWorker()
	return victim, err
}

// percentile returns the p-th percentile (0 < p ≤ 1) of sorted ds, 0 for
// none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
