package web_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestUnit runs the UI's unit tests (ui/*.test.ts: the diagnostics and
// ANSI parsers) with node's test runner, through unit.mjs. Skipped, like
// the browser tests, without node or node_modules.
func TestUnit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH: UI unit tests skipped")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "esbuild", "package.json")); err != nil {
		t.Skip("no node_modules/esbuild (run npm ci in internal/web): UI unit tests skipped")
	}
	// Read here what node will read, so that go test's cache knows the
	// result depends on it (it does not see a child process's files).
	err = filepath.WalkDir("ui", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_, err = os.ReadFile(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), node, "unit.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("UI unit tests failed: %v\n%s", err, out)
	}
}
