//go:build linux

package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The sandbox's overhead over a bare fork/exec of the same binary, side by
// side in one run (as root):
//
//	go test -run - -bench 'Exec(True|Static)' -benchtime 2000x ./internal/sandbox
//
// BenchmarkBareExec* fork/exec from the test process with os/exec;
// BenchmarkSandboxExec* run the same binary through Linux.Exec with a
// warm pool.
func BenchmarkBareExecTrue2(b *testing.B) { benchBare(b, "/bin/true") }

func BenchmarkSandboxExecTrue(b *testing.B) { benchSandbox(b, "/bin/true") }

func benchBare(b *testing.B, prog string) {
	dir := b.TempDir()
	for b.Loop() {
		cmd := exec.Command(prog)
		cmd.Dir = dir
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSandbox(b *testing.B, prog string) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	l, err := New(Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(b.TempDir(), "work")
	os.Mkdir(dir, 0o700)
	c := &Cmd{Args: []string{prog}, Dir: dir, Limits: Limits{CPU: 1e9, Wall: 2e9, MemoryBytes: 64 << 20, Processes: 16, OutputBytes: 1 << 20}}
	for b.Loop() {
		o, err := l.Exec(context.Background(), c)
		if err != nil {
			b.Fatal(err)
		}
		if o.ExitCode != 0 {
			b.Fatalf("exit %d", o.ExitCode)
		}
	}
}
