package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
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
	// Only, when not nil, limits the toolbox to these languages of the
	// catalogue: tests that need one interpreter skip the seconds the
	// compilers' self-tests take.
	Only []string
}

// Toolbox is what a worker machine can run: a runner over the detected
// toolchains, and the languages to announce, which grow as self-tests pass.
// A worker announces only what it has actually seen run.
type Toolbox struct {
	Runner  *runner.Runner
	Sandbox string

	mu         sync.Mutex
	languages  []*clusterpb.Language
	generation uint64
	tested     chan struct{} // closed when every self-test has ended
	quick      chan struct{} // closed when the interpreters' self-tests have ended
	scratch    *sandbox.Scratch
	// base and detected let Recheck run the self-tests again.
	base     runner.Config
	detected []lang.Toolchain
	sandbox  sandbox.Sandbox // for Repair
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

func (tb *Toolbox) add(l *clusterpb.Language) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	langs := append(append([]*clusterpb.Language{}, tb.languages...), l)
	sort.Slice(langs, func(i, j int) bool { return langs[i].Name < langs[j].Name })
	tb.languages = langs
	tb.generation++
}

// PrepareToolbox detects the catalogue's toolchains and starts their
// self-tests in the background (compiling Go or Rust the first time takes
// seconds; a worker need not wait for that to take Python jobs).
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
		ToolCacheDir: filepath.Join(cfg.DataDir, "toolcache"),
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
		base: base, detected: detected, sandbox: sb,
	}
	// Interpreters first, on their own: their self-tests take milliseconds
	// but would take seconds if they shared the CPU with javac and rustc.
	var interpreted, compiled []lang.Toolchain
	for _, t := range detected {
		if t.Entry.Compiled() {
			compiled = append(compiled, t)
		} else {
			interpreted = append(interpreted, t)
		}
	}
	start := time.Now()
	go func() {
		defer close(tb.tested)
		if err := tb.selfTest(ctx, base, interpreted, cfg.Logger); err != nil {
			cfg.Logger.Error("self-tests", "err", err)
		}
		close(tb.quick)
		if err := tb.selfTest(ctx, base, compiled, cfg.Logger); err != nil {
			cfg.Logger.Error("self-tests", "err", err)
		}
		langs, _ := tb.Languages()
		cfg.Logger.Info("self-tests done", "languages", len(langs), "of", len(detected), "took", time.Since(start).Round(time.Millisecond))
	}()
	return tb, nil
}

// selfTest runs the toolchains' self-tests concurrently and announces each
// one that passes as soon as it does.
func (tb *Toolbox) selfTest(ctx context.Context, base runner.Config, tools []lang.Toolchain, log *slog.Logger) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, t := range tools {
		// One probe runner per toolchain, without the compile cache, so
		// each self-test really runs its compiler and reports on its own.
		probeCfg := base
		probeCfg.Toolchains = []lang.Toolchain{t}
		probeCfg.CacheMaxBytes = -1
		probe, err := runner.New(probeCfg)
		if err != nil {
			return fmt.Errorf("worker: runner: %w", err)
		}
		wg.Go(func() {
			defer probe.Close()
			working, failures := probe.SelfTest(ctx)
			for _, w := range working {
				tb.add(&clusterpb.Language{Name: w.Name(), Version: w.Version})
			}
			for name, err := range failures {
				log.Warn("toolchain failed its self-test; not announced", "language", name, "err", err)
			}
		})
	}
	return nil
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
	_, failures := probe.SelfTest(ctx)
	for name, err := range failures {
		return fmt.Errorf("%w: %s: %w", ErrSelfTest, name, err)
	}
	return nil
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
