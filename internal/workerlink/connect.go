package workerlink

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/store"
)

// helloTimeout bounds how long a new connection may take to say who it is.
const helloTimeout = 10 * time.Second

// sendQueue is how many messages may wait for a worker's stream: a
// worker's slots bound its assignments, and a full queue only makes the
// sender wait (Link.Send) or retry without its lock (Link.TrySend).
const sendQueue = 64

// Connect implements clusterpb.ClusterServer: one worker's stream, from
// its hello to its end.
func (s *Server) Connect(stream clusterpb.Cluster_ConnectServer) error {
	hub := s.cfg.Hub
	p := peerOf(stream.Context())
	hello, err := recvHello(stream)
	if err != nil {
		s.log.Warn("worker refused", "addr", p.Addr, "err", err)
		return err
	}
	ref, err := hub.Authorize(stream.Context(), p, hello)
	if err != nil {
		return grpcError(err)
	}
	if hello.Name == "" || len(hello.Name) > 128 || hello.Slots < 1 {
		return status.Error(codes.InvalidArgument, "hello needs a name (at most 128 bytes) and at least one slot")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	l := &Link{send: make(chan *clusterpb.MasterMessage, sendQueue), ctx: ctx, cancel: cancel}

	// Results the worker finished while disconnected are recorded first,
	// so the settling of its attempts does not re-queue them.
	for _, r := range hello.PendingResults {
		hub.Result(ctx, ref, r)
	}
	abandon := hub.Attach(ctx, hello, ref, l, p.Addr)
	welcome := &clusterpb.Welcome{
		WorkerId:            hello.Name,
		HeartbeatIntervalMs: s.cfg.HeartbeatInterval.Milliseconds(),
		LeaseMs:             s.cfg.Lease.Milliseconds(),
		Abandon:             abandon,
	}
	if err := stream.Send(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Welcome{Welcome: welcome}}); err != nil {
		hub.Detach(hello.Name, l)
		return err
	}
	for _, r := range hello.PendingResults {
		_ = stream.Send(Ack(r.Attempt))
	}
	s.log.Info("worker connected", "worker", hello.Name, "addr", p.Addr, "slots", hello.Slots,
		"languages", len(hello.Languages), "sandbox", hello.Sandbox, "running", len(hello.Running))

	// Two goroutines per stream, besides the transport's: this one
	// writes (a gRPC stream must not be written from two goroutines at
	// once), another reads. Recv does not return when the link is closed
	// from this side (a revocation, a newer connection, a loss): returning
	// from here ends the RPC, which ends the blocked Recv; a Recv that
	// fails closes the link, which ends the writing.
	received := make(chan error, 1)
	go func() {
		received <- s.receive(ctx, ref, l, stream)
		l.Close()
	}()
	sendErr := send(ctx, l, stream)
	hub.Detach(hello.Name, l)
	l.Close()
	select {
	case err = <-received: // the worker's side ended, or its stream broke
	default: // closed from this side, or a write failed
		err = sendErr
	}
	if err != nil && !errors.Is(err, io.EOF) && stream.Context().Err() == nil {
		s.log.Info("worker stream ended", "worker", hello.Name, "err", err)
	}
	return nil
}

// send writes the link's messages to the stream until the link ends.
func send(ctx context.Context, l *Link, stream clusterpb.Cluster_ConnectServer) error {
	for {
		select {
		case msg := <-l.send:
			if err := stream.Send(msg); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
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

func (s *Server) receive(ctx context.Context, ref store.WorkerRef, l *Link, stream clusterpb.Cluster_ConnectServer) error {
	hub := s.cfg.Hub
	// Results in pieces are rebuilt here; what is half-received when the
	// link ends is dropped with it (the worker sends it again).
	asm := newAssembler(s.cfg.MaxResultBytes, s.cfg.MaxResultBufferBytes)
	for {
		l.waiting.Store(time.Now().UnixNano())
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		l.waiting.Store(0)
		switch x := msg.Msg.(type) {
		case *clusterpb.WorkerMessage_Heartbeat:
			hub.Heartbeat(ref.Name, l, x.Heartbeat)
		case *clusterpb.WorkerMessage_Output:
			hub.Output(ref, x.Output)
		case *clusterpb.WorkerMessage_Stage:
			hub.Stage(ref, x.Stage)
		case *clusterpb.WorkerMessage_Result:
			if hub.Result(ctx, ref, x.Result) {
				l.Send(Ack(x.Result.Attempt))
			}
		case *clusterpb.WorkerMessage_ResultPart:
			s.resultPart(ctx, ref, l, asm, x.ResultPart)
		case *clusterpb.WorkerMessage_Release:
			hub.Release(ctx, ref, x.Release)
		case *clusterpb.WorkerMessage_Accepted:
			hub.Accepted(ref, x.Accepted)
		}
	}
}

// resultPart takes one piece of a result. The last piece records the
// whole; a result too large to keep fails its job, and is acknowledged so
// that the worker forgets it rather than send it on every reconnection.
func (s *Server) resultPart(ctx context.Context, ref store.WorkerRef, l *Link, asm *assembler, p *clusterpb.ResultPart) {
	s.cfg.Hub.ResultComing(ref.Name, l, p.Attempt)
	done, err := asm.add(p)
	if err != nil {
		s.log.Warn("result piece refused", "worker", ref.Name, "job", p.Attempt.GetJobId(), "attempt", p.Attempt.GetAttempt(), "err", err)
		return
	}
	if done == nil {
		return
	}
	r := done.result
	if done.tooLarge > 0 {
		s.log.Warn("result too large; failing the job", "worker", ref.Name, "job", p.Attempt.GetJobId(),
			"attempt", p.Attempt.GetAttempt(), "bytes", done.tooLarge, "limit", s.cfg.MaxResultBytes)
		r = tooLargeResult(p.Attempt, done.tooLarge, s.cfg.MaxResultBytes)
	}
	if s.cfg.Hub.Result(ctx, ref, r) {
		l.Send(Ack(p.Attempt))
	}
}
