package workerlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/store"
)

// helloTimeout bounds how long a new connection may take to say who it is.
const helloTimeout = 10 * time.Second

// Connect implements clusterpb.ClusterServer: one worker's stream, from
// its hello to its end. This goroutine reads the stream; writes go
// through the Link.
func (s *Server) Connect(stream clusterpb.Cluster_ConnectServer) error {
	hub := s.cfg.Hub
	ctx := stream.Context()
	cancel, ok := ctx.Value(closeKey{}).(context.CancelFunc)
	if !ok {
		s.log.Error("worker stream without a cancellable context: the gRPC server lacks grpc.InTapHandle(workerlink.InTap)")
		return status.Error(codes.Internal, "internal error")
	}
	defer cancel()
	p := peerOf(ctx)
	hello, err := recvHello(stream, cancel)
	if err != nil {
		s.log.Warn("worker refused", "addr", p.Addr, "err", err)
		return err
	}
	ref, err := hub.Authorize(ctx, p, hello)
	if err != nil {
		return grpcError(err)
	}
	if hello.Name == "" || len(hello.Name) > 128 || hello.Slots < 1 {
		return status.Error(codes.InvalidArgument, "hello needs a name (at most 128 bytes) and at least one slot")
	}
	// The link is held (writing) until the welcome is written: what the
	// master sends as soon as it attaches the link follows the welcome.
	l := &Link{stream: stream, cancel: cancel, writing: true}

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
		l.Close()
		hub.Detach(hello.Name, l)
		return err
	}
	for _, r := range hello.PendingResults {
		_ = stream.Send(Ack(r.Attempt))
	}
	l.release()
	s.log.Info("worker connected", "worker", hello.Name, "addr", p.Addr, "slots", hello.Slots,
		"languages", len(hello.Languages), "sandbox", hello.Sandbox, "running", len(hello.Running))

	err = s.receive(ctx, ref, l, stream)
	gone := ctx.Err() != nil // the worker's side ended the stream, or its connection
	closed, sendErr := l.ended()
	l.Close()
	l.writers.Wait() // the stream must not be written once this returns
	hub.Detach(hello.Name, l)
	switch {
	case sendErr != nil:
		s.log.Info("worker stream ended", "worker", hello.Name, "err", fmt.Errorf("send: %w", sendErr))
	case !closed && !gone && !errors.Is(err, io.EOF):
		s.log.Info("worker stream ended", "worker", hello.Name, "err", err)
	}
	return nil
}

// recvHello reads the stream's first message, which must be a hello in
// time: cancel ends a Recv that waits too long.
func recvHello(stream clusterpb.Cluster_ConnectServer, cancel context.CancelFunc) (*clusterpb.Hello, error) {
	late := time.AfterFunc(helloTimeout, cancel)
	msg, err := stream.Recv()
	if !late.Stop() {
		return nil, status.Error(codes.DeadlineExceeded, "no hello in time")
	}
	if err != nil {
		return nil, err
	}
	if h := msg.GetHello(); h != nil {
		return h, nil
	}
	return nil, status.Error(codes.InvalidArgument, "the first message must be a hello")
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
