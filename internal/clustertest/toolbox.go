package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/grappe/grappe/internal/worker"
)

// The toolbox (toolchain detection and self-tests) is shared by every
// cluster of a test binary: the self-tests compile Go, Rust and Java and
// take seconds, which each test should not pay again. It is the one piece
// of package state here, and it is read-only once built.
var (
	toolboxOnce sync.Once
	toolbox     *worker.Toolbox
	toolboxErr  error
)

// SharedToolbox returns the process-wide toolbox, preparing it once. Its
// directory is fixed per user so that toolchain caches (Go's build cache)
// and the compile cache stay warm across test runs; everything in it is
// safe for concurrent use by several test binaries.
func SharedToolbox(t testing.TB) *worker.Toolbox {
	t.Helper()
	toolboxOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("grappe-clustertest-%d", os.Getuid()))
		toolbox, toolboxErr = worker.PrepareToolbox(context.Background(), worker.ToolboxConfig{
			DataDir: dir,
			Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	})
	if toolboxErr != nil {
		t.Fatalf("clustertest: toolbox: %v", toolboxErr)
	}
	return toolbox
}
