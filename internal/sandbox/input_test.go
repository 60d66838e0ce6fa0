//go:build linux

package sandbox

import (
	"context"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// An interactive command: its stdin is fed as it runs, its EOF is the
// feed's, and signals reach it; the same with and without isolation.
func TestInputAndSignals(t *testing.T) {
	sandboxes := map[string]func(t *testing.T) Sandbox{
		"plain": func(*testing.T) Sandbox { return &Plain{} },
		"linux": func(t *testing.T) Sandbox { return newTestLinux(t, Config{}) },
	}
	for name, mk := range sandboxes {
		t.Run(name, func(t *testing.T) {
			sb := mk(t)
			t.Run("a dialogue, then a signal", func(t *testing.T) {
				script := `read name; echo "hello $name"; trap 'echo term; exit 7' TERM; while :; do sleep 0.05; done`
				r := runInteractive(t, sb, script, func(in *io.PipeWriter, sigs chan<- syscall.Signal, out *outputLog) {
					io.WriteString(in, "Ada\n")
					out.waitFor(t, "hello Ada\n")
					sigs <- syscall.SIGTERM
				})
				if r.ExitCode != 7 || string(r.Stdout) != "hello Ada\nterm\n" {
					t.Fatalf("exit %d %s, stdout %q", r.ExitCode, r.Signal, r.Stdout)
				}
			})
			t.Run("end of input", func(t *testing.T) {
				r := runInteractive(t, sb, `wc -c`, func(in *io.PipeWriter, _ chan<- syscall.Signal, _ *outputLog) {
					io.WriteString(in, "12345")
					in.Close()
				})
				if r.ExitCode != 0 || strings.TrimSpace(string(r.Stdout)) != "5" {
					t.Fatalf("exit %d, stdout %q", r.ExitCode, r.Stdout)
				}
			})
			t.Run("a command that never reads", func(t *testing.T) {
				// The feed blocks on the full pipe; the command's end
				// releases it, and Exec returns.
				r := runInteractive(t, sb, `sleep 0.2`, func(in *io.PipeWriter, _ chan<- syscall.Signal, _ *outputLog) {
					go io.Copy(in, neverEnding{})
				})
				if r.ExitCode != 0 {
					t.Fatalf("exit %d", r.ExitCode)
				}
			})
		})
	}
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) { return len(p), nil }

// outputLog collects a command's output as it comes.
type outputLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *outputLog) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		got := o.b.String()
		o.mu.Unlock()
		if strings.Contains(got, s) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("output never had %q", s)
}

// runInteractive runs script with its stdin fed through a pipe, while
// drive talks to it; the feed's reader is closed once Exec returns, as
// Cmd.Input asks of its owner.
func runInteractive(t *testing.T, sb Sandbox, script string, drive func(*io.PipeWriter, chan<- syscall.Signal, *outputLog)) *Outcome {
	t.Helper()
	pr, pw := io.Pipe()
	sigs := make(chan syscall.Signal, 1)
	out := &outputLog{}
	done := make(chan struct{})
	var o *Outcome
	var err error
	go func() {
		defer close(done)
		o, err = sb.Exec(context.Background(), &Cmd{
			Args: sh(script), Dir: t.TempDir(), Limits: limits, Input: pr, Signals: sigs,
			OnOutput: func(_ string, data []byte) {
				out.mu.Lock()
				out.b.Write(data)
				out.mu.Unlock()
			},
		})
	}()
	drive(pw, sigs, out)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Exec did not return")
	}
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	return o
}
