package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A cancel can land while the command is still being started, before it
// has joined its cgroup, where a cgroup kill cannot reach it: Exec must
// still return at once (a worker frees the slot when it does).
func TestCancelAtStartReturnsPromptly(t *testing.T) {
	l := newTestLinux(t, Config{})
	for i := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		delay := time.Duration(i%5) * time.Millisecond
		time.AfterFunc(delay, cancel)
		start := time.Now()
		_, err := l.Exec(ctx, &Cmd{
			Args: []string{"/bin/sleep", "30"}, Dir: t.TempDir(),
			Limits: Limits{Wall: 20 * time.Second, CPU: 5 * time.Second, MemoryBytes: 64 << 20, Processes: 8},
		})
		took := time.Since(start)
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: err %v, want context.Canceled", i, err)
		}
		if took > time.Second {
			t.Fatalf("run %d: a cancel after %v took %v to return", i, delay, took)
		}
	}
	// The sandbox still works afterwards.
	o, err := l.Exec(context.Background(), &Cmd{Args: []string{"/bin/true"}, Dir: t.TempDir(), Limits: Limits{Wall: 5 * time.Second}})
	if err != nil || o.ExitCode != 0 {
		t.Fatalf("after the cancels: %+v %v", o, err)
	}
}
