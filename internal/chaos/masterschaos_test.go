package chaos

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/store/postgres/pgtest"
)

// mastersChaos is the chaos of TestChaosMasters: one goroutine kills
// workers (as TestChaos does), another kills masters one at a time; the
// database is restarted once, on demand. A master kill and the database
// restart never overlap: each takes turn.
type mastersChaos struct {
	t    *testing.T
	c    *cluster
	pg   *pgtest.Server
	seed uint64

	stopped atomic.Bool
	done    sync.WaitGroup
	turn    sync.Mutex // one master down, or the database, at a time
	pgOnce  sync.Once

	// Written by the chaos goroutines, read once they are done.
	mu          sync.Mutex
	masterKills []masterKill
	workerKills map[string]time.Time
	pgRestarts  int
	pgErr       error
}

func newMastersChaos(t *testing.T, c *cluster, pg *pgtest.Server, seed uint64) *mastersChaos {
	return &mastersChaos{t: t, c: c, pg: pg, seed: seed, workerKills: map[string]time.Time{}}
}

// start starts the chaos, until end or ctx.
func (ch *mastersChaos) start(ctx context.Context) {
	ch.done.Go(func() { ch.killWorkers(ctx) })
	ch.done.Go(func() { ch.killMasters(ctx) })
}

// end stops the chaos; wait waits for it to be over (every master up).
func (ch *mastersChaos) end()  { ch.stopped.Store(true) }
func (ch *mastersChaos) wait() { ch.done.Wait() }

// pause waits d, and reports whether the chaos goes on.
func (ch *mastersChaos) pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
	}
	return !ch.stopped.Load()
}

// killWorkers kills a random worker every -chaos.kill-every and starts a
// new one.
func (ch *mastersChaos) killWorkers(ctx context.Context) {
	r := rand.New(rand.NewPCG(ch.seed, 1))
	for ch.pause(ctx, *killEvery) {
		at := time.Now()
		victim, err := killRandomWorker(ch.c, r)
		ch.mu.Lock()
		ch.workerKills[victim] = at
		ch.mu.Unlock()
		ch.t.Logf("kill -9 worker %s", victim)
		if err != nil {
			ch.t.Errorf("start a worker: %v", err)
			return
		}
	}
}

// killMasters kills the masters in turn, one every
// -chaos.master-kill-every, each restarted -chaos.master-down later on
// its ports and data.
func (ch *mastersChaos) killMasters(ctx context.Context) {
	for i := 0; ch.pause(ctx, *masterKillEvery); i = (i + 1) % len(ch.c.masters) {
		if err := ch.killMaster(i); err != nil {
			ch.t.Errorf("restart master %s: %v", ch.c.masters[i].id, err)
			return
		}
	}
}

func (ch *mastersChaos) killMaster(i int) error {
	ch.turn.Lock()
	defer ch.turn.Unlock()
	m := ch.c.masters[i]
	at := time.Now()
	ch.c.killMaster(i)
	ch.mu.Lock()
	ch.masterKills = append(ch.masterKills, masterKill{master: m.id, addr: m.clusterAddr, at: at})
	ch.mu.Unlock()
	ch.t.Logf("kill -9 master %s", m.id)
	time.Sleep(*masterDown)
	err := ch.c.startMaster(i)
	ch.t.Logf("master %s restarted after %v", m.id, time.Since(at).Round(time.Millisecond))
	return err
}

// restartPostgres restarts the database, once, in a goroutine of its own
// (between two master kills).
func (ch *mastersChaos) restartPostgres() {
	ch.pgOnce.Do(func() {
		ch.done.Go(func() {
			ch.turn.Lock()
			defer ch.turn.Unlock()
			ch.t.Logf("restart PostgreSQL (down %v)", pgDown)
			err := ch.pg.Restart(pgDown)
			ch.mu.Lock()
			ch.pgRestarts++
			ch.pgErr = err
			ch.mu.Unlock()
			ch.t.Logf("PostgreSQL back: %v", err)
		})
	})
}

// check fails the test if the chaos did not happen: a chaos test
// without chaos proves nothing.
func (ch *mastersChaos) check() {
	ch.t.Helper()
	switch {
	case ch.pgErr != nil:
		ch.t.Errorf("restart PostgreSQL: %v", ch.pgErr)
	case ch.pgRestarts != 1:
		ch.t.Errorf("PostgreSQL restarted %d times, want 1", ch.pgRestarts)
	}
	if len(ch.masterKills) == 0 {
		ch.t.Errorf("no master was killed: the run was shorter than -chaos.master-kill-every")
	}
	if len(ch.workerKills) == 0 {
		ch.t.Errorf("no worker was killed: the run was shorter than -chaos.kill-every")
	}
}

// unloggedWindow bounds the time from a result's arrival at a master
// (the job's FinishedAt) to the kill that cut the master between its
// commit and its "result recorded" line.
const unloggedWindow = 2 * time.Second

// killedJustAfter reports whether a master was killed within
// unloggedWindow after job j finished (checkOnce).
func (ch *mastersChaos) killedJustAfter(j *api.Job) bool {
	if j.FinishedAt == nil {
		return false
	}
	for _, k := range ch.masterKills {
		if d := k.at.Sub(*j.FinishedAt); d >= 0 && d <= unloggedWindow {
			return true
		}
	}
	return false
}
