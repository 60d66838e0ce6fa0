package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/sandbox"
	"github.com/grappe/grappe/internal/worker"
)

// The toolbox (toolchain detection and self-tests, and the sandbox) is
// shared by every cluster of a test binary: the self-tests compile Go, Rust
// and Java and take seconds, which each test should not pay again. It is
// the one piece of package state here, built once, closed by Main.
var (
	toolboxOnce sync.Once
	toolbox     *worker.Toolbox
	toolboxSB   *sandbox.Linux
	toolboxWork string // the tmpfs of the work directories, as root
	// toolboxWorkRoot is where the runner makes the jobs' work
	// directories (toolboxWork as root).
	toolboxWorkRoot string
	toolboxErr      error
)

// Main is TestMain for a package whose tests start clusters: it lets the
// test binary serve as the sandbox's init, runs the tests, and closes the
// shared sandbox.
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
func Main(m *testing.M) int {
	sandbox.InitMain()
	code := m.Run()
	if toolboxSB != nil {
		// The self-tests may still be compiling in the sandbox.
		select {
		case <-toolbox.Tested():
		case <-time.After(2 * time.Minute):
		}
		toolboxSB.Close()
		toolbox.Close()
		os.Remove(toolboxWork)
	}
	return code
}

// SharedToolbox returns the process-wide toolbox, preparing it once. Its
// directory is fixed per user so that toolchain caches (Go's build cache)
// and the compile cache stay warm across test runs; everything in it is
// safe for concurrent use by several test binaries. As root it runs jobs
// in the real Linux sandbox (with a range of uids of its own per test
// process, since several test binaries run at once), else unconfined.
func SharedToolbox(t testing.TB) *worker.Toolbox {
	t.Helper()
	toolboxOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("grappe-clustertest-%d", os.Getuid()))
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		var sb sandbox.Sandbox
		var work string
		var scratch int64
		if os.Geteuid() == 0 && runtime.GOOS == "linux" {
			// Work directories on a tmpfs of this process's own, as a
			// worker with the sandbox has them.
			var err error
			if work, err = os.MkdirTemp("", "grappe-clustertest-work-"); err != nil {
				toolboxErr = err
				return
			}
			toolboxWork = work
			scratch = 1 << 30
			root, err := os.MkdirTemp("", "grappe-clustertest-sandbox-")
			if err != nil {
				toolboxErr = err
				return
			}
			// The state directory (the sandbox's id and lock) is the
			// process's own: test binaries running at once, or a grappe
			// on the same machine, leave each other's cgroups alone, and
			// the uids chosen from that id are leased, the process's
			// alone on the machine.
			toolboxSB, toolboxErr = sandbox.New(sandbox.Config{
				Root: root, StateDir: root, UIDCount: 100, PoolSize: 8, Logger: log,
			})
			if toolboxErr != nil {
				return
			}
			sb = toolboxSB
		}
		toolboxWorkRoot = work
		if work == "" {
			toolboxWorkRoot = filepath.Join(dir, "work") // the toolbox's default
		}
		toolbox, toolboxErr = worker.PrepareToolbox(context.Background(), worker.ToolboxConfig{
			DataDir: dir, WorkDir: work, ScratchBytes: scratch, Sandbox: sb, Logger: log,
		})
	})
	if toolboxErr != nil {
		t.Fatalf("clustertest: toolbox: %v", toolboxErr)
	}
	return toolbox
}

// WorkRoot is the directory under which the workers on the shared toolbox
// make the jobs' work directories (a tmpfs of the test process's own, as
// root): tests check what a job leaves there.
func WorkRoot(t testing.TB) string {
	t.Helper()
	SharedToolbox(t)
	return toolboxWorkRoot
}
