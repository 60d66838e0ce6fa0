package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/grappe/grappe/internal/clustertest"
)

// grappe run --interactive against a real master and worker: the
// program reads grappe's stdin, its output and exit code come back.
func TestRunInteractive(t *testing.T) {
	cliEnv(t)
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1, Languages: []string{"python"}}}})
	c.WaitLanguage("python")
	conn := []string{"--addr", c.Master.URL(), "--token", c.Token, "--ca", filepath.Join(c.DataDir, "ca.pem")}
	prog := writeFile(t, "greet.py", "import sys\nname = input('Name? ')\nprint('Hello, ' + name + '!')\nprint(len(sys.stdin.read()), 'more', file=sys.stderr)\nsys.exit(3)\n")

	r := runCLI(t, "Ada\nrest of the input\n", append([]string{"run", "--interactive", prog}, conn...)...)
	if r.code != 3 || r.stdout != "Name? Hello, Ada!\n" || !strings.Contains(r.stderr, "18 more") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "", append([]string{"run", "-i", "--stdin", prog, prog}, conn...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "do not go together") {
		t.Fatalf("--stdin with --interactive: exit %d, stderr %q", r.code, r.stderr)
	}
}
