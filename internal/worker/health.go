package worker

import (
	"context"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
)

// Health defaults; see Config.
const (
	// One failure is enough: the worker is out of the master's placement
	// before the attempt it gives back is queued again (the heartbeat goes
	// first), so the job cannot land on the same broken sandbox until its
	// attempts run out; and a repair is cheap (the quick self-tests), so a
	// passing fault costs a second or two of service.
	defaultUnhealthyAfter = 1
	defaultRepairBackoff  = time.Second
	maxRepairBackoff      = time.Minute
	repairTimeout         = 2 * time.Minute
)

// health is the worker's verdict on its own machinery (sandbox, cgroups,
// toolchains), kept apart from the programs it runs: a job the machinery
// failed is given back to run elsewhere, and a worker whose machinery
// keeps failing stops taking jobs until it has repaired itself. Guarded by
// Worker.mu.
type health struct {
	streak    int   // infrastructure failures since the last job that ran
	failures  int64 // all of them, since the worker started
	unhealthy bool
	reason    string // the last infrastructure error, for operators
}

func (h *health) proto() *clusterpb.Health {
	return &clusterpb.Health{Unhealthy: h.unhealthy, Reason: h.reason, InfraFailures: h.failures}
}

// infraFailure counts a failure of the worker's machinery and reports
// whether it has just made the worker unhealthy.
func (w *Worker) infraFailure(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.health.streak++
	w.health.failures++
	w.health.reason = err.Error()
	if w.health.unhealthy || w.health.streak < w.cfg.UnhealthyAfter {
		return false
	}
	w.health.unhealthy = true
	return true
}

// jobRan notes that the machinery worked, whatever the program did.
func (w *Worker) jobRan() {
	w.mu.Lock()
	w.health.streak = 0
	w.mu.Unlock()
}

func (w *Worker) isUnhealthy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.health.unhealthy
}

// giveBack hands an attempt the machinery failed back to the master, to
// run elsewhere. The heartbeat carrying the worker's health goes first, on
// the same ordered stream: a master that learns the worker is unhealthy
// only after the release could place the job right back here.
func (w *Worker) giveBack(k attemptKey, err error) {
	becameUnhealthy := w.infraFailure(err)
	w.log.Warn("the worker's machinery failed; attempt given back", "job", k.id, "attempt", k.n, "err", err)
	if becameUnhealthy {
		w.log.Error("worker unhealthy: it takes no job until it has repaired itself",
			"failures_in_a_row", w.cfg.UnhealthyAfter, "err", err)
		select {
		case w.repairWake <- struct{}{}:
		default:
		}
	}
	w.mu.Lock()
	out := w.out
	w.mu.Unlock()
	if out == nil {
		// Not connected: the next hello does not name the attempt, and
		// the master queues it again.
		return
	}
	w.trySend(out, &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: w.heartbeat(nil)}})
	w.trySend(out, &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Release{Release: &clusterpb.Release{
		Attempt: k.ref(), Reason: "the sandbox of worker " + w.cfg.Name + " failed", Infrastructure: true,
	}}})
}

// repairLoop repairs an unhealthy worker: it calls Config.Repair with a
// growing backoff until a repair succeeds, then declares the worker
// healthy again. The backoff keeps growing across repairs that do not
// last (a worker that fails again soon after), so a fault the repair does
// not see cannot make it flap every second; it starts small again once
// the worker stayed healthy for a while. It ends with ctx.
func (w *Worker) repairLoop(ctx context.Context) {
	backoff := w.cfg.RepairBackoff
	var healedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.repairWake:
		}
		if time.Since(healedAt) > maxRepairBackoff {
			backoff = w.cfg.RepairBackoff
		}
		for w.isUnhealthy() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			err := w.repair(ctx)
			backoff = min(2*backoff, maxRepairBackoff)
			if err != nil {
				w.log.Warn("repair failed; the worker stays unhealthy", "err", err, "next_in", backoff)
				continue
			}
			healedAt = time.Now()
			w.healed()
		}
	}
}

func (w *Worker) repair(ctx context.Context) error {
	if w.cfg.Repair == nil {
		return nil // nothing to repair with: the backoff was the repair
	}
	ctx, cancel := context.WithTimeout(ctx, repairTimeout)
	defer cancel()
	return w.cfg.Repair(ctx)
}

// healed puts a repaired worker back in service and tells the master at
// once, so that it places jobs here again without waiting for a beat.
func (w *Worker) healed() {
	w.mu.Lock()
	w.health = health{failures: w.health.failures}
	out := w.out
	w.mu.Unlock()
	w.log.Info("worker repaired; taking jobs again")
	if out != nil {
		w.trySend(out, &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: w.heartbeat(nil)}})
	}
}
