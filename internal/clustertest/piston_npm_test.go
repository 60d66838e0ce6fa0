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

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// pistonRuntime is an entry of Piston's GET /api/v2/runtimes.
type pistonRuntime struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
}

// TestPistonNPMClients runs the Piston clients from npm
// (internal/clustertest/npm, installed by `npm ci` there, as .ci/run does)
// against one real master: piston-client and piston-api-client. Neither
// client sends a token, so the master runs with an anonymous user, as an
// operator serving such clients would.
func TestPistonNPMClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on this machine: npm's Piston clients not tested")
	}
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}},
		Master:  func(cfg *master.Config) { cfg.AnonymousUser = "npm" },
	})
	for _, l := range []string{"python", "cpp", "c"} {
		c.WaitLanguage(l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// run runs one of the npm directory's scripts with the client it
	// drives, decodes the JSON it prints into out and checks that it
	// submitted wantJobs jobs, all the anonymous user's.
	run := func(t *testing.T, pkg, script string, wantJobs int, out any) {
		t.Helper()
		if _, err := os.Stat(filepath.Join("npm", "node_modules", pkg)); err != nil {
			t.Skipf("no npm/node_modules/%s (run npm ci in internal/clustertest/npm): npm's %s not tested", pkg, pkg)
		}
		before, err := c.Client.Jobs(ctx, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, node, script)
		cmd.Dir = "npm"
		cmd.Env = append(os.Environ(), "PISTON_URL="+c.Master.URL(), "NODE_EXTRA_CA_CERTS="+filepath.Join(c.DataDir, "ca.pem"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
		}
		os.WriteFile("/tmp/pac-"+script+".json", stdout, 0o644)
		if err := json.Unmarshal(stdout, out); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		after, err := c.Client.Jobs(ctx, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		n := len(after) - len(before)
		if n != wantJobs || slices.ContainsFunc(after[:max(n, 0)], func(j api.Job) bool { return j.Owner != "npm" }) {
			t.Errorf("%d new jobs (want %d, the npm user's): %+v", n, wantJobs, after[:max(n, 0)])
		}
	}
	hasCpp := func(rts []pistonRuntime) bool {
		return slices.ContainsFunc(rts, func(r pistonRuntime) bool {
			return r.Language == "c++" && slices.Contains(r.Aliases, "cpp")
		})
	}

	t.Run("piston-client", func(t *testing.T) {
		var out struct {
			Runtimes                                     []pistonRuntime
			Hello, Cpp, StdinArgs, CompileError, Timeout pistonResult
			Unknown                                      map[string]any
		}
		run(t, "piston-client", "piston.mjs", 5, &out)
		if !hasCpp(out.Runtimes) {
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
	})

	// piston-api-client answers every call as {success, data} or
	// {success: false, error}; it ships a client over node's http module
	// and one over fetch, and the script drives both.
	t.Run("piston-api-client", func(t *testing.T) {
		type answer[T any] struct {
			Success bool   `json:"success"`
			Data    T      `json:"data"`
			Error   string `json:"error"`
		}
		type results struct {
			Runtimes                                     answer[[]pistonRuntime]
			Hello, Cpp, StdinArgs, CompileError, Timeout answer[pistonResult]
			// The client does not look at the HTTP status: Piston's 400
			// comes back as success with {"message"} as data.
			Unknown answer[map[string]any]
		}
		var out struct{ Node, Fetch results }
		run(t, "piston-api-client", "piston-api-client.mjs", 10, &out)
		for _, c := range []struct {
			name string
			res  results
		}{{"NodePistonClient", out.Node}, {"PistonClient (fetch)", out.Fetch}} {
			t.Run(c.name, func(t *testing.T) {
				res := c.res
				ok := func(what string, a answer[pistonResult]) *pistonResult {
					t.Helper()
					if !a.Success {
						t.Errorf("%s: no success: %s", what, a.Error)
					}
					return &a.Data
				}
				if !res.Runtimes.Success || !hasCpp(res.Runtimes.Data) {
					t.Errorf("runtimes: no c++ (Piston's name) with alias cpp: %+v", res.Runtimes)
				}
				if r := ok("hello", res.Hello); r.Language != "python" || r.Run.Stdout != "hello\n" || r.Run.Output != "hello\n" ||
					r.Run.Code == nil || *r.Run.Code != 0 || r.Run.Signal != nil || r.Compile != nil {
					t.Errorf("hello: %+v", r)
				}
				if r := ok("c++", res.Cpp); r.Language != "c++" || r.Run.Stdout != "hi\n" || r.Run.Code == nil || *r.Run.Code != 0 ||
					r.Compile == nil || r.Compile.Code == nil || *r.Compile.Code != 0 {
					t.Errorf("c++: %+v (compile %+v)", r, r.Compile)
				}
				if r := ok("stdin and args", res.StdinArgs); r.Run.Stdout != "a b c\nfrom stdin\n" || r.Run.Code == nil || *r.Run.Code != 0 {
					t.Errorf("stdin and args: %+v", r.Run)
				}
				// A failed compile: the compiler's complaint in compile,
				// and in run too, as Piston answers it.
				if r := ok("compile error", res.CompileError); r.Language != "c" || r.Compile == nil || r.Compile.Code == nil || *r.Compile.Code == 0 ||
					!strings.Contains(r.Compile.Stderr, "error") || str(r.Compile.Status) != "RE" ||
					r.Run.Stderr != r.Compile.Stderr || r.Run.Code == nil || *r.Run.Code == 0 {
					t.Errorf("compile error: run %+v, compile %+v", r.Run, r.Compile)
				}
				if r := ok("time limit", res.Timeout); str(r.Run.Status) != "TO" || str(r.Run.Signal) != "SIGKILL" || r.Run.Code != nil {
					t.Errorf("time limit: %+v", r.Run)
				}
				if u := res.Unknown; !u.Success || u.Data["message"] != "cobol-1.0.0 runtime is unknown" || u.Data["run"] != nil {
					t.Errorf("unknown language: %+v", u)
				}
			})
		}
	})
}
