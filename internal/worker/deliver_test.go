package worker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/grappe/grappe/internal/clusterpb"
)

// fakeStream records what the worker sends; each Send takes a little
// time, as a real link does.
type fakeStream struct {
	grpc.ClientStream
	delay time.Duration

	mu   sync.Mutex
	sent []*clusterpb.WorkerMessage
	// onSend, if set, sees every message as it is sent.
	onSend func(*clusterpb.WorkerMessage)
}

func (f *fakeStream) Send(m *clusterpb.WorkerMessage) error {
	time.Sleep(f.delay)
	f.mu.Lock()
	f.sent = append(f.sent, m)
	on := f.onSend
	f.mu.Unlock()
	if on != nil {
		on(m)
	}
	return nil
}

func (f *fakeStream) Recv() (*clusterpb.MasterMessage, error) { return nil, io.EOF }
func (f *fakeStream) CloseSend() error                        { return nil }

func (f *fakeStream) messages() []*clusterpb.WorkerMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*clusterpb.WorkerMessage(nil), f.sent...)
}

func newTestWorker() *Worker {
	w := &Worker{
		cfg: Config{Name: "w", Slots: 1, Languages: StaticLanguages{}},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), load: newLoadSampler(),
		running: map[attemptKey]*runningJob{}, pending: map[attemptKey]*clusterpb.Result{}, encoded: map[attemptKey][]byte{},
		finishing: make(chan struct{}), resultReady: make(chan struct{}, 1),
	}
	w.idle = sync.NewCond(&w.mu)
	return w
}

func TestBigResultGoesInPiecesWithHeartbeatsBetween(t *testing.T) {
	w := newTestWorker()
	k := attemptKey{"job1", 1}
	big := bytes.Repeat([]byte("x"), 100<<20)
	want := &clusterpb.Result{Attempt: k.ref(), Verdict: "accepted", Run: &clusterpb.RunResult{Stdout: big}}
	w.pending[k] = want

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeStream{delay: 2 * time.Millisecond}
	fs.onSend = func(m *clusterpb.WorkerMessage) {
		if p := m.GetResultPart(); p != nil && p.Last {
			cancel()
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.sendLoop(ctx, fs, make(chan *clusterpb.WorkerMessage), 10*time.Millisecond, 0) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the result was not sent in 30s")
	}

	var got []byte
	parts, beatsBetween := 0, 0
	for _, m := range fs.messages() {
		if n := proto.Size(m); n > PieceSize+1024 {
			t.Fatalf("a message of %d bytes was sent; at most a piece (%d) is allowed", n, PieceSize)
		}
		switch x := m.Msg.(type) {
		case *clusterpb.WorkerMessage_Result:
			t.Fatal("a 100 MiB result went as one Result message")
		case *clusterpb.WorkerMessage_ResultPart:
			p := x.ResultPart
			if p.Offset != int64(len(got)) || p.Attempt.GetJobId() != "job1" || p.Attempt.GetAttempt() != 1 {
				t.Fatalf("piece %d: offset %d attempt %v, want offset %d of job1/1", parts, p.Offset, p.Attempt, len(got))
			}
			got = append(got, p.Data...)
			parts++
		case *clusterpb.WorkerMessage_Heartbeat:
			if parts > 0 {
				beatsBetween++
			}
		}
	}
	if parts < 100 {
		t.Errorf("%d pieces, want at least 100 of at most 1 MiB", parts)
	}
	if beatsBetween == 0 {
		t.Error("no heartbeat went out while the pieces did: the result held the link")
	}
	var res clusterpb.Result
	if err := proto.Unmarshal(got, &res); err != nil {
		t.Fatalf("the pieces do not make a Result: %v", err)
	}
	if !proto.Equal(&res, want) {
		t.Error("the reassembled result differs from the one sent")
	}
}

func TestSmallResultIsOneMessage(t *testing.T) {
	w := newTestWorker()
	k := attemptKey{"job1", 2}
	w.pending[k] = &clusterpb.Result{Attempt: k.ref(), Verdict: "accepted"}
	ctx, cancel := context.WithCancel(context.Background())
	fs := &fakeStream{}
	fs.onSend = func(m *clusterpb.WorkerMessage) {
		if m.GetResult() != nil {
			cancel()
		}
	}
	_ = w.sendLoop(ctx, fs, make(chan *clusterpb.WorkerMessage), time.Hour, 0)
	for _, m := range fs.messages() {
		if m.GetResultPart() != nil {
			t.Fatal("a small result went in pieces")
		}
	}
}

func TestHelloNamesFinishedResultsWithoutTheirBodies(t *testing.T) {
	w := newTestWorker()
	k := attemptKey{"job1", 1}
	w.pending[k] = &clusterpb.Result{Attempt: k.ref(), Run: &clusterpb.RunResult{Stdout: make([]byte, 80<<20)}}
	h, _ := w.hello()
	if len(h.PendingResults) != 0 {
		t.Error("the hello carries result bodies")
	}
	if len(h.Finished) != 1 || h.Finished[0].JobId != "job1" || h.Finished[0].Attempt != 1 {
		t.Errorf("finished = %v, want job1/1", h.Finished)
	}
	if n := proto.Size(h); n > 4096 {
		t.Errorf("the hello is %d bytes", n)
	}
}

func TestAcknowledgedResultStopsMidway(t *testing.T) {
	w := newTestWorker()
	k := attemptKey{"job1", 1}
	w.pending[k] = &clusterpb.Result{Attempt: k.ref(), Run: &clusterpb.RunResult{Stdout: make([]byte, 20<<20)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeStream{}
	parts := 0
	fs.onSend = func(m *clusterpb.WorkerMessage) {
		if m.GetResultPart() == nil {
			return
		}
		if parts++; parts == 3 {
			// The master refused it as too large and acknowledged it.
			w.mu.Lock()
			delete(w.pending, k)
			w.mu.Unlock()
			time.AfterFunc(100*time.Millisecond, cancel)
		}
	}
	_ = w.sendLoop(ctx, fs, make(chan *clusterpb.WorkerMessage), time.Hour, 0)
	if parts != 3 {
		t.Errorf("%d pieces sent, want the 3 before the acknowledgement", parts)
	}
}

func TestUnencodableResultFailsItsJobInsteadOfTheLink(t *testing.T) {
	w := newTestWorker()
	k := attemptKey{"job1", 1}
	// Not UTF-8 in a string: protobuf refuses to encode it.
	w.pending[k] = &clusterpb.Result{Attempt: k.ref(), Verdict: "\xff", Run: &clusterpb.RunResult{Stdout: make([]byte, 2<<20)}}
	ctx, cancel := context.WithCancel(context.Background())
	fs := &fakeStream{}
	var sent *clusterpb.Result
	fs.onSend = func(m *clusterpb.WorkerMessage) {
		if r := m.GetResult(); r != nil {
			sent = r
			cancel()
		}
	}
	_ = w.sendLoop(ctx, fs, make(chan *clusterpb.WorkerMessage), time.Hour, 0)
	if sent == nil || sent.Error != "the result could not be delivered: it could not be encoded" {
		t.Fatalf("sent %v", sent)
	}
}
