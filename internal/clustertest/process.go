package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/grappe/grappe/internal/lang"
)

// BuildGrappe builds cmd/grappe into the test's temporary directory, for
// tests that run the cluster (or its workers) as real processes.
func BuildGrappe(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "grappe")
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/grappe")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clustertest: go build: %v\n%s", err, out)
	}
	return bin
}

// OnlyLanguagesCatalogue writes a catalogue file that disables every
// language but the ones named: a worker process started with it
// self-tests only those, not javac and rustc, which on a small machine
// would take most of the CPU a test needs.
func OnlyLanguagesCatalogue(t testing.TB, keep ...string) string {
	t.Helper()
	c, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	var b strings.Builder
	b.WriteString("languages:\n")
	for _, n := range c.Names() {
		if !kept[n] {
			fmt.Fprintf(&b, "  - name: %s\n    disabled: true\n", n)
		}
	}
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
