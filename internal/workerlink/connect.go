package workerlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
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
//
// It is written for its stack (issue 16: thousands of idle workers). An
// idle link's goroutine waits in RecvMsg beneath gRPC's own frames (about
// 3 KB of them), and Go keeps a goroutine's stack at four times what it
// uses when it collects, rounded to a power of two: what the loop leaves
// on the stack while it waits decides between 8 KB and 16 KB per worker.
// So the work is done in calls that return before the next wait (open,
// handle), and the loop keeps a few words.
func (s *Server) Connect(stream clusterpb.Cluster_ConnectServer) error {
	c, err := s.open(stream)
	if err != nil {
		return err
	}
	for {
		msg := c.ready()
		if !c.handle(msg, c.recv.RecvMsg(msg)) {
			return nil
		}
	}
}

// conn is a link being served: what the handling of a message needs.
type conn struct {
	s   *Server
	ctx context.Context
	ref store.WorkerRef
	l   *Link
	// recv is the stream to read: gRPC's own, under the generated type,
	// whose RecvMsg would be one more frame beneath the wait.
	recv grpc.ServerStream
	// asm rebuilds results sent in pieces; what is half-received when the
	// link ends is dropped with it (the worker sends it again).
	asm *assembler
}

// open reads the hello, attaches the link, and writes the welcome.
func (s *Server) open(stream clusterpb.Cluster_ConnectServer) (*conn, error) {
	hub := s.cfg.Hub
	ctx := stream.Context()
	cancel, ok := ctx.Value(closeKey{}).(context.CancelFunc)
	if !ok {
		s.log.Error("worker stream without a cancellable context: the gRPC server lacks grpc.InTapHandle(workerlink.InTap)")
		return nil, status.Error(codes.Internal, "internal error")
	}
	p := peerOf(ctx)
	hello, err := recvHello(stream, cancel)
	if err != nil {
		s.log.Warn("worker refused", "addr", p.Addr, "err", err)
		return nil, err
	}
	ref, err := hub.Authorize(ctx, p, hello)
	if err != nil {
		return nil, grpcError(err)
	}
	if hello.Name == "" || len(hello.Name) > 128 || hello.Slots < 1 {
		return nil, status.Error(codes.InvalidArgument, "hello needs a name (at most 128 bytes) and at least one slot")
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
		return nil, err
	}
	for _, r := range hello.PendingResults {
		_ = stream.Send(Ack(r.Attempt))
	}
	l.release()
	s.log.Info("worker connected", "worker", hello.Name, "addr", p.Addr, "slots", hello.Slots,
		"languages", len(hello.Languages), "sandbox", hello.Sandbox, "running", len(hello.Running))
	c := &conn{s: s, ctx: ctx, ref: ref, l: l, recv: stream,
		asm: newAssembler(s.cfg.MaxResultBytes, s.cfg.MaxResultBufferBytes)}
	if g, ok := stream.(*grpc.GenericServerStream[clusterpb.WorkerMessage, clusterpb.MasterMessage]); ok {
		c.recv = g.ServerStream
	}
	// The hello (languages, results) is garbage once this returns.
	return c, nil
}

// ready marks the link waiting for the worker's next message (Silent)
// and returns the message to read it into. Not inlined: time.Now's
// locals would stay on the stack through the wait (see Connect).
//
//go:noinline
func (c *conn) ready() *clusterpb.WorkerMessage {
	c.l.waiting.Store(time.Now().UnixNano())
	return new(clusterpb.WorkerMessage)
}

// handle takes what RecvMsg read into msg, and reports whether to read
// on; when the stream has ended (err), it ends the link.
func (c *conn) handle(msg *clusterpb.WorkerMessage, err error) bool {
	if err != nil {
		c.end(err)
		return false
	}
	c.l.waiting.Store(0)
	hub, ref, l := c.s.cfg.Hub, c.ref, c.l
	switch x := msg.Msg.(type) {
	case *clusterpb.WorkerMessage_Heartbeat:
		hub.Heartbeat(ref.Name, l, x.Heartbeat)
	case *clusterpb.WorkerMessage_Output:
		hub.Output(ref, x.Output)
	case *clusterpb.WorkerMessage_Stage:
		hub.Stage(ref, x.Stage)
	case *clusterpb.WorkerMessage_Result:
		if hub.Result(c.ctx, ref, x.Result) {
			l.Send(Ack(x.Result.Attempt))
		}
	case *clusterpb.WorkerMessage_ResultPart:
		c.s.resultPart(c.ctx, ref, l, c.asm, x.ResultPart)
	case *clusterpb.WorkerMessage_Release:
		hub.Release(c.ctx, ref, x.Release)
	case *clusterpb.WorkerMessage_Accepted:
		hub.Accepted(ref, x.Accepted)
	}
	return true
}

// end ends the link after its stream's read failed with err: the worker
// ended it, its connection broke, or this side closed the link.
func (c *conn) end(err error) {
	gone := c.ctx.Err() != nil // the worker's side ended the stream, or its connection
	closed, sendErr := c.l.ended()
	c.l.Close()
	c.l.writers.Wait() // the stream must not be written once Connect returns
	c.s.cfg.Hub.Detach(c.ref.Name, c.l)
	switch {
	case sendErr != nil:
		c.s.log.Info("worker stream ended", "worker", c.ref.Name, "err", fmt.Errorf("send: %w", sendErr))
	case !closed && !gone && !errors.Is(err, io.EOF):
		c.s.log.Info("worker stream ended", "worker", c.ref.Name, "err", err)
	}
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
