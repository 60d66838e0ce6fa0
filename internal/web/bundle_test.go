package web_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBundleIsFresh rebuilds the UI into a temporary directory and fails if
// the committed dist/ differs: a change to ui/ must come with `make web`.
// Skipped without node or node_modules (npm ci in internal/web).
func TestBundleIsFresh(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH: bundle check skipped")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "esbuild", "package.json")); err != nil {
		t.Skip("no node_modules/esbuild (run npm ci in internal/web): bundle check skipped")
	}
	out, err := exec.Command(node, "build.mjs", "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
