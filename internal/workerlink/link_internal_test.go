package workerlink

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
)

// fakeStream records what is written, one Send at a time until gate
// opens (nil: at once).
type fakeStream struct {
	mu   sync.Mutex
	sent []string
	gate chan struct{}
	fail error
}

func (f *fakeStream) Send(m *clusterpb.MasterMessage) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m.GetDrain().GetReason())
	return f.fail
}

func (f *fakeStream) written() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

func msg(s string) *clusterpb.MasterMessage {
	return &clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Drain{Drain: &clusterpb.Drain{Reason: s}}}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Messages queued while the handler holds the link (the welcome is not
// written yet) go after it, in order; a worker that does not read makes
// the queue fill up to its bound, not beyond, and a waiting Send goes
// through when there is room again.
func TestLinkOrderAndBound(t *testing.T) {
	f := &fakeStream{gate: make(chan struct{})}
	l := &Link{stream: f, writing: true}
	l.Send(msg("0"))
	l.release()
	// The writer takes "0" and blocks writing it; the queue fills.
	waitFor(t, "the writer to take the first", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.queue) == 0
	})
	want := []string{"0"}
	for i := 1; ; i++ {
		s := string(rune('0' + i%10))
		if !l.TrySend(msg(s)) {
			if i != sendQueue+1 {
				t.Fatalf("TrySend refused at message %d, want the queue's bound (%d) and the one being written", i, sendQueue)
			}
			break
		}
		want = append(want, s)
	}
	sent := make(chan struct{})
	go func() {
		l.Send(msg("last"))
		close(sent)
	}()
	select {
	case <-sent:
		t.Fatal("Send returned with the queue full")
	case <-time.After(50 * time.Millisecond):
	}
	close(f.gate) // the worker reads
	<-sent
	want = append(want, "last")
	waitFor(t, "all written", func() bool { return len(f.written()) == len(want) })
	for i, s := range f.written() {
		if s != want[i] {
			t.Fatalf("message %d written is %q, want %q (out of order)", i, s, want[i])
		}
	}
	l.Close()
	l.writers.Wait()
}

// Closing a link lets the senders waiting for room go (their messages
// dropped), drops what waits, and the writer ends.
func TestLinkCloseReleasesSenders(t *testing.T) {
	f := &fakeStream{gate: make(chan struct{})}
	l := &Link{stream: f}
	for l.TrySend(msg("x")) {
	}
	sent := make(chan struct{})
	go func() {
		l.Send(msg("y"))
		close(sent)
	}()
	l.Close()
	<-sent
	close(f.gate)
	l.writers.Wait()
	if n := len(f.written()); n > 1 {
		t.Fatalf("%d messages written after Close, want at most the one being written", n)
	}
	if !l.TrySend(msg("z")) {
		t.Fatal("TrySend on a closed link refused; it should drop")
	}
}

// A failed write ends the link, with its error kept for the log.
func TestLinkWriteFailureCloses(t *testing.T) {
	f := &fakeStream{fail: errors.New("broken pipe")}
	l := &Link{stream: f}
	l.Send(msg("a"))
	waitFor(t, "the link to close", func() bool { closed, _ := l.ended(); return closed })
	l.writers.Wait()
	if _, err := l.ended(); err == nil || err.Error() != "broken pipe" {
		t.Fatalf("ended: %v, want the write's error", err)
	}
}
