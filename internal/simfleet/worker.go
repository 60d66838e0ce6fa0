package simfleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/internal/clusterpb"
)

type attemptKey struct {
	id string
	n  int32
}

func (k attemptKey) ref() *clusterpb.AttemptRef {
	return &clusterpb.AttemptRef{JobId: k.id, Attempt: k.n}
}

// held is an attempt the worker holds: running (result nil, timer set
// when the fake run lasts), or finished and not yet acknowledged.
type held struct {
	timer  *time.Timer
	result *clusterpb.Result
}

// simWorker is one simulated worker. Its goroutine (run) joins, connects
// and receives; its heartbeats and the ends of its fake runs are timers,
// which send under mu: a gRPC stream takes one writer at a time.
type simWorker struct {
	f     *Fleet
	index int
	name  string

	cert *tls.Certificate // owned by run
	conn *grpc.ClientConn // owned by run; closed by closeConn after it

	mu       sync.Mutex
	stream   clusterpb.Cluster_ConnectClient // nil between sessions
	endSess  context.CancelFunc              // ends the live session
	sess     uint64                          // the live session's number
	interval time.Duration
	beat     *time.Timer
	lastBeat time.Time // of the live session: its start, then its last beat
	due      time.Time // when the beat timer was set to fire
	held     map[attemptKey]*held
}

func newSimWorker(f *Fleet, index int, name string) *simWorker {
	return &simWorker{f: f, index: index, name: name, held: map[attemptKey]*held{}}
}

// run keeps the worker in session until ctx ends. started is called once,
// when its first session is up or run gives up.
func (w *simWorker) run(ctx context.Context, started func()) {
	var once sync.Once
	release := func() { once.Do(started) }
	defer release()
	defer w.stopTimers()
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		t0 := time.Now()
		err := w.connectOnce(ctx, func() {
			if first {
				first = false
				w.f.noteFirstConnect()
				release()
			} else {
				w.f.reconnects.Add(1)
			}
		})
		if ctx.Err() != nil {
			return
		}
		w.f.noteError(err)
		switch status.Code(err) {
		case codes.InvalidArgument, codes.AlreadyExists, codes.PermissionDenied:
			// The master will not take this worker: retrying would only
			// knock at its door forever.
			w.f.log.Error("simulated worker refused; giving up", "worker", w.name, "err", err)
			if first {
				w.f.noteGaveUp()
			}
			return
		case codes.Unauthenticated:
			w.cert = nil // revoked or unknown: join again
		}
		if time.Since(t0) > 10*time.Second {
			backoff = 100 * time.Millisecond // it was a working session
		}
		w.f.log.Debug("simulated worker disconnected; reconnecting", "worker", w.name, "err", err, "in", backoff)
		// Jitter keeps the fleet from reconnecting in lockstep.
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// connectOnce joins if the worker has no certificate, then runs one
// session; up is called once the master welcomed it.
func (w *simWorker) connectOnce(ctx context.Context, up func()) error {
	if w.cert == nil {
		cert, err := w.f.join(ctx, w.index, w.name)
		if err != nil {
			return err
		}
		w.cert = cert
		w.f.joined.Add(1)
		w.closeConn() // it carried no certificate, or the old one
	}
	if w.conn == nil {
		conn, err := w.f.dial(w.cert, w.f.sourceAddr(w.index))
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.conn = conn
		w.mu.Unlock()
	}
	return w.session(ctx, up)
}

// session is one Connect stream, from the hello to its end.
func (w *simWorker) session(ctx context.Context, up func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := clusterpb.NewClusterClient(w.conn).Connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := stream.Send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Hello{Hello: w.hello()}}); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("welcome: %w", err)
	}
	welcome := first.GetWelcome()
	if welcome == nil {
		return errors.New("the master did not answer the hello with a welcome")
	}
	interval := time.Duration(welcome.HeartbeatIntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}

	w.mu.Lock()
	for _, a := range welcome.Abandon {
		w.drop(attemptKey{a.JobId, a.Attempt})
	}
	w.sess++
	w.stream, w.endSess, w.interval, w.lastBeat = stream, cancel, interval, time.Now()
	// The first beat at a random point of the interval: a fleet started
	// together must not beat together.
	sess := w.sess
	wait := rand.N(interval) + 1
	w.due = time.Now().Add(wait)
	w.beat = time.AfterFunc(wait, func() { w.heartbeat(sess) })
	// Results finished while disconnected were named in the hello; they
	// follow the welcome, as the real worker sends them.
	var sendErr error
	for _, h := range w.held {
		if h.result != nil && sendErr == nil {
			sendErr = w.sendLocked(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Result{Result: h.result}})
			w.f.results.Add(1)
		}
	}
	w.mu.Unlock()
	w.f.connected.Add(1)
	defer w.f.connected.Add(-1)
	defer w.endSession(sess)
	up()
	if sendErr != nil {
		return sendErr
	}
	err = w.receive(stream)
	if ctx.Err() == nil {
		// The master ended the session (a worker it declared lost sees
		// its stream closed). If this worker had just heartbeated, it was
		// healthy: the loss is the master's doing, not this process's.
		w.mu.Lock()
		silent := time.Since(w.lastBeat)
		w.mu.Unlock()
		if silent <= 2*interval {
			w.f.endedBeating.Add(1)
		}
	}
	return err
}

// endSession detaches the stream: timers firing from now on send nothing.
func (w *simWorker) endSession(sess uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess == sess {
		w.stream, w.endSess = nil, nil
		if w.beat != nil {
			w.beat.Stop()
			w.beat = nil
		}
	}
}

func (w *simWorker) hello() *clusterpb.Hello {
	cfg := &w.f.cfg
	h := &clusterpb.Hello{
		Name: w.name, Slots: int32(cfg.Slots), Labels: cfg.Labels, Languages: cfg.Languages,
		Sandbox: "none", Version: "simfleet", HeartbeatListsHeld: true,
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, h0 := range w.held {
		if h0.result == nil {
			h.Running = append(h.Running, k.ref())
		} else {
			h.Finished = append(h.Finished, k.ref())
		}
	}
	return h
}

func (w *simWorker) receive(stream clusterpb.Cluster_ConnectClient) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		switch x := msg.Msg.(type) {
		case *clusterpb.MasterMessage_Assign:
			if err := w.assign(x.Assign); err != nil {
				return err
			}
		case *clusterpb.MasterMessage_Cancel:
			if a := x.Cancel.Attempt; a != nil {
				w.cancel(attemptKey{a.JobId, a.Attempt})
			}
		case *clusterpb.MasterMessage_ResultAck:
			if a := x.ResultAck.Attempt; a != nil {
				w.mu.Lock()
				k := attemptKey{a.JobId, a.Attempt}
				if h := w.held[k]; h != nil && h.result != nil {
					delete(w.held, k)
					w.f.acked.Add(1)
				}
				w.mu.Unlock()
			}
		}
	}
}

// assign takes an attempt: Accepted at once, the result now or when the
// fake run ends. Sent from the receiving goroutine: a send can only block
// on a master that stopped reading, and each worker has at most Slots
// attempts (so as many acknowledgements) in flight, far below the
// windows.
func (w *simWorker) assign(a *clusterpb.Assign) error {
	if a.Attempt == nil {
		return nil
	}
	k := attemptKey{a.Attempt.JobId, a.Attempt.Attempt}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.held[k]; dup {
		return nil
	}
	w.f.assigned.Add(1)
	h := &held{}
	w.held[k] = h
	if err := w.sendLocked(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Accepted{Accepted: &clusterpb.Accepted{Attempt: k.ref()}}}); err != nil {
		return err
	}
	if w.f.cfg.RunTime <= 0 {
		return w.finishLocked(k, h, a.Spec)
	}
	spec := a.Spec
	h.timer = time.AfterFunc(w.f.cfg.RunTime, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.held[k] == h && h.result == nil {
			if err := w.finishLocked(k, h, spec); err != nil && w.endSess != nil {
				w.endSess() // the session is broken: the receive loop ends it
			}
		}
	})
	return nil
}

// finishLocked records the attempt's result and sends it if a session is
// up (else the next hello names it and the session sends it).
func (w *simWorker) finishLocked(k attemptKey, h *held, spec *clusterpb.JobSpec) error {
	cfg := &w.f.cfg
	version := cfg.Languages[0].Version
	if spec != nil {
		for _, l := range cfg.Languages {
			if l.Name == spec.Language {
				version = l.Version
				break
			}
		}
	}
	h.timer = nil
	h.result = &clusterpb.Result{
		Attempt: k.ref(), Verdict: "ok", Version: version,
		Run: &clusterpb.RunResult{ExitCode: 0, Stdout: cfg.Stdout, WallMs: cfg.RunTime.Milliseconds(), Verdict: "ok"},
	}
	if w.stream == nil {
		return nil
	}
	w.f.results.Add(1)
	return w.sendLocked(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Result{Result: h.result}})
}

// cancel stops a cancelled attempt. As the real worker, it still sends a
// result (saying it was stopped): the master records nothing from it but
// learns that the slot is free.
func (w *simWorker) cancel(k attemptKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.held[k]
	if h == nil || h.result != nil {
		return
	}
	w.f.cancelled.Add(1)
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	h.result = &clusterpb.Result{Attempt: k.ref(), Error: "the job was stopped"}
	if w.stream != nil {
		w.f.results.Add(1)
		if err := w.sendLocked(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Result{Result: h.result}}); err != nil && w.endSess != nil {
			w.endSess()
		}
	}
}

// drop forgets an attempt the master told the worker to abandon. Called
// with mu held.
func (w *simWorker) drop(k attemptKey) {
	if h := w.held[k]; h != nil {
		if h.timer != nil {
			h.timer.Stop()
		}
		delete(w.held, k)
		w.f.cancelled.Add(1)
	}
}

// heartbeat sends a beat listing every held attempt (the master takes back
// one missing from several beats: Hello.heartbeat_lists_held), and arms
// the next.
func (w *simWorker) heartbeat(sess uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess != sess || w.stream == nil {
		return
	}
	// How late the timer fired, lock wait included: this process's own
	// delay, apart from the master's.
	noteMax(&w.f.maxBeatLate, time.Since(w.due))
	hb := &clusterpb.Heartbeat{}
	for k := range w.held {
		hb.Running = append(hb.Running, k.ref())
	}
	t0 := time.Now()
	if err := w.sendLocked(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: hb}}); err != nil {
		w.endSess()
		return
	}
	now := time.Now()
	// A Send blocks only on flow control: the master is not reading.
	noteMax(&w.f.maxBeatSend, now.Sub(t0))
	w.f.heartbeats.Add(1)
	noteMax(&w.f.maxBeatGap, now.Sub(w.lastBeat))
	w.lastBeat = now
	w.due = now.Add(w.interval)
	w.beat.Reset(w.interval)
}

// sendLocked writes to the live stream; mu must be held.
func (w *simWorker) sendLocked(msg *clusterpb.WorkerMessage) error {
	if w.stream == nil {
		return nil
	}
	if err := w.stream.Send(msg); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// stopTimers stops the worker's timers when it ends for good.
func (w *simWorker) stopTimers() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.beat != nil {
		w.beat.Stop()
		w.beat = nil
	}
	for _, h := range w.held {
		if h.timer != nil {
			h.timer.Stop()
			h.timer = nil
		}
	}
	w.stream, w.endSess = nil, nil
}

// closeConn closes the worker's connection, if any.
func (w *simWorker) closeConn() {
	w.mu.Lock()
	c := w.conn
	w.conn = nil
	w.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
