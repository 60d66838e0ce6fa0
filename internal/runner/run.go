package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// Run runs one job: it writes the files into a fresh private work
// directory, compiles them if the language has a compile step (or takes
// the artifacts from the compile cache), runs the program once, or once
// per test case, and decides the verdict. out, if not nil, receives the
// program's output as it comes.
//
// An error means the job could not be run (unknown language or version:
// ErrNoToolchain; invalid files: ErrBadSpec; the context ended; the
// sandbox failed). A program that fails to compile or misbehaves is a
// Result with that verdict, not an error.
func (r *Runner) Run(ctx context.Context, spec *Spec, out OutputFunc) (*Result, error) {
	e, tc, err := r.toolchain(spec.Language, spec.Version)
	if err != nil {
		return nil, err
	}
	res, err := r.run(ctx, e, tc, spec, out, false)
	if err != nil {
		return nil, r.hidePaths(err)
	}
	return res, nil
}

// job is one Run in progress.
type job struct {
	r     *Runner
	entry *lang.Entry
	tc    lang.Toolchain
	spec  *Spec
	files []File
	// dir holds everything of the job on the worker: work, and the
	// private layers of the toolchain caches.
	dir  string
	work string
	root *os.Root // the work directory, for host-side file access
	vars lang.Vars
	// selfTest: the job is the catalogue's self-test, trusted to fill
	// the toolchain cache's seed.
	selfTest bool
	// budget is the job's whole output allowance, shared by every step.
	budget *sandbox.OutputBudget
}

// run runs a job; selfTest marks the catalogue's own self-test, which
// bypasses the compile cache and may fill the toolchain cache's seed.
func (r *Runner) run(ctx context.Context, e *lang.Entry, tc lang.Toolchain, spec *Spec, out OutputFunc, selfTest bool) (*Result, error) {
	files, main, err := prepareFiles(e, spec.Files)
	if err != nil {
		return nil, err
	}
	if err := jobspec.CheckCompileArgs(e, spec.CompileArgs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSpec, err)
	}
	dir, err := os.MkdirTemp(r.cfg.WorkRoot, "job-") // mode 0700, random name
	if err != nil {
		return nil, fmt.Errorf("runner: work dir: %w", err)
	}
	// Removed after the result is out: nothing of the job runs any more,
	// and the caller need not wait for it.
	defer r.bg.Go(func() { r.removeWork(dir) })
	work := filepath.Join(dir, "box")
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, fmt.Errorf("runner: work dir: %w", err)
	}
	root, err := os.OpenRoot(work)
	if err != nil {
		return nil, fmt.Errorf("runner: work dir: %w", err)
	}
	defer root.Close()
	if err := writeFiles(root, files); err != nil {
		return nil, err
	}

	j := &job{
		r: r, entry: e, tc: tc, spec: spec, files: files, dir: dir, work: work, root: root,
		selfTest: selfTest,
		budget:   sandbox.NewOutputBudget(r.RunLimits(spec.Limits).TotalOutputBytes),
	}
	j.vars = lang.Vars{
		Bin:         tc.Bin,
		BinDir:      filepath.Dir(tc.Bin),
		Work:        work,
		Main:        files[main].Name,
		Class:       e.ClassName(files[main].Name, files[main].Content),
		Args:        spec.Args,
		CompileArgs: spec.CompileArgs,
	}
	for _, f := range files {
		if e.IsSource(f.Name) {
			j.vars.Src = append(j.vars.Src, f.Name)
		}
	}

	if spec.Interactive != nil && len(spec.Tests) > 0 {
		return nil, fmt.Errorf("%w: an interactive job has no test cases", ErrBadSpec)
	}
	res := &Result{Version: tc.Version}
	if e.Compiled() {
		spec.Interactive.stage(StageCompile)
		c, ok, err := j.compile(ctx)
		if err != nil {
			return nil, err
		}
		res.Compile = c
		if j.budget.Exceeded() {
			res.Verdict = VerdictOutputLimit
			return res, nil
		}
		if !ok {
			res.Verdict = VerdictCompileError
			r.log.Debug("compile error", "language", e.Name, "exit", c.ExitCode)
			return res, nil
		}
	}

	if len(spec.Tests) == 0 {
		spec.Interactive.stage(StageRun)
		ex, err := j.exec(ctx, -1, spec.Stdin, spec.Expected, spec.HasExpected, out)
		if err != nil {
			return nil, err
		}
		res.Run = ex
		res.Verdict = ex.Verdict
		return res, nil
	}
	// The job's verdict and Run are the first failing test's, or the last
	// test's when all pass.
	failed := -1
	res.Tests = make([]Exec, 0, len(spec.Tests))
	for i, t := range spec.Tests {
		ex, err := j.exec(ctx, i, t.Stdin, t.Expected, t.HasExpected, out)
		if err != nil {
			return nil, err
		}
		res.Tests = append(res.Tests, *ex)
		if j.budget.Exceeded() {
			// The whole job's output is spent: it stops here, whatever
			// failed before.
			failed = i
			break
		}
		if ex.Verdict != VerdictOK && failed < 0 {
			failed = i
			if spec.StopOnFailure {
				break
			}
		}
	}
	if failed < 0 {
		failed = len(res.Tests) - 1
	}
	res.Run = &res.Tests[failed]
	res.Verdict = res.Run.Verdict
	return res, nil
}

// exec runs the program once.
func (j *job) exec(ctx context.Context, test int, stdin, expected []byte, hasExpected bool, out OutputFunc) (*Exec, error) {
	limits := j.r.RunLimits(j.spec.Limits)
	vars := j.vars
	vars.MemoryMB = memoryMB(limits)
	argv := lang.Expand(j.entry.Run, &vars)
	cmd := &sandbox.Cmd{
		Args:          j.absProgram(argv),
		Env:           environ(&vars, baseEnv(), j.entry.Env),
		Dir:           j.work,
		Stdin:         stdin,
		Limits:        limits.sandbox(),
		Budget:        j.budget,
		ReadOnlyPaths: j.tc.Dirs,
	}
	if out != nil {
		cmd.OnOutput = func(stream string, data []byte) { out(test, stream, data) }
	}
	if in := j.spec.Interactive; in != nil {
		cmd.Input, cmd.Signals = in.Stdin, in.Signals
	}
	o, err := j.r.cfg.Sandbox.Exec(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("runner: run %s: %w", j.entry.Name, err)
	}
	ex := &Exec{
		ExitCode:        o.ExitCode,
		Signal:          o.Signal,
		Stdout:          o.Stdout,
		Stderr:          o.Stderr,
		OutputTruncated: o.OutputTruncated,
		CPU:             o.CPU,
		Wall:            o.Wall,
		MemoryKB:        o.MemoryKB,
	}
	ex.Verdict = verdict(o, expected, hasExpected)
	return ex, nil
}

// absProgram makes a program relative to the work directory ("./main")
// absolute, as sandbox.Cmd wants.
func (j *job) absProgram(argv []string) []string {
	if len(argv) > 0 && !filepath.IsAbs(argv[0]) {
		argv[0] = filepath.Join(j.work, argv[0])
	}
	return argv
}

// verdict decides a run's verdict, most serious first.
func verdict(o *sandbox.Outcome, expected []byte, hasExpected bool) string {
	switch {
	case o.TimeLimit:
		return VerdictTimeLimit
	case o.MemoryLimit:
		return VerdictMemoryLimit
	case o.OutputTruncated:
		return VerdictOutputLimit
	case o.Signal != "" || o.ExitCode != 0:
		return VerdictRuntimeError
	case hasExpected && !EqualOutput(o.Stdout, expected):
		return VerdictWrongAnswer
	}
	return VerdictOK
}

// removeWork deletes a job's work directory whatever the program did to
// it: a directory it made unreadable is opened up and removal retried.
func (r *Runner) removeWork(dir string) {
	err := os.RemoveAll(dir)
	if err == nil {
		return
	}
	// WalkDir does not follow symlinks; Chmod on a directory found by it
	// could still be raced by a process that escaped the sandbox, which is
	// why only directories inside the work dir are touched.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("cannot remove work dir", "dir", dir, "err", err)
	}
}

// hidePaths keeps the worker's own paths (work and cache directories) out
// of an error a job's owner will read; errors.Is and As still see the
// original. The worker's log has the original.
func (r *Runner) hidePaths(err error) error {
	msg := err.Error()
	hidden := msg
	for _, p := range []struct{ path, name string }{
		{r.toolDir, "<toolcache>"},
		{r.cfg.CacheDir, "<cache>"},
		{r.cfg.WorkRoot, "<work>"},
	} {
		hidden = strings.ReplaceAll(hidden, p.path, p.name)
	}
	if hidden == msg {
		return err
	}
	r.log.Debug("job error", "err", msg)
	return &hiddenPathsError{err: err, msg: hidden}
}

type hiddenPathsError struct {
	err error
	msg string
}

func (e *hiddenPathsError) Error() string { return e.msg }
func (e *hiddenPathsError) Unwrap() error { return e.err }
