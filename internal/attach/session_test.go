package attach

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

// fakeLink records what a session relays.
type fakeLink struct {
	mu    sync.Mutex
	input []byte
	eof   bool
	sigs  []string
	ended []string
}

func (l *fakeLink) Stdin(data []byte, eof bool, signal string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.input = append(l.input, data...)
	l.eof = l.eof || eof
	if signal != "" {
		l.sigs = append(l.sigs, signal)
	}
	return nil
}

func (l *fakeLink) End(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = append(l.ended, why)
}

func (l *fakeLink) endedWith() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ended...)
}

func TestInputWaitsForTheStart(t *testing.T) {
	l := &fakeLink{}
	s := New(Config{Link: l})
	done := make(chan error, 1)
	go func() { done <- s.Write(t.Context(), []byte("early\n")) }()
	select {
	case err := <-done:
		t.Fatalf("input went before the job started: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.Started()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.CloseStdin(t.Context()); err != nil {
		t.Fatal(err)
	}
	if string(l.input) != "early\n" || !l.eof {
		t.Fatalf("relayed %q eof %v", l.input, l.eof)
	}
}

// A flood of input is throttled to the rate: it takes the time it takes.
func TestInputIsThrottled(t *testing.T) {
	l := &fakeLink{}
	s := New(Config{Link: l, InputRate: 64 << 10})
	s.Started()
	start := time.Now()
	// A second's burst passes at once, the next 64 KiB take a second.
	if err := s.Write(t.Context(), make([]byte, 128<<10)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("128 KiB at 64 KiB/s took %s", d)
	}
	// A writer that gives up is released.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Write(ctx, make([]byte, 128<<10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled write: %v", err)
	}
}

// A client that reads nothing costs at most MaxPendingOutput; the exit
// still arrives, with what was dropped.
func TestOutputIsBounded(t *testing.T) {
	s := New(Config{Link: &fakeLink{}})
	s.Started()
	chunk := make([]byte, 64<<10)
	for range 64 { // 4 MiB
		s.Output("stdout", chunk)
	}
	s.Exit(&api.Job{Status: api.StatusDone})
	var kept int
	for {
		ev, err := s.Next(t.Context())
		if err != nil {
			t.Fatalf("no exit: %v", err)
		}
		if ev.Kind == KindOutput {
			kept += len(ev.Data)
			continue
		}
		if ev.Kind != KindExit || ev.Dropped != int64(64*len(chunk)-kept) {
			t.Fatalf("last event %+v, kept %d", ev, kept)
		}
		break
	}
	if kept > MaxPendingOutput {
		t.Fatalf("kept %d bytes for a client that did not read", kept)
	}
	if _, err := s.Next(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the exit: %v", err)
	}
}

func TestIdleEndsTheRun(t *testing.T) {
	l := &fakeLink{}
	s := New(Config{Link: l, Idle: 100 * time.Millisecond})
	s.Started()
	for range 5 { // activity keeps it going
		time.Sleep(40 * time.Millisecond)
		s.Output("stdout", []byte("."))
	}
	if got := l.endedWith(); len(got) != 0 {
		t.Fatalf("ended while active: %v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(l.endedWith()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := l.endedWith(); len(got) != 1 || !strings.Contains(got[0], "idle") {
		t.Fatalf("ended %v, want once for idleness", got)
	}
}

// Closing ends the job unless it exited or the session was refused.
func TestCloseEndsTheJob(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*Session)
		want int
	}{
		{"client leaves", func(*Session) {}, 1},
		{"after the exit", func(s *Session) { s.Exit(&api.Job{}) }, 0},
		{"refused", func(s *Session) { s.Refuse("another client attached first") }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeLink{}
			s := New(Config{Link: l})
			tc.end(s)
			s.Close()
			s.Close()
			if got := l.endedWith(); len(got) != tc.want {
				t.Fatalf("ended %v, want %d", got, tc.want)
			}
			select {
			case <-s.Ended():
			default:
				t.Fatal("Ended is open")
			}
			if err := s.Write(t.Context(), []byte("x")); !errors.Is(err, ErrClosed) {
				t.Fatalf("write after the end: %v", err)
			}
		})
	}
}

func TestValidSignal(t *testing.T) {
	for sig, want := range map[string]bool{
		"SIGINT": true, "INT": true, "SIGKILL": true, "SIGWINCH": true,
		"SIGSEGV": false, "SIGBUS": false, "": false, "SIG": false, "sigint": false, "9": false,
	} {
		if got := ValidSignal(sig); got != want {
			t.Errorf("ValidSignal(%q) = %v", sig, got)
		}
	}
}
