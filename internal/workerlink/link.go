package workerlink

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/tap"

	"github.com/grappe/grappe/internal/clusterpb"
)

// sendQueue is how many messages may wait for a worker's stream: a
// worker's slots bound its assignments, and a full queue only makes the
// sender wait (Link.Send) or retry without its lock (Link.TrySend).
const sendQueue = 64

// Link is one live Connect stream of a worker.
//
// An idle link costs one goroutine of ours, the stream's handler, which
// reads (issue 16: thousands of idle workers per master). Messages to the
// worker wait in a bounded queue; a writer goroutine is started when the
// first one arrives and ends when the queue is empty, so that the stream
// is written by one goroutine at a time, in the order of the queue.
// Closing a link cancels its stream's context (see InTap), which is what
// ends a handler blocked reading.
type Link struct {
	stream interface {
		Send(*clusterpb.MasterMessage) error
	}
	cancel context.CancelFunc

	mu sync.Mutex
	// queue holds the messages not yet written, oldest first; nil when
	// empty, so that an idle link keeps no array.
	queue []*clusterpb.MasterMessage
	// writing: a writer drains the queue, or the handler still writes
	// the welcome (held); either way no other writer may start.
	writing bool
	// room, when a sender waits for the queue to have room, is closed
	// (and forgotten) when it does, or when the link closes.
	room    chan struct{}
	closed  bool
	sendErr error          // the write that failed, if one did
	writers sync.WaitGroup // the writer, so that the handler outlives it

	// waiting is when the receive loop began to wait for the worker's
	// next message (unix nanoseconds); 0 while it handles one.
	waiting atomic.Int64
}

// Silent is how long the link has been ready to read the worker's next
// message without one arriving: evidence that the worker went quiet, as
// opposed to a master too busy to read what it sent (then 0: the loop is
// handling a message, and the rest wait in the connection's buffers).
func (l *Link) Silent(now time.Time) time.Duration {
	since := l.waiting.Load()
	if since == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, since)), 0)
}

// Send queues a message for the worker, waiting while the queue is full;
// it gives up when the link ends rather than block its caller.
func (l *Link) Send(msg *clusterpb.MasterMessage) {
	for {
		l.mu.Lock()
		if l.push(msg) {
			l.mu.Unlock()
			return
		}
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room
		l.mu.Unlock()
		<-room
	}
}

// TrySend queues a message if the queue has room, without waiting: for a
// caller holding a lock, which sends again with Send after releasing it.
// A closed link takes (and drops) anything.
func (l *Link) TrySend(msg *clusterpb.MasterMessage) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.push(msg)
}

// push queues msg unless the queue is full, and starts a writer if none
// runs; a closed link drops it. l.mu is held.
func (l *Link) push(msg *clusterpb.MasterMessage) bool {
	if l.closed {
		return true
	}
	if len(l.queue) >= sendQueue {
		return false
	}
	l.queue = append(l.queue, msg)
	l.startWriter()
	return true
}

// startWriter starts a writer for the queue unless one runs (or the
// handler holds the stream). l.mu is held.
func (l *Link) startWriter() {
	if l.writing || l.closed || len(l.queue) == 0 || l.stream == nil {
		return
	}
	l.writing = true
	l.writers.Add(1)
	go l.write()
}

// write writes the queue to the stream until it is empty or the link
// closes. A failed write closes the link: the receive loop ends with it,
// and the worker reconnects.
func (l *Link) write() {
	defer l.writers.Done()
	for {
		msg := l.next()
		if msg == nil {
			return
		}
		if err := l.stream.Send(msg); err != nil {
			l.mu.Lock()
			if l.sendErr == nil {
				l.sendErr = err
			}
			l.mu.Unlock()
			l.Close()
		}
	}
}

// next takes the oldest message of the queue, or returns nil and ends the
// writer's turn when there is none (or the link closed).
func (l *Link) next() *clusterpb.MasterMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.queue) == 0 {
		l.writing, l.queue = false, nil
		return nil
	}
	msg := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	l.wake()
	return msg
}

// wake lets the senders waiting for room try again. l.mu is held.
func (l *Link) wake() {
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
}

// release ends the handler's hold on the stream (the welcome is written):
// what was queued meanwhile goes now, in order.
func (l *Link) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writing = false
	l.startWriter()
}

// Close ends the link (the worker reconnects); safe to call more than
// once, and from under the caller's locks: it never blocks.
func (l *Link) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed, l.queue = true, nil
	l.wake()
	if l.cancel != nil {
		l.cancel()
	}
}

// ended reports whether the link was closed (from this side, or after a
// failed write), and the write that failed.
func (l *Link) ended() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed, l.sendErr
}

// closeKey holds, in a Connect stream's context, what cancels it.
type closeKey struct{}

// InTap is the gRPC server's tap handle (grpc.InTapHandle) a Server needs:
// it gives each Connect stream a context the link can cancel. gRPC reads
// and writes the stream under that context, so cancelling it ends a Recv
// or a Send blocked on a worker that does not read, and the handler with
// them, without a goroutine of ours waiting beside the reading one.
func InTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != clusterpb.Cluster_Connect_FullMethodName {
		return ctx, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	return context.WithValue(ctx, closeKey{}, cancel), nil
}
