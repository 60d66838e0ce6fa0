package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// helloTimeout bounds how long a new connection may take to say who it is.
const helloTimeout = 10 * time.Second

// session is one live Connect stream of a worker. Messages to the worker go
// through send, drained by a single goroutine, because a gRPC stream must
// not be written from two goroutines at once.
type session struct {
	send   chan *clusterpb.MasterMessage
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// sendMsg queues a message for the worker; it gives up when the session
// ends rather than block a caller forever.
func (s *session) sendMsg(msg *clusterpb.MasterMessage) {
	select {
	case s.send <- msg:
	case <-s.ctx.Done():
	}
}

func (s *session) close() { s.once.Do(s.cancel) }

// clusterServer adapts the Master to the generated gRPC interface.
type clusterServer struct {
	clusterpb.UnimplementedClusterServer
	m *Master
}

var _ clusterpb.ClusterServer = (*clusterServer)(nil)

func (cs *clusterServer) Connect(stream clusterpb.Cluster_ConnectServer) error {
	return cs.m.serveWorker(stream)
}

func (m *Master) serveWorker(stream clusterpb.Cluster_ConnectServer) error {
	addr := ""
	if p, ok := peer.FromContext(stream.Context()); ok {
		addr = p.Addr.String()
	}
	hello, err := recvHello(stream)
	if err != nil {
		m.log.Warn("worker refused", "addr", addr, "err", err)
		return err
	}
	ref, err := m.authorizeWorker(stream.Context(), hello)
	if err != nil {
		return err
	}
	if hello.Name == "" || len(hello.Name) > 128 || hello.Slots < 1 {
		return status.Error(codes.InvalidArgument, "hello needs a name (at most 128 bytes) and at least one slot")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sess := &session{send: make(chan *clusterpb.MasterMessage, 256), ctx: ctx, cancel: cancel}

	// Results the worker finished while disconnected are recorded first,
	// so the reconciliation below does not re-queue them.
	for _, r := range hello.PendingResults {
		m.recordResult(ctx, ref, r)
	}
	abandon := m.attach(ctx, hello, ref, sess, addr)
	welcome := &clusterpb.Welcome{
		WorkerId:            hello.Name,
		HeartbeatIntervalMs: m.cfg.HeartbeatInterval.Milliseconds(),
		LeaseMs:             m.cfg.WorkerTimeout.Milliseconds(),
		Abandon:             abandon,
	}
	if err := stream.Send(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Welcome{Welcome: welcome}}); err != nil {
		m.unregister(hello.Name, sess)
		return err
	}
	for _, r := range hello.PendingResults {
		_ = stream.Send(ackMsg(r.Attempt))
	}
	m.log.Info("worker connected", "worker", hello.Name, "addr", addr, "slots", hello.Slots,
		"languages", len(hello.Languages), "sandbox", hello.Sandbox, "running", len(hello.Running))
	m.kick()

	go func() {
		for {
			select {
			case msg := <-sess.send:
				if err := stream.Send(msg); err != nil {
					sess.close()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	// Recv does not return when the session is closed from our side (a
	// revocation, a newer connection, a loss): wait for either, and end
	// the RPC, which ends the blocked Recv.
	recvErr := make(chan error, 1)
	go func() { recvErr <- m.receive(ctx, ref, sess, stream) }()
	select {
	case err = <-recvErr:
	case <-ctx.Done():
		err = ctx.Err()
	}
	m.unregister(hello.Name, sess)
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		m.log.Info("worker stream ended", "worker", hello.Name, "err", err)
	}
	return nil
}

func recvHello(stream clusterpb.Cluster_ConnectServer) (*clusterpb.Hello, error) {
	type res struct {
		msg *clusterpb.WorkerMessage
		err error
	}
	ch := make(chan res, 1)
	go func() {
		msg, err := stream.Recv()
		ch <- res{msg, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		if h := r.msg.GetHello(); h != nil {
			return h, nil
		}
		return nil, status.Error(codes.InvalidArgument, "the first message must be a hello")
	case <-time.After(helloTimeout):
		return nil, status.Error(codes.DeadlineExceeded, "no hello in time")
	}
}

func (m *Master) receive(ctx context.Context, ref store.WorkerRef, sess *session, stream clusterpb.Cluster_ConnectServer) error {
	name := ref.Name
	// Results in pieces are rebuilt here; what is half-received when the
	// session ends is dropped with it (the worker sends it again).
	asm := newAssembler(m.cfg.MaxResultBytes, m.cfg.MaxResultBufferBytes)
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		switch x := msg.Msg.(type) {
		case *clusterpb.WorkerMessage_Heartbeat:
			m.heartbeat(name, sess, x.Heartbeat)
		case *clusterpb.WorkerMessage_Output:
			m.output(ref, x.Output)
		case *clusterpb.WorkerMessage_Result:
			if m.recordResult(ctx, ref, x.Result) {
				sess.sendMsg(ackMsg(x.Result.Attempt))
			}
		case *clusterpb.WorkerMessage_ResultPart:
			m.resultPart(ctx, ref, sess, asm, x.ResultPart)
		case *clusterpb.WorkerMessage_Release:
			m.release(ctx, ref, x.Release)
		case *clusterpb.WorkerMessage_Accepted:
			// The attempt is already running in the store; an Accepted for
			// one the worker was not given is only reported.
			m.accepted(ref, x.Accepted)
		}
	}
}

// resultPart takes one piece of a result. The last piece records the
// whole; a result too large to keep fails its job, and is acknowledged so
// that the worker forgets it rather than send it on every reconnection.
func (m *Master) resultPart(ctx context.Context, ref store.WorkerRef, sess *session, asm *assembler, p *clusterpb.ResultPart) {
	m.resultProgress(ref.Name, sess, p.Attempt)
	done, err := asm.add(p)
	if err != nil {
		m.log.Warn("result piece refused", "worker", ref.Name, "job", p.Attempt.GetJobId(), "attempt", p.Attempt.GetAttempt(), "err", err)
		return
	}
	if done == nil {
		return
	}
	r := done.result
	if done.tooLarge > 0 {
		m.log.Warn("result too large; failing the job", "worker", ref.Name, "job", p.Attempt.GetJobId(),
			"attempt", p.Attempt.GetAttempt(), "bytes", done.tooLarge, "limit", m.cfg.MaxResultBytes)
		r = tooLargeResult(p.Attempt, done.tooLarge, m.cfg.MaxResultBytes)
	}
	if m.recordResult(ctx, ref, r) {
		sess.sendMsg(ackMsg(p.Attempt))
	}
}

// resultProgress notes that a result is coming: the worker is alive
// (its heartbeats wait in the stream behind the pieces, so a big result
// must not get it declared lost), and a result announced in a hello
// (finished) gets more time while its pieces keep coming.
func (m *Master) resultProgress(name string, sess *session, a *clusterpb.AttemptRef) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[name]; w != nil && w.session == sess {
		w.lastBeat = now
	}
	if a == nil {
		return
	}
	if lj := m.jobs[a.JobId]; lj != nil && lj.attempt == int(a.Attempt) && !lj.resultBy.IsZero() {
		lj.resultBy = now.Add(m.cfg.ResultGrace)
	}
}

func ackMsg(a *clusterpb.AttemptRef) *clusterpb.MasterMessage {
	return &clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_ResultAck{ResultAck: &clusterpb.ResultAck{Attempt: a}}}
}

// unregister detaches a session that ended. The worker keeps its attempts
// until it reconnects or its heartbeat timeout declares it lost.
func (m *Master) unregister(name string, sess *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[name]; w != nil && w.session == sess {
		w.session = nil
		m.markRow(name)
	}
	sess.close()
}

func (m *Master) heartbeat(name string, sess *session, hb *clusterpb.Heartbeat) {
	m.mu.Lock()
	w := m.workers[name]
	if w == nil || w.session != sess {
		m.mu.Unlock()
		return
	}
	w.lastBeat = time.Now()
	w.sched.CPUPercent, w.sched.MemoryPercent = hb.CpuPercent, hb.MemoryPercent
	wasDraining, wasUnhealthy := w.selfDrain, w.unhealthy
	w.selfDrain = hb.Draining
	w.setHealth(hb.Health)
	w.setStatus()
	healthChanged := w.unhealthy != wasUnhealthy
	if hb.LanguagesChanged {
		w.languages, w.sched.Languages = languageSets(hb.Languages)
		w.setTesting(hb.Testing, time.Now())
	} else if w.sched.Testing != nil && time.Since(w.connectedAt) >= maxSelfTesting {
		w.sched.Testing = nil // it has tested for longer than any self-test takes
	}
	m.markRow(name)
	queued := m.backlog.Load()
	dropped := w.notListed(hb.Running, w.lastBeat, m.cfg.WorkerTimeout)
	ref := w.ref()
	m.mu.Unlock()
	if healthChanged {
		m.log.Warn("worker health changed", "worker", name, "unhealthy", hb.Health.GetUnhealthy(),
			"infra_failures", hb.Health.GetInfraFailures(), "reason", hb.Health.GetReason())
	}
	for id, n := range dropped {
		m.log.Warn("worker no longer holds an attempt; requeueing it", "worker", name, "job", id, "attempt", n)
		m.requeue(context.Background(), id, n, ref, requeueCause{reason: fmt.Sprintf("worker %s no longer ran it", name)})
	}
	if queued || wasDraining != hb.Draining || healthChanged || hb.LanguagesChanged {
		m.kick()
	}
}

// output relays a worker's live output to the job's watchers, if the
// worker holds that attempt. Checked in memory: output is the hot path.
func (m *Master) output(w store.WorkerRef, o *clusterpb.Output) {
	if o.Attempt == nil {
		return
	}
	id, n := o.Attempt.JobId, int(o.Attempt.Attempt)
	if !m.checkHolds(w, "output", id, n) {
		return
	}
	m.broker.output(id, o.Attempt.Attempt, o.Stream, o.Data)
}

// accepted checks a worker's acknowledgement of an assignment.
func (m *Master) accepted(w store.WorkerRef, a *clusterpb.Accepted) {
	if a.Attempt != nil {
		m.checkHolds(w, "accepted", a.Attempt.JobId, int(a.Attempt.Attempt))
	}
}

// resultCommitTimeout bounds the commit of a result that arrived, which
// outlives the link it came by.
const resultCommitTimeout = 10 * time.Second

// recordResult stores worker w's result for (job, attempt) exactly once,
// and only if w holds that attempt: the store's compare-and-set is on the
// worker and its identity too. It reports whether the worker may forget
// the result: true when it was recorded, stale or refused, false when the
// store failed and it must be resent.
func (m *Master) recordResult(ctx context.Context, w store.WorkerRef, r *clusterpb.Result) bool {
	if r.Attempt == nil {
		return true
	}
	id, n := r.Attempt.JobId, int(r.Attempt.Attempt)
	if m.assignedElsewhere(w, id, n) {
		m.refuse(w, "result", id, n)
		return true
	}
	f, err := finishFromResult(r)
	if err != nil {
		m.log.Error("unreadable result", "job", id, "worker", w.Name, "err", err)
		f = store.Finish{Status: store.StatusFailed, Error: "the worker sent an unreadable result"}
	}
	arrived := time.Now() // its FinishedAt: before the slot is handed on
	// The worker's slot is free as soon as its result arrives: hand it the
	// next job while this result is being committed, not after.
	m.mu.Lock()
	we := m.workers[w.Name]
	if we != nil && we.identity == w.Identity && we.attempts[id] == n {
		delete(we.attempts, id)
	}
	m.mu.Unlock()
	m.kick()
	// The result is here: its commit does not depend on the link. Under
	// the link's context, a worker killed just after sending it cancels
	// the statement in flight, whose outcome is then unknown here: a
	// commit that landed reported as failed (no end published, memory
	// left behind), or a result lost with the worker that would resend it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resultCommitTimeout)
	defer cancel()
	final, err := m.core.Finish(fctx, w, id, n, jobs.Outcome{
		Status: f.Status, Verdict: f.Verdict, Error: f.Error, Version: f.Version, Result: f.Result, At: arrived,
	})
	switch {
	case err == nil:
		m.mu.Lock()
		if we != nil && we.identity == w.Identity {
			we.jobsDone++
			we.releases = nil // it runs what it is given
		}
		m.mu.Unlock()
		m.log.Debug("result recorded", "job", id, "attempt", n, "worker", w.Name, "status", f.Status, "verdict", f.Verdict)
		m.observeResult(final.Language, f, r)
		return true
	case errors.Is(err, jobs.ErrStale):
		m.log.Debug("stale or duplicate result ignored", "job", id, "attempt", n, "worker", w.Name)
		return true
	default:
		m.logStoreErr("record result", err, "job", id)
		return false
	}
}

// logStoreErr logs a failed store write at ERROR, except the one a link
// that ended (a reconnecting worker, a shutdown) cancelled: that is
// expected, and what it was for is sent or done again.
func (m *Master) logStoreErr(what string, err error, args ...any) {
	if errors.Is(err, context.Canceled) {
		m.log.Info(what+": the link ended first", append(args, "err", err)...)
		return
	}
	m.log.Error(what, append(args, "err", err)...)
}

// release re-queues an attempt its worker handed back unfinished. A plain
// release (the worker is shutting down) does not count against the job's
// attempts; one for a failure of the worker's own machinery does. A
// worker that keeps giving jobs back is drained (noteRelease).
func (m *Master) release(ctx context.Context, w store.WorkerRef, r *clusterpb.Release) {
	if r.Attempt == nil {
		return
	}
	id, n := r.Attempt.JobId, int(r.Attempt.Attempt)
	if !m.checkHolds(w, "release", id, n) {
		return
	}
	m.mu.Lock()
	if we := m.workers[w.Name]; we != nil && we.attempts[id] == n {
		delete(we.attempts, id)
	}
	m.mu.Unlock()
	if !r.Infrastructure {
		// First, so that a worker drained now is not given the job back.
		m.noteRelease(w)
	}
	m.requeue(ctx, id, n, w, requeueCause{reason: r.Reason, released: !r.Infrastructure, infrastructure: r.Infrastructure})
}

// languageSets converts announced languages for the API and the scheduler.
func languageSets(ls []*clusterpb.Language) ([]api.WorkerLanguage, map[string][]string) {
	langs := make([]api.WorkerLanguage, 0, len(ls))
	byName := map[string][]string{}
	for _, l := range ls {
		langs = append(langs, api.WorkerLanguage{Name: l.Name, Version: l.Version})
		byName[l.Name] = append(byName[l.Name], l.Version)
	}
	sort.Slice(langs, func(i, j int) bool { return langs[i].Name < langs[j].Name })
	return langs, byName
}
