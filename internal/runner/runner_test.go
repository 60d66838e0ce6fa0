package runner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// The tests run real toolchains through the Plain sandbox. A language whose
// toolchain this machine lacks is skipped.

var (
	testWorkRoot string
	setupOnce    sync.Once
	testCat      *lang.Catalogue
	testTools    []lang.Toolchain
	shared       *Runner
	warmGo       sync.Once
)

func TestMain(m *testing.M) {
	sandbox.InitMain()
	dir, err := os.MkdirTemp("", "grappe-runner-test-")
	if err != nil {
		panic(err)
	}
	testWorkRoot = dir
	// The tests mostly wait for compilers and programs: run more of them
	// at once than there are CPUs, unless -parallel says otherwise.
	flag.Parse()
	if !parallelSet() {
		flag.Set("test.parallel", fmt.Sprint(max(4, 2*runtime.GOMAXPROCS(0))))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func parallelSet() bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	return set
}

// toolCacheDir keeps Go's GOCACHE across test runs: a cold one costs ~20 s
// of standard library compilation.
func toolCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "grappe-test", "tools")
	}
	return filepath.Join(os.TempDir(), "grappe-test-tools")
}

func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() {
		c, err := lang.Default()
		if err != nil {
			panic(err)
		}
		testCat = c
		testTools = lang.Detect(context.Background(), c)
		shared, err = New(newConfig(filepath.Join(testWorkRoot, "shared")))
		if err != nil {
			panic(err)
		}
	})
}

func newConfig(root string) Config {
	return Config{
		Catalogue:    testCat,
		Toolchains:   testTools,
		Sandbox:      &sandbox.Plain{},
		WorkRoot:     root,
		ToolCacheDir: toolCacheDir(),
	}
}

// newRunner is a runner of its own (own work root and compile cache).
func newRunner(t testing.TB, mod func(*Config)) *Runner {
	t.Helper()
	setup(t)
	cfg := newConfig(t.TempDir())
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// need skips the test when the language's toolchain is absent, and
// returns the shared runner.
func need(t *testing.T, language string) *Runner {
	t.Helper()
	setup(t)
	if _, _, err := shared.toolchain(language, ""); err != nil {
		t.Skipf("no %s toolchain on this machine: %v", language, err)
	}
	if language == "go" {
		// Build the standard library into the GOCACHE once, not in every
		// parallel Go test at the same time.
		warmGo.Do(func() {
			mustRun(t, shared, &Spec{Language: "go", Files: src("package main\nfunc main() { println() }\n")})
		})
	}
	return shared
}

func src(s string) []File { return []File{{Content: []byte(s)}} }

func mustRun(t *testing.T, r *Runner, spec *Spec) *Result {
	t.Helper()
	res, err := r.Run(context.Background(), spec, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func wantVerdict(t *testing.T, res *Result, verdict string) {
	t.Helper()
	if res.Verdict == verdict {
		return
	}
	var detail string
	if res.Compile != nil {
		detail += "compile stderr: " + string(res.Compile.Stderr)
	}
	if res.Run != nil {
		detail += fmt.Sprintf(" run: exit %d %s stdout %q stderr %q",
			res.Run.ExitCode, res.Run.Signal, res.Run.Stdout, res.Run.Stderr)
	}
	t.Fatalf("verdict %q, want %q; %s", res.Verdict, verdict, detail)
}

func TestSignal(t *testing.T) {
	t.Parallel()
	r := need(t, "c")
	res := mustRun(t, r, &Spec{Language: "c", Files: src("int main(void) { volatile int *p = 0; *p = 1; return 0; }\n")})
	wantVerdict(t, res, VerdictRuntimeError)
	if res.Run.Signal != "SIGSEGV" {
		t.Errorf("signal %q", res.Run.Signal)
	}
}

func TestMultiFileC(t *testing.T) {
	t.Parallel()
	r := need(t, "c")
	res := mustRun(t, r, &Spec{Language: "c", Files: []File{
		{Name: "main.c", Content: []byte("#include <stdio.h>\n#include \"lib/util.h\"\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n")},
		{Name: "lib/util.h", Content: []byte("int twice(int);\n")},
		{Name: "lib/util.c", Content: []byte("#include \"util.h\"\nint twice(int x) { return 2 * x; }\n")},
	}})
	wantVerdict(t, res, VerdictOK)
	if string(res.Run.Stdout) != "42\n" {
		t.Errorf("stdout %q", res.Run.Stdout)
	}
}

func TestCompileArgs(t *testing.T) {
	t.Parallel()
	r := need(t, "c")
	prog := "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", X); return 0; }\n"
	res := mustRun(t, r, &Spec{Language: "c", Files: src(prog), CompileArgs: []string{"-DX=5"}})
	wantVerdict(t, res, VerdictOK)
	if string(res.Run.Stdout) != "5\n" {
		t.Errorf("stdout %q", res.Run.Stdout)
	}
	// Without it, X is undefined: the compile args are part of the cache
	// key, so this is not served from the entry above.
	res = mustRun(t, r, &Spec{Language: "c", Files: src(prog)})
	wantVerdict(t, res, VerdictCompileError)
}

func TestJavaPublicClassName(t *testing.T) {
	t.Parallel()
	r := need(t, "java")
	prog := "import java.util.*;\n\npublic final class Hello {\n  public static void main(String[] a) { System.out.println(\"hi from \" + Hello.class.getSimpleName()); }\n}\n"
	res := mustRun(t, r, &Spec{Language: "java", Files: src(prog)})
	wantVerdict(t, res, VerdictOK)
	if string(res.Run.Stdout) != "hi from Hello\n" {
		t.Errorf("stdout %q", res.Run.Stdout)
	}
	// javac insists on the file name: Hello.java it must have been.
	e, _, _ := r.toolchain("java", "")
	files, _, err := prepareFiles(e, src(prog))
	if err != nil || files[0].Name != "Hello.java" {
		t.Errorf("file named %q (%v), want Hello.java", files[0].Name, err)
	}
}

func TestJavaPackage(t *testing.T) {
	t.Parallel()
	r := need(t, "java")
	res := mustRun(t, r, &Spec{Language: "java", Files: []File{
		{Name: "app/Main.java", Content: []byte("package app;\npublic class Main { public static void main(String[] a) { System.out.println(app.util.Util.greet()); } }\n")},
		{Name: "app/util/Util.java", Content: []byte("package app.util;\npublic class Util { public static String greet() { return \"hello\"; } }\n")},
	}})
	wantVerdict(t, res, VerdictOK)
	if string(res.Run.Stdout) != "hello\n" {
		t.Errorf("stdout %q", res.Run.Stdout)
	}
}

func TestTestCases(t *testing.T) {
	t.Parallel()
	r := need(t, "python")
	prog := src("print(int(input()) * 2)\n")
	tests := []Test{
		{Stdin: []byte("1\n"), Expected: []byte("2\n"), HasExpected: true},
		{Stdin: []byte("2\n"), Expected: []byte("5\n"), HasExpected: true},
		{Stdin: []byte("x\n"), Expected: []byte("6\n"), HasExpected: true},
		{Stdin: []byte("4\n"), Expected: []byte("8\n"), HasExpected: true},
	}
	var mu sync.Mutex
	seen := map[int]string{}
	out := func(test int, stream string, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		seen[test] += stream + ":" + string(data)
	}
	res, err := r.Run(context.Background(), &Spec{Language: "python", Files: prog, Tests: tests}, out)
	if err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, res, VerdictWrongAnswer)
	want := []string{VerdictOK, VerdictWrongAnswer, VerdictRuntimeError, VerdictOK}
	if len(res.Tests) != len(want) {
		t.Fatalf("%d test results, want %d", len(res.Tests), len(want))
	}
	for i, w := range want {
		if res.Tests[i].Verdict != w {
			t.Errorf("test %d: verdict %q, want %q", i, res.Tests[i].Verdict, w)
		}
	}
	if res.Run != &res.Tests[1] {
		t.Errorf("Run is not the first failing test")
	}
	if seen[0] != "stdout:2\n" || seen[3] != "stdout:8\n" || !strings.HasPrefix(seen[2], "stderr:") {
		t.Errorf("streamed output %v", seen)
	}

	res = mustRun(t, r, &Spec{Language: "python", Files: prog, Tests: tests, StopOnFailure: true})
	wantVerdict(t, res, VerdictWrongAnswer)
	if len(res.Tests) != 2 || res.Run != &res.Tests[1] {
		t.Errorf("StopOnFailure ran %d tests", len(res.Tests))
	}

	res = mustRun(t, r, &Spec{Language: "python", Files: prog, Tests: tests[:1]})
	wantVerdict(t, res, VerdictOK)
	if res.Run != &res.Tests[0] {
		t.Error("Run is not the last test")
	}
}

func TestOutputLimitAndStreaming(t *testing.T) {
	t.Parallel()
	r := need(t, "python")
	var n atomic.Int64
	res, err := r.Run(context.Background(), &Spec{
		Language: "python",
		Files:    src("while True:\n    print('x' * 100)\n"),
		Limits:   Limits{OutputBytes: 5000},
	}, func(test int, stream string, data []byte) {
		if test == -1 && stream == "stdout" {
			n.Add(int64(len(data)))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, res, VerdictOutputLimit)
	if len(res.Run.Stdout) != 5000 || n.Load() != 5000 || !res.Run.OutputTruncated {
		t.Errorf("stdout %d bytes, streamed %d", len(res.Run.Stdout), n.Load())
	}
}

// countingSandbox counts the compiles of a toolchain binary.
type countingSandbox struct {
	sandbox.Sandbox
	bin      string
	compiles atomic.Int32
}

func (s *countingSandbox) Exec(ctx context.Context, c *sandbox.Cmd) (*sandbox.Outcome, error) {
	if c.Args[0] == s.bin {
		s.compiles.Add(1)
	}
	return s.Sandbox.Exec(ctx, c)
}

func TestCompileCacheJava(t *testing.T) {
	t.Parallel()
	need(t, "java")
	_, tc, _ := shared.toolchain("java", "")
	sb := &countingSandbox{Sandbox: &sandbox.Plain{}, bin: tc.Bin}
	r := newRunner(t, func(c *Config) { c.Sandbox = sb })
	spec := &Spec{Language: "java", Files: src(languages[3].hello)}
	first := mustRun(t, r, spec)
	wantVerdict(t, first, VerdictOK)
	second := mustRun(t, r, spec)
	wantVerdict(t, second, VerdictOK)
	if first.Compile.Cached || !second.Compile.Cached {
		t.Errorf("cached: first %v, second %v", first.Compile.Cached, second.Compile.Cached)
	}
	if n := sb.compiles.Load(); n != 1 {
		t.Errorf("javac ran %d times, want 1", n)
	}
	if second.Compile.Wall > 100*time.Millisecond {
		t.Errorf("cached compile took %v", second.Compile.Wall)
	}
	t.Logf("java compile: first %v, cached %v", first.Compile.Wall, second.Compile.Wall)
}

func TestCompileCacheConcurrent(t *testing.T) {
	t.Parallel()
	need(t, "c")
	_, tc, _ := shared.toolchain("c", "")
	sb := &countingSandbox{Sandbox: &sandbox.Plain{}, bin: tc.Bin}
	r := newRunner(t, func(c *Config) { c.Sandbox = sb })
	spec := &Spec{Language: "c", Files: src(languages[1].hello)}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := r.Run(context.Background(), spec, nil)
			if err != nil || res.Verdict != VerdictOK {
				t.Errorf("Run: %v %v", res, err)
			}
		})
	}
	wg.Wait()
	if n := sb.compiles.Load(); n != 1 {
		t.Errorf("gcc ran %d times for 4 identical jobs, want 1", n)
	}
	if n, _ := r.cache.usage(); n != 1 {
		t.Errorf("%d cache entries, want 1", n)
	}
}

func TestCompileErrorNotCached(t *testing.T) {
	t.Parallel()
	need(t, "c")
	r := newRunner(t, nil)
	for range 2 {
		res := mustRun(t, r, &Spec{Language: "c", Files: src(languages[1].compileErr)})
		wantVerdict(t, res, VerdictCompileError)
		if res.Compile.Cached {
			t.Error("compile error served from the cache")
		}
	}
	if n, _ := r.cache.usage(); n != 0 {
		t.Errorf("%d cache entries", n)
	}
}

func TestWorkDirRemoved(t *testing.T) {
	t.Parallel()
	need(t, "bash")
	r := newRunner(t, nil)
	// The program leaves files behind, one of them unreadable.
	res := mustRun(t, r, &Spec{Language: "bash", Files: src("mkdir -p d/e && touch d/e/f && chmod 0 d/e d\n")})
	wantVerdict(t, res, VerdictOK)
	r.Close() // the removal runs after Run returns
	des, err := os.ReadDir(r.cfg.WorkRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "job-") {
			t.Errorf("work dir %s left behind", de.Name())
		}
	}
}

func TestToolchainErrors(t *testing.T) {
	t.Parallel()
	r := need(t, "python")
	_, tc, _ := r.toolchain("python", "")
	major, _, _ := strings.Cut(tc.Version, ".")
	for _, tt := range []struct {
		lang, version string
		ok            bool
	}{
		{"python", "", true},
		{"PY", major, true},
		{"python3", tc.Version, true},
		{"python", major + "0", false},
		{"python", "1", false},
		{"cobol", "", false},
	} {
		res, err := r.Run(context.Background(), &Spec{Language: tt.lang, Version: tt.version, Files: src("print(1)")}, nil)
		if tt.ok {
			if err != nil || res.Version != tc.Version {
				t.Errorf("%s %q: %v, version %v", tt.lang, tt.version, err, res)
			}
		} else if !errors.Is(err, ErrNoToolchain) {
			t.Errorf("%s %q: err %v, want ErrNoToolchain", tt.lang, tt.version, err)
		}
	}
}

func TestMatchVersion(t *testing.T) {
	for _, tt := range []struct {
		version, constraint string
		want                bool
	}{
		{"3.11.2", "", true},
		{"3.11.2", "3", true},
		{"3.11.2", "3.11", true},
		{"3.11.2", "3.11.2", true},
		{"3.11.2", "3.1", false},
		{"3.11.2", "3.11.", false},
		{"3.11.2", "3.11.2.1", false},
		{"17.0.15", "17", true},
		{"1.95.0", "1.9", false},
	} {
		if got := MatchVersion(tt.version, tt.constraint); got != tt.want {
			t.Errorf("MatchVersion(%q, %q) = %v", tt.version, tt.constraint, got)
		}
	}
}

func TestSelfTest(t *testing.T) {
	t.Parallel()
	setup(t)
	if len(testTools) == 0 {
		t.Skip("no toolchains")
	}
	need(t, "go") // warm Go's cache first; a cold one takes ~20 s
	r := newRunner(t, nil)
	working, failures := r.SelfTest(context.Background())
	for name, err := range failures {
		t.Errorf("%s: %v", name, err)
	}
	if len(working) != len(testTools) {
		t.Errorf("%d of %d toolchains work", len(working), len(testTools))
	}
	if n, _ := r.cache.usage(); n != 0 {
		t.Errorf("self-tests used the compile cache (%d entries)", n)
	}
}

func TestSelfTestFailure(t *testing.T) {
	t.Parallel()
	need(t, "bash")
	_, tc, _ := shared.toolchain("bash", "")
	e := *tc.Entry
	e.Test.Stdout = "something else\n"
	tc.Entry = &e
	r := newRunner(t, func(c *Config) { c.Toolchains = []lang.Toolchain{tc} })
	working, failures := r.SelfTest(context.Background())
	if len(working) != 0 || failures["bash"] == nil {
		t.Errorf("working %v, failures %v", working, failures)
	}
}

func TestRunLimits(t *testing.T) {
	t.Parallel()
	r := newRunner(t, func(c *Config) {
		c.Defaults = Limits{CPU: 2 * time.Second}
		c.Max = Limits{CPU: 3 * time.Second, MemoryBytes: 128 << 20}
	})
	got := r.RunLimits(Limits{CPU: 10 * time.Second, OutputBytes: 10})
	want := Limits{CPU: 3 * time.Second, Wall: DefaultWall, MemoryBytes: 128 << 20, Processes: DefaultProcesses, OutputBytes: 10, TotalOutputBytes: DefaultTotalOutputBytes}
	if got != want {
		t.Errorf("RunLimits = %+v, want %+v", got, want)
	}
	if got := r.RunLimits(Limits{}); got.CPU != 2*time.Second {
		t.Errorf("default CPU %v", got.CPU)
	}
}

// TestEnvironment is not parallel: it sets an environment variable.
func TestEnvironment(t *testing.T) {
	r := need(t, "bash")
	t.Setenv("GRAPPE_TEST_SECRET", "leak") // not inherited: never reaches the program
	res := mustRun(t, r, &Spec{Language: "bash", Files: src("env | sort; pwd\n")})
	wantVerdict(t, res, VerdictOK)
	out := string(res.Run.Stdout)
	if strings.Contains(out, "GRAPPE_TEST_SECRET") {
		t.Error("the worker's environment leaked into the job")
	}
	if !strings.Contains(out, "HOME="+r.cfg.WorkRoot) || !strings.Contains(out, "PATH=/usr/local/bin:/usr/bin:/bin\n") {
		t.Errorf("environment:\n%s", out)
	}
	if !bytes.HasPrefix([]byte(lastLine(out)), []byte(r.cfg.WorkRoot+"/job-")) {
		t.Errorf("ran in %q", lastLine(out))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
