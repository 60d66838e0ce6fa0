package clustertest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// TestPistonNPMClient runs npm's piston-client (internal/clustertest/npm,
// installed by `npm ci` there, as .ci/run does) against a real master.
// The client sends no token, so the master runs with an anonymous user,
// as an operator serving such clients would.
func TestPistonNPMClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on this machine: npm's piston-client not tested")
	}
	if _, err := os.Stat(filepath.Join("npm", "node_modules", "piston-client")); err != nil {
		t.Skip("no npm/node_modules/piston-client (run npm ci in internal/clustertest/npm): npm's piston-client not tested")
	}
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}},
		Master:  func(cfg *master.Config) { cfg.AnonymousUser = "npm" },
	})
	for _, l := range []string{"python", "cpp", "c"} {
		c.WaitLanguage(l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "piston.mjs")
	cmd.Dir = "npm"
	cmd.Env = append(os.Environ(), "PISTON_URL="+c.Master.URL(), "NODE_EXTRA_CA_CERTS="+filepath.Join(c.DataDir, "ca.pem"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node piston.mjs: %v\n%s", err, stderr.String())
	}
	var out struct {
		Runtimes []struct {
			Language string   `json:"language"`
			Version  string   `json:"version"`
			Aliases  []string `json:"aliases"`
		} `json:"runtimes"`
		Hello, Cpp, StdinArgs, CompileError, Timeout pistonResult
		Unknown                                      map[string]any
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if !slices.ContainsFunc(out.Runtimes, func(r struct {
		Language string   `json:"language"`
		Version  string   `json:"version"`
		Aliases  []string `json:"aliases"`
	}) bool {
		return r.Language == "c++" && slices.Contains(r.Aliases, "cpp")
	}) {
		t.Errorf("runtimes: no c++ (Piston's name) with alias cpp: %+v", out.Runtimes)
	}
	if out.Hello.Language != "python" || out.Hello.Run.Stdout != "hello\n" {
		t.Errorf("hello: %+v", out.Hello)
	}
	if out.Cpp.Language != "c++" || out.Cpp.Run.Stdout != "hi\n" || out.Cpp.Compile == nil {
		t.Errorf("c++: %+v", out.Cpp)
	}
	if out.StdinArgs.Run.Stdout != "a b c\nfrom stdin\n" {
		t.Errorf("stdin and args: %+v", out.StdinArgs.Run)
	}
	if out.CompileError.Compile == nil || out.CompileError.Compile.Code == nil || *out.CompileError.Compile.Code == 0 || out.CompileError.Run.Stderr == "" {
		t.Errorf("compile error: %+v", out.CompileError)
	}
	if str(out.Timeout.Run.Status) != "TO" {
		t.Errorf("time limit: %+v", out.Timeout.Run)
	}
	if msg, _ := out.Unknown["message"].(string); msg != "cobol-1.0.0 runtime is unknown" {
		t.Errorf("unknown language: %v", out.Unknown)
	}
	jobs, err := c.Client.Jobs(ctx, "", 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 5 || jobs[0].Owner != "npm" {
		t.Errorf("%d jobs (want 5, the npm user's): %+v", len(jobs), jobs)
	}
}
