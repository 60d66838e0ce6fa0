//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestPlainExec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cmd     Cmd
		maxWall time.Duration // Exec must return within this
		check   func(t *testing.T, o *Outcome)
	}{
		{
			name: "exit code",
			cmd:  Cmd{Args: sh("echo out; echo err >&2; exit 3")},
			check: func(t *testing.T, o *Outcome) {
				if o.ExitCode != 3 || o.Signal != "" || o.TimeLimit {
					t.Errorf("exit %d signal %q tle %v, want exit 3", o.ExitCode, o.Signal, o.TimeLimit)
				}
				if string(o.Stdout) != "out\n" || string(o.Stderr) != "err\n" {
					t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
				}
			},
		},
		{
			name: "signal",
			cmd:  Cmd{Args: sh("kill -SEGV $$")},
			check: func(t *testing.T, o *Outcome) {
				if o.Signal != "SIGSEGV" || o.ExitCode != 128+11 {
					t.Errorf("signal %q exit %d, want SIGSEGV 139", o.Signal, o.ExitCode)
				}
			},
		},
		{
			name:    "wall timeout",
			cmd:     Cmd{Args: []string{"/bin/sleep", "100"}, Limits: Limits{Wall: 200 * time.Millisecond}},
			maxWall: 2 * time.Second,
			check: func(t *testing.T, o *Outcome) {
				if !o.TimeLimit || o.Signal != "SIGKILL" {
					t.Errorf("tle %v signal %q, want a time limit kill", o.TimeLimit, o.Signal)
				}
			},
		},
		{
			name:    "background child holds the pipe",
			cmd:     Cmd{Args: sh("sleep 100 & echo started")},
			maxWall: 2 * time.Second,
			check: func(t *testing.T, o *Outcome) {
				if o.ExitCode != 0 || string(o.Stdout) != "started\n" {
					t.Errorf("exit %d stdout %q", o.ExitCode, o.Stdout)
				}
			},
		},
		{
			name:    "background child and wall timeout",
			cmd:     Cmd{Args: sh("sleep 100 & sleep 100"), Limits: Limits{Wall: 200 * time.Millisecond}},
			maxWall: 2 * time.Second,
			check: func(t *testing.T, o *Outcome) {
				if !o.TimeLimit {
					t.Errorf("no time limit")
				}
			},
		},
		{
			// A process that left the group cannot be killed with it; the
			// outcome must not wait for it to close the pipe.
			name:    "escaped child holds the pipe",
			cmd:     Cmd{Args: sh("setsid sleep 3 & sleep 0.1; echo started")},
			maxWall: 1500 * time.Millisecond,
			check: func(t *testing.T, o *Outcome) {
				if o.ExitCode != 0 || string(o.Stdout) != "started\n" {
					t.Errorf("exit %d stdout %q", o.ExitCode, o.Stdout)
				}
			},
		},
		{
			name:    "output cap",
			cmd:     Cmd{Args: []string{"/usr/bin/yes"}, Limits: Limits{OutputBytes: 1000, Wall: 10 * time.Second}},
			maxWall: 2 * time.Second,
			check: func(t *testing.T, o *Outcome) {
				if !o.OutputTruncated || len(o.Stdout) != 1000 || o.TimeLimit {
					t.Errorf("truncated %v len %d tle %v, want truncated at 1000", o.OutputTruncated, len(o.Stdout), o.TimeLimit)
				}
			},
		},
		{
			name: "stdin",
			cmd:  Cmd{Args: []string{"/bin/cat"}, Stdin: []byte("line 1\nline 2\n")},
			check: func(t *testing.T, o *Outcome) {
				if string(o.Stdout) != "line 1\nline 2\n" {
					t.Errorf("stdout %q", o.Stdout)
				}
			},
		},
		{
			name:    "cpu limit",
			cmd:     Cmd{Args: sh("while :; do :; done"), Limits: Limits{CPU: 500 * time.Millisecond, Wall: 20 * time.Second}},
			maxWall: 5 * time.Second,
			check: func(t *testing.T, o *Outcome) {
				if !o.TimeLimit || o.CPU < 500*time.Millisecond {
					t.Errorf("tle %v cpu %v signal %q, want a CPU time limit", o.TimeLimit, o.CPU, o.Signal)
				}
			},
		},
		{
			name:    "cpu limit without wall limit",
			cmd:     Cmd{Args: []string{"/bin/sleep", "100"}, Limits: Limits{CPU: 200 * time.Millisecond}},
			maxWall: 3 * time.Second,
			check: func(t *testing.T, o *Outcome) {
				if !o.TimeLimit {
					t.Errorf("a sleeper outlived the wall backstop")
				}
			},
		},
		{
			name: "env not inherited",
			cmd:  Cmd{Args: []string{"/usr/bin/env"}, Env: []string{"A=1"}},
			check: func(t *testing.T, o *Outcome) {
				if string(o.Stdout) != "A=1\n" {
					t.Errorf("env = %q, want only A=1", o.Stdout)
				}
			},
		},
		{
			name: "empty env",
			cmd:  Cmd{Args: []string{"/usr/bin/env"}},
			check: func(t *testing.T, o *Outcome) {
				if len(o.Stdout) != 0 {
					t.Errorf("env = %q, want nothing", o.Stdout)
				}
			},
		},
		{
			// Without a cgroup nothing trustworthy measures memory (see
			// Plain): it must claim neither a figure nor a limit.
			name: "memory not guessed",
			cmd:  Cmd{Args: sh("head -c 50000000 /dev/zero | tail -c 1 >/dev/null"), Limits: Limits{MemoryBytes: 1 << 20}},
			check: func(t *testing.T, o *Outcome) {
				if o.MemoryKB != 0 || o.MemoryLimit || o.ExitCode != 0 {
					t.Errorf("memory %d KB, limit %v, exit %d", o.MemoryKB, o.MemoryLimit, o.ExitCode)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cmd.Dir = t.TempDir()
			start := time.Now()
			o, err := (&Plain{}).Exec(context.Background(), &tc.cmd)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if tc.maxWall > 0 && took > tc.maxWall {
				t.Errorf("Exec took %v, want under %v", took, tc.maxWall)
			}
			if o.Wall <= 0 || o.Wall > took {
				t.Errorf("Wall %v, Exec took %v", o.Wall, took)
			}
			tc.check(t, o)
		})
	}
}

func TestPlainDirAndOnOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var mu sync.Mutex
	var got bytes.Buffer
	o, err := (&Plain{}).Exec(context.Background(), &Cmd{
		Args: sh("pwd; echo x > file"),
		Dir:  dir,
		OnOutput: func(stream string, data []byte) {
			mu.Lock()
			defer mu.Unlock()
			got.WriteString(stream + ":" + string(data))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(o.Stdout)) != dir {
		t.Errorf("pwd = %q, want %q", o.Stdout, dir)
	}
	if got.String() != "stdout:"+dir+"\n" {
		t.Errorf("OnOutput got %q", got.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "file")); err != nil {
		t.Errorf("file not written in Dir: %v", err)
	}
}

func TestPlainContextCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Plain{}).Exec(ctx, &Cmd{Args: sh("sleep 100 & sleep 100"), Dir: t.TempDir()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancel took %v", took)
	}
}

func TestPlainInvalid(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"true"}} {
		if _, err := (&Plain{}).Exec(context.Background(), &Cmd{Args: args}); !errors.Is(err, ErrInvalidCmd) {
			t.Errorf("Exec(%q) = %v, want ErrInvalidCmd", args, err)
		}
	}
	if _, err := (&Plain{}).Exec(context.Background(), &Cmd{Args: []string{"/nonexistent/x"}}); err == nil {
		t.Error("Exec of a missing program succeeded")
	}
}

// TestPlainNoGoroutineLeak is not parallel: it counts goroutines.
func TestPlainNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, c := range []Cmd{
		{Args: sh("sleep 100 & echo x")},
		{Args: []string{"/usr/bin/yes"}, Limits: Limits{OutputBytes: 10}},
		{Args: []string{"/bin/sleep", "100"}, Limits: Limits{Wall: 50 * time.Millisecond}},
	} {
		c.Dir = t.TempDir()
		if _, err := (&Plain{}).Exec(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after, %d before", n, before)
	}
}

// The Plain executor's overhead over a bare fork/exec of /bin/true:
// go test -run - -bench Exec ./internal/sandbox
func BenchmarkPlainTrue(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, err := (&Plain{}).Exec(context.Background(), &Cmd{Args: []string{"/bin/true"}, Dir: dir}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareExecTrue(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		cmd := exec.Command("/bin/true")
		cmd.Dir = dir
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCaptureReadsWhatThePipeHoldsPastTheDeadline: a reader that first
// runs after the drain deadline (its process frozen or starved between
// the command's exit and its wake-up) still gets what the command wrote,
// without waiting for a writer that keeps the pipe open. Found by the
// multi-master chaos test: a C job recorded done, exit 0, no output.
func TestCaptureReadsWhatThePipeHoldsPastTheDeadline(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close() // open to the end: a writer that escaped the group
	if _, err := w.Write([]byte("197056\n")); err != nil {
		t.Fatal(err)
	}
	if err := r.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	c := &capture{stream: "stdout", capHit: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		c.read(r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader waits for the open writer past its deadline")
	}
	if string(c.buf) != "197056\n" {
		t.Fatalf("read %q past the deadline, want the pipe's %q", c.buf, "197056\n")
	}
}
