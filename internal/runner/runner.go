package runner

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// Sentinel errors callers branch on.
var (
	// ErrNoToolchain: the language is unknown, or no toolchain of it (of
	// the requested version) is available on this worker.
	ErrNoToolchain = errors.New("runner: no toolchain")
	// ErrBadSpec: the spec cannot be run as given (no files, a hostile
	// file name, …). Retrying elsewhere will not help.
	ErrBadSpec = errors.New("runner: invalid job")
)

// Verdicts, as in the API's "verdict".
const (
	VerdictOK           = "ok"
	VerdictWrongAnswer  = "wrong_answer"
	VerdictCompileError = "compile_error"
	VerdictRuntimeError = "runtime_error"
	VerdictTimeLimit    = "time_limit"
	VerdictMemoryLimit  = "memory_limit"
	VerdictOutputLimit  = "output_limit"
)

// Built-in limits, used for the zero fields of Config.Defaults and
// Config.Compile.
const (
	DefaultCPU         = 5 * time.Second
	DefaultWall        = 10 * time.Second
	DefaultMemoryBytes = 256 << 20
	DefaultProcesses   = 64
	DefaultOutputBytes = 1 << 20
	// DefaultTotalOutputBytes is a job's whole output budget, as the API's
	// default limits.total_output_kb.
	DefaultTotalOutputBytes = jobspec.DefaultTotalOutputKB << 10

	// Compiles get more: javac and rustc are slow and big, and the first Go
	// build on a worker compiles the standard library.
	DefaultCompileCPU         = 60 * time.Second
	DefaultCompileWall        = 60 * time.Second
	DefaultCompileMemoryBytes = 2 << 30
	DefaultCompileProcesses   = 256
	DefaultCompileOutputBytes = 1 << 20

	// DefaultCacheMaxBytes bounds the compile cache when Config leaves it 0.
	DefaultCacheMaxBytes = 1 << 30
	// DefaultCacheMaxFiles bounds the compile cache's files (inodes) when
	// Config leaves it 0.
	DefaultCacheMaxFiles = 20000
)

// maxFiles bounds the number of files of one job.
const maxFiles = 1000

// Config configures a Runner.
type Config struct {
	Catalogue *lang.Catalogue
	// Toolchains are the ones the runner may use: normally those that
	// passed SelfTest.
	Toolchains []lang.Toolchain
	Sandbox    sandbox.Sandbox
	// WorkRoot is the parent of the per-job work directories.
	WorkRoot string
	// CacheDir holds the compile cache; empty means WorkRoot/cache. It
	// belongs to one Runner.
	CacheDir string
	// CacheMaxBytes bounds the compile cache (least recently used entries
	// are evicted past it); 0 means DefaultCacheMaxBytes, negative
	// disables the cache.
	CacheMaxBytes int64
	// CacheMaxFiles bounds the files (inodes) of the compile cache; 0
	// means DefaultCacheMaxFiles.
	CacheMaxFiles int64
	// ToolCacheDir holds the seeds of the toolchains' own caches ({cache}
	// in the catalogue, e.g. Go's GOCACHE), which only self-tests fill and
	// jobs see under a private layer (see toolcache.go); empty means
	// CacheDir/tools.
	ToolCacheDir string
	// Defaults fill the zero limits of a spec; Max clamps them (a zero Max
	// field means no maximum). Compile bounds each compile step. Zero
	// fields of Defaults and Compile take the Default… constants.
	Defaults, Max, Compile Limits
	Logger                 *slog.Logger
}

// Runner runs jobs. It is safe for concurrent use.
type Runner struct {
	bg       sync.WaitGroup // work directories being removed
	cfg      Config
	log      *slog.Logger
	tools    map[string][]lang.Toolchain // by language name
	cache    *cache                      // nil when disabled
	toolDir  string
	defaults Limits
	compile  Limits
}

// New checks cfg and prepares the work and cache directories.
func New(cfg Config) (*Runner, error) {
	if cfg.Catalogue == nil || cfg.Sandbox == nil || cfg.WorkRoot == "" {
		return nil, errors.New("runner: Catalogue, Sandbox and WorkRoot are required")
	}
	root, err := filepath.Abs(cfg.WorkRoot)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	cfg.WorkRoot = root
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("runner: work root: %w", err)
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(root, "cache")
	}
	if cfg.ToolCacheDir == "" {
		cfg.ToolCacheDir = filepath.Join(cfg.CacheDir, "tools")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		cfg:     cfg,
		log:     log,
		tools:   make(map[string][]lang.Toolchain),
		toolDir: cfg.ToolCacheDir,
		defaults: fill(cfg.Defaults, Limits{
			CPU: DefaultCPU, Wall: DefaultWall, MemoryBytes: DefaultMemoryBytes,
			Processes: DefaultProcesses, OutputBytes: DefaultOutputBytes,
			TotalOutputBytes: DefaultTotalOutputBytes,
		}),
		compile: fill(cfg.Compile, Limits{
			CPU: DefaultCompileCPU, Wall: DefaultCompileWall, MemoryBytes: DefaultCompileMemoryBytes,
			Processes: DefaultCompileProcesses, OutputBytes: DefaultCompileOutputBytes,
		}),
	}
	for _, t := range cfg.Toolchains {
		r.tools[t.Name()] = append(r.tools[t.Name()], t)
	}
	if err := os.MkdirAll(r.toolDir, 0o700); err != nil {
		return nil, fmt.Errorf("runner: tool cache: %w", err)
	}
	r.removeLegacyToolCache()
	if cfg.CacheMaxBytes >= 0 {
		limit := cfg.CacheMaxBytes
		if limit == 0 {
			limit = DefaultCacheMaxBytes
		}
		files := cmp.Or(cfg.CacheMaxFiles, DefaultCacheMaxFiles)
		if r.cache, err = openCache(filepath.Join(cfg.CacheDir, "compile"), limit, files, log); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Close waits for the removal of the finished jobs' work directories.
// Runs may not start after it.
func (r *Runner) Close() {
	r.bg.Wait()
}

// Toolchains returns the toolchains the runner uses.
func (r *Runner) Toolchains() []lang.Toolchain {
	return append([]lang.Toolchain(nil), r.cfg.Toolchains...)
}

// toolchain picks the toolchain for a language name or alias and a version
// constraint: the version must equal it or start with it followed by a dot
// ("3.11" matches "3.11.2", not "3.110").
func (r *Runner) toolchain(language, version string) (*lang.Entry, lang.Toolchain, error) {
	e, ok := r.cfg.Catalogue.Lookup(language)
	if !ok {
		return nil, lang.Toolchain{}, fmt.Errorf("%w: unknown language %q", ErrNoToolchain, language)
	}
	for _, t := range r.tools[e.Name] {
		if MatchVersion(t.Version, version) {
			return e, t, nil
		}
	}
	if version != "" {
		return nil, lang.Toolchain{}, fmt.Errorf("%w: %s %s", ErrNoToolchain, e.Name, version)
	}
	return nil, lang.Toolchain{}, fmt.Errorf("%w: %s", ErrNoToolchain, e.Name)
}

// MatchVersion reports whether a toolchain version satisfies a constraint:
// empty matches anything, otherwise equal or a prefix ending at a dot.
func MatchVersion(version, constraint string) bool {
	return constraint == "" || version == constraint || strings.HasPrefix(version, constraint+".")
}

// fill sets the zero fields of l from def.
func fill(l, def Limits) Limits {
	if l.CPU <= 0 {
		l.CPU = def.CPU
	}
	if l.Wall <= 0 {
		l.Wall = def.Wall
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = def.MemoryBytes
	}
	if l.Processes <= 0 {
		l.Processes = def.Processes
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = def.OutputBytes
	}
	if l.TotalOutputBytes <= 0 {
		l.TotalOutputBytes = def.TotalOutputBytes
	}
	return l
}

// clamp lowers the fields of l to the non-zero fields of top.
func clamp(l, top Limits) Limits {
	if top.CPU > 0 && l.CPU > top.CPU {
		l.CPU = top.CPU
	}
	if top.Wall > 0 && l.Wall > top.Wall {
		l.Wall = top.Wall
	}
	if top.MemoryBytes > 0 && l.MemoryBytes > top.MemoryBytes {
		l.MemoryBytes = top.MemoryBytes
	}
	if top.Processes > 0 && l.Processes > top.Processes {
		l.Processes = top.Processes
	}
	if top.OutputBytes > 0 && l.OutputBytes > top.OutputBytes {
		l.OutputBytes = top.OutputBytes
	}
	if top.TotalOutputBytes > 0 && l.TotalOutputBytes > top.TotalOutputBytes {
		l.TotalOutputBytes = top.TotalOutputBytes
	}
	return l
}

// RunLimits are the limits a spec's runs get: its own, defaults for the
// zero ones, clamped to the maximum (and the output budget to
// jobspec.MaxTotalOutputKB).
func (r *Runner) RunLimits(l Limits) Limits {
	l = clamp(fill(l, r.defaults), r.cfg.Max)
	// Whatever the master said: a result must stay deliverable.
	l.TotalOutputBytes = min(l.TotalOutputBytes, maxTotalOutputBytes)
	return l
}

// maxTotalOutputBytes is the largest output budget a job can have.
const maxTotalOutputBytes = jobspec.MaxTotalOutputKB << 10

// memoryMB is the {memory_mb} of a step: its memory limit in MiB.
func memoryMB(l Limits) string {
	if l.MemoryBytes <= 0 {
		return "0"
	}
	return strconv.FormatInt(max(l.MemoryBytes>>20, 1), 10)
}

func (l Limits) sandbox() sandbox.Limits {
	return sandbox.Limits{
		CPU: l.CPU, Wall: l.Wall, MemoryBytes: l.MemoryBytes,
		Processes: l.Processes, OutputBytes: l.OutputBytes,
	}
}

// baseEnv is the environment every step starts from; the worker's own is
// never passed on.
func baseEnv() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME={work}", "LANG=C.UTF-8"}
}

// environ expands env templates over the base environment, later entries
// replacing earlier ones with the same key.
func environ(v *lang.Vars, layers ...[]string) []string {
	var out []string
	index := make(map[string]int)
	for _, layer := range layers {
		for _, kv := range lang.Expand(layer, v) {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
