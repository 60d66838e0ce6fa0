package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/datadir"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/runner"
	"github.com/grappe/grappe/internal/sandbox"
)

// ToolboxConfig says where a worker machine keeps its files.
type ToolboxConfig struct {
	// DataDir holds the work directories and the compile cache.
	DataDir   string
	Catalogue *lang.Catalogue
	// WorkDir holds the jobs' work directories; empty means DataDir/work.
	WorkDir string
	// ScratchBytes, when positive, puts WorkDir on a private tmpfs of that
	// size (sandbox.MountScratch; root only), unmounted by Close.
	ScratchBytes int64
	// CacheMaxBytes bounds the compile cache (0: the runner's default).
	CacheMaxBytes int64
	// Sandbox runs the jobs' commands; nil means sandbox.Plain, no
	// isolation (--insecure-no-sandbox).
	Sandbox sandbox.Sandbox
	Logger  *slog.Logger
	// TestCacheDir keeps the self-tests that passed (see testcache.go);
	// empty means DataDir/selftest. Workers of one machine may share it.
	TestCacheDir string
	// TestCacheMaxAge is how long a passed self-test is trusted (default
	// DefaultTestCacheMaxAge).
	TestCacheMaxAge time.Duration
	// ToolCacheDir keeps the toolchains' cache seeds (runner.Config);
	// empty means DataDir/toolcache. Workers of one machine may share it.
	ToolCacheDir string
	// Only, when not nil, limits the toolbox to these languages of the
	// catalogue: tests that need one interpreter skip the seconds the
	// compilers' self-tests take.
	Only []string
}

// Toolbox is what a worker machine can run: a runner over the detected
// toolchains, and the languages to announce, which grow as self-tests pass
// (and shrink if a later check fails). A worker announces only what it has
// actually seen run, on this start or on an earlier one with the very same
// toolchains.
type Toolbox struct {
	Runner  *runner.Runner
	Sandbox string

	mu         sync.Mutex
	languages  []*clusterpb.Language
	generation uint64
	testing    map[string]string // version by language, of the self-tests not ended
	changed    chan struct{}     // closed at the next generation (Changed)
	tested     chan struct{}     // closed when every self-test has ended
	quick      chan struct{}     // closed when the interpreters' self-tests have ended
	scratch    *sandbox.Scratch
	// base and detected let Recheck run the self-tests again.
	base     runner.Config
	detected []lang.Toolchain
	sandbox  sandbox.Sandbox // for Repair
	cache    *testCache
	log      *slog.Logger
}

// Close waits for the runner's clean-up and unmounts the work directories'
// tmpfs, if there is one. Call it once nothing runs: after the workers and
// the self-tests have ended.
func (tb *Toolbox) Close() error {
	tb.Runner.Close()
	if tb.scratch == nil {
		return nil
	}
	return tb.scratch.Close()
}

// Quick is closed once the self-tests of the languages without a compile
// step have ended, typically well under a second after start: a worker
// that waits for it announces them in its first hello.
func (tb *Toolbox) Quick() <-chan struct{} { return tb.quick }

// Languages returns the languages that passed their self-test so far and
// a generation number that changes whenever the set does.
func (tb *Toolbox) Languages() ([]*clusterpb.Language, uint64) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.languages, tb.generation
}

// Tested is closed once every self-test has finished.
func (tb *Toolbox) Tested() <-chan struct{} { return tb.tested }

// PrepareToolbox detects the catalogue's toolchains, announces at once
// those whose self-test passed on an earlier start and that have not
// changed since (the self-test cache, testcache.go), and tests the others
// in the background, cheapest first (selftest.go): compiling Go or Rust
// the first time takes seconds, and a worker need not wait for that to
// take Python jobs.
func PrepareToolbox(ctx context.Context, cfg ToolboxConfig) (*Toolbox, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Catalogue == nil {
		c, err := lang.Default()
		if err != nil {
			return nil, err
		}
		cfg.Catalogue = c
	}
	if err := datadir.Ensure(cfg.DataDir, cfg.Logger); err != nil {
		return nil, fmt.Errorf("worker: data dir: %w", err)
	}
	sb := cfg.Sandbox
	if sb == nil {
		sb = &sandbox.Plain{}
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(cfg.DataDir, "work")
	}
	if cfg.TestCacheDir == "" {
		cfg.TestCacheDir = filepath.Join(cfg.DataDir, "selftest")
	}
	if cfg.ToolCacheDir == "" {
		cfg.ToolCacheDir = filepath.Join(cfg.DataDir, "toolcache")
	}
	var scratch *sandbox.Scratch
	if cfg.ScratchBytes > 0 {
		var err error
		if scratch, err = sandbox.MountScratch(cfg.WorkDir, cfg.ScratchBytes); err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
	}
	detected := lang.Detect(ctx, cfg.Catalogue)
	if cfg.Only != nil {
		detected = slices.DeleteFunc(detected, func(t lang.Toolchain) bool { return !slices.Contains(cfg.Only, t.Name()) })
	}
	base := runner.Config{
		Catalogue: cfg.Catalogue, Sandbox: sb, Logger: cfg.Logger,
		WorkRoot:     cfg.WorkDir,
		CacheDir:     filepath.Join(cfg.DataDir, "cache"),
		ToolCacheDir: cfg.ToolCacheDir,
	}
	runCfg := base
	runCfg.Toolchains = detected
	runCfg.CacheMaxBytes = cfg.CacheMaxBytes
	r, err := runner.New(runCfg)
	if err != nil {
		if scratch != nil {
			scratch.Close()
		}
		return nil, fmt.Errorf("worker: runner: %w", err)
	}
	tb := &Toolbox{
		Runner: r, Sandbox: sb.Kind(), tested: make(chan struct{}), quick: make(chan struct{}), scratch: scratch,
		base: base, detected: detected, sandbox: sb, log: cfg.Logger,
	}
	tb.cache = openTestCache(cfg.TestCacheDir, sb.Kind(), cfg.TestCacheMaxAge, cfg.Logger)
	tb.startSelfTests(ctx)
	return tb, nil
}

// ErrSelfTest is returned by Recheck when a toolchain fails its self-test.
var ErrSelfTest = errors.New("worker: self-test failed")

// Recheck runs again the self-tests of the announced toolchains that have
// no compile step (milliseconds each), or of every announced one when all
// are compiled: a worker that repaired its sandbox proves that it runs
// programs again before it takes jobs.
func (tb *Toolbox) Recheck(ctx context.Context) error {
	langs, _ := tb.Languages()
	announced := map[string]bool{}
	for _, l := range langs {
		announced[l.Name+" "+l.Version] = true
	}
	var quick, all []lang.Toolchain
	for _, t := range tb.detected {
		if !announced[t.Name()+" "+t.Version] {
			continue
		}
		all = append(all, t)
		if !t.Entry.Compiled() {
			quick = append(quick, t)
		}
	}
	if len(quick) > 0 {
		all = quick
	}
	if len(all) == 0 {
		return nil // nothing announced, nothing to prove
	}
	cfg := tb.base
	cfg.Toolchains = all
	cfg.CacheMaxBytes = -1
	probe, err := runner.New(cfg)
	if err != nil {
		return fmt.Errorf("worker: runner: %w", err)
	}
	defer probe.Close()
	working, failures := probe.SelfTest(ctx)
	if len(failures) == 0 {
		return nil
	}
	// Some passed: the machinery works, and those that failed are broken
	// toolchains, withdrawn (and tested again at the next start). None
	// passed: the machinery is what failed; the worker stays unhealthy,
	// taking no job, and keeps its languages for when it is repaired.
	var errs []error
	for name, err := range failures {
		if len(working) > 0 {
			tb.withdraw(name, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return fmt.Errorf("%w: %w", ErrSelfTest, errors.Join(errs...))
}

// Repair is how an unhealthy worker repairs itself (Config.Repair): the
// sandbox rebuilds what it can (sandbox.Repairer: its cgroups, its
// prepared sandboxes), then the quick self-tests must pass again (Recheck).
func (tb *Toolbox) Repair(ctx context.Context) error {
	if r, ok := tb.sandbox.(sandbox.Repairer); ok {
		if err := r.Repair(ctx); err != nil {
			return fmt.Errorf("repair the sandbox: %w", err)
		}
	}
	return tb.Recheck(ctx)
}
