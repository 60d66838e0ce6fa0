package worker

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
)

func TestStdinFeed(t *testing.T) {
	t.Run("data in order, then EOF", func(t *testing.T) {
		f := newStdinFeed()
		f.deliver(&clusterpb.Stdin{Data: []byte("Ada\n")})
		f.deliver(&clusterpb.Stdin{Data: []byte("Bob\n"), Eof: true})
		f.deliver(&clusterpb.Stdin{Data: []byte("late")}) // after EOF: dropped
		if b, err := io.ReadAll(f); err != nil || string(b) != "Ada\nBob\n" {
			t.Fatalf("read %q, %v", b, err)
		}
	})
	t.Run("the end of the run releases a Read", func(t *testing.T) {
		f := newStdinFeed()
		done := make(chan error, 1)
		go func() {
			_, err := f.Read(make([]byte, 8))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		f.close()
		select {
		case err := <-done:
			if err != io.EOF {
				t.Fatalf("Read after close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read still blocked after close")
		}
	})
	t.Run("input past the bound is cut", func(t *testing.T) {
		f := newStdinFeed()
		chunk := make([]byte, 64<<10)
		for range 2 * maxPendingStdin / len(chunk) {
			f.deliver(&clusterpb.Stdin{Data: chunk})
		}
		if !f.cut || len(f.buf) != 0 {
			t.Fatalf("cut %v, %d bytes held", f.cut, len(f.buf))
		}
		if n, err := f.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("after the cut: %d, %v; want EOF", n, err)
		}
	})
	t.Run("signals", func(t *testing.T) {
		f := newStdinFeed()
		f.deliver(&clusterpb.Stdin{Signal: "SIGINT"})
		f.deliver(&clusterpb.Stdin{Signal: "SEGV"}) // not a client's: dropped
		f.deliver(&clusterpb.Stdin{Signal: "TERM"})
		if got := []syscall.Signal{<-f.signals, <-f.signals}; got[0] != syscall.SIGINT || got[1] != syscall.SIGTERM {
			t.Fatalf("signals %v", got)
		}
		select {
		case s := <-f.signals:
			t.Fatalf("extra signal %v", s)
		default:
		}
	})
}
