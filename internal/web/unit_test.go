package web_test

import (
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
	out, err := exec.CommandContext(t.Context(), node, "unit.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("UI unit tests failed: %v\n%s", err, out)
	}
}
