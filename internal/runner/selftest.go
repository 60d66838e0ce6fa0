package runner

import (
	"context"
	"fmt"
	"sync"

	"github.com/grappe/grappe/internal/lang"
)

// SelfTest runs every configured toolchain's self-test program (from the
// catalogue) concurrently and returns the toolchains that passed, in
// configuration order, and why the others failed, by language name. The
// self-tests bypass the compile cache, so the compiler itself is tested;
// they fill the toolchains' own cache seeds (Go's standard library), which
// jobs then see read-only (see toolcache.go).
//
// A worker announces only the working toolchains; to also refuse jobs for
// the others, build its Runner with them.
func (r *Runner) SelfTest(ctx context.Context) (working []lang.Toolchain, failures map[string]error) {
	errs := make([]error, len(r.cfg.Toolchains))
	var wg sync.WaitGroup
	for i, t := range r.cfg.Toolchains {
		wg.Go(func() { errs[i] = r.selfTest(ctx, t) })
	}
	wg.Wait()
	failures = make(map[string]error)
	for i, t := range r.cfg.Toolchains {
		if errs[i] != nil {
			failures[t.Name()] = errs[i]
			r.log.Warn("self-test failed", "language", t.Name(), "version", t.Version, "err", errs[i])
			continue
		}
		working = append(working, t)
	}
	return working, failures
}

func (r *Runner) selfTest(ctx context.Context, t lang.Toolchain) error {
	test := t.Entry.Test
	spec := &Spec{
		Language:    t.Name(),
		Files:       []File{{Content: []byte(test.Source)}},
		Stdin:       []byte(test.Stdin),
		Expected:    []byte(test.Stdout),
		HasExpected: true,
	}
	res, err := r.run(ctx, t.Entry, t, spec, nil, true)
	if err != nil {
		return err
	}
	if res.Verdict == VerdictOK {
		return nil
	}
	if res.Verdict == VerdictCompileError {
		return fmt.Errorf("self-test: %s: %s", res.Verdict, clip(res.Compile.Stderr))
	}
	return fmt.Errorf("self-test: %s: exit %d %s: stdout %q stderr %q", res.Verdict,
		res.Run.ExitCode, res.Run.Signal, clip(res.Run.Stdout), clip(res.Run.Stderr))
}

func clip(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
