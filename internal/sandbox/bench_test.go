//go:build linux

package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSandboxOverhead measures the sandbox against a bare fork/exec
// of the same binary, side by side in one run (as root):
//
//	go test -run - -bench SandboxOverhead -benchtime 2000x -count 3 ./internal/sandbox
//
// bare-* fork/exec the program from the test process with os/exec and
// wait for it; sandbox-* run it through Linux.Exec (prepared sandboxes,
// fresh cgroup, uid, chown of the work directory, output capture, CPU,
// memory and wall measurement), with the runner's default limits. "true"
// is the dynamically linked /bin/true; "static" a statically linked C
// program that returns at once, run from the work directory as a compiled
// submission is; "bash" is bash -c "exit 0".
func BenchmarkSandboxOverhead(b *testing.B) {
	work := b.TempDir()
	static := filepath.Join(work, "static")
	src := filepath.Join(b.TempDir(), "static.c")
	os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o644)
	haveStatic := exec.Command("gcc", "-O2", "-static", "-o", static, src).Run() == nil

	var l *Linux
	if os.Geteuid() == 0 {
		var err error
		if l, err = New(Config{Root: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
		defer l.Close()
	}
	lim := Limits{CPU: 5 * time.Second, Wall: 10 * time.Second, MemoryBytes: 256 << 20, Processes: 64, OutputBytes: 1 << 20}
	for _, prog := range []struct {
		name string
		args []string
	}{
		{"true", []string{"/bin/true"}},
		{"static", []string{static}},
		{"bash", []string{"/bin/bash", "-c", "exit 0"}},
	} {
		if prog.name == "static" && !haveStatic {
			continue
		}
		b.Run("bare-"+prog.name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(prog.args[0], prog.args[1:]...)
				cmd.Dir = work
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("sandbox-"+prog.name, func(b *testing.B) {
			if l == nil {
				b.Skip("needs root")
			}
			c := &Cmd{Args: prog.args, Dir: work, Limits: lim}
			created := l.cgSeq.Load()
			defer func() { b.ReportMetric(float64(l.cgSeq.Load()-created)/float64(b.N), "cgroups/op") }()
			for b.Loop() {
				o, err := l.Exec(context.Background(), c)
				if err != nil {
					b.Fatal(err)
				}
				if o.ExitCode != 0 {
					b.Fatalf("exit %d: %s", o.ExitCode, o.Stderr)
				}
			}
		})
	}
}

// BenchmarkSandboxSingleUse is the cost per command when every command
// gets a freshly built sandbox (Config.SingleUse), prepared in the
// background while the previous one runs.
func BenchmarkSandboxSingleUse(b *testing.B) {
	needRoot(b)
	l, err := New(Config{Root: b.TempDir(), SingleUse: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c := &Cmd{Args: []string{"/bin/true"}, Dir: b.TempDir(), Limits: Limits{Wall: 10 * time.Second, MemoryBytes: 256 << 20, Processes: 64}}
	for b.Loop() {
		if _, err := l.Exec(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}
