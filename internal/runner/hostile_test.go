package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// shellCatalogue has a compiled language whose compiler is the job's own
// shell script: what a compile_args attack (gcc -wrapper) would run,
// without needing one. Its self-test writes a file in the tool cache, as
// Go's first build writes the standard library.
const shellCatalogue = `
languages:
  - name: shellc
    extensions: [.shc]
    binaries: [/bin/sh]
    version:
      command: ["{bin}", "-c", "echo 1.0.0"]
      regex: '(\d+\.\d+\.\d+)'
    source: main.shc
    compile: ["{bin}", "{main}"]
    compile_env: ["CACHE={cache}"]
    artifacts: [main]
    run: ["./main"]
    test:
      source: |
        echo seeded > "$CACHE/seedfile"
        printf '#!/bin/sh\necho ok\n' > main
        chmod +x main
      stdout: "ok\n"
`

// shellRunner is a runner of the shellc language, self-tested.
func shellRunner(t *testing.T, sb sandbox.Sandbox, mod func(*Config)) *Runner {
	t.Helper()
	cat, err := lang.Parse(nil, []byte(shellCatalogue), "test catalogue")
	if err != nil {
		t.Fatal(err)
	}
	tools := lang.Detect(context.Background(), cat)
	if len(tools) != 1 {
		t.Skip("no /bin/sh")
	}
	cfg := Config{
		Catalogue: cat, Toolchains: tools, Sandbox: sb,
		WorkRoot: t.TempDir(), ToolCacheDir: t.TempDir(),
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if _, failed := r.SelfTest(context.Background()); failed["shellc"] != nil {
		t.Fatal(failed["shellc"])
	}
	return r
}

// compileScript is a shellc job whose compile runs script, then makes a
// program that prints ok.
func compileScript(script string) *Spec {
	return &Spec{Language: "shellc", Files: src(script + "\nprintf '#!/bin/sh\\necho ok\\n' > main && chmod +x main\n")}
}

func linuxSandbox(t *testing.T) *sandbox.Linux {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	sb, err := sandbox.New(sandbox.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// TestCompilesShareNothing is issue 11's compile-time attack: one job's
// compile planted a file in the shared tool cache that another user's
// compile read, and wrote 573 MB that stayed on the worker. Each compile
// now sees the self-test's seed under a layer of its own.
func TestCompilesShareNothing(t *testing.T) {
	sb := linuxSandbox(t)
	r := shellRunner(t, sb, func(c *Config) { c.CacheMaxBytes = -1 })
	seed := r.seedDir(r.tools["shellc"][0].Entry, r.tools["shellc"][0])
	// The first compile sees the seed, plants a file there, replaces the
	// seed's own file and writes 64 MB in the cache and the work dir.
	first := compileScript(`test "$(cat "$CACHE/seedfile")" = seeded || exit 3
echo planted > "$CACHE/planted" || exit 4
echo evil > "$CACHE/seedfile" || exit 5
head -c 33554432 /dev/zero > "$CACHE/big" || exit 6
head -c 33554432 /dev/zero > big || exit 7`)
	res := mustRun(t, r, first)
	wantVerdict(t, res, VerdictOK)
	// The second sees the seed as it was, and nothing of the first.
	second := compileScript(`test -e "$CACHE/planted" && { echo "saw the plant" >&2; exit 1; }
test "$(cat "$CACHE/seedfile")" = seeded || { echo "seed changed" >&2; exit 2; }
test -e "$CACHE/big" && exit 3
true`)
	res = mustRun(t, r, second)
	wantVerdict(t, res, VerdictOK)

	r.Close()
	des, err := os.ReadDir(seed)
	if err != nil || len(des) != 1 || des[0].Name() != "seedfile" {
		t.Errorf("seed holds %v (%v), want only seedfile", des, err)
	}
	if b, _ := os.ReadFile(filepath.Join(seed, "seedfile")); string(b) != "seeded\n" {
		t.Errorf("seedfile %q", b)
	}
	// Nothing of either job is left on the worker.
	left, err := os.ReadDir(r.cfg.WorkRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range left {
		t.Errorf("left behind in the work root: %s", de.Name())
	}
}

// TestCompileFlagsRefused: the runner applies the master's flag rules
// (jobspec) itself, so a worker never runs gcc -wrapper, whoever sent it.
func TestCompileFlagsRefused(t *testing.T) {
	t.Parallel()
	r := need(t, "c")
	for _, args := range [][]string{
		{"-wrapper", "/bin/sh,-c,touch /tmp/grappe-wrapper"},
		{"-fplugin=./p.so"},
		{"-B."},
		{"@args"},
	} {
		_, err := r.Run(context.Background(), &Spec{Language: "c", Files: src("int main(void){return 0;}"), CompileArgs: args}, nil)
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("compile_args %q: %v, want ErrBadSpec", args, err)
		}
	}
	_, err := r.Run(context.Background(), &Spec{Language: "c", Files: []File{{Name: "-x.c", Content: []byte("int main(void){return 0;}")}}}, nil)
	if !errors.Is(err, ErrBadSpec) {
		t.Errorf("file -x.c: %v, want ErrBadSpec", err)
	}
}

// TestErrorsHidePaths: a job's error never names the worker's directories.
func TestErrorsHidePaths(t *testing.T) {
	t.Parallel()
	r := newRunner(t, nil)
	err := r.hidePaths(fmt.Errorf("runner: %w", &os.PathError{Op: "open", Path: filepath.Join(r.cfg.WorkRoot, "job-1", "box"), Err: os.ErrPermission}))
	if strings.Contains(err.Error(), r.cfg.WorkRoot) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("%v", err)
	}
	err = r.hidePaths(errors.New("sandbox: layer " + r.toolDir + "/go.seed"))
	if strings.Contains(err.Error(), r.toolDir) {
		t.Errorf("%v", err)
	}
}

// TestCompileCacheManyFiles is issue 11's cache attack: a compile that
// made 100,000 files had the worker copy them all into its cache (9.7 s,
// 100,000 inodes). The cache keeps the declared artifact alone.
func TestCompileCacheManyFiles(t *testing.T) {
	t.Parallel()
	r := shellRunner(t, &sandbox.Plain{}, nil)
	spec := compileScript(`mkdir junk && cd junk && seq 1 100000 | xargs touch && cd .. && seq 1 1000 | sed 's/^/top/' | xargs touch`)
	start := time.Now()
	res := mustRun(t, r, spec)
	wantVerdict(t, res, VerdictOK)
	took := time.Since(start)
	if n, _ := r.cache.usage(); n != 1 {
		t.Fatalf("%d cache entries, want 1", n)
	}
	for key := range r.cache.entries {
		des, err := os.ReadDir(filepath.Join(r.cache.dir, key, "files"))
		if err != nil || len(des) != 1 || des[0].Name() != "main" {
			t.Errorf("entry holds %d files (%v), want only main", len(des), err)
		}
	}
	if f := r.cache.files(); f > 10 {
		t.Errorf("the cache counts %d inodes for one artifact", f)
	}
	// A hit copies one file.
	start = time.Now()
	res = mustRun(t, r, spec)
	if res.Compile == nil || !res.Compile.Cached {
		t.Fatalf("second run not a cache hit: %+v", res.Compile)
	}
	if hit := time.Since(start); hit > took/2 && hit > time.Second {
		t.Errorf("cache hit took %v, the compile %v", hit, took)
	}
	t.Logf("compile of 101,000 files and its job: %v", took)
}

// TestCompileCacheFileCap: entries are evicted by files (inodes) as well
// as bytes.
func TestCompileCacheFileCap(t *testing.T) {
	t.Parallel()
	r := shellRunner(t, &sandbox.Plain{}, func(c *Config) { c.CacheMaxFiles = 12 })
	for i := range 4 {
		mustRun(t, r, compileScript(fmt.Sprintf("# job %d", i)))
	}
	n, _ := r.cache.usage()
	if f := r.cache.files(); f > 12 || n != 2 {
		t.Errorf("%d entries, %d inodes; want 2 entries within 12 inodes", n, f)
	}
}
