//go:build linux

package sandbox

import (
	"context"
	"log/slog"
	"os"
	"testing"
)

func TestSmoke(t *testing.T) {
	l, err := New(Config{Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	o, err := l.Exec(context.Background(), &Cmd{Args: []string{"/bin/sh", "-c", "id; pwd; ls -la / /box /dev; cat /proc/self/status | grep -E 'Cap|Seccomp|NoNew'; ls /proc; echo hi > f; cat /etc/passwd | head -3; hostname; ls -l /proc/self/fd/; cat /proc/self/cgroup"}, Dir: dir, Limits: Limits{MemoryBytes: 64 << 20, Processes: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v\nstdout:\n%s\nstderr:\n%s", o, o.Stdout, o.Stderr)
}
