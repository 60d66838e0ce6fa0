//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTmpGoBuild(t *testing.T) {
	l := newTestLinux(t, Config{})
	cache := filepath.Join(t.TempDir(), "gocache")
	os.MkdirAll(cache, 0o700)
	lim := Limits{CPU: 300 * time.Second, Wall: 300 * time.Second, MemoryBytes: 2 << 30, Processes: 256, OutputBytes: 1 << 20}
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hi\", 1+1) }\n"), 0o644)
		start := time.Now()
		o := execOK(t, l, &Cmd{
			Args:          []string{"/usr/local/go/bin/go", "build", "-trimpath", "-o", "main", "main.go"},
			Env:           []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "GOCACHE=" + cache, "GOPATH=" + dir + "/.gopath", "GO111MODULE=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOPROXY=off", "GOENV=off", "GOFLAGS=", "GOTELEMETRY=off"},
			Dir:           dir,
			WritablePaths: []string{cache},
			Limits:        lim,
		})
		t.Logf("build %d: exit %d in %v, cpu %v, mem %d KB: %s %s", i, o.ExitCode, time.Since(start), o.CPU, o.MemoryKB, o.Stdout, o.Stderr)
		o = execOK(t, l, &Cmd{Args: []string{"./main"}, Dir: dir, Limits: limits})
		t.Logf("run: %q", o.Stdout)
	}
}
