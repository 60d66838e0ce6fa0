package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
)

// session is one Connect stream: hello, welcome, then heartbeats and
// results up, assignments and cancellations down, until either side ends.
func (w *Worker) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := clusterpb.NewClusterClient(w.conn).Connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	hello, langGen := w.hello()
	if err := stream.Send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Hello{Hello: hello}}); err != nil {
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
	for _, a := range welcome.Abandon {
		w.abandon(attemptKey{a.JobId, a.Attempt})
	}
	interval := time.Duration(welcome.HeartbeatIntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}

	out := make(chan *clusterpb.WorkerMessage, 256)
	w.mu.Lock()
	// Results that finished while disconnected were only named in the
	// hello (finished); the send loop sends them now, with any that
	// completed since, in pieces.
	w.out = out
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.out == out {
			w.out = nil
		}
		w.mu.Unlock()
	}()
	w.log.Info("connected to master", "master", w.master())

	sendErr := make(chan error, 1)
	go func() { sendErr <- w.sendLoop(ctx, stream, out, interval, langGen) }()

	recvErr := make(chan error, 1)
	go func() { recvErr <- w.recvLoop(ctx, stream) }()
	select {
	case err = <-sendErr:
		if err == nil {
			// A goodbye: the outbox is flushed and our side closed; the
			// master ends the stream once it has read everything.
			select {
			case err = <-recvErr:
			case <-time.After(2 * time.Second):
			}
		}
	case err = <-recvErr:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	return err
}

func (w *Worker) hello() (*clusterpb.Hello, uint64) {
	langs, gen := w.cfg.Languages.Languages()
	w.mu.Lock()
	defer w.mu.Unlock()
	h := &clusterpb.Hello{
		Name: w.cfg.Name, Slots: int32(w.cfg.Slots),
		Labels: w.cfg.Labels, Languages: langs, Sandbox: w.cfg.Sandbox,
		Version: w.cfg.Version, Draining: w.draining, Health: w.health.proto(),
		Testing: stillTesting(w.cfg.Languages), HeartbeatListsHeld: true,
	}
	for k := range w.running {
		if _, done := w.pending[k]; !done {
			h.Running = append(h.Running, k.ref())
		}
	}
	// Only their names: the results follow the welcome, in pieces, so a
	// hello stays small whatever the results weigh.
	for k := range w.pending {
		h.Finished = append(h.Finished, k.ref())
	}
	return h, gen
}

// sendLoop is the stream's only writer: heartbeats on a ticker, whatever
// the jobs put in the outbox, and the pending results, one piece at a
// time. Heartbeats and the outbox go first, so a big result never holds
// the link: the master keeps hearing from the worker while it arrives.
func (w *Worker) sendLoop(ctx context.Context, stream clusterpb.Cluster_ConnectClient, out chan *clusterpb.WorkerMessage, interval time.Duration, langGen uint64) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var res results
	// A language announced (or withdrawn) goes out at once, in a
	// heartbeat of its own: its jobs need not wait for the next beat.
	changed := languagesChanged(w.cfg.Languages)
	beat := func() *clusterpb.WorkerMessage {
		changed = languagesChanged(w.cfg.Languages) // before reading the set
		return &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: w.heartbeat(&langGen)}}
	}
	for {
		// What is due now, without waiting.
		var msg *clusterpb.WorkerMessage
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.finishing:
			return w.goodbye(stream, out, &res)
		case <-t.C:
			msg = beat()
		case <-changed:
			msg = beat()
		case msg = <-out:
		default:
		}
		if msg != nil {
			if err := stream.Send(msg); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
		// Then a piece of a result, if one waits: one message of each in
		// turn, so busy output cannot starve a result either.
		if busy, err := res.step(w, stream); busy || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.finishing:
			return w.goodbye(stream, out, &res)
		case <-t.C:
			msg = beat()
		case <-changed:
			msg = beat()
		case msg = <-out:
		case <-w.resultReady:
			continue
		}
		if err := stream.Send(msg); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
}

// goodbye flushes the outbox and the results not sent yet, then closes
// the worker's side of the stream.
func (w *Worker) goodbye(stream clusterpb.Cluster_ConnectClient, out chan *clusterpb.WorkerMessage, res *results) error {
	for {
		select {
		case msg := <-out:
			if err := stream.Send(msg); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			continue
		default:
		}
		busy, err := res.step(w, stream)
		if err != nil {
			return err
		}
		if !busy {
			return stream.CloseSend()
		}
	}
}

func (w *Worker) recvLoop(ctx context.Context, stream clusterpb.Cluster_ConnectClient) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		switch x := msg.Msg.(type) {
		case *clusterpb.MasterMessage_Assign:
			w.start(x.Assign)
		case *clusterpb.MasterMessage_Cancel:
			if a := x.Cancel.Attempt; a != nil {
				w.cancelJob(attemptKey{a.JobId, a.Attempt})
			}
		case *clusterpb.MasterMessage_ResultAck:
			if a := x.ResultAck.Attempt; a != nil {
				w.mu.Lock()
				w.forgetResult(attemptKey{a.JobId, a.Attempt})
				w.mu.Unlock()
			}
		case *clusterpb.MasterMessage_Stdin:
			w.feedStdin(x.Stdin)
		case *clusterpb.MasterMessage_Drain:
			// The master stops placing jobs here itself; the worker's own
			// draining flag means it is shutting down, which an undrain
			// must not reverse.
			w.log.Info("drain set by the master", "drain", x.Drain.Drain, "reason", x.Drain.Reason)
		}
	}
}

// abandon kills an attempt the master no longer wants (cancelled, or given
// to another worker); its result is dropped.
func (w *Worker) abandon(k attemptKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if j := w.running[k]; j != nil {
		j.handedBack = true
		j.cancel()
	}
	w.forgetResult(k)
}

// cancelJob kills a cancelled attempt. Its result is still sent: the
// master records nothing from it (the job is already cancelled) but learns
// that the slot is free.
func (w *Worker) cancelJob(k attemptKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if j := w.running[k]; j != nil {
		w.log.Debug("attempt cancelled", "job", k.id, "attempt", k.n)
		j.cancel()
	}
}

// emit queues a message on the live session, if any, without blocking:
// output streaming is best effort; results are also kept in pending.
func (w *Worker) emit(msg *clusterpb.WorkerMessage) {
	w.mu.Lock()
	out := w.out
	w.mu.Unlock()
	if out == nil {
		return
	}
	select {
	case out <- msg:
	default:
	}
}
